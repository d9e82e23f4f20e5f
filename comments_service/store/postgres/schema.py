"""The PostgreSQL store's schema: numbered migrations applied in order, the check that a
database holds the schema this code knows, and what the store, its tally and the commands
share (one-off connections, the StoreUnavailable message, JSON text for json columns).

``migrations/NNNN_name.sql`` are applied by `flask --app comments_service init` (``migrate``),
each in one transaction that also records it in ``schema_version``. The store refuses a
database whose schema is older (run ``init``) or newer (upgrade tellmemore) than the newest
file shipped here, so code and schema never run out of step.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from comments_service.store.errors import SchemaNotReady, SchemaTooNew, StoreError, StoreUnavailable

MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
INIT_HINT = "run `flask --app comments_service init`"
# Seconds a one-off connection (init, check, the start-up check) waits for the server.
CONNECT_TIMEOUT = 5
SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
# Two migrations at once (two `init`s) would both see version N and both apply N + 1; this
# session lock, per schema, held for the whole run, makes the second wait and then find every
# migration applied (a lock per migration let two runs share the migrations between them).
MIGRATE_LOCK = (
    "SELECT pg_advisory_lock(hashtext('tellmemore.migrate'),"
    " hashtext(coalesce(current_schema(), '')))"
)
MIGRATE_UNLOCK = (
    "SELECT pg_advisory_unlock(hashtext('tellmemore.migrate'),"
    " hashtext(coalesce(current_schema(), '')))"
)


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file of migrations/."""

    version: int
    name: str  # "0001_initial"
    sql: str


@cache
def known_migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this code, in version order."""
    folder = resources.files("comments_service.store.postgres") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_FILE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name.removesuffix(".sql"),
                                   entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"The migrations must be numbered 1, 2, 3… without gaps: {versions}")
    return tuple(found)


def latest_version() -> int:
    """The schema version this code works with."""
    return known_migrations()[-1].version


def describe_url(url: str) -> str:
    """Where ``url`` points, for messages: user@host:port/database, never the password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an invalid STORE_URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"{user}{parts.get('host') or 'localhost'}{port}/{parts.get('dbname') or ''}"


def unreachable(url: str, error: Exception) -> StoreUnavailable:
    """The error for a database that cannot be reached or used just now."""
    reason = " ".join(str(error).split()) or type(error).__name__
    return StoreUnavailable(
        f"The PostgreSQL store {describe_url(url)} cannot be used just now ({reason}). "
        "Check that PostgreSQL is running and STORE_URL is right, then try again."
    )


def json_text(record: Any) -> str:
    """JSON text for a json column. ASCII-escaped: a NUL must reach PostgreSQL as "\\u0000",
    as no text PostgreSQL is sent may hold the character itself."""
    return json.dumps(record, separators=(",", ":"))


def connect(url: str, **settings: Any) -> psycopg.Connection[Any]:
    """A one-off connection (the caller closes it); StoreUnavailable when it cannot be made."""
    if "connect_timeout" not in conninfo_to_dict(url):
        settings.setdefault("connect_timeout", CONNECT_TIMEOUT)
    try:
        return psycopg.connect(url, **settings)
    except psycopg.OperationalError as error:
        raise unreachable(url, error) from error


def schema_version(connection: psycopg.Connection[Any]) -> int:
    """The version of the schema in the connection's schema (0: none applied yet)."""
    exists = connection.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def check_schema(connection: psycopg.Connection[Any]) -> int:
    """The schema version, when it is the one this code knows; otherwise SchemaNotReady (older
    or none: run init) or SchemaTooNew (upgrade tellmemore)."""
    version, latest = schema_version(connection), latest_version()
    if version > latest:
        raise SchemaTooNew(
            f"The database schema version {version} is newer than this tellmemore knows "
            f"({latest}): upgrade tellmemore"
        )
    if version == 0:
        raise SchemaNotReady(f"The database holds no tellmemore schema yet: {INIT_HINT}")
    if version < latest:
        raise SchemaNotReady(
            f"The database schema version {version} is older than this tellmemore needs "
            f"({latest}): {INIT_HINT}"
        )
    return version


def migrate(url: str) -> list[str]:
    """Apply every migration the database lacks, in order, each in one transaction; returns
    the names applied (none when it is up to date). SchemaTooNew leaves it untouched."""
    applied: list[str] = []
    with connect(url, autocommit=True) as connection:
        try:
            connection.execute(MIGRATE_LOCK)  # released when the run ends or the session does
            try:
                applied = _apply_missing(connection)
            finally:
                connection.execute(MIGRATE_UNLOCK)
        except psycopg.OperationalError as error:
            raise unreachable(url, error) from error
        except psycopg.Error as error:
            raise StoreError(
                f"Migrating the PostgreSQL store {describe_url(url)} failed: {error}"
            ) from error
    return applied


def _apply_missing(connection: psycopg.Connection[Any]) -> list[str]:
    """Apply the migrations the database lacks, each in its own transaction (the caller holds
    the migration lock)."""
    applied: list[str] = []
    for migration in known_migrations():
        with connection.transaction():
            connection.execute(SCHEMA_VERSION_TABLE)
            current = schema_version(connection)
            if current > latest_version():
                raise SchemaTooNew(
                    f"The database schema version {current} is newer than this "
                    f"tellmemore knows ({latest_version()}): upgrade tellmemore"
                )
            if current >= migration.version:
                continue
            # Several statements in one call: sent as a simple query (no parameters).
            connection.execute(migration.sql)  # type: ignore[arg-type]
            connection.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
        applied.append(migration.name)
    return applied


@dataclass(frozen=True)
class DatabaseSummary:
    """What `flask … check` says of a PostgreSQL store."""

    server_version: str
    schema_version: int
    comments: int
    threads: int
    authors: int
    outbox_messages: int


def database_summary(url: str) -> DatabaseSummary:
    """The server, the schema version (checked as at start-up) and the counts; StoreError
    (StoreUnavailable, SchemaNotReady, SchemaTooNew) when the store cannot be used."""
    with connect(url) as connection:
        version = check_schema(connection)
        comments, threads, authors, messages = connection.execute(
            "SELECT (SELECT count(*) FROM comments),"
            " (SELECT count(DISTINCT thread) FROM comments),"
            " (SELECT count(*) FROM authors), (SELECT count(*) FROM outbox_messages)"
        ).fetchone() or (0, 0, 0, 0)
        server = connection.info.parameter_status("server_version") or "?"
    return DatabaseSummary(server, version, comments, threads, authors, messages)
