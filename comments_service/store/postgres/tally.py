"""The request tally of the PostgreSQL store (Store.request_tally): its lock and its tables.

The lock is a session advisory lock, taken on the one connection the tally is read and written
on for the whole load-assign-save, so it outlives the commits of the appends and is released
by PostgreSQL if the process holding it dies. The state is two tables (migrations/0001):
``request_tally`` (the log id and the snapshot) and ``request_log`` (the records, numbered in
the order appended: those numbers are the positions).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from comments_service.store.base import RequestTally
from comments_service.store.errors import StoreCorrupted
from comments_service.store.postgres.schema import json_text, unreachable

# Per schema, so that stores in several schemas of one database (tests) do not share it.
TALLY_LOCK_KEY = "hashtext('tellmemore.request_tally'), hashtext(coalesce(current_schema(), ''))"


def lock_tally(connection: psycopg.Connection[TupleRow], deadline: float | None) -> bool:
    """Take the tally's advisory lock (waiting until ``deadline`` at most) and end the
    transaction that took it: a session lock stays held across the commits that follow."""
    if deadline is None:
        connection.execute(f"SELECT pg_advisory_lock({TALLY_LOCK_KEY})")
        connection.commit()
        return True
    left = deadline - time.monotonic()
    if left < 0.001:
        row = connection.execute(f"SELECT pg_try_advisory_lock({TALLY_LOCK_KEY})").fetchone()
        connection.commit()
        return bool(row and row[0])
    connection.execute("SELECT set_config('lock_timeout', %s, true)", (f"{int(left * 1000)}ms",))
    try:
        connection.execute(f"SELECT pg_advisory_lock({TALLY_LOCK_KEY})")
    except psycopg.errors.LockNotAvailable:
        connection.rollback()
        return False
    connection.commit()
    return True


def unlock_tally(connection: psycopg.Connection[TupleRow]) -> None:
    if connection.closed:
        return  # the session is gone, and its lock with it
    connection.rollback()  # whatever the block left unfinished
    connection.execute(f"SELECT pg_advisory_unlock({TALLY_LOCK_KEY})")
    connection.commit()


class PostgresRequestTally(RequestTally):
    """The tally's two tables, read and written on the connection holding its lock. Each
    append or replace is committed before it returns; positions are request_log's numbers."""

    def __init__(self, connection: psycopg.Connection[TupleRow], url: str) -> None:
        self._connection, self._url = connection, url
        with self._step():
            row = connection.execute("SELECT log_id FROM request_tally").fetchone()
        self.log_id = row[0] if row else ""

    @contextmanager
    def _step(self) -> Iterator[None]:
        """One committed transaction of the tally; rolled back when it fails."""
        try:
            yield
            self._connection.commit()
        except psycopg.OperationalError as error:
            raise unreachable(self._url, error) from error
        except BaseException:
            if not self._connection.closed:
                self._connection.rollback()
            raise

    def snapshot(self) -> dict[str, Any] | None:
        with self._step():
            row = self._connection.execute("SELECT snapshot FROM request_tally").fetchone()
        state = row[0] if row else None
        if state is not None and not isinstance(state, dict):
            raise StoreCorrupted("The request tally's snapshot in PostgreSQL is not a grouper "
                                 "snapshot. Run `flask --app comments_service regroup`.")
        return state

    def records(self, position: int | None = None) -> tuple[list[dict[str, Any]], int]:
        if not self.log_id:
            return [], 0
        with self._step():
            rows = self._connection.execute(
                "SELECT position, record FROM request_log WHERE log_id = %s AND position > %s"
                " ORDER BY position", (self.log_id, position or 0),
            ).fetchall()
        if any(not isinstance(record, dict) for _position, record in rows):
            raise StoreCorrupted("A record of the request tally in PostgreSQL is not a JSON "
                                 "object. Run `flask --app comments_service regroup`.")
        after = rows[-1][0] if rows else (position or 0)
        return [record for _position, record in rows], after

    def append(self, record: dict[str, Any]) -> int:
        log_id = self.log_id or secrets.token_hex(8)
        with self._step():
            if not self.log_id:  # the first record ever: a log without a snapshot
                self._connection.execute(
                    "INSERT INTO request_tally (log_id, snapshot) VALUES (%s, NULL)"
                    " ON CONFLICT (singleton) DO UPDATE SET log_id = EXCLUDED.log_id,"
                    " snapshot = NULL", (log_id,),
                )
            row = self._connection.execute(
                "INSERT INTO request_log (log_id, record) VALUES (%s, %s::json)"
                " RETURNING position", (log_id, json_text(record)),
            ).fetchone()
        self.log_id = log_id
        return int(row[0]) if row else 0

    def replace(self, snapshot: dict[str, Any] | None) -> None:
        log_id = secrets.token_hex(8)
        with self._step():
            self._connection.execute(
                "INSERT INTO request_tally (log_id, snapshot) VALUES (%s, %s::json)"
                " ON CONFLICT (singleton) DO UPDATE SET log_id = EXCLUDED.log_id,"
                " snapshot = EXCLUDED.snapshot", (log_id, json_text(snapshot)),
            )
            self._connection.execute("DELETE FROM request_log")
        self.log_id = log_id
