"""The PostgreSQL store: the same protocols as the TinyDB store, for several instances.

Chosen by ``STORE_URL=postgresql://…`` (store.factory.open_configured_store). Each table keeps
the whole record as JSON, read back with ``from_record`` (the source of truth), and plain
columns for what is looked up or sorted (migrations/0001_initial.sql). Every method is one
short transaction on a connection of this process's pool (connections.py); compare-and-set
updates lock the row (``SELECT … FOR UPDATE``) while ``change`` runs; outbox claims skip rows
another sender holds (``FOR UPDATE SKIP LOCKED``); the request tally is held under an advisory
lock (tally.py). Each table's code lives in its own module: comments.py, authors.py,
outbox.py, addresses.py, requests.py; rows.py holds what they share, schema.py the migrations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

from comments_service.models import (
    Author,
    Comment,
    CommentState,
    MailAddress,
    OutboxMessage,
    OutboxStatus,
    RequestGroup,
)
from comments_service.store.base import RequestTally, Store
from comments_service.store.errors import StoreUnavailable
from comments_service.store.postgres.addresses import PostgresAddresses
from comments_service.store.postgres.authors import PostgresAuthors
from comments_service.store.postgres.comments import PostgresComments
from comments_service.store.postgres.connections import Connections
from comments_service.store.postgres.outbox import PostgresOutbox
from comments_service.store.postgres.requests import PostgresRequests
from comments_service.store.postgres.schema import check_schema, connect

logger = logging.getLogger(__name__)


class PostgresStore(Store):
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

    def close(self) -> None:
        """Close this process's connections (a later call opens a new pool)."""
        self._connections.close()

    def ping(self) -> int:
        """The schema version, read through the pool (for `flask … check`)."""
        with self._connections.transaction() as cursor:
            return check_schema(cursor.connection)

    # -- CommentStore -------------------------------------------------------------------------

    def add_comment(self, comment: Comment) -> Comment:
        return self._comments.add_comment(comment)

    def get_comment(self, comment_id: str) -> Comment | None:
        return self._comments.get_comment(comment_id)

    def thread_comments(self, thread: str) -> list[Comment]:
        return self._comments.thread_comments(thread)

    def update_comment(self, comment_id: str, change: Callable[[Comment], Comment]) -> Comment:
        return self._comments.update_comment(comment_id, change)

    def waiting_comments(
        self, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        return self._comments.waiting_comments(thread=thread, question=question, limit=limit,
                                               offset=offset)

    def count_waiting(self, *, thread: str | None = None, question: str | None = None) -> int:
        return self._comments.count_waiting(thread=thread, question=question)

    def public_counts(self, threads: Iterable[str]) -> dict[str, int]:
        return self._comments.public_counts(threads)

    def thread_version(self, thread: str) -> str:
        return self._comments.thread_version(thread)

    def all_comments(self) -> Iterator[Comment]:
        return self._comments.all_comments()

    def import_comments(self, comments: Iterable[Comment]) -> int:
        return self._comments.import_comments(comments)

    def count_comments(self) -> int:
        return self._comments.count_comments()

    def comments_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        return self._comments.comments_in_state(state, thread=thread, question=question,
                                                limit=limit, offset=offset)

    def count_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None
    ) -> int:
        return self._comments.count_in_state(state, thread=thread, question=question)

    def state_counts(self) -> dict[CommentState, int]:
        return self._comments.state_counts()

    def find_comments(
        self, *, text: str | None = None, state: CommentState | None = None,
        thread: str | None = None, limit: int = 50, offset: int = 0,
    ) -> tuple[list[Comment], int]:
        return self._comments.find_comments(text=text, state=state, thread=thread, limit=limit,
                                            offset=offset)

    def author_replies(self, limit: int | None = None) -> list[Comment]:
        return self._comments.author_replies(limit)

    # -- AuthorStore --------------------------------------------------------------------------

    def add_author(self, author: Author) -> Author:
        return self._authors.add_author(author)

    def get_author(self, author_id: str) -> Author | None:
        return self._authors.get_author(author_id)

    def author_by_email(self, email: str) -> Author | None:
        return self._authors.author_by_email(email)

    def list_authors(self) -> list[Author]:
        return self._authors.list_authors()

    def update_author(self, author_id: str, change: Callable[[Author], Author]) -> Author:
        return self._authors.update_author(author_id, change)

    # -- OutboxStore --------------------------------------------------------------------------

    def add_message(self, message: OutboxMessage) -> OutboxMessage:
        return self._outbox.add_message(message)

    def get_message(self, message_id: str) -> OutboxMessage | None:
        return self._outbox.get_message(message_id)

    def update_message(
        self, message_id: str, change: Callable[[OutboxMessage], OutboxMessage]
    ) -> OutboxMessage:
        return self._outbox.update_message(message_id, change)

    def claim_messages(
        self, claimer: str, now: str, lease_until: str, limit: int
    ) -> list[OutboxMessage]:
        return self._outbox.claim_messages(claimer, now, lease_until, limit)

    def list_messages(
        self, statuses: Iterable[OutboxStatus] | None = None, *, limit: int = 50,
        offset: int = 0,
    ) -> list[OutboxMessage]:
        return self._outbox.list_messages(statuses, limit=limit, offset=offset)

    def messages_to(
        self, address: str, *, since: str | None = None, open_only: bool = False
    ) -> list[OutboxMessage]:
        return self._outbox.messages_to(address, since=since, open_only=open_only)

    # -- AddressStore -------------------------------------------------------------------------

    def get_mail_address(self, address: str) -> MailAddress | None:
        return self._addresses.get_mail_address(address)

    def update_mail_address(
        self, address: str, change: Callable[[MailAddress], MailAddress]
    ) -> MailAddress:
        return self._addresses.update_mail_address(address, change)

    def all_mail_addresses(self) -> list[MailAddress]:
        return self._addresses.all_mail_addresses()

    # -- RequestStore -------------------------------------------------------------------------

    def request_tally(
        self, *, timeout: float | None = None
    ) -> AbstractContextManager[RequestTally | None]:
        return self._requests.request_tally(timeout=timeout)

    def request_groups(self) -> dict[str, RequestGroup]:
        return self._requests.request_groups()

    def update_request_group(
        self, group_id: str, change: Callable[[RequestGroup], RequestGroup]
    ) -> RequestGroup:
        return self._requests.update_request_group(group_id, change)

    def replace_request_groups(self, groups: Iterable[RequestGroup]) -> None:
        self._requests.replace_request_groups(groups)

    def grouped_comments(self) -> Iterator[Comment]:
        return self._requests.grouped_comments()

    def set_comment_requests(self, requests: Mapping[str, str | None]) -> int:
        return self._requests.set_comment_requests(requests)


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
