"""A thread's snapshot and append-only log (store/tinydb/threads.py, thread_log.py): a write
appends one line, a crash at any byte keeps every acknowledged comment, compaction cut short
loses nothing, readers never see a compaction half done, stores written before logs existed
keep working, and check, backup, restore, copy-store and export read an uncompacted log."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from comments_service.models import Comment, CommentState, new_comment_id
from comments_service.store import check_store_files, files, open_store
from comments_service.store.backup import restore_store, write_backup
from comments_service.store.errors import DuplicateComment
from comments_service.store.inventory import copy_store, count_differences, dump_store
from comments_service.store.tinydb import TinyDBStore
from comments_service.store.tinydb import threads as thread_files
from comments_service.store.transfer import export_document
from tests.test_store import make_comment, replied

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def compact(store: TinyDBStore, thread: str = "hello") -> None:
    threads = store._threads
    with threads.lock(thread):
        threads.compact(thread, threads.state(thread, locked=True))


def ids(comments: list[Comment]) -> list[str]:
    return [comment.id for comment in comments]


def log_of(store_path: Path, thread: str = "hello") -> Path:
    return store_path / "threads" / f"{thread}.log"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


def mixed_store(store_path: Path) -> tuple[TinyDBStore, list[Comment]]:
    """A thread with comments in its snapshot and more (and an edit) in its log."""
    store = open_store(store_path)
    comments = [store.add_comment(make_comment()) for _ in range(4)]
    compact(store)
    comments += [store.add_comment(make_comment()) for _ in range(3)]
    comments[1] = store.update_comment(comments[1].id, replied)
    comments.append(store.add_comment(make_comment("other")))
    return store, comments


# -- one append per write ----------------------------------------------------------------------


def test_a_write_appends_one_line_to_the_log_and_leaves_the_snapshot(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _comments = mixed_store(store_path)
    snapshot = store_path / "threads" / "hello.json"
    before_snapshot, before_log = snapshot.read_bytes(), log_of(store_path).read_bytes()
    synced: list[str] = []
    original = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        original(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    added = store.add_comment(make_comment())
    monkeypatch.undo()
    after_log = log_of(store_path).read_bytes()
    assert snapshot.read_bytes() == before_snapshot
    assert after_log.startswith(before_log) and after_log.count(b"\n") == before_log.count(
        b"\n") + 1
    assert [Path(path).name for path in synced] == ["index.jsonl", "hello.log"]
    assert store.thread_comments("hello")[-1] == added


def test_every_kind_of_write_goes_through_the_log(store_path: Path) -> None:
    store, comments = mixed_store(store_path)
    log = log_of(store_path)
    for write in (
        lambda: store.update_comment(comments[0].id, replied),
        lambda: store.update_comment(comments[2].id, lambda old: dataclasses.replace(
            old, body="edited")),
        lambda: store.update_comment(comments[3].id, lambda old: dataclasses.replace(
            old, state=CommentState.WITHDRAWN, public=False)),
        lambda: store.add_comment(make_comment(parent=comments[0].id, is_author=True,
                                               state=CommentState.POSTED, public=True)),
        lambda: store.import_comments([make_comment(), make_comment()]),
        lambda: store.set_comment_requests({comments[4].id: "r1"}),
    ):
        size = log.stat().st_size
        write()
        assert log.stat().st_size > size
    reopened = open_store(store_path)
    assert reopened.thread_comments("hello") == store.thread_comments("hello")
    assert len(reopened.thread_comments("hello")) == 7 + 3


def test_the_thread_version_changes_with_every_write_and_compaction(store_path: Path) -> None:
    store = open_store(store_path)
    seen = {store.thread_version("hello")}
    comment = store.add_comment(make_comment())
    for step in (
        lambda: store.add_comment(make_comment()),
        lambda: store.update_comment(comment.id, replied),
        lambda: compact(store),
        lambda: store.add_comment(make_comment()),
    ):
        seen.add(store.thread_version("hello"))
        step()
        version = store.thread_version("hello")
        assert version not in seen
        assert open_store(store_path).thread_version("hello") == version
    seen.add(store.thread_version("hello"))
    assert len(seen) == 6


def test_a_log_compacts_once_it_outgrows_its_snapshot(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thread_files, "COMPACT_MIN_BYTES", 4096)
    store = open_store(store_path)
    comments = [store.add_comment(make_comment(body="x" * 200)) for _ in range(150)]
    snapshot, log = store_path / "threads" / "hello.json", log_of(store_path)
    assert snapshot.exists()
    assert log.stat().st_size <= max(4096, snapshot.stat().st_size) + 1000
    assert ids(open_store(store_path).thread_comments("hello")) == ids(comments)
    assert check_store_files(store_path).problems == []


# -- crashes: a log cut at every byte of its last record ---------------------------------------


@pytest.mark.parametrize("last", ["add", "update"])
def test_a_log_cut_at_any_byte_of_its_last_record_keeps_every_earlier_one(
    store_path: Path, tmp_path: Path, last: str
) -> None:
    store, comments = mixed_store(store_path)
    expected = store.thread_comments("hello")
    before = log_of(store_path).stat().st_size
    if last == "add":
        store.add_comment(make_comment(body="the last one, cut short"))
    else:
        store.update_comment(comments[5].id, lambda old: dataclasses.replace(
            old, body="an edit cut short"))
    store.close()
    whole = log_of(store_path).read_bytes()
    assert len(whole) > before
    for offset in range(before, len(whole)):
        copy = tmp_path / f"cut-{offset}"
        shutil.copytree(store_path, copy)
        log_of(copy).write_bytes(whole[:offset])
        assert check_store_files(copy).problems == [], offset
        reopened = open_store(copy)
        assert reopened.thread_comments("hello") == expected, offset
        # The cut add's index line (written first) is dropped by the first listing.
        waiting = reopened.waiting_comments(thread="hello", limit=1000)
        assert waiting == [comment for comment in expected if comment.in_queue]
        assert reopened.count_waiting(thread="hello") == len(waiting)
        # The next write cuts the partial line off and lands whole.
        added = reopened.add_comment(make_comment(body="after the crash"))
        reopened.close()
        again = open_store(copy)
        assert again.thread_comments("hello") == [*expected, added], offset
        assert check_store_files(copy).problems == [], offset
        again.close()
        shutil.rmtree(copy)


def test_a_torn_last_line_is_ignored_and_a_damaged_middle_line_is_reported(
    store_path: Path,
) -> None:
    store, _comments = mixed_store(store_path)
    expected = store.thread_comments("hello")
    store.close()
    log = log_of(store_path)
    whole = log.read_bytes()
    log.write_bytes(whole + b"0badc0de {\"put\": {\"id\": \"torn\"}}\n")  # fails its checksum
    assert open_store(store_path).thread_comments("hello") == expected
    header, rest = whole.split(b"\n", 1)
    log.write_bytes(header + b"\n" + rest.replace(b"Comment", b"Cemment", 1))
    found = check_store_files(store_path).problems
    assert len(found) == 1 and found[0].startswith("threads/hello.log: the log line at byte")


# -- compaction cut short, and readers during compactions --------------------------------------


def test_a_compaction_cut_short_between_its_two_renames_loses_nothing(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _comments = mixed_store(store_path)
    expected = store.thread_comments("hello")
    original = files.atomic_write

    def crash_before_the_log(path: Path, payload: bytes) -> None:
        if path.suffix == ".log":
            raise KeyboardInterrupt  # stands in for the process dying here
        original(path, payload)

    monkeypatch.setattr(files, "atomic_write", crash_before_the_log)
    with pytest.raises(KeyboardInterrupt):
        compact(store)
    monkeypatch.undo()
    store.close()
    assert check_store_files(store_path).problems == []
    reopened = open_store(store_path)
    assert reopened.thread_comments("hello") == expected
    added = reopened.add_comment(make_comment())  # finishes the compaction, with it in
    header = json.loads(log_of(store_path).read_bytes().split(b"\n", 1)[0][9:])
    snapshot = json.loads((store_path / "threads" / "hello.json").read_bytes())
    assert header["follows"] == snapshot["log"]["1"]["token"]
    assert open_store(store_path).thread_comments("hello") == [*expected, added]


def test_readers_see_every_acknowledged_comment_while_compactions_run(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers with their own store objects (as other processes would be) never miss a
    comment whose add returned before their read began, however compactions fall."""
    monkeypatch.setattr(thread_files, "COMPACT_MIN_BYTES", 2048)
    writer = open_store(store_path)
    acknowledged: list[str] = []
    done = threading.Event()
    failures: list[str] = []

    def read() -> None:
        reader = open_store(store_path)
        while not done.is_set():
            known = list(acknowledged)
            shown = set(ids(reader.thread_comments("hello")))
            if not set(known) <= shown:
                failures.append(f"missing {sorted(set(known) - shown)[:3]}")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for _ in range(300):
            acknowledged.append(writer.add_comment(make_comment(body="y" * 120)).id)
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert failures == []
    assert ids(open_store(store_path).thread_comments("hello")) == acknowledged


# -- SIGKILL at any moment, compactions included -----------------------------------------------

# Adds to one thread (and edits now and then), compacting every few kilobytes, until killed; a
# line is printed only after the store call returned.
CRASHER = """
import dataclasses, random, sys
from comments_service.models import Comment, CommentState, new_comment_id, utc_now
from comments_service.store import open_store
from comments_service.store.tinydb import threads

threads.COMPACT_MIN_BYTES = 3000
store = open_store(sys.argv[1])
added = []
while True:
    comment = store.add_comment(Comment(
        id=new_comment_id(), thread="busy", name="Reader", body="x" * random.randrange(1, 400),
        html="<p>x</p>", created=utc_now(), state=CommentState.AWAITING_REPLY, public=False,
    ))
    added.append(comment.id)
    print("added", comment.id, flush=True)
    if random.random() < 0.2:
        edited = random.choice(added)
        store.update_comment(edited, lambda latest: dataclasses.replace(
            latest, body=f"edited {edited}"))
        print("edited", edited, flush=True)
"""


def test_every_acknowledged_comment_survives_sigkill_during_appends_and_compactions(
    store_path: Path,
) -> None:
    rng = random.Random()  # noqa: S311 - kill timing, not a secret
    added: list[str] = []
    edited: set[str] = set()
    for _run in range(8):
        crasher = subprocess.Popen(
            [sys.executable, "-c", CRASHER, str(store_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        first_line = crasher.stdout.readline()
        assert first_line.startswith("added"), crasher.stderr.read()
        time.sleep(rng.uniform(0.0, 0.5))
        crasher.kill()
        stdout, _stderr = crasher.communicate(timeout=30)
        complete = (first_line + stdout)[: (first_line + stdout).rfind("\n") + 1]
        for event, comment_id in (line.split() for line in complete.splitlines()):
            (added.append if event == "added" else edited.add)(comment_id)
        assert check_store_files(store_path).problems == []
        store = open_store(store_path)
        stored = {comment.id: comment for comment in store.thread_comments("busy")}
        assert set(added) <= stored.keys()
        for comment_id in edited:
            assert stored[comment_id].body == f"edited {comment_id}"
        # A listing settles the index line of an add the kill cut off before its log line.
        waiting = {comment.id for comment in store.waiting_comments(limit=100_000)}
        assert waiting == set(stored)
        assert store.count_comments() == len(stored)
        store.close()
    assert (store_path / "threads" / "busy.json").exists(), "the runs compacted"


# -- a store written before logs existed -------------------------------------------------------


def test_a_store_written_before_logs_is_read_as_snapshots_and_gains_logs(
    store_path: Path,
) -> None:
    shutil.copytree(FIXTURES / "store-before-logs", store_path)
    old_hello = (store_path / "threads" / "hello.json").read_bytes()
    records = json.loads(old_hello)["comments"]
    assert check_store_files(store_path).problems == []
    store = open_store(store_path)
    hello = store.thread_comments("hello")
    assert sorted(ids(hello)) == sorted(record["id"] for record in records.values())
    assert store.get_comment("old001").state is CommentState.REPLIED
    assert store.get_comment("old003").body == "edited"
    assert store.count_comments() == 13
    # Unwritten since, a thread's version is its file's hash, as the old code gave it.
    assert store.thread_version("hello") == hashlib.blake2b(old_hello, digest_size=12).hexdigest()

    added = store.add_comment(make_comment(created="2026-12-01T00:00:00.000000+00:00"))
    store.update_comment("old000", replied)
    assert (store_path / "threads" / "hello.json").read_bytes() == old_hello  # kept as is
    assert log_of(store_path).exists()
    reopened = open_store(store_path)
    assert ids(reopened.thread_comments("hello")) == [*ids(hello), added.id]
    assert reopened.get_comment("old000").state is CommentState.REPLIED
    assert check_store_files(store_path).problems == []
    assert reopened.rebuild_index() == 14
    compact(reopened)
    assert open_store(store_path).thread_comments("hello") == reopened.thread_comments("hello")
    assert check_store_files(store_path).problems == []


# -- check, backup, restore, copy-store and export with an uncompacted log ---------------------


def test_check_backup_restore_copy_and_export_read_an_uncompacted_log(
    store_path: Path, tmp_path: Path
) -> None:
    store, _comments = mixed_store(store_path)
    assert log_of(store_path).read_bytes().count(b"\n") > 1, "comments wait in the log"
    found = check_store_files(store_path)
    assert found.problems == [] and found.comments == 8 and found.threads == 2
    everything = sorted(store.all_comments(), key=lambda comment: comment.id)
    exported = export_document(store.all_comments())
    assert sorted(item["id"] for item in exported["comments"]) == ids(everything)

    copy = open_store(tmp_path / "copy")
    copy_store(store, copy)
    assert count_differences(store, copy) == []
    assert sorted(copy.all_comments(), key=lambda comment: comment.id) == everything

    written = write_backup(store, tmp_path / "backups", keep=2)
    dumped = dump_store(store)
    store.close()
    restore_store(store_path, written, force=True)
    restored = open_store(store_path)
    assert sorted(restored.all_comments(), key=lambda comment: comment.id) == everything
    assert dump_store(restored)["comments"] == dumped["comments"]


def test_a_new_comment_id_already_in_the_log_is_refused(store_path: Path) -> None:
    store, comments = mixed_store(store_path)
    with pytest.raises(DuplicateComment):
        store.add_comment(dataclasses.replace(comments[-2], body="again"))
    assert store.import_comments([comments[-2], make_comment(id=new_comment_id())]) == 1
    assert store.get_comment(comments[-2].id) == comments[-2]


def test_a_caller_changing_the_list_it_got_does_not_change_the_next_read(
    store_path: Path,
) -> None:
    store, _comments = mixed_store(store_path)
    first = store.thread_comments("hello")
    expected = list(first)
    first.clear()
    assert store.thread_comments("hello") == expected


def test_settling_and_rebuilding_the_index_after_a_compaction_cut_short_do_not_wait(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both hold the thread lock (or the index lock) while reading a thread: a read that meets
    a log not naming its snapshot must not wait for the thread lock again."""
    store, comments = mixed_store(store_path)
    original = files.atomic_write

    def crash_before_the_log(path: Path, payload: bytes) -> None:
        if path.suffix == ".log":
            raise KeyboardInterrupt
        original(path, payload)

    monkeypatch.setattr(files, "atomic_write", crash_before_the_log)
    with pytest.raises(KeyboardInterrupt):
        compact(store)
    monkeypatch.undo()
    expected = store.thread_comments("hello")
    finished: list[object] = []

    def settle_and_rebuild() -> None:
        finished.append(store._index.settle("hello", [comments[0].id]))
        finished.append(store.rebuild_index())

    worker = threading.Thread(target=settle_and_rebuild, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "settling or rebuilding waited for a lock it held"
    assert finished == [{comments[0].id: comments[0]}, len(expected) + 1]


def test_a_process_keeps_a_bounded_number_of_parsed_comments(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thread_files, "CACHED_COMMENTS", 10)
    store = open_store(store_path)
    added = {thread: [store.add_comment(make_comment(thread)) for _ in range(4)]
             for thread in ("a", "b", "c", "d")}
    cache = store._threads._cache
    assert list(cache) == ["c", "d"] and store._threads._cached_comments == 8
    assert store.thread_comments("a") == added["a"]  # read again from its files
    assert list(cache) == ["d", "a"]


def test_a_compaction_the_disk_refuses_does_not_fail_the_write_that_triggered_it(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(thread_files, "COMPACT_MIN_BYTES", 4096)
    store = open_store(store_path)
    comments = [store.add_comment(make_comment(body="z" * 300)) for _ in range(2)]
    assert log_of(store_path).stat().st_size < 2048
    original = files.write_all

    def full_disk_for_new_files(fd: int, payload: bytes) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(fd, payload)

    monkeypatch.setattr(files, "write_all", full_disk_for_new_files)
    more = [store.add_comment(make_comment(body="z" * 300)) for _ in range(6)]
    assert log_of(store_path).stat().st_size > 4096, "past the threshold"
    assert not (store_path / "threads" / "hello.json").exists()
    monkeypatch.setattr(files, "write_all", original)
    later = store.add_comment(make_comment(body="z" * 300))
    assert (store_path / "threads" / "hello.json").exists()
    assert open_store(store_path).thread_comments("hello") == [*comments, *more, later]
    assert check_store_files(store_path).problems == []
    assert list(store_path.rglob("*.tmp")) == []


def test_the_store_commands_read_an_uncompacted_log(app, tmp_path: Path) -> None:
    """`check`, `export`, `backup` and `copy-store` on a store whose threads have comments
    (and an edit) waiting in their logs."""
    store_path = Path(app.config["STORE_PATH"])
    store, _comments = mixed_store(store_path)
    expected = sorted(comment.id for comment in store.all_comments())
    store.close()
    runner = app.test_cli_runner()
    checked = runner.invoke(args=["check"])
    assert checked.exit_code == 0, checked.output
    assert f"{len(expected)} comments" in checked.output
    exported = runner.invoke(args=["export", "-o", str(tmp_path / "export.json")])
    assert exported.exit_code == 0, exported.output
    document = json.loads((tmp_path / "export.json").read_text())
    assert sorted(item["id"] for item in document["comments"]) == expected
    saved = runner.invoke(args=["backup", "--to", str(tmp_path / "saved")])
    assert saved.exit_code == 0, saved.output
    [backup] = (tmp_path / "saved").iterdir()
    assert sorted(item["id"] for item in json.loads(backup.read_text())["comments"]) == expected
    copied = runner.invoke(args=["copy-store", "--from", str(store_path),
                                 "--to", str(tmp_path / "copy")])
    assert copied.exit_code == 0, copied.output
    assert "Counts match: copy complete." in copied.output
    copy = open_store(tmp_path / "copy")
    assert sorted(comment.id for comment in copy.all_comments()) == expected
