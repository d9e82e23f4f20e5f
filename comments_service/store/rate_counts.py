"""Counters shared by every process of one machine, for the rate limits and sign-in waits.

Flask-Limiter's default, memory://, counts per process: under gunicorn -w 4 a client got four
budgets, one per worker. This is a `limits` storage (registered for URIs
``tellmemore-sqlite:///<absolute path>``) keeping fixed-window counters in one SQLite file, so
every worker of every instance sharing the file draws on one budget. SQLite (the standard
library) gives what a counter shared between processes needs: a write lock across processes
(BEGIN IMMEDIATE), durability not being needed. It lives in the store package because no
other package writes SQL; it is no part of the comment store (not backed up, not copied): a
lost file only resets the counts. Several machines share counts through Redis instead
(RATE_LIMIT_STORAGE_URI = redis://…).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from limits.storage import Storage

SCHEME = "tellmemore-sqlite"
FILE_NAME = "rate-limits.sqlite3"
# Each write also removes expired counters with this chance, so the file stays small.
PURGE_CHANCE = 0.01
BUSY_TIMEOUT_SECONDS = 10.0


def counts_uri(folder: str | Path) -> str:
    """The storage URI of the counters file in ``folder``."""
    return f"{SCHEME}://{Path(folder).resolve() / FILE_NAME}"


class SqliteCounters(Storage):
    """Fixed-window counters in one SQLite file (limits' Storage protocol)."""

    STORAGE_SCHEME: ClassVar[list[str]] = [SCHEME]  # type: ignore[misc]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False,
                 **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        path = unquote(urlsplit(uri or "").path)
        if not path:
            raise ValueError(f"{SCHEME}:// needs the path of the counters file, not {uri!r}")
        self._path = Path(path)
        self._local = threading.local()

    @property
    def base_exceptions(self) -> type[Exception]:
        return sqlite3.Error

    def _db(self) -> sqlite3.Connection:
        """This thread's connection; a forked worker opens its own (never the parent's)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            return connection
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # The keys name client addresses: private to the service's user, as the store is
        # (SQLite gives its -wal and -shm files the database file's mode).
        os.close(os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        connection = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS,
                                     isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")  # counts may be lost in a crash: harmless
        connection.execute("CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY,"
                           " value INTEGER NOT NULL, expires REAL NOT NULL)")
        self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        db, now = self._db(), time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT value, expires FROM counters WHERE key = ?",
                             (key,)).fetchone()
            if row is None or row[1] <= now:
                value, expires = amount, now + float(expiry)
            else:
                value, expires = row[0] + amount, row[1]
            db.execute("INSERT OR REPLACE INTO counters (key, value, expires) VALUES (?, ?, ?)",
                       (key, value, expires))
            if random.random() < PURGE_CHANCE:  # noqa: S311 - not for security
                db.execute("DELETE FROM counters WHERE expires <= ?", (now,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return value

    def get(self, key: str) -> int:
        row = self._db().execute("SELECT value FROM counters WHERE key = ? AND expires > ?",
                                 (key, time.time())).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._db().execute("SELECT expires FROM counters WHERE key = ? AND expires > ?",
                                 (key, time.time())).fetchone()
        return float(row[0]) if row else time.time()

    def check(self) -> bool:
        try:
            self._db().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return self._db().execute("DELETE FROM counters").rowcount

    def clear(self, key: str) -> None:
        self._db().execute("DELETE FROM counters WHERE key = ?", (key,))
