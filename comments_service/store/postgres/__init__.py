"""The PostgreSQL store: the same protocols as the TinyDB store, for several instances.

Chosen by ``STORE_URL=postgresql://…`` (store.factory.open_configured_store). Each table keeps
the whole record as JSON, read back with ``from_record`` (the source of truth), and plain
columns for what is looked up or sorted (migrations/0001_initial.sql). Every method is one
short transaction on a connection of this process's pool (connections.py); compare-and-set
updates lock the row (``SELECT … FOR UPDATE``) while ``change`` runs; outbox claims skip rows
another sender holds (``FOR UPDATE SKIP LOCKED``); the request tally is held under an advisory
lock (tally.py). Each table's code lives in its own module: comments.py, authors.py,
outbox.py, addresses.py, requests.py, vectors.py, inbox.py; rows.py holds what they share,
schema.py the migrations.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from comments_service.models import Comment
from comments_service.store.base import RequestFiling
from comments_service.store.composed import ComposedStore
from comments_service.store.errors import StoreUnavailable
from comments_service.store.postgres.addresses import PostgresAddresses
from comments_service.store.postgres.authors import PostgresAuthors
from comments_service.store.postgres.comments import PostgresComments
from comments_service.store.postgres.connections import Connections
from comments_service.store.postgres.inbox import PostgresInbox
from comments_service.store.postgres.outbox import PostgresOutbox
from comments_service.store.postgres.requests import PostgresRequests
from comments_service.store.postgres.schema import check_schema, connect
from comments_service.store.postgres.vectors import PostgresVectors
from comments_service.store.request_summaries import (
    FIRST_PEOPLE,
    NEWEST_MEMBERS,
    TOP_PLACES,
    RequestSummary,
)

logger = logging.getLogger(__name__)


class PostgresStore(ComposedStore):
    """The Store on PostgreSQL (psycopg 3): safe for threads, processes and machines. Each
    method hands the call to the part that keeps that table; store.base documents them."""

    def __init__(
        self, url: str, *, max_size: int | None = None, timeout: float | None = None,
        schema_checked: bool = False,
    ) -> None:
        self.url = url
        self._connections = Connections(url, max_size=max_size, timeout=timeout,
                                        schema_checked=schema_checked)
        self._comments = PostgresComments(self._connections)
        self._authors = PostgresAuthors(self._connections)
        self._outbox = PostgresOutbox(self._connections)
        self._addresses = PostgresAddresses(self._connections)
        self._requests = PostgresRequests(self._connections)
        self._vectors = PostgresVectors(self._connections)
        self._inbox = PostgresInbox(self._connections)

    def close(self) -> None:
        """Close this process's connections (a later call opens a new pool)."""
        self._connections.close()

    def ping(self) -> int:
        """The schema version, read through the pool (for `flask … check`)."""
        with self._connections.transaction() as cursor:
            return check_schema(cursor.connection)

    # -- what only this backend has ---------------------------------------------------------

    def author_replies(self, limit: int | None = None) -> list[Comment]:
        return self._comments.author_replies(limit)

    def grouped_comments(self) -> Iterator[Comment]:
        return self._requests.grouped_comments()

    def request_filings(self, requests: Iterable[str] | None = None) -> list[RequestFiling]:
        return self._requests.request_filings(requests)

    def request_summaries(
        self, merged: Mapping[str, str] | None = None, *, newest: int = NEWEST_MEMBERS,
        firsts: int = FIRST_PEOPLE, places: int = TOP_PLACES,
    ) -> dict[str, RequestSummary]:
        return self._requests.request_summaries(merged, newest=newest, firsts=firsts,
                                                places=places)

    def requests_version(self) -> int:
        return self._requests.requests_version()

    def learned_filings(self, newest: int, step: int = 1) -> list[RequestFiling]:
        return self._requests.learned_filings(newest, step)

    def author_replies_to(self, comment_ids: Iterable[str]) -> dict[str, list[Comment]]:
        return self._comments.author_replies_to(comment_ids)


def open_postgres_store(url: str, *, check: bool = True, **options: Any) -> PostgresStore:
    """The PostgreSQL store at ``url``. With ``check`` its schema version is checked now, on a
    one-off connection (so a process that forks next holds no connection open): SchemaMismatch
    when it is not the one this code knows. A database that cannot be reached now is logged;
    the store then checks the schema on its first connection (requests get 503 until then)."""
    if not check:
        return PostgresStore(url, **options)
    try:
        with connect(url) as connection:
            check_schema(connection)
    except StoreUnavailable as error:
        logger.error("%s Starting anyway: requests get 503 until it can be reached.", error)
        return PostgresStore(url, **options)
    return PostgresStore(url, schema_checked=True, **options)
