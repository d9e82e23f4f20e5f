"""The PostgreSQL store's connections: one pool per process, one short transaction per call.

A pool is opened on first use, so a process that forks next (gunicorn's workers) holds no
connection; a forked child leaves the pool it inherited alone and opens its own. Connection
failures become StoreUnavailable (HTTP 503), and the schema is checked on the first connection
unless the store was opened with it checked already.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from comments_service.store.postgres.rows import Cursor
from comments_service.store.postgres.schema import CONNECT_TIMEOUT, check_schema, unreachable

# Connections per process: a request uses one at a time, the tally holder one more. The service
# passes STORE_POOL_SIZE; these hold for a store opened by URL alone (copy-store).
POOL_MAX_SIZE = 10
# Seconds a request waits for a connection (the database down, or every connection busy)
# before it gets StoreUnavailable (HTTP 503); the service passes STORE_POOL_TIMEOUT_SECONDS.
POOL_TIMEOUT = 10.0
# Pools a forked child inherited: their sockets are the parent's, so the child must neither
# use nor close them (closing would end the parent's sessions); kept here so they are never
# garbage-collected either.
INHERITED_POOLS: list[ConnectionPool] = []


class Connections:
    """This process's connections to one database."""

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
        # they cannot starve the holder (regroup) of the pool. Kept here because, like the
        # pool, it must be made anew in a forked child.
        self.tally_lock = threading.Lock()
        self._schema_checked = schema_checked

    def _settings(self) -> dict[str, Any]:
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
                INHERITED_POOLS.append(self._pool)
            self._pool, self._owner_pid = None, os.getpid()
            self._pool_lock, self.tally_lock = threading.Lock(), threading.Lock()
        pool = self._pool
        if pool is not None:
            return pool
        with self._pool_lock:
            if self._pool is None:
                pool = ConnectionPool(
                    self.url, min_size=1, max_size=self._max_size, open=False,
                    timeout=self._timeout, kwargs=self._settings(),
                    check=ConnectionPool.check_connection, name="tellmemore-store",
                )
                pool.open(wait=False)
                self._pool = pool
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[TupleRow]]:
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
    def transaction(self) -> Iterator[Cursor]:
        """A cursor in one transaction (see connection)."""
        with self.connection() as connection, connection.cursor() as cursor:
            yield cursor

    def close(self) -> None:
        """Close this process's connections (a later call opens a new pool)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._owner_pid == os.getpid():
            pool.close()
