"""Tallied requests in the PostgreSQL store (RequestStore): the author's request groups, the
``request`` column of the comments, and the grouper's saved state (tally.py)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

from comments_service.models import Comment, CommentState, RequestGroup
from comments_service.store.base import RequestFiling, RequestTally
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

    def request_filings(self) -> list[RequestFiling]:
        """From the partial index on ``request``, without the comments' text (plain columns;
        request_filed since migration 0005)."""
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, request, request_filed, reader_key, thread, question, created,"
                " state FROM comments"
                " WHERE request IS NOT NULL AND NOT is_author"
            ).fetchall()
        return [RequestFiling(comment_id, request, filed, reader, thread, question, created,
                              CommentState(state))
                for comment_id, request, filed, reader, thread, question, created, state in rows]

    def grouped_comments(self) -> Iterator[Comment]:
        """From the partial index on ``request``: the requests page does not read the store."""
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM comments WHERE request IS NOT NULL"
            ).fetchall()
        return iter(comments_of_rows(rows))
