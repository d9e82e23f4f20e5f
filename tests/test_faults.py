"""Faults (docs/FAULTS.md): workers killed during a POST storm, a disk that refuses to grow a
file, store files damaged by hand (the service refuses to start), backups and restores.

Mail while the SMTP server is down is covered by tests/test_notify.py."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from comments_service import create_app
from comments_service.daily_backup import DailyBackup
from comments_service.damaged_store import EXIT_STORE_DAMAGED, refuse_to_serve_damaged
from comments_service.models import (
    Author,
    Comment,
    CommentState,
    MailAddress,
    OutboxMessage,
    new_comment_id,
    utc_now,
)
from comments_service.store import check_store_files, open_store
from comments_service.store.backup import list_backups, read_backup, write_backup
from tests.conftest import SERVICE_MANIFEST
from tests.servers import (
    free_port,
    running_service,
    service_environment,
    stop_group,
    wait_for_json,
)

ROOT = Path(__file__).resolve().parent.parent


# --- helpers ----------------------------------------------------------------------------------


def environment_for(folder: Path, **settings: str) -> dict[str, str]:
    manifest = folder / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST))
    return service_environment(
        folder, MANIFEST=str(manifest), RATE_LIMIT="off", PUBLISH_POLICY="immediately",
        SPAM_CHECKS="off", MAIL_SENDER_THREAD="false", BACKUP_DAILY="false", **settings,
    )


def flask_command(environment: dict[str, str], cwd: Path, *args: str):
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "comments_service", *args],
        env=environment, cwd=cwd, capture_output=True, text=True, timeout=60,
    )


def post(port: int, thread: str, body: str) -> tuple[int, dict, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", f"/api/threads/{thread}/comments",
                           body=json.dumps({"name": "Reader", "body": body}),
                           headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        connection.close()


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def comment(thread: str = "hello", **fields) -> Comment:
    return Comment(**{
        "id": new_comment_id(), "thread": thread, "name": "Reader", "body": "Hello",
        "html": "<p>Hello</p>", "created": utc_now(), "state": CommentState.AWAITING_REPLY,
        "public": False, "email": "reader@example.org", **fields,
    })


def filled_store(path: Path):
    """A store with comments in two threads, an author, an address and an outbox message."""
    store = open_store(path)
    comments = [comment("hello") for _ in range(3)] + [comment("second")]
    for item in comments:
        store.add_comment(item)
    store.add_author(Author(id="a1", name="Author", email="author@example.org",
                            password_hash="pbkdf2:x", created=utc_now()))
    store.update_mail_address("reader@example.org", lambda old: MailAddress(
        old.address, confirmed_at=utc_now()))
    today = datetime.now(UTC).strftime("%Y%m%d")
    store.add_message(OutboxMessage(id=f"{today}-m1", kind="reply", to="reader@example.org",
                                    subject="Re", text="t", html="<p>t</p>", created=utc_now(),
                                    dedupe_key="reply:1"))
    return store, comments


# --- a. workers killed again and again during a POST storm ------------------------------------


def post_storm(port: int, thread: str, stop: threading.Event, acknowledged: list[str],
               statuses: list[int]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    number = 0
    while not stop.is_set():
        number += 1
        try:
            connection.request("POST", f"/api/threads/{thread}/comments",
                               body=json.dumps({"name": "R", "body": f"Storm {number}"}),
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()  # the worker died under this request: not acknowledged
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        statuses.append(response.status)
        if response.status == 201:
            acknowledged.append(json.loads(payload)["comment"]["id"])
    connection.close()


@pytest.mark.slow
def test_workers_killed_repeatedly_during_a_post_storm_lose_nothing_acknowledged(tmp_path):
    environment = environment_for(tmp_path)
    acknowledged: list[str] = []
    statuses: list[int] = []
    stop = threading.Event()
    kills = 0
    with running_service(tmp_path, environment, workers=4) as (url, process):
        port = int(url.rsplit(":", 1)[1])
        posters = [threading.Thread(target=post_storm,
                                    args=(port, thread, stop, acknowledged, statuses))
                   for thread in ("hello", "second", "hello", "second", "hello", "second")]
        for poster in posters:
            poster.start()
        try:
            for _round in range(8):
                time.sleep(0.4)
                workers = subprocess.run(["pgrep", "-P", str(process.pid)],
                                         capture_output=True, text=True).stdout.split()
                for worker in workers[:2]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(worker), signal.SIGKILL)
                        kills += 1
            # The master replaces the workers (each checks the store before serving, slower on
            # a loaded machine); posting must go on.
            before = len(acknowledged)
            deadline = time.monotonic() + 20
            while len(acknowledged) <= before and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(acknowledged) > before, "no worker serves after the kills"
        finally:
            stop.set()
            for poster in posters:
                poster.join()
    assert kills >= 8
    assert acknowledged
    assert not [status for status in statuses if status >= 500]
    found = check_store_files(environment["TELLMEMORE_STORE_PATH"], full=True)
    assert found.problems == []
    # A kill can leave an extra index line, never a stored comment the index lacks.
    assert found.unindexed == set()
    store = open_store(environment["TELLMEMORE_STORE_PATH"])
    try:
        stored = [item.id for item in store.all_comments()]
        assert len(stored) == len(set(stored))
        assert set(acknowledged) <= set(stored)
        assert store.rebuild_index() == len(stored)
        assert store.count_comments() == len(stored)
        waiting = {item.id for item in store.waiting_comments(limit=10**6)}
        assert waiting == {item.id for item in store.all_comments()
                           if item.state is CommentState.AWAITING_REPLY}
    finally:
        store.close()


# --- b. a disk that refuses to grow a file (RLIMIT_FSIZE → EFBIG) -----------------------------

FILE_SIZE_LIMIT = 48 * 1024


def limit_file_size() -> None:
    """In the server's process: files cannot grow past the limit; writes get EFBIG."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


@contextlib.contextmanager
def limited_service(folder: Path, environment: dict[str, str]):
    port = free_port()
    log = folder / "gunicorn-limited.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
             "comments_service.wsgi:app"],
            cwd=folder, env=environment, stdout=log_file, stderr=log_file,
            start_new_session=True, preexec_fn=limit_file_size,
        )
    try:
        wait_for_json(f"http://127.0.0.1:{port}/healthz", process, log)
        yield port, log
    finally:
        stop_group(process)


@pytest.mark.slow
def test_a_file_that_cannot_grow_gives_503_and_leaves_the_store_whole(tmp_path):
    environment = environment_for(tmp_path)
    acknowledged: list[str] = []
    refusal = None
    with limited_service(tmp_path, environment) as (port, log):
        for number in range(60):
            status, payload, headers = post(port, "hello", f"{number} " + "words " * 150)
            if status == 201:
                assert refusal is None, "a write succeeded after the first refusal"
                acknowledged.append(payload["comment"]["id"])
            else:
                refusal = (status, payload, headers)
                break
        assert refusal is not None, "the thread file never reached the limit"
        status, payload, headers = refusal
        assert status == 503
        assert payload["error"] == "store_unavailable"
        assert headers["Retry-After"] == "60"
        # Still refused (not half-written), and the rest of the service goes on.
        assert post(port, "hello", "one more " * 100)[0] == 503
        assert post(port, "second", "a short one")[0] == 201
        status, body = get(port, "/api/threads/hello")
        assert status == 200
        shown = {item["id"] for item in json.loads(body)["comments"]}
        assert set(acknowledged) <= shown
        assert get(port, "/api/counts?thread=hello")[0] == 200
        assert "Traceback" not in log.read_text()
    store_path = Path(environment["TELLMEMORE_STORE_PATH"])
    assert all(path.stat().st_size <= FILE_SIZE_LIMIT
               for path in (store_path / "threads").glob("hello.*"))
    assert list(store_path.rglob("*.tmp")) == []
    found = check_store_files(store_path, full=True)
    assert found.problems == [] and found.unindexed == set()
    store = open_store(store_path)
    try:
        hello = [item.id for item in store.thread_comments("hello")]
        assert hello == acknowledged
        assert store.count_comments() == len(acknowledged) + 1
    finally:
        store.close()


# --- c. damaged files: the service refuses to start -------------------------------------------


def damage(store_path: Path, how: str) -> str:
    """Damage the store as a person or a failing disk might; returns the file's name."""
    hello = store_path / "threads" / "hello.json"
    if how.startswith("thread") and how != "thread unreadable":
        # Fold the thread's log into its snapshot, so that the snapshot holds its comments.
        store = open_store(store_path)
        threads = store._threads
        with threads.lock("hello"):
            threads.compact("hello", threads.state("hello", locked=True))
        store.close()
    if how == "thread log garbage":
        log = hello.with_suffix(".log")
        store = open_store(store_path)
        store.add_comment(comment("hello"))
        store.close()
        header, rest = log.read_bytes().split(b"\n", 1)
        log.write_bytes(header + b"\n0000abcd {not a record}\n" + rest)
        return "threads/hello.log"
    if how == "thread truncated":
        hello.write_bytes(hello.read_bytes()[:120])
        return "threads/hello.json"
    if how == "thread garbage":
        hello.write_bytes(os.urandom(300))
        return "threads/hello.json"
    if how == "thread not comments":
        hello.write_text(json.dumps({"comments": {"1": {"id": "x"}}}))
        return "threads/hello.json"
    if how == "thread unreadable":
        (store_path / "threads" / "broken.json").mkdir()
        return "threads/broken.json"
    if how == "index garbage":
        with (store_path / "index.jsonl").open("ab") as index:
            index.write(b"\x00\x13garbage\n")
        return "index.jsonl"
    if how == "authors garbage":
        (store_path / "authors.json").write_text("{authors: [")
        return "authors.json"
    if how == "addresses garbage":
        (store_path / "mail_addresses.json").write_text("[]]")
        return "mail_addresses.json"
    if how == "open outbox day garbage":
        day = next((store_path / "outbox" / "open").iterdir()).name
        (store_path / "outbox" / f"{day}.json").write_text('{"messages": {"1": {}}}')
        return f"outbox/{day}.json"
    if how == "thread emptied":
        hello.write_text("{}")
        return "threads/hello.json"
    if how == "thread missing":
        hello.unlink()
        return "threads/hello.json"
    if how.endswith("wrong-typed field"):
        # Issue 20: a number for a date, text for a flag, read as if fine and a 500 later.
        path, table, field, value = {
            "thread wrong-typed field": (hello, "comments", "created", 5),
            "thread text for a flag wrong-typed field": (hello, "comments", "public", "yes"),
            "authors wrong-typed field": (store_path / "authors.json", "authors", "created", 1),
            "outbox wrong-typed field": (None, "messages", "attempts", "two"),
        }[how]
        if path is None:
            day = next((store_path / "outbox" / "open").iterdir()).name
            path = store_path / "outbox" / f"{day}.json"
        data = json.loads(path.read_text())
        next(iter(data[table].values()))[field] = value
        path.write_text(json.dumps(data))
        return str(path.relative_to(store_path))
    raise AssertionError(how)


DAMAGES = ["thread truncated", "thread garbage", "thread not comments", "thread unreadable",
           "thread log garbage",
           "index garbage", "authors garbage", "addresses garbage", "open outbox day garbage",
           "thread emptied", "thread missing", "thread wrong-typed field",
           "thread text for a flag wrong-typed field", "authors wrong-typed field",
           "outbox wrong-typed field"]


@pytest.mark.parametrize("how", DAMAGES)
def test_the_server_refuses_a_damaged_store_in_one_line(how, service_config, tmp_path, caplog):
    store, _ = filled_store(Path(service_config["STORE_PATH"]))
    store.close()
    name = damage(Path(service_config["STORE_PATH"]), how)
    assert [problem.split(":")[0] for problem in
            check_store_files(service_config["STORE_PATH"]).problems] == [name]
    app = create_app(service_config)  # the factory never exits: `check` must run
    with caplog.at_level(logging.CRITICAL), pytest.raises(SystemExit) as stopped:
        refuse_to_serve_damaged(app)
    assert stopped.value.code == EXIT_STORE_DAMAGED
    [record] = [record for record in caplog.records if record.levelno == logging.CRITICAL]
    line = record.getMessage()
    assert "\n" not in line and record.exc_info is None
    assert line.startswith("tellmemore refuses to start") and name in line
    assert "restore BACKUP" in line


def test_a_healthy_store_missing_index_lines_is_reindexed_at_start(service_config):
    store, comments = filled_store(Path(service_config["STORE_PATH"]))
    store.close()
    index = Path(service_config["STORE_PATH"]) / "index.jsonl"
    index.write_bytes(b"".join(index.read_bytes().splitlines(keepends=True)[1:]))
    assert len(check_store_files(service_config["STORE_PATH"]).unindexed) == 1
    app = create_app(service_config)
    try:
        assert app.extensions["tellmemore.store"].count_comments() == len(comments)
    finally:
        app.extensions["tellmemore.store"].close()


@pytest.mark.slow
@pytest.mark.parametrize("preload", [True, False])
def test_gunicorn_stops_with_a_clear_line_and_check_names_the_files(preload, tmp_path):
    environment = environment_for(tmp_path)
    store_path = Path(environment["TELLMEMORE_STORE_PATH"])
    store, _ = filled_store(store_path)
    store.close()
    damage(store_path, "thread truncated")
    damage(store_path, "authors garbage")
    log = tmp_path / "refused.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *(["--preload"] if preload else []), "-w", "4",
             "-b", f"127.0.0.1:{free_port()}", "comments_service.wsgi:app"],
            cwd=tmp_path, env=environment, stdout=log_file, stderr=log_file,
            start_new_session=True,
        )
    try:
        status = process.wait(timeout=60)
    finally:
        stop_group(process)
    text = log.read_text()
    refusals = [line for line in text.splitlines() if "refuses to start" in line]
    assert refusals and all("threads/hello.json" in line and "authors.json" in line
                            for line in refusals)
    assert "comments_service/" not in text  # no traceback through our code
    if preload:  # the master checks once, before any worker exists
        assert status == EXIT_STORE_DAMAGED
        assert len(refusals) == 1 and "Traceback" not in text
    else:  # each worker says it and exits 3; gunicorn stops ("Worker failed to boot")
        assert status != 0
        assert "Worker failed to boot" in text

    checked = flask_command(environment, tmp_path, "check")
    assert checked.returncode == 1
    assert "damaged: threads/hello.json: not valid JSON" in checked.stderr
    assert "damaged: authors.json: not valid JSON" in checked.stderr
    assert "Manifest" in checked.stdout  # the rest is still reported
    exported = flask_command(environment, tmp_path, "export")
    assert exported.returncode == 1 and "Traceback" not in exported.stderr
    assert "restore BACKUP" in exported.stderr


# --- c. backups and restore -------------------------------------------------------------------


def test_a_backup_holds_everything_and_only_the_newest_are_kept(tmp_path):
    store, comments = filled_store(tmp_path / "store")
    folder = tmp_path / "backups"
    start = datetime(2026, 3, 1, tzinfo=UTC)
    written = [write_backup(store, folder, keep=3, now=start + timedelta(days=day))
               for day in range(5)]
    store.close()
    assert list_backups(folder) == written[2:]
    assert not written[0].exists()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct(written[-1].stat().st_mode & 0o777) == "0o600"
    snapshot = read_backup(written[-1])
    assert {item.id for item in snapshot.comments} == {item.id for item in comments}
    assert [author.email for author in snapshot.authors] == ["author@example.org"]
    assert [address.address for address in snapshot.addresses] == ["reader@example.org"]
    assert [message.dedupe_key for message in snapshot.messages] == ["reply:1"]
    # The file is an export: the ordinary import reads its comments.
    assert json.loads(written[-1].read_text())["format"] == "tellmemore-export"


def test_the_daily_backup_is_written_once_a_day_whatever_the_workers(service_config, tmp_path):
    filled_store(Path(service_config["STORE_PATH"]))[0].close()
    config = {**service_config, "BACKUP_DAILY": True, "BACKUP_DIR": str(tmp_path / "daily")}
    first, second = create_app(config), create_app(config)
    try:
        assert first.test_client().get("/healthz").status_code == 200
        first.extensions["tellmemore.daily_backup"].thread.join(30)
        assert len(list_backups(tmp_path / "daily")) == 1
        second.test_client().get("/healthz")
        second.extensions["tellmemore.daily_backup"].thread.join(30)
        first.test_client().get("/healthz")  # same day, same process: no new thread
        assert len(list_backups(tmp_path / "daily")) == 1
        today = datetime.now(UTC).strftime("%Y%m%d")
        assert DailyBackup(second).run(today) is None
    finally:
        for app in (first, second):
            app.extensions["tellmemore.store"].close()


@pytest.mark.slow
def test_restore_rebuilds_a_damaged_store_and_moves_the_old_one_aside(tmp_path):
    environment = environment_for(tmp_path)
    store_path = Path(environment["TELLMEMORE_STORE_PATH"])
    store, comments = filled_store(store_path)
    store.close()
    made = flask_command(environment, tmp_path, "backup", "--to", str(tmp_path / "saved"))
    assert made.returncode == 0, made.stderr
    [backup] = list_backups(tmp_path / "saved")

    # A healthy store with comments is not replaced without --force.
    refused = flask_command(environment, tmp_path, "restore", str(backup))
    assert refused.returncode == 1 and "--force" in refused.stderr

    damage(store_path, "thread garbage")
    damage(store_path, "index garbage")
    restored = flask_command(environment, tmp_path, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    [aside] = tmp_path.glob("store.before-restore-*")
    assert (aside / "threads" / "hello.json").exists()  # kept as it was, for a post-mortem
    found = check_store_files(store_path, full=True)
    assert found.problems == [] and found.unindexed == set()
    assert flask_command(environment, tmp_path, "check").returncode == 0

    store = open_store(store_path)
    try:
        assert {item.id for item in store.all_comments()} == {item.id for item in comments}
        assert store.count_waiting() == len(comments)
        assert store.author_by_email("author@example.org").id == "a1"
        assert store.get_mail_address("reader@example.org").confirmed_at
        today = datetime.now(UTC).strftime("%Y%m%d")
        assert store.get_message(f"{today}-m1").dedupe_key == "reply:1"
    finally:
        store.close()
    with running_service(tmp_path, environment) as (url, _process):
        port = int(url.rsplit(":", 1)[1])
        status, body = get(port, "/api/threads/hello")
        assert status == 200 and len(json.loads(body)["comments"]) == 0  # none public yet
        assert post(port, "hello", "After the restore")[0] == 201

    forced = flask_command(environment, tmp_path, "restore", str(backup), "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(list(tmp_path.glob("store.before-restore-*"))) == 2


def test_restore_refuses_a_file_that_is_not_a_backup_and_changes_nothing(service_config,
                                                                         tmp_path):
    store_path = Path(service_config["STORE_PATH"])
    filled_store(store_path)[0].close()
    damage(store_path, "thread garbage")
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"format": "tellmemore-export", "version": 1, "comments": [],'
                     ' "authors": [{"name": 1}]}')
    before = sorted(path.name for path in tmp_path.iterdir())
    from comments_service.store.backup import BackupRefused, restore_store

    with pytest.raises(BackupRefused, match="authors"):
        restore_store(store_path, bogus)
    assert sorted(path.name for path in tmp_path.iterdir()) == before
