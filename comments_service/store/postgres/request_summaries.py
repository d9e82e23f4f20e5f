"""The requests summed up on PostgreSQL (CommentStore.request_summaries, learned_filings).

Migration 0007 keeps each request's people, places and comments in request_totals,
request_people and request_places (a trigger, in the writing transaction), and two partial
indexes list a request's counted comments and the learned filings in time order. A summary is
then one row per request and a few index entries from each end of its list: its cost follows
the number of requests and what is shown, not the number of comments (issue 19). Requests
merged into another are rare: they are summed up from their comments, as the default does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from comments_service.models import CommentState
from comments_service.store.request_summaries import (
    RequestFiling,
    RequestSummary,
    first_of_each,
    summarize,
    window_start,
)

FILING_COLUMNS = "id, request, request_filed, reader_key, thread, question, created, state"
COUNTED = ("request_filed AND NOT is_author AND request IS NOT NULL AND request <> '-'"
           " AND state IN ('awaiting_reply', 'replied')")
LEARNED = ("request_filed AND NOT is_author AND request IS NOT NULL"
           " AND (request = '-' OR state IN ('awaiting_reply', 'replied'))")
# The first people of a request are found among its oldest comments: this many per person
# wanted, then, for the rare request where one person filed more, all of its comments.
OLDEST_PER_PERSON = 4


def filing_of(row: tuple[Any, ...]) -> RequestFiling:
    comment_id, request, filed, reader, thread, question, created, state = row
    return RequestFiling(comment_id, request, filed, reader, thread, question, created,
                         CommentState(state))


def _ends(cursor: Any, requests: list[str], count: int, newest: bool
          ) -> dict[str, list[RequestFiling]]:
    """Each request's ``count`` newest (or oldest) counted comments, oldest first."""
    if not requests or count <= 0:
        return {}
    order = "DESC" if newest else "ASC"
    rows = cursor.execute(
        f"SELECT x.{', x.'.join(FILING_COLUMNS.split(', '))}"  # noqa: S608 - constants
        " FROM unnest(%(requests)s::text[]) AS r(request), LATERAL ("
        f" SELECT {FILING_COLUMNS} FROM comments"
        f" WHERE request = r.request AND {COUNTED}"
        f" ORDER BY created {order}, id {order} LIMIT %(count)s) AS x",
        {"requests": requests, "count": count},
    ).fetchall()
    found: dict[str, list[RequestFiling]] = {}
    for row in rows:
        found.setdefault(row[1], []).append(filing_of(row))
    for listed in found.values():
        listed.sort(key=lambda filing: filing.order)
    return found


def _counted_of(cursor: Any, requests: list[str]) -> list[RequestFiling]:
    rows = cursor.execute(
        f"SELECT {FILING_COLUMNS} FROM comments"  # noqa: S608 - constants
        f" WHERE request = ANY(%s) AND {COUNTED} ORDER BY created, id", (requests,),
    ).fetchall()
    return [filing_of(row) for row in rows]


def _top_places(cursor: Any, requests: list[str], count: int
                ) -> dict[str, list[tuple[tuple[str, str | None], int]]]:
    if not requests or count <= 0:
        return {}
    rows = cursor.execute(
        "SELECT r.request, x.thread, x.question, x.comments"
        " FROM unnest(%(requests)s::text[]) AS r(request), LATERAL ("
        " SELECT thread, question, comments FROM request_places"
        " WHERE request = r.request ORDER BY comments DESC, thread, question"
        " LIMIT %(count)s) AS x",
        {"requests": requests, "count": count},
    ).fetchall()
    found: dict[str, list[tuple[tuple[str, str | None], int]]] = {}
    for request, thread, question, comments in rows:
        found.setdefault(request, []).append(((thread, question or None), comments))
    for listed in found.values():
        listed.sort(key=lambda item: (-item[1], item[0][0], item[0][1] or ""))
    return found


def request_summaries(cursor: Any, merged: Mapping[str, str], *, newest: int, firsts: int,
                      places: int) -> dict[str, RequestSummary]:
    totals = {request: (people, place_count, comments) for request, people, place_count, comments
              in cursor.execute(
                  "SELECT request, people, places, comments FROM request_totals"
                  " WHERE comments > 0").fetchall()}
    targets: dict[str, list[str]] = {}
    for request in totals:
        targets.setdefault(merged.get(request, request), []).append(request)
    single = sorted(requests[0] for requests in targets.values() if len(requests) == 1)
    found: dict[str, RequestSummary] = {}
    for target, requests in targets.items():
        if len(requests) > 1:
            found[target] = summarize(_counted_of(cursor, requests), newest=newest,
                                      firsts=firsts, places=places)
    latest = _ends(cursor, single, newest, newest=True)
    oldest = _ends(cursor, single, firsts * OLDEST_PER_PERSON, newest=False)
    main_places = _top_places(cursor, single, places)
    for request in single:
        people, place_count, comments = totals[request]
        early = first_of_each(oldest.get(request, []), firsts)
        if len(early) < min(firsts, people):
            early = first_of_each(_counted_of(cursor, [request]), firsts)
        found[merged.get(request, request)] = RequestSummary(
            people=people, filed=comments, newest=tuple(latest.get(request, [])),
            firsts=early, places=tuple(main_places.get(request, [])),
            place_count=place_count)
    return found


def learned_filings(cursor: Any, newest: int, step: int) -> list[RequestFiling]:
    [total] = cursor.execute(
        f"SELECT count(*) FROM comments WHERE {LEARNED}").fetchone()  # noqa: S608
    wanted = total - window_start(total, newest, step)
    rows = cursor.execute(
        f"SELECT {FILING_COLUMNS} FROM comments WHERE {LEARNED}"  # noqa: S608 - constants
        " ORDER BY created DESC, id DESC LIMIT %s", (wanted,),
    ).fetchall()
    return [filing_of(row) for row in reversed(rows)]
