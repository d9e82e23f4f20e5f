"""The PostgreSQL store: the same Store interface as the TinyDB store, for several instances.

Chosen by ``STORE_URL=postgresql://…`` (store.factory.open_configured_store). Each table keeps the
whole record as JSON, read back with ``from_record`` (the source of truth), and plain columns
for what is looked up or sorted (migrations/0001_initial.sql). Every method is one short
transaction on a connection of this process's pool; compare-and-set updates lock the row
(``SELECT … FOR UPDATE``) while ``change`` runs; outbox claims skip rows another sender holds
(``FOR UPDATE SKIP LOCKED``); the request tally is held under an advisory lock.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from comments_service.models import (
    OPEN_STATUSES,
    Author,
    Comment,
    CommentState,
    MailAddress,
    OutboxMessage,
    OutboxStatus,
    RequestGroup,
    StoredRecord,
)
from comments_service.store.base import (
    EMPTY_THREAD_VERSION,
    RequestTally,
    Store,
    check_thread_key,
    is_thread_key,
    message_day,
)
from comments_service.store.errors import (
    AuthorNotFound,
    CommentNotFound,
    DuplicateAuthor,
    DuplicateComment,
    DuplicateMessage,
    MessageNotFound,
    StoreCorrupted,
    StoreUnavailable,
)
from comments_service.store.postgres.schema import (
    CONNECT_TIMEOUT,
    check_schema,
    connect,
    json_text,
    unreachable,
)
from comments_service.store.postgres.tally import PostgresRequestTally, lock_tally, unlock_tally

logger = logging.getLogger(__name__)

Record = TypeVar("Record", bound=StoredRecord)
Cursor = psycopg.Cursor[TupleRow]

# Connections per process: a request uses one at a time, the tally holder one more.
POOL_MAX_SIZE = 10
# Seconds a request waits for a connection (the database down, or every connection busy)
# before it gets StoreUnavailable (HTTP 503).
POOL_TIMEOUT = 10.0
# Rows read per query when walking every comment (all_comments).
EXPORT_BATCH = 500
# Pools a forked child inherited: their sockets are the parent's, so the child must neither
# use nor close them (closing would end the parent's sessions); kept here so they are never
# garbage-collected either.
_INHERITED_POOLS: list[ConnectionPool] = []

INSERT_COMMENT = (
    "INSERT INTO comments (id, thread, state, public, question, is_author, created, request,"
    " body_folded, name_folded, record) VALUES (%(id)s, %(thread)s, %(state)s, %(public)s,"
    " %(question)s, %(is_author)s, %(created)s, %(request)s, %(body_folded)s,"
    " %(name_folded)s, %(record)s::json) ON CONFLICT (id) DO NOTHING"
)
INSERT_MESSAGE = (
    "INSERT INTO outbox_messages (id, status, created, next_attempt_at, claimed_until, address,"
    " dedupe_key, record) VALUES (%(id)s, %(status)s, %(created)s, %(next_attempt_at)s,"
    " %(claimed_until)s, %(address)s, %(dedupe_key)s, %(record)s::json) ON CONFLICT DO NOTHING"
)


def _folded(text: str) -> str:
    """What the search compares: Python's casefold (as the TinyDB store), with NUL (which a
    text column cannot hold) stood in for by U+FFFD in both the column and the needle."""
    return text.casefold().replace("\x00", "\ufffd")


def _record_of(kind: type[Record], record: Any, where: str) -> Record:
    try:
        if not isinstance(record, dict):
            raise TypeError(f"a {type(record).__name__}, not an object")
        return kind.from_record(record)
    except (KeyError, TypeError, ValueError) as error:
        raise StoreCorrupted(
            f"The PostgreSQL store holds a {kind.__name__} that cannot be read ({where}: "
            f"{error!r}). Restore the database from a backup (pg_dump)."
        ) from error


def _comment_row(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id, "thread": comment.thread, "state": str(comment.state),
        "public": comment.public, "question": comment.question, "is_author": comment.is_author,
        "created": comment.created, "request": comment.request,
        "body_folded": _folded(comment.body), "name_folded": _folded(comment.name),
        "record": json_text(comment.to_record()),
    }


def _message_row(message: OutboxMessage) -> dict[str, Any]:
    return {
        "id": message.id, "status": str(message.status), "created": message.created,
        "next_attempt_at": message.next_attempt_at, "claimed_until": message.claimed_until,
        "address": message.to.casefold(), "dedupe_key": message.dedupe_key,
        "record": json_text(message.to_record()),
    }


def _comments(rows: Iterable[tuple[Any, ...]]) -> list[Comment]:
    """Comments from rows whose last column is the record and first the id."""
    return [_record_of(Comment, row[-1], f"comment {row[0]}") for row in rows]


def _filters(
    state: CommentState | None, thread: str | None, question: str | None
) -> tuple[sql.Composable, dict[str, Any]]:
    """A WHERE condition ("true" when nothing is asked) and its parameters."""
    clauses: list[sql.Composable] = [sql.SQL("true")]
    values: dict[str, Any] = {}
    for column, value in (("state", None if state is None else str(state)), ("thread", thread),
                          ("question", question)):
        if value is not None:
            clauses.append(sql.SQL("{} = {}").format(sql.Identifier(column),
                                                     sql.Placeholder(column)))
            values[column] = value
    return sql.SQL(" AND ").join(clauses), values


def _checked_change(kind: type[Record], old: Record, change: Callable[[Record], Record],
                    fixed: tuple[str, ...]) -> Record:
    """``change(old)``, refused unless it is a ``kind`` that keeps the ``fixed`` fields."""
    new = change(old)
    if not isinstance(new, kind):
        raise TypeError(f"change() returned {type(new).__name__}, not a {kind.__name__}")
    if any(getattr(new, name) != getattr(old, name) for name in fixed):
        raise ValueError(f"change() must not change a {kind.__name__}'s {' or '.join(fixed)}")
    return new


def _locked_change(cursor: Cursor, table: str, record_id: str, kind: type[Record],
                   change: Callable[[Record], Record], missing: Exception,
                   fixed: tuple[str, ...] = ("id",)) -> tuple[Record, Record]:
    """Lock the row ``record_id`` of ``table`` (until the transaction ends) and run ``change``
    on its record: (old, new). ``missing`` is raised when there is no such row."""
    row = cursor.execute(
        sql.SQL("SELECT record FROM {} WHERE id = %s FOR UPDATE").format(sql.Identifier(table)),
        (record_id,),
    ).fetchone()
    if row is None:
        raise missing
    old = _record_of(kind, row[0], f"{table} {record_id}")
    return old, _checked_change(kind, old, change, fixed)


class PostgresStore(Store):
    """The Store on PostgreSQL (psycopg 3): safe for threads, processes and machines."""

    def __init__(
        self, url: str, *, max_size: int | None = None, timeout: float | None = None,
        schema_checked: bool = False,
    ) -> None:
        self.url = url
        self._max_size = max_size or POOL_MAX_SIZE
        self._timeout = POOL_TIMEOUT if timeout is None else timeout
        self._pool: ConnectionPool | None = None
        self._owner_pid = os.getpid()
        self._pool_lock = threading.Lock()
        # One load-assign-save per process at a time: waiters then hold no connection, so
        # they cannot starve the holder (regroup) of the pool.
        self._tally_lock = threading.Lock()
        self._schema_checked = schema_checked

    # -- connections ------------------------------------------------------------------------

    def _connection_settings(self) -> dict[str, Any]:
        in_url = conninfo_to_dict(self.url)
        settings: dict[str, Any] = {"autocommit": False}
        if "application_name" not in in_url:
            settings["application_name"] = "tellmemore"
        if "connect_timeout" not in in_url:
            settings["connect_timeout"] = CONNECT_TIMEOUT
        return settings

    def _current_pool(self) -> ConnectionPool:
        """This process's pool, opened on first use: after os.fork() (gunicorn's workers) a
        child leaves its parent's pool alone and opens its own."""
        if self._owner_pid != os.getpid():  # just forked: this is the only thread
            if self._pool is not None:
                _INHERITED_POOLS.append(self._pool)
            self._pool, self._owner_pid = None, os.getpid()
            self._pool_lock, self._tally_lock = threading.Lock(), threading.Lock()
        pool = self._pool
        if pool is not None:
            return pool
        with self._pool_lock:
            if self._pool is None:
                pool = ConnectionPool(
                    self.url, min_size=1, max_size=self._max_size, open=False,
                    timeout=self._timeout, kwargs=self._connection_settings(),
                    check=ConnectionPool.check_connection, name="tellmemore-store",
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[TupleRow]]:
        """A connection for one transaction: committed when the block ends, rolled back when
        it raises. Connection failures become StoreUnavailable (HTTP 503)."""
        try:
            with self._current_pool().connection() as connection:
                if not self._schema_checked:
                    check_schema(connection)
                    self._schema_checked = True
                yield connection
        except psycopg.OperationalError as error:
            raise unreachable(self.url, error) from error
        except psycopg.DataError as error:
            raise ValueError(f"The PostgreSQL store cannot hold this value: {error}") from error

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with self._connection() as connection, connection.cursor() as cursor:
            yield cursor

    def close(self) -> None:
        """Close this process's connections (a later call opens a new pool)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._owner_pid == os.getpid():
            pool.close()

    def ping(self) -> int:
        """The schema version, read through the pool (for `flask … check`)."""
        with self._transaction() as cursor:
            return check_schema(cursor.connection)

    # -- comments ---------------------------------------------------------------------------

    @staticmethod
    def _touch_threads(cursor: Cursor, threads: Iterable[str]) -> None:
        """Give each thread a new version token, in the same transaction as its change (in
        sorted order, so two writers of several threads cannot wait on each other)."""
        for thread in sorted(set(threads)):
            cursor.execute(
                "INSERT INTO thread_versions (thread, version) VALUES (%s, gen_random_uuid())"
                " ON CONFLICT (thread) DO UPDATE SET version = EXCLUDED.version",
                (thread,),
            )

    def add_comment(self, comment: Comment) -> Comment:
        check_thread_key(comment.thread)
        with self._transaction() as cursor:
            cursor.execute(INSERT_COMMENT, _comment_row(comment))
            if cursor.rowcount == 0:
                raise DuplicateComment(f"Comment {comment.id} is stored already")
            self._touch_threads(cursor, [comment.thread])
        return comment

    def get_comment(self, comment_id: str) -> Comment | None:
        with self._transaction() as cursor:
            rows = cursor.execute("SELECT id, record FROM comments WHERE id = %s",
                                  (comment_id,)).fetchall()
        return next(iter(_comments(rows)), None)

    def thread_comments(self, thread: str) -> list[Comment]:
        if not is_thread_key(thread):
            return []
        with self._transaction() as cursor:
            rows = cursor.execute("SELECT id, record FROM comments WHERE thread = %s"
                                  " ORDER BY created, seq", (thread,)).fetchall()
        return _comments(rows)

    def update_comment(self, comment_id: str, change: Callable[[Comment], Comment]) -> Comment:
        """Compare-and-set: ``change`` runs while the comment's row is locked, so it must not
        call the store for that comment."""
        with self._transaction() as cursor:
            old, new = _locked_change(cursor, "comments", comment_id, Comment, change,
                                      CommentNotFound(f"No comment {comment_id}"),
                                      fixed=("id", "thread"))
            if new != old:
                cursor.execute(
                    "UPDATE comments SET (state, public, question, is_author, created, request,"
                    " body_folded, name_folded, record) = (%(state)s, %(public)s, %(question)s,"
                    " %(is_author)s, %(created)s, %(request)s, %(body_folded)s,"
                    " %(name_folded)s, %(record)s::json) WHERE id = %(id)s",
                    _comment_row(new),
                )
                self._touch_threads(cursor, [new.thread])
        return new

    def waiting_comments(
        self, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        return self.comments_in_state(CommentState.AWAITING_REPLY, thread=thread,
                                      question=question, limit=limit, offset=offset)

    def count_waiting(self, *, thread: str | None = None, question: str | None = None) -> int:
        return self.count_in_state(CommentState.AWAITING_REPLY, thread=thread, question=question)

    def comments_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        if limit <= 0 or (thread is not None and not is_thread_key(thread)):
            return []
        where, values = _filters(CommentState(state), thread, question)
        with self._transaction() as cursor:
            rows = cursor.execute(
                sql.SQL("SELECT id, record FROM comments WHERE {} ORDER BY created, id"
                        " LIMIT %(limit)s OFFSET %(offset)s").format(where),
                {**values, "limit": limit, "offset": max(offset, 0)},
            ).fetchall()
        return _comments(rows)

    def count_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None
    ) -> int:
        where, values = _filters(CommentState(state), thread, question)
        with self._transaction() as cursor:
            row = cursor.execute(sql.SQL("SELECT count(*) FROM comments WHERE {}").format(where),
                                 values).fetchone()
        return int(row[0]) if row else 0

    def state_counts(self) -> dict[CommentState, int]:
        with self._transaction() as cursor:
            rows = cursor.execute("SELECT state, count(*) FROM comments GROUP BY state").fetchall()
        counts = dict.fromkeys(CommentState, 0)
        for state, count in rows:
            counts[CommentState(state)] = int(count)
        return counts

    def find_comments(
        self, *, text: str | None = None, state: CommentState | None = None,
        thread: str | None = None, limit: int = 50, offset: int = 0,
    ) -> tuple[list[Comment], int]:
        """Casefolded substring of body or name (strpos over the folded columns: no pattern
        characters to escape), newest first; every match is counted, so a store-wide text
        search reads every comment row that passes the state and thread filters."""
        if thread is not None and not is_thread_key(thread):
            return [], 0
        where, values = _filters(None if state is None else CommentState(state), thread, None)
        if text:
            where = sql.SQL("{} AND (strpos(body_folded, %(needle)s) > 0"
                            " OR strpos(name_folded, %(needle)s) > 0)").format(where)
            values["needle"] = _folded(text)
        with self._transaction() as cursor:
            row = cursor.execute(sql.SQL("SELECT count(*) FROM comments WHERE {}").format(where),
                                 values).fetchone()
            total = int(row[0]) if row else 0
            if limit <= 0 or total == 0:
                return [], total
            rows = cursor.execute(
                sql.SQL("SELECT id, record FROM comments WHERE {} ORDER BY created DESC,"
                        " id DESC LIMIT %(limit)s OFFSET %(offset)s").format(where),
                {**values, "limit": limit, "offset": max(offset, 0)},
            ).fetchall()
        return _comments(rows), total

    def author_replies(self, limit: int | None = None) -> list[Comment]:
        if limit is not None and limit <= 0:
            return []
        with self._transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM comments WHERE is_author AND state <> 'withdrawn'"
                " ORDER BY created DESC, id DESC LIMIT %s", (limit,),
            ).fetchall()
        return _comments(rows)

    def public_counts(self, threads: Iterable[str]) -> dict[str, int]:
        asked = list(threads)
        counts = dict.fromkeys(asked, 0)
        valid = [thread for thread in counts if is_thread_key(thread)]
        if not valid:
            return counts
        with self._transaction() as cursor:
            rows = cursor.execute(
                "SELECT thread, count(*) FROM comments WHERE public AND thread = ANY(%s)"
                " GROUP BY thread", (valid,),
            ).fetchall()
        counts.update({thread: int(count) for thread, count in rows})
        return counts

    def thread_version(self, thread: str) -> str:
        """A random token replaced in the transaction of every write of the thread."""
        if not is_thread_key(thread):
            return EMPTY_THREAD_VERSION
        with self._transaction() as cursor:
            row = cursor.execute("SELECT version FROM thread_versions WHERE thread = %s",
                                 (thread,)).fetchone()
        return str(row[0]) if row else EMPTY_THREAD_VERSION

    def grouped_comments(self) -> Iterator[Comment]:
        """From the partial index on ``request``: the requests page does not read the store."""
        with self._transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM comments WHERE request IS NOT NULL"
            ).fetchall()
        return iter(_comments(rows))

    def all_comments(self) -> Iterator[Comment]:
        """Threads in name order, oldest first: read in batches, each its own transaction, so
        a long export holds no connection while its consumer works."""
        after: tuple[str, str, int] | None = None
        while True:
            with self._transaction() as cursor:
                if after is None:
                    rows = cursor.execute(
                        "SELECT thread, created, seq, id, record FROM comments"
                        " ORDER BY thread, created, seq LIMIT %s", (EXPORT_BATCH,),
                    ).fetchall()
                else:
                    rows = cursor.execute(
                        "SELECT thread, created, seq, id, record FROM comments"
                        " WHERE (thread, created, seq) > (%s, %s, %s)"
                        " ORDER BY thread, created, seq LIMIT %s", (*after, EXPORT_BATCH),
                    ).fetchall()
            for row in rows:
                yield _record_of(Comment, row[-1], f"comment {row[3]}")
            if len(rows) < EXPORT_BATCH:
                return
            after = (rows[-1][0], rows[-1][1], rows[-1][2])

    def import_comments(self, comments: Iterable[Comment]) -> int:
        """Add the comments whose ids are not stored yet, all in one transaction (inserted in
        id order, so two imports of overlapping batches cannot deadlock)."""
        by_id: dict[str, Comment] = {}
        for comment in comments:
            check_thread_key(comment.thread)  # all checked before anything is written
            by_id.setdefault(comment.id, comment)
        if not by_id:
            return 0
        with self._transaction() as cursor:
            cursor.executemany(
                INSERT_COMMENT + " RETURNING thread",
                [_comment_row(by_id[comment_id]) for comment_id in sorted(by_id)],
                returning=True,
            )
            threads: list[str] = []
            while True:
                threads.extend(row[0] for row in cursor.fetchall())
                if not cursor.nextset():
                    break
            self._touch_threads(cursor, threads)
        return len(threads)

    def count_comments(self) -> int:
        with self._transaction() as cursor:
            row = cursor.execute("SELECT count(*) FROM comments").fetchone()
        return int(row[0]) if row else 0

    # -- authors ----------------------------------------------------------------------------

    def add_author(self, author: Author) -> Author:
        if not isinstance(author, Author):
            raise TypeError(f"add_author() takes an Author, not {type(author).__name__}")
        with self._transaction() as cursor:
            try:
                cursor.execute(
                    "INSERT INTO authors (id, email_folded, created, record)"
                    " VALUES (%s, %s, %s, %s::json)",
                    (author.id, author.email.casefold(), author.created,
                     json_text(author.to_record())),
                )
            except psycopg.errors.UniqueViolation as error:
                raise self._duplicate_author(error, author) from error
        return author

    @staticmethod
    def _duplicate_author(error: psycopg.errors.UniqueViolation, author: Author) -> DuplicateAuthor:
        if error.diag.constraint_name == "authors_email_unique":
            return DuplicateAuthor(f"An author with the email {author.email} exists")
        return DuplicateAuthor(f"An author with the id {author.id} exists")

    def _authors(self, column: str | None = None, value: str | None = None) -> list[Author]:
        """The authors whose ``column`` holds ``value`` (None: all), oldest first."""
        where = sql.SQL("true") if column is None else sql.SQL("{} = %s").format(
            sql.Identifier(column))
        with self._transaction() as cursor:
            rows = cursor.execute(sql.SQL("SELECT id, record FROM authors WHERE {}"
                                          " ORDER BY created, seq").format(where),
                                  () if column is None else (value,)).fetchall()
        return [_record_of(Author, record, f"author {author_id}") for author_id, record in rows]

    def get_author(self, author_id: str) -> Author | None:
        return next(iter(self._authors("id", author_id)), None)

    def author_by_email(self, email: str) -> Author | None:
        return next(iter(self._authors("email_folded", email.casefold())), None)

    def list_authors(self) -> list[Author]:
        return self._authors()

    def update_author(self, author_id: str, change: Callable[[Author], Author]) -> Author:
        with self._transaction() as cursor:
            old, new = _locked_change(cursor, "authors", author_id, Author, change,
                                      AuthorNotFound(f"No author {author_id}"))
            if new != old:
                try:
                    cursor.execute(
                        "UPDATE authors SET email_folded = %s, created = %s, record = %s::json"
                        " WHERE id = %s",
                        (new.email.casefold(), new.created, json_text(new.to_record()), author_id),
                    )
                except psycopg.errors.UniqueViolation as error:
                    raise DuplicateAuthor(f"An author with the email {new.email} exists") from error
        return new

    # -- the outbox -------------------------------------------------------------------------

    def add_message(self, message: OutboxMessage) -> OutboxMessage:
        """One INSERT that gives way on a taken id or dedupe key: a racing add with the same
        key waits for the first to commit, then finds its message."""
        if not isinstance(message, OutboxMessage):
            raise TypeError(f"add_message() takes an OutboxMessage, not {type(message).__name__}")
        if message_day(message.id) is None:
            raise ValueError(f"Invalid message id {message.id!r}")
        with self._transaction() as cursor:
            cursor.execute(INSERT_MESSAGE, _message_row(message))
            if cursor.rowcount == 1:
                return message
            if message.dedupe_key is not None:
                row = cursor.execute(
                    "SELECT id, record FROM outbox_messages WHERE dedupe_key = %s",
                    (message.dedupe_key,),
                ).fetchone()
                if row is not None:
                    return _record_of(OutboxMessage, row[1], f"message {row[0]}")
        raise DuplicateMessage(f"Message {message.id} is stored already")

    def get_message(self, message_id: str) -> OutboxMessage | None:
        if message_day(message_id) is None:
            return None
        with self._transaction() as cursor:
            row = cursor.execute("SELECT record FROM outbox_messages WHERE id = %s",
                                 (message_id,)).fetchone()
        return None if row is None else _record_of(OutboxMessage, row[0], f"message {message_id}")

    def update_message(
        self, message_id: str, change: Callable[[OutboxMessage], OutboxMessage]
    ) -> OutboxMessage:
        with self._transaction() as cursor:
            old, new = _locked_change(cursor, "outbox_messages", message_id, OutboxMessage,
                                      change, MessageNotFound(f"No message {message_id}"))
            if new != old:
                self._write_message(cursor, new)
        return new

    @staticmethod
    def _write_message(cursor: Cursor, message: OutboxMessage) -> None:
        cursor.execute(
            "UPDATE outbox_messages SET (status, created, next_attempt_at, claimed_until,"
            " address, dedupe_key, record) = (%(status)s, %(created)s, %(next_attempt_at)s,"
            " %(claimed_until)s, %(address)s, %(dedupe_key)s, %(record)s::json)"
            " WHERE id = %(id)s", _message_row(message),
        )

    def claim_messages(
        self, claimer: str, now: str, lease_until: str, limit: int
    ) -> list[OutboxMessage]:
        """One transaction: lock up to ``limit`` due rows no other claimer holds (SKIP LOCKED),
        mark them, commit. A row another claimer committed meanwhile is checked again against
        the condition, so it is not due any more: no message goes to two claimers."""
        if limit <= 0:
            return []
        claimed: list[OutboxMessage] = []
        with self._transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM outbox_messages"
                " WHERE status IN ('queued', 'sending') AND ("
                "  (status = 'queued' AND next_attempt_at <= %(now)s)"
                "  OR (status = 'sending' AND coalesce(claimed_until, '') <= %(now)s))"
                " ORDER BY next_attempt_at, created, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
                {"now": now, "limit": limit},
            ).fetchall()
            for message_id, record in rows:
                old = _record_of(OutboxMessage, record, f"message {message_id}")
                new = dataclasses.replace(
                    old, status=OutboxStatus.SENDING, claimed_by=claimer,
                    claimed_until=lease_until, attempts=old.attempts + 1,
                )
                self._write_message(cursor, new)
                claimed.append(new)
        return claimed

    def list_messages(
        self, statuses: Iterable[OutboxStatus] | None = None, *, limit: int = 50,
        offset: int = 0,
    ) -> list[OutboxMessage]:
        """Newest first: by the day in the id, then created (the TinyDB store's order)."""
        if limit <= 0:
            return []
        wanted = None if statuses is None else sorted(str(OutboxStatus(s)) for s in statuses)
        with self._transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM outbox_messages"
                " WHERE %(all)s OR status = ANY(%(wanted)s)"
                " ORDER BY left(id, 8) DESC, created DESC, id DESC"
                " LIMIT %(limit)s OFFSET %(offset)s",
                {"all": wanted is None, "wanted": wanted or [], "limit": limit,
                 "offset": max(offset, 0)},
            ).fetchall()
        return [_record_of(OutboxMessage, record, f"message {message_id}")
                for message_id, record in rows]

    def messages_to(
        self, address: str, *, since: str | None = None, open_only: bool = False
    ) -> list[OutboxMessage]:
        with self._transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM outbox_messages WHERE address = %(address)s"
                " AND (%(since)s::text IS NULL OR created >= %(since)s)"
                " AND (NOT %(open_only)s OR status = ANY(%(open)s))"
                " ORDER BY created, id",
                {"address": address.casefold(), "since": since, "open_only": open_only,
                 "open": sorted(str(status) for status in OPEN_STATUSES)},
            ).fetchall()
        return [_record_of(OutboxMessage, record, f"message {message_id}")
                for message_id, record in rows]

    # -- records with a blank default (mail addresses, request groups) ----------------------

    def _update_keyed(
        self, table: str, key_column: str, key: str, kind: type[Record],
        change: Callable[[Record], Record], blank: Record,
    ) -> Record:
        """Compare-and-set of a record that reads as ``blank`` until first written. When two
        writers both find none, one INSERT gives way: it starts again and sees the other's."""
        names = {"table": sql.Identifier(table), "key": sql.Identifier(key_column)}
        while True:
            with self._transaction() as cursor:
                row = cursor.execute(
                    sql.SQL("SELECT record FROM {table} WHERE {key} = %s FOR UPDATE").format(
                        **names), (key,),
                ).fetchone()
                old = blank if row is None else _record_of(kind, row[0], f"{table} {key}")
                new = _checked_change(kind, old, change, (key_column,))
                if new == old:
                    return new
                if row is not None:
                    cursor.execute(
                        sql.SQL("UPDATE {table} SET record = %s::json WHERE {key} = %s").format(
                            **names), (json_text(new.to_record()), key),
                    )
                    return new
                cursor.execute(
                    sql.SQL("INSERT INTO {table} ({key}, record) VALUES (%s, %s::json)"
                            " ON CONFLICT ({key}) DO NOTHING").format(**names),
                    (key, json_text(new.to_record())),
                )
                if cursor.rowcount == 1:
                    return new

    def get_mail_address(self, address: str) -> MailAddress | None:
        wanted = address.casefold()
        with self._transaction() as cursor:
            row = cursor.execute("SELECT record FROM mail_addresses WHERE address = %s",
                                 (wanted,)).fetchone()
        return None if row is None else _record_of(MailAddress, row[0], f"address {wanted}")

    def all_mail_addresses(self) -> list[MailAddress]:
        with self._transaction() as cursor:
            rows = cursor.execute("SELECT address, record FROM mail_addresses"
                                  " ORDER BY address").fetchall()
        return [_record_of(MailAddress, record, f"address {address}") for address, record in rows]

    def update_mail_address(
        self, address: str, change: Callable[[MailAddress], MailAddress]
    ) -> MailAddress:
        wanted = address.casefold()
        return self._update_keyed("mail_addresses", "address", wanted, MailAddress, change,
                                  MailAddress(wanted))

    # -- request groups and the tally -------------------------------------------------------

    def request_groups(self) -> dict[str, RequestGroup]:
        with self._transaction() as cursor:
            rows = cursor.execute("SELECT id, record FROM request_groups ORDER BY id").fetchall()
        groups = [_record_of(RequestGroup, record, f"group {group_id}")
                  for group_id, record in rows]
        return {group.id: group for group in groups}

    def update_request_group(
        self, group_id: str, change: Callable[[RequestGroup], RequestGroup]
    ) -> RequestGroup:
        return self._update_keyed("request_groups", "id", group_id, RequestGroup, change,
                                  RequestGroup(group_id))

    def replace_request_groups(self, groups: Iterable[RequestGroup]) -> None:
        records = {group.id: json_text(group.to_record()) for group in groups}
        with self._transaction() as cursor:
            cursor.execute("DELETE FROM request_groups")
            cursor.executemany("INSERT INTO request_groups (id, record) VALUES (%s, %s::json)",
                               sorted(records.items()))

    def set_comment_requests(self, requests: Mapping[str, str | None]) -> int:
        """One transaction; rows locked in id order, then the threads' versions."""
        if not requests:
            return 0
        changed: list[Comment] = []
        with self._transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM comments WHERE id = ANY(%s) AND NOT is_author"
                " ORDER BY id FOR UPDATE", (sorted(requests),),
            ).fetchall()
            for comment in _comments(rows):
                if comment.request != requests[comment.id]:
                    changed.append(dataclasses.replace(comment, request=requests[comment.id]))
            cursor.executemany(
                "UPDATE comments SET request = %(request)s, record = %(record)s::json"
                " WHERE id = %(id)s", [_comment_row(comment) for comment in changed],
            )
            self._touch_threads(cursor, (comment.thread for comment in changed))
        return len(changed)

    @contextmanager
    def request_tally(self, *, timeout: float | None = None) -> Iterator[RequestTally | None]:
        """Hold the tally lock: this process's thread lock, then a session advisory lock on
        one connection kept for the whole block (released at the end, or by PostgreSQL when
        the session dies). With ``timeout``, yield None when either stays taken that long."""
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
        if not self._tally_lock.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
            yield None
            return
        try:
            with self._connection() as connection:
                if not lock_tally(connection, deadline):
                    yield None
                    return
                try:
                    yield PostgresRequestTally(connection, self.url)
                finally:
                    unlock_tally(connection)
        finally:
            self._tally_lock.release()


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
