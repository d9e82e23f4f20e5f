"""What only the PostgreSQL store has: migrations and the schema check, the commands on it,
claims and tally assignments from several processes, a database that goes away, and input
PostgreSQL's types are strict about. Needs TELLMEMORE_TEST_PG_DSN (see conftest.py)."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from comments_service import create_app
from comments_service.damaged_store import refuse_to_serve_damaged
from comments_service.models import Comment, CommentState, OutboxMessage
from comments_service.store import (
    SchemaNotReady,
    SchemaTooNew,
    StoreUnavailable,
    open_configured_store,
)
from comments_service.store.postgres import PostgresStore, open_postgres_store
from comments_service.store.postgres import schema as store_postgres_schema
from comments_service.store.postgres.schema import known_migrations, latest_version, migrate
from tests.conftest import NO_PG_REASON, PG_DSN_VARIABLE, SERVICE_MANIFEST, fresh_postgres_schema

pytestmark = pytest.mark.skipif(not os.environ.get(PG_DSN_VARIABLE), reason=NO_PG_REASON)

ROOT = Path(__file__).resolve().parent.parent
# Nothing listens on port 1: a database that is down.
DEAD_URL = "postgresql://postgres@127.0.0.1:1/tellmemore?connect_timeout=1"


@pytest.fixture
def empty_url() -> Iterator[str]:
    """A schema with no tables: a database `init` has not been run on."""
    with fresh_postgres_schema(migrated=False) as url:
        yield url


@pytest.fixture
def pg_store(store_url: str) -> Iterator[PostgresStore]:
    store = open_postgres_store(store_url)
    yield store
    store.close()


@pytest.fixture
def store_backend() -> str:
    return "postgresql"


def comment(number: int, **overrides: object) -> Comment:
    values: dict[str, object] = {
        "id": f"pg{number:05d}", "thread": "hello", "name": "Reader", "body": f"Body {number}",
        "html": "<p>x</p>", "created": f"2026-01-01T00:00:00.{number:06d}+00:00",
        "state": CommentState.AWAITING_REPLY, "public": False,
    }
    values.update(overrides)
    return Comment(**values)  # type: ignore[arg-type]


def flask(*args: str, store_url: str, instance: Path) -> subprocess.CompletedProcess[str]:
    """`flask --app comments_service …` in a process of its own, as an operator runs it."""
    manifest = instance.parent / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
    environment = {**os.environ, "TELLMEMORE_STORE_URL": store_url,
                   "TELLMEMORE_INSTANCE_PATH": str(instance),
                   "TELLMEMORE_MANIFEST": str(manifest)}
    return subprocess.run([sys.executable, "-m", "flask", "--app", "comments_service", *args],
                          cwd=ROOT, env=environ_without_pytest(environment),
                          capture_output=True, text=True, timeout=60, check=False)


def environ_without_pytest(environment: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in environment.items()
            if not name.startswith("PYTEST_")}


def set_schema_version(url: str, version: int) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("INSERT INTO schema_version (version, name) VALUES (%s, 'future')",
                           (version,))


# -- migrations and the schema check ------------------------------------------------------------


def test_init_applies_the_migrations_once_and_check_reports_the_schema(
    empty_url: str, tmp_path: Path
) -> None:
    first = flask("init", store_url=empty_url, instance=tmp_path / "instance")
    assert first.returncode == 0, first.stderr
    assert "Applied migration 0001_initial" in first.stdout
    second = flask("init", store_url=empty_url, instance=tmp_path / "instance")
    assert second.returncode == 0, second.stderr
    assert "Applied" not in second.stdout
    assert f"schema version {latest_version()}, up to date" in second.stdout
    with psycopg.connect(empty_url) as connection:
        rows = connection.execute("SELECT version, name FROM schema_version").fetchall()
    assert rows == [(migration.version, migration.name) for migration in known_migrations()]
    assert rows[:2] == [(1, "0001_initial"), (2, "0002_text_vectors")]
    check = flask("check", store_url=empty_url, instance=tmp_path / "instance")
    assert check.returncode == 0, check.stderr
    assert f"schema version {latest_version()}, 0 comments in 0 threads" in check.stdout


def test_migrate_is_idempotent_and_safe_to_run_twice_at_once(empty_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(migrate, [empty_url, empty_url])
    assert sorted(results) == [[], [migration.name for migration in known_migrations()]]
    assert migrate(empty_url) == []


def test_a_schema_newer_than_known_is_refused_everywhere(store_url: str, tmp_path: Path) -> None:
    set_schema_version(store_url, latest_version() + 1)
    message = re.escape(f"database schema version {latest_version() + 1} is newer than this "
                        f"tellmemore knows ({latest_version()}): upgrade tellmemore")
    with pytest.raises(SchemaTooNew, match=message):
        open_postgres_store(store_url)
    with pytest.raises(SchemaTooNew, match=message):
        migrate(store_url)
    started = flask("check", store_url=store_url, instance=tmp_path / "instance")
    assert started.returncode == 1 and "upgrade tellmemore" in started.stderr


def test_a_new_release_s_migration_is_applied_by_init_and_needed_until_then(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upgrade: the database is at the shipped version and the code brings one more."""
    shipped = store_postgres_schema.known_migrations()
    upgrade = store_postgres_schema.Migration(
        latest_version() + 1, f"{latest_version() + 1:04d}_probe",
        "ALTER TABLE comments ADD COLUMN upgrade_probe integer NOT NULL DEFAULT 7;",
    )
    monkeypatch.setattr(store_postgres_schema, "known_migrations", lambda: (*shipped, upgrade))
    with pytest.raises(SchemaNotReady, match="older than this tellmemore needs"):
        open_postgres_store(store_url)
    assert migrate(store_url) == [upgrade.name]
    assert migrate(store_url) == []
    store = open_postgres_store(store_url)
    try:
        stored = store.add_comment(comment(1))
        assert store.get_comment(stored.id) == stored
    finally:
        store.close()
    with psycopg.connect(store_url) as connection:
        assert connection.execute("SELECT upgrade_probe FROM comments").fetchall() == [(7,)]


def test_the_service_refuses_to_start_on_a_database_without_the_schema(
    empty_url: str, service_config: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app({**service_config, "STORE_URL": empty_url})  # `init` must still run
    with pytest.raises(SystemExit) as exit_info:
        refuse_to_serve_damaged(app)
    assert exit_info.value.code == 3
    assert "run `flask --app comments_service init`" in caplog.text
    with pytest.raises(SchemaNotReady, match="no tellmemore schema yet"):
        open_configured_store({"STORE_URL": empty_url, "STORE_PATH": ""})


def test_a_store_url_that_is_not_postgresql_is_a_config_error(
    service_config: dict[str, object],
) -> None:
    from comments_service.config import ConfigError

    with pytest.raises(ConfigError, match="STORE_URL"):
        create_app({**service_config, "STORE_URL": "mysql://db/comments"})


# -- file backups do not apply ----------------------------------------------------------------


def test_backup_and_restore_say_to_use_pg_dump(
    service_config: dict[str, object], tmp_path: Path
) -> None:
    app = create_app({**service_config, "BACKUP_DAILY": True})
    try:
        assert "tellmemore.daily_backup" not in app.extensions
        runner = app.test_cli_runner()
        for args in (["backup"], ["restore", str(Path(__file__))]):
            result = runner.invoke(args=args)
            assert result.exit_code == 1
            assert "pg_dump" in result.output
        assert not (tmp_path / "instance" / "backups").exists()
    finally:
        app.extensions["tellmemore.store"].close()


# -- several processes ----------------------------------------------------------------------------


def claim_until_empty(url: str, claimer: str, start_at: float) -> list[str]:
    """A sender process: claims two at a time until nothing is due (module level: spawned)."""
    store = open_postgres_store(url)
    try:
        time.sleep(max(0.0, start_at - time.time()))
        claimed: list[str] = []
        while batch := store.claim_messages(claimer, "2026-12-01T00:00:00.000000+00:00",
                                            "2026-12-01T00:05:00.000000+00:00", 2):
            claimed.extend(message.id for message in batch)
        return claimed
    finally:
        store.close()


def test_processes_claiming_at_once_never_get_the_same_message(
    pg_store: PostgresStore, store_url: str
) -> None:
    ids = {pg_store.add_message(OutboxMessage(
        id=f"20261120-m{number:04d}", kind="reply", to="rosa@example.org", subject="s",
        text="t", html="h", created="2026-11-20T09:00:00.000000+00:00",
        next_attempt_at=f"2026-11-20T09:{number % 60:02d}:00.000000+00:00",
    )).id for number in range(200)}
    start_at = time.time() + 2
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(claim_until_empty,
                               [(store_url, f"sender-{number}", start_at) for number in range(4)])
    claimed = Counter(message_id for batch in results for message_id in batch)
    assert set(claimed) == ids and max(claimed.values()) == 1
    assert sum(1 for batch in results if batch) >= 2  # they really ran side by side


def append_tally_records(url: str, worker: int, count: int, start_at: float) -> None:
    """Appends ``count`` records, each saying how many it found before it (spawned)."""
    store = open_postgres_store(url)
    try:
        time.sleep(max(0.0, start_at - time.time()))
        for number in range(count):
            with store.request_tally() as tally:
                records, _position = tally.records()
                tally.append({"worker": worker, "number": number, "seen": len(records)})
    finally:
        store.close()


def test_processes_appending_to_the_tally_at_once_lose_nothing(
    pg_store: PostgresStore, store_url: str
) -> None:
    start_at = time.time() + 2
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.starmap(append_tally_records, [(store_url, worker, 40, start_at)
                                            for worker in range(3)])
    with pg_store.request_tally() as tally:
        records, _position = tally.records()
    assert len(records) == 120
    # Each load-assign-save saw every record before it: the lock kept them one at a time.
    assert sorted(record["seen"] for record in records) == list(range(120))
    assert Counter(record["worker"] for record in records) == {0: 40, 1: 40, 2: 40}


def test_the_tally_lock_dies_with_the_session_holding_it(pg_store: PostgresStore,
                                                         store_url: str) -> None:
    other = open_postgres_store(store_url)
    try:
        with pg_store.request_tally() as tally:
            tally.append({"n": 1})
            with other.request_tally(timeout=0.2) as busy:
                assert busy is None
            terminate_sessions(store_url)
            with pytest.raises(StoreUnavailable):
                tally.append({"n": 2})
        with other.request_tally(timeout=2) as free:
            assert free is not None
            assert free.records()[0] == [{"n": 1}]
    finally:
        other.close()


# -- a database that goes away --------------------------------------------------------------------


def terminate_sessions(url: str) -> None:
    """End every session of the test's stores (as a database restart does), not this one."""
    name = conninfo_to_dict(url)["application_name"]
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                           " WHERE application_name = %s AND pid <> pg_backend_pid()", (name,))


def test_a_database_that_cannot_be_reached_is_store_unavailable() -> None:
    store = PostgresStore(DEAD_URL, timeout=1)
    try:
        for call in (lambda: store.add_comment(comment(1)), lambda: store.get_comment("x"),
                     lambda: store.claim_messages("a", "b", "c", 1)):
            with pytest.raises(StoreUnavailable, match=re.escape("127.0.0.1:1/tellmemore")):
                call()
    finally:
        store.close()


def test_the_api_answers_503_while_the_database_is_down(
    service_config: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app({**service_config, "STORE_URL": DEAD_URL,  # starts, and says why not
                      "STORE_POOL_TIMEOUT_SECONDS": 1.0})
    try:
        client = app.test_client()
        posted = client.post("/api/threads/hello/comments",
                             json={"name": "Rosa", "body": "Still there?"})
        assert posted.status_code == 503
        assert posted.headers["Retry-After"] == "60"
        assert posted.get_json()["error"] == "store_unavailable"
        assert client.get("/api/threads/hello").status_code == 503
    finally:
        app.extensions["tellmemore.store"].close()


def test_sessions_ended_by_a_restart_are_replaced_and_nothing_is_lost(
    pg_store: PostgresStore, store_url: str
) -> None:
    kept = pg_store.add_comment(comment(1))
    terminate_sessions(store_url)
    assert pg_store.get_comment(kept.id) == kept  # the pool checks and reconnects
    replied = pg_store.update_comment(kept.id, lambda latest: dataclasses.replace(
        latest, state=CommentState.REPLIED, public=True))
    terminate_sessions(store_url)
    assert pg_store.thread_comments("hello") == [replied]
    assert pg_store.count_waiting() == 0


# -- input PostgreSQL is strict about -------------------------------------------------------------


def test_nul_characters_huge_bodies_and_any_unicode_round_trip(pg_store: PostgresStore) -> None:
    odd = pg_store.add_comment(comment(1, name="Nul\x00Name", body="before\x00after 🦆 Straße"))
    huge = pg_store.add_comment(comment(2, body="long " * 200_000))
    assert pg_store.get_comment(odd.id) == odd
    assert pg_store.get_comment(huge.id) == huge
    assert pg_store.find_comments(text="E\x00A") == ([odd], 1)
    assert pg_store.find_comments(text="STRASSE 🦆"[-1]) == ([odd], 1)
    assert pg_store.find_comments(text="strasse") == ([odd], 1)
    assert pg_store.find_comments(text="%") == ([], 0)  # no pattern characters
    assert pg_store.find_comments(text="_") == ([], 0)


@pytest.mark.parametrize("thread", ["../escape", "", "x" * 201, "new\nline", "a\x00b"])
def test_thread_keys_are_checked_before_the_database_sees_them(
    pg_store: PostgresStore, thread: str
) -> None:
    with pytest.raises(ValueError, match="thread key"):
        pg_store.add_comment(comment(1, thread=thread))
    assert pg_store.thread_comments(thread) == []
    assert pg_store.public_counts([thread]) == {thread: 0}
    assert pg_store.find_comments(thread=thread) == ([], 0)


def at_schema_version(connection: psycopg.Connection, version: int) -> None:
    """Make an empty schema what a release at ``version`` left: its migrations applied."""
    connection.execute(
        "CREATE TABLE schema_version (version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())")
    for migration in known_migrations()[:version]:
        connection.execute(migration.sql)
        connection.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                           (migration.version, migration.name))


def test_migration_3_fills_the_reader_columns_of_existing_comments(empty_url: str) -> None:
    """A database at version 2 with comments (one holding NUL, which json cannot turn into
    text) is upgraded by `init`; the reader's history then finds them and the reply."""
    import json as json_module

    from comments_service.models import Comment, CommentState

    with psycopg.connect(empty_url, autocommit=True) as connection:
        at_schema_version(connection, 2)
        comments = [
            Comment(id="r1", thread="hello", name="Nul\x00Rosa", body="first \"reader_key\": \"x\"",
                    html="<p>1</p>", created="2026-01-01T00:00:00.000000+00:00",
                    state=CommentState.REPLIED, public=True, reader_key="k1"),
            Comment(id="r2", thread="hello", name="Rosa", body="second", html="<p>2</p>",
                    created="2026-01-02T00:00:00.000000+00:00", public=True, reader_key="k1",
                    state=CommentState.AWAITING_REPLY),
            Comment(id="a1", thread="hello", name="Ada", body="reply", html="<p>3</p>",
                    created="2026-01-03T00:00:00.000000+00:00", state=CommentState.POSTED,
                    public=True, is_author=True, parent="r1"),
        ]
        for comment in comments:
            connection.execute(
                "INSERT INTO comments (id, thread, state, public, question, is_author, created,"
                " request, body_folded, name_folded, record) VALUES (%s, %s, %s, %s, NULL, %s,"
                " %s, NULL, '', '', %s::json)",
                (comment.id, comment.thread, str(comment.state), comment.public,
                 comment.is_author, comment.created,
                 json_module.dumps(comment.to_record(), ensure_ascii=True)))
    assert migrate(empty_url) == [migration.name for migration in known_migrations()[2:]]
    store = open_postgres_store(empty_url)
    try:
        history = store.reader_history("k1")
        assert [comment.id for comment in history.comments] == ["r2", "r1"]
        assert history.comments[1].name == "Nul\x00Rosa"
        assert [reply.id for reply in history.replies["r1"]] == ["a1"]
        assert store.reader_history("x").total == 0  # the body's text is not a key
    finally:
        store.close()


def test_migration_5_counts_existing_comments_and_keeps_counting(empty_url: str) -> None:
    """A database at version 4 with comments is upgraded by `init`: the running counts start
    from the comments there, request_filed from their records, and every later write (add,
    state change, a question changed, a comment moved between requests) keeps the counts equal
    to counting the rows."""
    import json as json_module

    from comments_service.models import Comment, CommentState

    with psycopg.connect(empty_url, autocommit=True) as connection:
        at_schema_version(connection, 4)
        for number, (state, question, filed) in enumerate([
            (CommentState.AWAITING_REPLY, "why", True), (CommentState.AWAITING_REPLY, None, False),
            (CommentState.REPLIED, "why", False), (CommentState.SPAM, None, False),
        ]):
            old = Comment(id=f"c{number}", thread="hello", name="Rosa", body="b", html="<p>b</p>",
                          created=f"2026-01-0{number + 1}T00:00:00.000000+00:00", state=state,
                          public=True, question=question, request="1-1", request_filed=filed)
            connection.execute(
                "INSERT INTO comments (id, thread, state, public, question, is_author, created,"
                " request, body_folded, name_folded, record) VALUES (%s, %s, %s, %s, %s, false,"
                " %s, %s, '', '', %s::json)",
                (old.id, old.thread, str(old.state), old.public, old.question, old.created,
                 old.request, json_module.dumps(old.to_record())))
    assert migrate(empty_url) == [migration.name for migration in known_migrations()[4:]]
    store = open_postgres_store(empty_url)

    def counted_rows() -> dict[tuple[str, str | None], int]:
        with psycopg.connect(empty_url) as connection:
            rows = connection.execute(
                "SELECT state, question, count(*) FROM comments GROUP BY 1, 2").fetchall()
        return {(state, question): count for state, question, count in rows}

    try:
        assert store.state_counts()[CommentState.AWAITING_REPLY] == 2
        assert store.count_in_state(CommentState.AWAITING_REPLY, question="why") == 1
        assert store.answer_counts() == {("hello", "why"): 2}
        assert {f.id: f.filed for f in store.request_filings()} == {
            "c0": True, "c1": False, "c2": False, "c3": False}
        store.update_comment("c1", lambda c: dataclasses.replace(
            c, state=CommentState.REPLIED, question="how"))
        store.update_comment("c0", lambda c: dataclasses.replace(c, request_filed=False))
        store.set_comment_requests({"c2": "1-2"})
        store.add_comment(dataclasses.replace(store.get_comment("c3"), id="c9"))
        for (state, question), count in counted_rows().items():
            if question is not None:
                assert store.count_in_state(CommentState(state), question=question) == count
        assert sum(store.state_counts().values()) == store.count_comments() == 5
        assert store.answer_counts() == {("hello", "why"): 2, ("hello", "how"): 1}
        assert {f.id: f.filed for f in store.request_filings()}["c0"] is False
    finally:
        store.close()
