"""Tallied requests in the PostgreSQL store (RequestStore): the author's request groups, the
``request`` column of the comments, and the grouper's saved state (tally.py)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

from comments_service.models import Comment, RequestGroup
from comments_service.store.base import RequestFiling, RequestTally
from comments_service.store.postgres import request_summaries as summaries
from comments_service.store.postgres.connections import Connections
from comments_service.store.postgres.rows import (
    comment_row,
    comments_of_rows,
    record_of,
    touch_threads,
    update_keyed,
)
from comments_service.store.postgres.schema import json_text
from comments_service.store.postgres.tally import (
    PostgresRequestTally,
    lock_tally,
    unlock_tally,
)
from comments_service.store.request_summaries import RequestSummary


class PostgresRequests:
    """The request_groups table, the comments' groups and the tally of one database."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def request_groups(self) -> dict[str, RequestGroup]:
        with self._connections.transaction() as cursor:
            rows = cursor.execute("SELECT id, record FROM request_groups ORDER BY id").fetchall()
        groups = [record_of(RequestGroup, record, f"group {group_id}")
                  for group_id, record in rows]
        return {group.id: group for group in groups}

    def update_request_group(
        self, group_id: str, change: Callable[[RequestGroup], RequestGroup]
    ) -> RequestGroup:
        return update_keyed(self._connections.transaction, "request_groups", "id", group_id,
                            RequestGroup, change, RequestGroup(group_id))

    def replace_request_groups(self, groups: Iterable[RequestGroup]) -> None:
        records = {group.id: json_text(group.to_record()) for group in groups}
        with self._connections.transaction() as cursor:
            cursor.execute("DELETE FROM request_groups")
            cursor.executemany("INSERT INTO request_groups (id, record) VALUES (%s, %s::json)",
                               sorted(records.items()))

    def set_comment_requests(self, requests: Mapping[str, str | None]) -> int:
        """One transaction; rows locked in id order, then the threads' versions."""
        if not requests:
            return 0
        changed: list[Comment] = []
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM comments WHERE id = ANY(%s) AND NOT is_author"
                " ORDER BY id FOR UPDATE", (sorted(requests),),
            ).fetchall()
            for comment in comments_of_rows(rows):
                if comment.request != requests[comment.id]:
                    changed.append(dataclasses.replace(comment, request=requests[comment.id]))
            cursor.executemany(
                "UPDATE comments SET request = %(request)s, record = %(record)s::json"
                " WHERE id = %(id)s", [comment_row(comment) for comment in changed],
            )
            touch_threads(cursor, (comment.thread for comment in changed))
        return len(changed)

    @contextmanager
    def request_tally(self, *, timeout: float | None = None) -> Iterator[RequestTally | None]:
        """Hold the tally lock: this process's thread lock, then a session advisory lock on
        one connection kept for the whole block (released at the end, or by PostgreSQL when
        the session dies). With ``timeout``, yield None when either stays taken that long."""
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
        # Release the very lock acquired: after a fork, the pool is opened anew with a new one.
        tally_lock = self._connections.tally_lock
        if not tally_lock.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            yield None
            return
        try:
            with self._connections.connection() as connection:
                if not lock_tally(connection, deadline):
                    yield None
                    return
                try:
                    yield PostgresRequestTally(connection, self._connections.url)
                finally:
                    unlock_tally(connection)
        finally:
            tally_lock.release()

    def request_filings(self, requests: Iterable[str] | None = None) -> list[RequestFiling]:
        """From the partial index on ``request``, without the comments' text (plain columns;
        request_filed since migration 0005)."""
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                f"SELECT {summaries.FILING_COLUMNS} FROM comments"  # noqa: S608 - constants
                " WHERE request IS NOT NULL AND NOT is_author"
                " AND (%(every)s OR request = ANY(%(requests)s))",
                {"every": requests is None, "requests": list(requests or ())},
            ).fetchall()
        return [summaries.filing_of(row) for row in rows]

    def request_summaries(self, merged: Mapping[str, str] | None = None, *, newest: int,
                          firsts: int, places: int) -> dict[str, RequestSummary]:
        """From migration 0007's running counts and indexes (postgres/request_summaries.py),
        in one transaction, so that the counts and the comments listed agree."""
        with self._connections.transaction() as cursor:
            return summaries.request_summaries(cursor, merged or {}, newest=newest,
                                               firsts=firsts, places=places)

    def requests_version(self) -> int:
        """Migration 0007's count of writes of filed comments."""
        with self._connections.transaction() as cursor:
            [changes] = cursor.execute("SELECT changes FROM request_changes").fetchone()
        return int(changes)

    def learned_filings(self, newest: int, step: int = 1) -> list[RequestFiling]:
        with self._connections.transaction() as cursor:
            return summaries.learned_filings(cursor, newest, step)

    def grouped_comments(self) -> Iterator[Comment]:
        """From the partial index on ``request``: the requests page does not read the store."""
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM comments WHERE request IS NOT NULL"
            ).fetchall()
        return iter(comments_of_rows(rows))
