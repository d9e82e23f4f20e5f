"""Rows of the PostgreSQL store: records in and out of their JSON column, the helpers every
table's code shares (compare-and-set on a locked row, the thread version tokens).

Each table keeps the whole record as JSON, read back with ``from_record`` (the source of
truth), and plain columns for what is looked up or sorted (migrations/0001_initial.sql).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from comments_service.metrics_inputs import is_stock, seconds_between, word_count
from comments_service.models import Comment, CommentState, StoredRecord
from comments_service.store.errors import StoreCorrupted
from comments_service.store.postgres.schema import json_text

Record = TypeVar("Record", bound=StoredRecord)
Cursor = psycopg.Cursor[TupleRow]

INSERT_COMMENT = (
    "INSERT INTO comments (id, thread, state, public, question, is_author, created, request,"
    " request_filed, body_folded, name_folded, reader_key, parent, words, replied_at,"
    " reply_seconds, stock, record) VALUES (%(id)s, %(thread)s, %(state)s, %(public)s,"
    " %(question)s, %(is_author)s, %(created)s, %(request)s, %(request_filed)s,"
    " %(body_folded)s, %(name_folded)s, %(reader_key)s, %(parent)s, %(words)s,"
    " %(replied_at)s, %(reply_seconds)s, %(stock)s, %(record)s::json)"
    " ON CONFLICT (id) DO NOTHING"
)
UPDATE_COMMENT = (
    "UPDATE comments SET (state, public, question, is_author, created, request, request_filed,"
    " body_folded, name_folded, reader_key, parent, words, replied_at, reply_seconds, stock,"
    " record) = (%(state)s, %(public)s, %(question)s, %(is_author)s, %(created)s,"
    " %(request)s, %(request_filed)s, %(body_folded)s, %(name_folded)s, %(reader_key)s,"
    " %(parent)s, %(words)s, %(replied_at)s, %(reply_seconds)s, %(stock)s, %(record)s::json)"
    " WHERE id = %(id)s"
)


def folded(text: str) -> str:
    """What the search compares: Python's casefold (as the TinyDB store), with NUL (which a
    text column cannot hold) stood in for by U+FFFD in both the column and the needle."""
    return text.casefold().replace("\x00", "\ufffd")


def record_of(kind: type[Record], record: Any, where: str) -> Record:
    """The ``kind`` a row's JSON record holds; StoreCorrupted (naming ``where``) if none."""
    try:
        if not isinstance(record, dict):
            raise TypeError(f"a {type(record).__name__}, not an object")
        return kind.from_record(record)
    except (KeyError, TypeError, ValueError) as error:
        raise StoreCorrupted(
            f"The PostgreSQL store holds a {kind.__name__} that cannot be read ({where}: "
            f"{error!r}). Restore the database from a backup (pg_dump)."
        ) from error


def comment_row(comment: Comment) -> dict[str, Any]:
    """The parameters of INSERT_COMMENT (and of an update of the comments table)."""
    return {
        "id": comment.id, "thread": comment.thread, "state": str(comment.state),
        "public": comment.public, "question": comment.question, "is_author": comment.is_author,
        "created": comment.created, "request": comment.request,
        "request_filed": comment.request_filed, "body_folded": folded(comment.body),
        "name_folded": folded(comment.name),
        "reader_key": comment.reader_key, "parent": comment.parent,
        # The listening figures' columns (migration 0006, postgres/listening.py).
        "words": word_count(comment.body),
        "replied_at": None if comment.is_author else comment.replied_at,
        "reply_seconds": seconds_between(comment.created, comment.replied_at)
        if not comment.is_author and comment.state is CommentState.REPLIED
        and comment.replied_at else None,
        "stock": comment.is_author and is_stock(comment.nudge_warnings),
        "record": json_text(comment.to_record()),
    }


def comments_of_rows(rows: Iterable[tuple[Any, ...]]) -> list[Comment]:
    """Comments from rows whose last column is the record and first the id."""
    return [record_of(Comment, row[-1], f"comment {row[0]}") for row in rows]


def checked_change(kind: type[Record], old: Record, change: Callable[[Record], Record],
                   fixed: tuple[str, ...]) -> Record:
    """``change(old)``, refused unless it is a ``kind`` that keeps the ``fixed`` fields."""
    new = change(old)
    if not isinstance(new, kind):
        raise TypeError(f"change() returned {type(new).__name__}, not a {kind.__name__}")
    if any(getattr(new, name) != getattr(old, name) for name in fixed):
        raise ValueError(f"change() must not change a {kind.__name__}'s {' or '.join(fixed)}")
    return new


def locked_change(cursor: Cursor, table: str, record_id: str, kind: type[Record],
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
    old = record_of(kind, row[0], f"{table} {record_id}")
    return old, checked_change(kind, old, change, fixed)


def update_keyed(
    transaction: Callable[[], AbstractContextManager[Cursor]], table: str, key_column: str,
    key: str, kind: type[Record], change: Callable[[Record], Record], blank: Record,
) -> Record:
    """Compare-and-set of a record that reads as ``blank`` until first written, each try in
    one ``transaction()``. When two writers both find none, one INSERT gives way: it starts
    again and sees the other's."""
    names = {"table": sql.Identifier(table), "key": sql.Identifier(key_column)}
    while True:
        with transaction() as cursor:
            row = cursor.execute(
                sql.SQL("SELECT record FROM {table} WHERE {key} = %s FOR UPDATE").format(
                    **names), (key,),
            ).fetchone()
            old = blank if row is None else record_of(kind, row[0], f"{table} {key}")
            new = checked_change(kind, old, change, (key_column,))
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


def touch_threads(cursor: Cursor, threads: Iterable[str]) -> None:
    """Give each thread a new version token, in the same transaction as its change (in
    sorted order, so two writers of several threads cannot wait on each other)."""
    for thread in sorted(set(threads)):
        cursor.execute(
            "INSERT INTO thread_versions (thread, version) VALUES (%s, gen_random_uuid())"
            " ON CONFLICT (thread) DO UPDATE SET version = EXCLUDED.version",
            (thread,),
        )
