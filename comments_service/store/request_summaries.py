"""Where reader comments stand in the requests, and each request summed up, without text.

The requests pages and the ranking of a comment against the requests (tally/) need, for each
request, how many distinct people the author filed under it, its newest filed comments, the
first comment of its first few people and where its comments came from; and the latest of the
author's filings, that the ranking's threshold is fitted on. A store answers these from what it
keeps up to date on write (the embedded store's index, PostgreSQL's indexed columns), so their
cost follows the number of requests and what is shown, not the number of comments (issue 19).

The rules of what counts live here, beside the records, so that both stores and the pure
Python summary below (the default, and the reference the stores are tested against) agree.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from comments_service.models import LIVE_STATES, CommentState

MOVED_OUT = "-"  # the request of a comment the author filed as "not a request"
NEWEST_MEMBERS = 30  # defaults of CommentStore.request_summaries
FIRST_PEOPLE = 3
TOP_PLACES = 5

Place = tuple[str, str | None]  # (thread, question id)


@dataclass(frozen=True, slots=True)
class RequestFiling:
    """Where one reader comment stands in the requests, without its text
    (RequestStore.request_filings): enough to count people and list sources."""

    id: str
    request: str  # the group id as stored (merges not followed), or "-": not a request
    filed: bool  # the author filed it there (else the machine's guess)
    reader: str | None  # its reader_key
    thread: str
    question: str | None
    created: str
    state: CommentState

    @property
    def person(self) -> str:
        """Who counts once: the reader key, or the comment itself when it has none."""
        return self.reader or f"#{self.id}"

    @property
    def order(self) -> tuple[str, str]:
        return (self.created, self.id)


def is_counted(filing: RequestFiling) -> bool:
    """Filed by the author under a request, and live (not spam, not withdrawn): what the
    request's count of people is made of."""
    return filing.filed and filing.request not in ("", MOVED_OUT) and \
        filing.state in LIVE_STATES


def is_learned(filing: RequestFiling) -> bool:
    """A filing the ranking learns from: counted, or filed as not a request (any state)."""
    return is_counted(filing) or (filing.filed and filing.request == MOVED_OUT)


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """One request's counted comments (see :func:`is_counted`), summed up."""

    people: int  # distinct people (RequestFiling.person)
    filed: int  # comments
    newest: tuple[RequestFiling, ...]  # the newest few, oldest first
    firsts: tuple[RequestFiling, ...]  # the first comment of each of its first few people
    places: tuple[tuple[Place, int], ...]  # the most common places, most comments first
    place_count: int  # distinct places

    @property
    def first(self) -> RequestFiling:
        return self.firsts[0]

    @property
    def last(self) -> RequestFiling:
        return self.newest[-1]


def first_of_each(ordered: Iterable[RequestFiling], people: int) -> tuple[RequestFiling, ...]:
    """The first filing of each of the first ``people`` people, from filings oldest first."""
    picked: list[RequestFiling] = []
    seen: set[str] = set()
    for filing in ordered:
        if filing.person not in seen:
            seen.add(filing.person)
            picked.append(filing)
            if len(picked) == people:
                break
    return tuple(picked)


def top_places(places: Counter[Place], count: int) -> tuple[tuple[Place, int], ...]:
    """The ``count`` most common places, most first, ties by place (so both stores agree)."""
    best = heapq.nsmallest(count, places.items(),
                           key=lambda item: (-item[1], item[0][0], item[0][1] or ""))
    return tuple(best)


def summarize(filings: Sequence[RequestFiling], *, newest: int, firsts: int, places: int
              ) -> RequestSummary:
    """The summary of one request's counted filings, given oldest first."""
    where = Counter((filing.thread, filing.question) for filing in filings)
    return RequestSummary(
        people=len({filing.person for filing in filings}), filed=len(filings),
        newest=tuple(filings[-newest:]) if newest else (),
        firsts=first_of_each(filings, firsts), places=top_places(where, places),
        place_count=len(where))


def summaries_of(filings: Iterable[RequestFiling], merged: Mapping[str, str], *,
                 newest: int = NEWEST_MEMBERS, firsts: int = FIRST_PEOPLE,
                 places: int = TOP_PLACES) -> dict[str, RequestSummary]:
    """Every request with a counted filing, by id, each merged request's filings counted
    under the id ``merged`` maps it to: what CommentStore.request_summaries answers, worked
    out from every filing (the default, and the reference for the stores' own)."""
    members: dict[str, list[RequestFiling]] = {}
    for filing in filings:
        if is_counted(filing):
            members.setdefault(merged.get(filing.request, filing.request), []).append(filing)
    return {request: summarize(sorted(listed, key=lambda filing: filing.order),
                               newest=newest, firsts=firsts, places=places)
            for request, listed in members.items()}


def window_start(total: int, newest: int, step: int) -> int:
    """Where the window of the latest ``newest`` (or a few more) of ``total`` filings starts:
    at a multiple of ``step``, so that it moves on ``step`` filings at a time."""
    start = max(0, total - newest)
    return start - start % max(step, 1)


def learned_window(filings: Iterable[RequestFiling], newest: int, step: int
                   ) -> list[RequestFiling]:
    """CommentStore.learned_filings worked out from every filing."""
    learned = sorted((filing for filing in filings if is_learned(filing)),
                     key=lambda filing: filing.order)
    return learned[window_start(len(learned), newest, step):]
