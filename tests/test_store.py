"""The store: every Store method on both backends (TinyDB and PostgreSQL, see conftest.py), the
TinyDB store's files and failure modes, and a model-based property test on both."""

from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)

from comments_service.models import Comment, CommentState
from comments_service.store import (
    CommentNotFound,
    DuplicateComment,
    Store,
    StoreCorrupted,
    StoreDamaged,
    StoreUnavailable,
    TinyDBStore,
    check_store_files,
    files,
    open_configured_store,
    open_store,
)
from comments_service.store.tinydb import index_file as tinydb_index_file
from comments_service.store.tinydb.index_file import CommentIndex
from comments_service.store.tinydb.threads import ThreadFiles
from tests.conftest import fresh_postgres_schema

pytestmark = pytest.mark.both_stores

_ids = itertools.count(1)
_ticks = itertools.count(1)


def created_at(second: int, tick: int | None = None) -> str:
    """A stored timestamp; ``tick`` keeps timestamps unique when tests pick the second."""
    tick = next(_ticks) if tick is None else tick
    return f"2026-01-01T00:{second // 60 % 60:02d}:{second % 60:02d}.{tick % 10**6:06d}+00:00"


def make_comment(thread: str = "hello", **overrides: object) -> Comment:
    """A reader comment waiting for a reply, with a unique id and a later time than the last."""
    number = next(_ids)
    values: dict[str, object] = {
        "id": f"c{number:06d}",
        "thread": thread,
        "name": "Reader",
        "body": f"Comment {number}",
        "html": f"<p>Comment {number}</p>",
        "created": created_at(0),
        "state": CommentState.AWAITING_REPLY,
        "public": False,
    }
    values.update(overrides)
    return Comment(**values)  # type: ignore[arg-type]


def replied(comment: Comment) -> Comment:
    return dataclasses.replace(comment, state=CommentState.REPLIED, public=True)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


def index_lines(store_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (store_path / "index.jsonl").read_text().splitlines()]


def temp_files(store_path: Path) -> list[Path]:
    return [path for path in store_path.rglob("*") if path.name.endswith(".tmp")]


# -- opening -----------------------------------------------------------------------------------


def test_open_store_creates_the_folder_on_first_use(tmp_path: Path) -> None:
    folder = tmp_path / "instance" / "store"
    store = open_store(folder)
    assert isinstance(store, TinyDBStore)
    assert (folder / "threads").is_dir() and (folder / "locks").is_dir()
    assert store.count_comments() == 0
    assert list(store.all_comments()) == []


def test_opening_removes_temporary_files_left_by_a_crash(store_path: Path) -> None:
    open_store(store_path)
    left_over = store_path / "threads" / ".hello.json.x1.tmp"
    in_progress = store_path / "threads" / ".hello.json.x2.tmp"
    left_over.write_text("{}")
    in_progress.write_text("{}")
    os.utime(left_over, (0, 0))
    open_store(store_path)
    assert not left_over.exists() and in_progress.exists()


def test_temporary_files_of_a_killed_writer_are_removed_at_the_next_start(
    store_path: Path,
) -> None:
    """Issue 20, item 8: a worker SIGKILLed mid-write leaves a fresh temporary file; the next
    start removes it at once, in every folder of the store, and leaves a live writer's."""
    import signal
    import subprocess
    import sys

    open_store(store_path)
    folders = [store_path / "threads", store_path / "outbox", store_path / "requests"]
    for folder in folders:
        folder.mkdir(exist_ok=True)
    # A real process makes its temporary files as atomic_write names them, then is killed.
    script = (
        "import os, signal, sys, tempfile\n"
        "from pathlib import Path\n"
        "from comments_service.store.files import temp_prefix\n"
        "for folder in sys.argv[1:]:\n"
        "    tempfile.mkstemp(prefix=temp_prefix(Path(folder) / 'x.json'), suffix='.tmp',"
        " dir=folder)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, *map(str, folders)], check=False)
    assert killed.returncode == -signal.SIGKILL
    orphans = [path for folder in folders for path in folder.glob(".*.tmp")]
    assert len(orphans) == 3
    from comments_service.store.files import temp_prefix

    live = store_path / "threads" / (temp_prefix(store_path / "threads" / "y.json") + "a.tmp")
    live.write_text("{}")
    open_store(store_path)
    assert [path for path in orphans if path.exists()] == []
    assert live.exists(), "this process is alive: its write may be in progress"


def test_a_second_store_on_the_same_data_sees_the_same_comments(open_test_store) -> None:
    first = open_test_store()
    comment = first.add_comment(make_comment())
    assert open_test_store().get_comment(comment.id) == comment


# -- adding and reading ------------------------------------------------------------------------


def test_add_then_get_returns_the_same_comment(store: Store) -> None:
    comment = make_comment(question="why", email="r@example.org", spam_reasons=("timing",))
    assert store.add_comment(comment) == comment
    assert store.get_comment(comment.id) == comment
    assert store.get_comment("no-such-id") is None


def test_thread_comments_are_oldest_first_in_any_state(store: Store) -> None:
    late = store.add_comment(make_comment(created=created_at(30)))
    early = store.add_comment(make_comment(created=created_at(10), state=CommentState.SPAM))
    middle = store.add_comment(make_comment(created=created_at(20), state=CommentState.POSTED))
    assert store.thread_comments("hello") == [early, middle, late]
    assert store.thread_comments("nobody-wrote-here") == []


def test_threads_are_isolated(store: Store) -> None:
    in_a = store.add_comment(make_comment("a", state=CommentState.POSTED, public=True))
    in_b = store.add_comment(make_comment("b"))
    assert store.thread_comments("a") == [in_a]
    assert store.thread_comments("b") == [in_b]
    assert store.public_counts(["a", "b"]) == {"a": 1, "b": 0}
    assert store.waiting_comments(thread="a") == []
    version_b = store.thread_version("b")
    store.add_comment(make_comment("a"))
    store.update_comment(in_a.id, lambda comment: dataclasses.replace(comment, body="edited"))
    assert store.thread_version("b") == version_b
    assert store.thread_comments("b") == [in_b]


def test_duplicate_ids_are_refused_in_the_same_and_in_another_thread(store: Store) -> None:
    comment = store.add_comment(make_comment("a"))
    with pytest.raises(DuplicateComment):
        store.add_comment(comment)
    with pytest.raises(DuplicateComment):
        store.add_comment(dataclasses.replace(comment, thread="b"))
    assert store.count_comments() == 1
    assert store.thread_comments("b") == []


@pytest.mark.parametrize("thread", ["../escape", "a/b", ".hidden", "", "x" * 201, "new\nline"])
def test_thread_keys_that_could_be_path_tricks_are_refused(store: Store, thread: str) -> None:
    with pytest.raises(ValueError, match="thread key"):
        store.add_comment(make_comment(thread))
    with pytest.raises(ValueError, match="thread key"):
        store.import_comments([make_comment(thread)])
    assert store.thread_comments(thread) == []
    assert store.thread_version(thread) == "empty"
    assert store.waiting_comments(thread=thread) == []
    assert store.public_counts([thread]) == {thread: 0}


# -- updating ----------------------------------------------------------------------------------


def test_update_stores_the_change_everywhere(store: Store, open_test_store) -> None:
    comment = store.add_comment(make_comment(question="why"))
    updated = store.update_comment(comment.id, replied)
    assert updated.state is CommentState.REPLIED and updated.public
    assert store.get_comment(comment.id) == updated
    assert store.thread_comments("hello") == [updated]
    assert store.waiting_comments() == []
    assert store.count_waiting() == 0 and store.count_waiting(question="why") == 0
    assert store.public_counts(["hello"]) == {"hello": 1}
    assert open_test_store().get_comment(comment.id) == updated


def test_update_passes_the_latest_stored_version_to_change(store: Store) -> None:
    comment = store.add_comment(make_comment())
    store.update_comment(comment.id, lambda latest: dataclasses.replace(latest, body="one"))
    seen: list[Comment] = []

    def change(latest: Comment) -> Comment:
        seen.append(latest)
        return dataclasses.replace(latest, body=latest.body + " two")

    assert store.update_comment(comment.id, change).body == "one two"
    assert seen[0].body == "one"


def test_a_change_that_raises_aborts_with_nothing_written(store: Store) -> None:
    comment = store.add_comment(make_comment())
    version = store.thread_version("hello")
    index = store.path / "index.jsonl" if isinstance(store, TinyDBStore) else None
    index_before = index.read_bytes() if index else None

    def refuse(latest: Comment) -> Comment:
        raise RuntimeError("already replied by someone else")

    with pytest.raises(RuntimeError, match="already replied"):
        store.update_comment(comment.id, refuse)
    assert store.thread_version("hello") == version
    assert (index.read_bytes() if index else None) == index_before
    assert store.get_comment(comment.id) == comment


@pytest.mark.parametrize(
    "change",
    [
        lambda comment: dataclasses.replace(comment, id="other-id"),
        lambda comment: dataclasses.replace(comment, thread="other-thread"),
    ],
)
def test_update_cannot_change_id_or_thread(
    store: Store, change: Callable[[Comment], Comment]
) -> None:
    comment = store.add_comment(make_comment())
    with pytest.raises(ValueError, match="id or thread"):
        store.update_comment(comment.id, change)
    assert store.get_comment(comment.id) == comment
    assert store.thread_comments("other-thread") == []


def test_update_of_a_missing_comment_raises_comment_not_found(store: Store) -> None:
    with pytest.raises(CommentNotFound):
        store.update_comment("missing", replied)


def test_concurrent_updates_of_one_comment_all_apply(store: Store) -> None:
    """Compare-and-set: 8 threads x 20 increments of a counter kept in the body → 160."""
    comment = store.add_comment(make_comment(body="0"))

    def increment() -> None:
        for _ in range(20):
            store.update_comment(comment.id, lambda latest: dataclasses.replace(
                latest, body=str(int(latest.body) + 1)
            ))

    workers = [threading.Thread(target=increment) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.get_comment(comment.id).body == "160"


@pytest.mark.tinydb_only("the order of the index and thread-file writes")
@pytest.mark.parametrize(
    ("start", "end", "order"),
    [
        (CommentState.AWAITING_REPLY, CommentState.REPLIED, ["thread file", "index"]),
        (CommentState.SPAM, CommentState.AWAITING_REPLY, ["index", "thread file"]),
    ],
)
def test_a_crash_between_the_two_writes_of_an_update_cannot_hide_a_waiting_comment(
    store: TinyDBStore, monkeypatch: pytest.MonkeyPatch,
    start: CommentState, end: CommentState, order: list[str],
) -> None:
    """Leaving the queue writes the thread file first, entering it writes the index first, so
    a crash in between leaves at worst an extra index entry, which readers check and drop."""
    comment = store.add_comment(make_comment(state=start))
    writes: list[str] = []
    original_append, original_write = CommentIndex.append, ThreadFiles.write

    def append(self: CommentIndex, payload: bytes) -> None:
        writes.append("index")
        original_append(self, payload)

    def write(self: ThreadFiles, *args: Any, **kwargs: Any) -> Any:
        writes.append("thread file")
        return original_write(self, *args, **kwargs)

    monkeypatch.setattr(CommentIndex, "append", append)
    monkeypatch.setattr(ThreadFiles, "write", write)
    store.update_comment(comment.id, lambda latest: dataclasses.replace(latest, state=end))
    assert writes == order


# -- the queue and counts ----------------------------------------------------------------------


def test_waiting_comments_filters_orders_and_pages(store: Store) -> None:
    a_why = store.add_comment(make_comment("a", question="why", created=created_at(40)))
    a_how = store.add_comment(make_comment("a", question="how", created=created_at(10)))
    b_why = store.add_comment(make_comment("b", question="why", created=created_at(20)))
    b_none = store.add_comment(make_comment("b", created=created_at(30)))
    store.add_comment(make_comment("a", state=CommentState.REPLIED, created=created_at(5)))
    store.add_comment(make_comment("b", state=CommentState.SPAM, created=created_at(6)))
    store.add_comment(make_comment("b", state=CommentState.POSTED, public=True))

    assert store.waiting_comments() == [a_how, b_why, b_none, a_why]
    assert store.waiting_comments(thread="a") == [a_how, a_why]
    assert store.waiting_comments(question="why") == [b_why, a_why]
    assert store.waiting_comments(thread="b", question="why") == [b_why]
    assert store.waiting_comments(limit=2) == [a_how, b_why]
    assert store.waiting_comments(limit=2, offset=2) == [b_none, a_why]
    assert store.waiting_comments(offset=10) == []
    assert store.waiting_comments(limit=0) == []

    assert store.count_waiting() == 4
    assert store.count_waiting(thread="a") == 2
    assert store.count_waiting(question="why") == 2
    assert store.count_waiting(thread="b", question="why") == 1
    assert store.count_waiting(thread="nobody") == 0


def test_public_counts_answer_every_thread_asked(store: Store) -> None:
    store.add_comment(make_comment("a", state=CommentState.POSTED, public=True))
    store.add_comment(make_comment("a", state=CommentState.REPLIED, public=True))
    store.add_comment(make_comment("a"))
    store.add_comment(make_comment("b", state=CommentState.SPAM))
    assert store.public_counts(["a", "b", "c"]) == {"a": 2, "b": 0, "c": 0}
    assert store.public_counts([]) == {}


def test_count_comments_counts_every_state(store: Store) -> None:
    for state in CommentState:
        store.add_comment(make_comment(state=state))
    assert store.count_comments() == len(CommentState)


def test_thread_version_changes_on_write_and_not_on_read(store: Store, open_test_store) -> None:
    assert store.thread_version("hello") == "empty"
    comment = store.add_comment(make_comment())
    after_add = store.thread_version("hello")
    assert after_add != "empty"
    store.get_comment(comment.id)
    store.thread_comments("hello")
    store.waiting_comments()
    list(store.all_comments())
    assert store.thread_version("hello") == after_add
    assert open_test_store().thread_version("hello") == after_add
    store.update_comment(comment.id, replied)
    assert store.thread_version("hello") != after_add


def test_all_comments_walks_threads_in_name_order_oldest_first(store: Store) -> None:
    b_late = store.add_comment(make_comment("b", created=created_at(50)))
    a_only = store.add_comment(make_comment("a", created=created_at(40)))
    b_early = store.add_comment(make_comment("b", created=created_at(10)))
    c_only = store.add_comment(make_comment("c.fr", created=created_at(5)))
    assert list(store.all_comments()) == [a_only, b_early, b_late, c_only]


# -- listings for the moderation pages ---------------------------------------------------------


def test_comments_in_state_filter_order_and_page(store: Store) -> None:
    spam_b = store.add_comment(make_comment("b", state=CommentState.SPAM, question="why",
                                            created=created_at(30)))
    spam_a = store.add_comment(make_comment("a", state=CommentState.SPAM, created=created_at(10)))
    spam_a_why = store.add_comment(make_comment("a", state=CommentState.SPAM, question="why",
                                                created=created_at(20)))
    replied_a = store.add_comment(make_comment("a", state=CommentState.REPLIED, public=True,
                                               created=created_at(5)))
    waiting = store.add_comment(make_comment("a"))

    assert store.comments_in_state(CommentState.SPAM) == [spam_a, spam_a_why, spam_b]
    assert store.comments_in_state(CommentState.SPAM, thread="a") == [spam_a, spam_a_why]
    assert store.comments_in_state(CommentState.SPAM, question="why") == [spam_a_why, spam_b]
    assert store.comments_in_state(CommentState.SPAM, thread="b", question="why") == [spam_b]
    assert store.comments_in_state(CommentState.SPAM, limit=2, offset=1) == [spam_a_why, spam_b]
    assert store.comments_in_state(CommentState.SPAM, offset=5) == []
    assert store.comments_in_state(CommentState.SPAM, limit=0) == []
    assert store.comments_in_state(CommentState.SPAM, thread="../a") == []
    assert store.comments_in_state(CommentState.REPLIED) == [replied_a]
    assert store.comments_in_state(CommentState.POSTED) == []
    assert store.comments_in_state(CommentState.AWAITING_REPLY) == [waiting]
    assert store.waiting_comments() == [waiting]

    assert store.count_in_state(CommentState.SPAM) == 3
    assert store.count_in_state(CommentState.SPAM, thread="a") == 2
    assert store.count_in_state(CommentState.SPAM, question="why") == 2
    assert store.count_in_state(CommentState.SPAM, thread="b", question="why") == 1
    assert store.count_in_state(CommentState.SPAM, thread="nobody") == 0
    assert store.count_in_state(CommentState.WITHDRAWN) == 0
    assert store.state_counts() == {
        CommentState.AWAITING_REPLY: 1, CommentState.REPLIED: 1, CommentState.SPAM: 3,
        CommentState.WITHDRAWN: 0, CommentState.POSTED: 0,
    }


def test_state_listings_follow_updates_made_through_another_store(
    store: Store, open_test_store
) -> None:
    comment = store.add_comment(make_comment())
    other = open_test_store()
    assert other.state_counts()[CommentState.AWAITING_REPLY] == 1
    spam = store.update_comment(
        comment.id, lambda latest: dataclasses.replace(latest, state=CommentState.SPAM)
    )
    assert other.comments_in_state(CommentState.SPAM) == [spam]
    assert other.comments_in_state(CommentState.AWAITING_REPLY) == []
    assert other.count_in_state(CommentState.SPAM, thread="hello") == 1
    counts = other.state_counts()
    assert counts[CommentState.SPAM] == 1 and counts[CommentState.AWAITING_REPLY] == 0


@pytest.mark.tinydb_only("index.jsonl")
def test_a_stale_state_in_the_index_is_dropped_from_that_state_and_settled(
    store: TinyDBStore, store_path: Path
) -> None:
    """A crash after a spam comment was restored in its file and before its index line."""
    comment = store.add_comment(make_comment(state=CommentState.SPAM))
    restored = store.update_comment(comment.id, replied)
    append_index_line(store_path, {"id": comment.id, "thread": "hello", "created": comment.created,
                                   "state": "spam", "public": False, "question": None})
    assert store.count_in_state(CommentState.SPAM) == 1  # the index alone cannot know
    assert store.comments_in_state(CommentState.SPAM) == []
    assert store.count_in_state(CommentState.SPAM) == 0
    assert store.comments_in_state(CommentState.REPLIED) == [restored]


def test_find_comments_matches_body_or_name_casefolded_newest_first(store: Store) -> None:
    ss = store.add_comment(make_comment("a", name="Straße", body="Nothing",
                                        created=created_at(10)))
    upper = store.add_comment(make_comment("b", body="Queue MAGIC here", created=created_at(20)))
    spam = store.add_comment(make_comment("a", body="the magic queue", state=CommentState.SPAM,
                                          created=created_at(30)))
    named = store.add_comment(make_comment("b", name="Magician", body="hi", public=True,
                                           state=CommentState.REPLIED, created=created_at(40)))
    quoted = store.add_comment(make_comment("c", body='He said "magic" \\ twice\nyes',
                                            created=created_at(50)))

    assert store.find_comments(text="magic") == ([quoted, named, spam, upper], 4)
    assert store.find_comments(text="MAGIC", state=CommentState.SPAM) == ([spam], 1)
    assert store.find_comments(text="magic", thread="b") == ([named, upper], 2)
    assert store.find_comments(text="strasse") == ([ss], 1)  # casefolded: ß is ss
    assert store.find_comments(text="STRASSE", thread="a") == ([ss], 1)
    assert store.find_comments(text='"magic" \\ twice\ny') == ([quoted], 1)  # escaped in JSON
    assert store.find_comments(text="magic", limit=2) == ([quoted, named], 4)
    assert store.find_comments(text="magic", limit=2, offset=2) == ([spam, upper], 4)
    assert store.find_comments(text="magic", offset=10) == ([], 4)
    assert store.find_comments(text="magic", limit=0) == ([], 4)
    assert store.find_comments(text="<p>") == ([], 0)  # in the stored html, not body or name
    assert store.find_comments(text="nowhere") == ([], 0)
    assert store.find_comments(text="magic", thread="../b") == ([], 0)
    assert store.find_comments(text="magic", thread="nobody") == ([], 0)


def test_find_comments_without_text_lists_newest_first(store: Store) -> None:
    first = store.add_comment(make_comment("a", created=created_at(10)))
    second = store.add_comment(make_comment("b", state=CommentState.SPAM, created=created_at(20)))
    third = store.add_comment(make_comment("a", state=CommentState.SPAM, created=created_at(30)))
    fourth = store.add_comment(make_comment("b", state=CommentState.POSTED, public=True,
                                            created=created_at(40)))
    assert store.find_comments() == ([fourth, third, second, first], 4)
    assert store.find_comments(text="") == ([fourth, third, second, first], 4)
    assert store.find_comments(limit=2, offset=1) == ([third, second], 4)
    assert store.find_comments(limit=0) == ([], 4)
    assert store.find_comments(state=CommentState.SPAM) == ([third, second], 2)
    assert store.find_comments(state=CommentState.SPAM, offset=1) == ([second], 2)
    assert store.find_comments(state=CommentState.WITHDRAWN) == ([], 0)
    assert store.find_comments(thread="a") == ([third, first], 2)
    assert store.find_comments(thread="b", state=CommentState.POSTED) == ([fourth], 1)


@pytest.mark.tinydb_only("which thread files are read")
def test_a_store_wide_search_reads_each_thread_once_then_only_what_changed(
    store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_comment(make_comment("plain", body="magic"))
    spam = store.add_comment(make_comment("spammy", body="magic", state=CommentState.SPAM))
    store.add_comment(make_comment("other", body="nothing"))
    read: list[str] = []
    original = ThreadFiles.read

    def reading(self: ThreadFiles, thread: str) -> list[Comment]:
        read.append(thread)
        return original(self, thread)

    monkeypatch.setattr(ThreadFiles, "read", reading)
    assert store.find_comments(text="magic", state=CommentState.SPAM) == ([spam], 1)
    assert sorted(read) == ["other", "plain", "spammy"]  # the process's first search
    read.clear()
    assert store.find_comments(text="MAGIC")[1] == 2
    assert store.find_comments(text="nothing")[1] == 1
    assert read == []  # the texts and the page's comments are kept
    other = open_store(store.path)
    added = other.add_comment(make_comment("other", body="more magic"))
    other.update_comment(spam.id, lambda c: dataclasses.replace(
        c, body="plain words", edited_at="2026-12-07T10:00:00.000000+00:00"))
    found, total = store.find_comments(text="magic")
    assert (found[0], total) == (added, 2)
    assert sorted(read) == ["other", "spammy"]  # only the threads that changed
    assert store.find_comments(text="plain words") == (
        [other.get_comment(spam.id)], 1)


@pytest.mark.tinydb_only("a thread file rewritten by hand")
def test_find_comments_in_a_thread_file_written_with_ascii_escapes(store: TinyDBStore) -> None:
    """A file restored from elsewhere may escape non-ASCII text; the raw search must not skip
    it."""
    comment = store.add_comment(make_comment(body="Grüße aus Köln"))
    path = compacted(store)
    path.write_text(json.dumps(json.loads(path.read_text()), ensure_ascii=True))
    assert store.find_comments(text="KÖLN") == ([comment], 1)
    assert store.find_comments(text="grüsse") == ([comment], 1)


# -- the author's own comments -----------------------------------------------------------------


def author_reply(thread: str = "hello", **overrides: object) -> Comment:
    values: dict[str, object] = {"state": CommentState.POSTED, "public": True, "is_author": True,
                                 "name": "The author"}
    values.update(overrides)
    return make_comment(thread, **values)


def withdrawn(comment: Comment) -> Comment:
    return dataclasses.replace(comment, state=CommentState.WITHDRAWN, public=False)


def test_author_replies_are_the_authors_comments_newest_first(
    store: Store, open_test_store
) -> None:
    first = store.add_comment(author_reply("a", created=created_at(10)))
    store.add_comment(make_comment("a", created=created_at(15)))
    second = store.add_comment(author_reply("b", created=created_at(20)))
    third = store.add_comment(author_reply("a", created=created_at(30)))
    assert store.author_replies() == [third, second, first]
    assert store.author_replies(limit=2) == [third, second]
    assert store.author_replies(limit=0) == []

    store.update_comment(second.id, withdrawn)
    assert store.author_replies() == [third, first]
    assert store.author_replies(limit=2) == [third, first]
    edited = store.update_comment(first.id, lambda latest: dataclasses.replace(
        latest, body="Edited", edited_at=created_at(40)))
    assert store.author_replies() == [third, edited]
    assert open_test_store().author_replies() == [third, edited]


def test_author_replies_see_the_writes_of_another_store_on_the_same_data(
    open_test_store,
) -> None:
    """Two store objects on one store stand for two processes (e.g. gunicorn workers)."""
    mine, theirs = open_test_store(), open_test_store()
    assert mine.author_replies() == []
    first = theirs.add_comment(author_reply())
    assert mine.author_replies() == [first]
    second = theirs.add_comment(author_reply("other"))
    assert mine.author_replies() == [second, first]
    edited = theirs.update_comment(first.id, lambda latest: dataclasses.replace(
        latest, body="Changed my mind"))
    assert mine.author_replies() == [second, edited]
    theirs.update_comment(second.id, withdrawn)
    assert mine.author_replies() == [edited]
    again = theirs.update_comment(second.id, lambda latest: dataclasses.replace(
        latest, state=CommentState.POSTED, public=True))
    assert mine.author_replies() == [again, edited]
    assert mine.author_replies(limit=1) == [again]


@pytest.mark.tinydb_only("which thread files are read")
def test_author_replies_read_a_thread_file_only_when_its_author_comments_changed(
    store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    replies = [store.add_comment(author_reply(f"t{number}")) for number in range(5)]
    assert store.author_replies() == replies[::-1]
    read: list[str] = []
    original = ThreadFiles.read

    def reading(self: ThreadFiles, thread: str) -> list[Comment]:
        read.append(thread)
        return original(self, thread)

    monkeypatch.setattr(ThreadFiles, "read", reading)
    assert store.author_replies() == replies[::-1]
    assert read == []
    other = open_store(store.path)
    other.add_comment(make_comment("t1"))  # a reader comment leaves the author's unchanged
    edited = other.update_comment(replies[3].id, lambda latest: dataclasses.replace(
        latest, body="Edited"))
    assert store.author_replies() == [replies[4], edited, *replies[2::-1]]
    assert read == ["t3"]


@pytest.mark.tinydb_only("index.jsonl")
def test_an_author_edit_whose_index_line_was_lost_is_settled(
    store: TinyDBStore, store_path: Path
) -> None:
    """A crash after an edit of an author comment reached the thread file, before its index
    line: a store that reads the file finds the disagreement and settles it."""
    reply = store.add_comment(author_reply())
    index = store_path / "index.jsonl"
    before = index.read_bytes()
    edited = store.update_comment(reply.id, lambda latest: dataclasses.replace(
        latest, body="Edited"))
    index.write_bytes(before)
    assert open_store(store_path).author_replies() == [edited]
    assert index.read_bytes() != before


@pytest.mark.tinydb_only("index.jsonl")
def test_author_comments_indexed_before_the_author_field_existed_are_found(
    store: TinyDBStore, store_path: Path
) -> None:
    reply = store.add_comment(author_reply(created=created_at(20)))
    reader = store.add_comment(make_comment(created=created_at(10)))
    index = store_path / "index.jsonl"
    old_lines = []
    for line in index_lines(store_path):
        del line["author"]
        old_lines.append(json.dumps(line) + "\n")
    index.write_text("".join(old_lines))
    before = index.read_bytes()

    reopened = open_store(store_path)
    assert reopened.get_comment(reply.id) == reply
    assert reopened.waiting_comments() == [reader]
    assert index.read_bytes() == before  # reading old lines writes nothing
    assert reopened.author_replies() == [reply]  # rebuilds the index once
    assert all("author" in line for line in index_lines(store_path))
    assert reopened.count_comments() == 2 and reopened.waiting_comments() == [reader]



# -- import ------------------------------------------------------------------------------------


def test_import_is_idempotent(store: Store) -> None:
    existing = store.add_comment(make_comment("a"))
    batch = [make_comment("a"), make_comment("b"), make_comment("b"), existing]
    assert store.import_comments(batch + batch[:1]) == 3  # existing and the repeat are skipped
    assert store.import_comments(batch) == 0
    assert store.count_comments() == 4
    assert sorted(comment.id for comment in store.all_comments()) == sorted(
        comment.id for comment in batch
    )


def test_import_skips_ids_stored_in_another_thread(store: Store) -> None:
    comment = store.add_comment(make_comment("a"))
    assert store.import_comments([dataclasses.replace(comment, thread="b")]) == 0
    assert store.thread_comments("b") == []


@pytest.mark.tinydb_only("writes of thread files")
def test_import_writes_each_thread_once(
    store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    original = files.atomic_write

    def counting(path: Path, payload: bytes) -> None:
        writes.append(path.name)
        original(path, payload)

    monkeypatch.setattr(files, "atomic_write", counting)
    assert store.import_comments([make_comment(thread) for thread in "abab" * 5]) == 20
    assert sorted(writes) == ["a.log", "b.log"]  # a new thread's log, written whole


def test_import_restores_the_queue_and_order(store: Store, tmp_path: Path) -> None:
    comments = [make_comment(thread, created=created_at(second))
                for thread, second in [("a", 30), ("b", 10), ("a", 20)]]
    store.import_comments(comments)
    other = open_store(tmp_path / "copy")  # a copy into the embedded store, from either
    assert other.import_comments(store.all_comments()) == 3
    assert other.waiting_comments() == store.waiting_comments()
    assert [comment.created for comment in other.waiting_comments()] == sorted(
        comment.created for comment in comments
    )


# -- failures ----------------------------------------------------------------------------------


def fail_writes(
    monkeypatch: pytest.MonkeyPatch, code: int, only: Callable[[str], bool] = lambda path: True
) -> None:
    """Make the store's data writes fail with ``code`` where ``only(file path)`` holds."""
    original = files.write_all

    def failing(fd: int, payload: bytes) -> None:
        if only(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(code, os.strerror(code))
        original(fd, payload)

    monkeypatch.setattr(files, "write_all", failing)


def snapshot(store: TinyDBStore) -> tuple[object, ...]:
    return (
        list(store.all_comments()), store.count_comments(), store.count_waiting(),
        store.waiting_comments(), store.public_counts(["hello"]), store.thread_version("hello"),
    )


def compacted(store: TinyDBStore, thread: str = "hello") -> Path:
    """Fold the thread's log into its snapshot file (as a write past the threshold would), so
    that the snapshot holds every comment; returns the snapshot's path."""
    threads = store._threads
    with threads.lock(thread):
        threads.compact(thread, threads.state(thread, locked=True))
    return threads.path(thread)


@pytest.mark.tinydb_only("a full disk under the files")
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS])
@pytest.mark.parametrize("where", ["index", "thread file"])
def test_a_full_disk_on_add_leaves_the_store_unchanged_and_readable(
    store: TinyDBStore, monkeypatch: pytest.MonkeyPatch, code: int, where: str
) -> None:
    store.add_comment(make_comment(state=CommentState.POSTED, public=True))
    store.add_comment(make_comment())
    before = snapshot(store)
    if where == "index":
        fail_writes(monkeypatch, code)
    else:  # the index line is written, then the thread file fails: the line must be taken back
        fail_writes(monkeypatch, code, only=lambda path: path.endswith((".tmp", ".log")))
    with pytest.raises(StoreUnavailable, match=os.strerror(code)):
        store.add_comment(make_comment())
    with pytest.raises(StoreUnavailable):
        store.import_comments([make_comment()])
    monkeypatch.undo()
    assert snapshot(store) == before
    assert snapshot(open_store(store.path)) == before
    assert temp_files(store.path) == []
    store.add_comment(make_comment())
    assert store.count_comments() == 3


@pytest.mark.tinydb_only("a full disk under the files")
@pytest.mark.parametrize(
    "change", [replied, lambda comment: dataclasses.replace(comment, body="edited")]
)
def test_a_full_disk_on_update_keeps_the_old_version(
    store: TinyDBStore, monkeypatch: pytest.MonkeyPatch, change: Callable[[Comment], Comment]
) -> None:
    comment = store.add_comment(make_comment())
    before = snapshot(store)
    fail_writes(monkeypatch, errno.ENOSPC)
    with pytest.raises(StoreUnavailable, match="No space left"):
        store.update_comment(comment.id, change)
    monkeypatch.undo()
    assert snapshot(store) == before
    assert temp_files(store.path) == []


@pytest.mark.tinydb_only("a damaged thread file")
def test_a_thread_file_that_cannot_be_parsed_is_reported_with_its_path(
    store: TinyDBStore,
) -> None:
    comment = store.add_comment(make_comment())
    path = compacted(store)
    path.write_bytes(path.read_bytes()[:-7])  # cut short, as by a disk fault
    damaged = path.read_bytes()
    for read in (
        lambda: store.thread_comments("hello"),
        lambda: list(store.all_comments()),
        lambda: store.get_comment(comment.id),
        lambda: store.waiting_comments(),
        lambda: store.add_comment(make_comment()),
        lambda: store.update_comment(comment.id, replied),
    ):
        with pytest.raises(StoreCorrupted) as error:
            read()
        assert str(path) in str(error.value)
        assert "flask --app comments_service import" in str(error.value)
    assert path.read_bytes() == damaged  # never overwritten by a write that could not read it


@pytest.mark.tinydb_only("a damaged thread file")
def test_a_thread_file_holding_a_bad_record_is_reported(store: TinyDBStore) -> None:
    store.add_comment(make_comment())
    path = compacted(store)
    data = json.loads(path.read_text())
    data["comments"]["1"]["state"] = "lost"
    path.write_text(json.dumps(data))
    with pytest.raises(StoreCorrupted, match=r"hello\.json"):
        store.thread_comments("hello")


@pytest.mark.tinydb_only("index.jsonl")
def test_a_damaged_index_is_reported_and_rebuilt_once_moved_aside(
    store: TinyDBStore, store_path: Path
) -> None:
    comments = [store.add_comment(make_comment(thread)) for thread in "abc"]
    store.update_comment(comments[0].id, replied)
    index = store_path / "index.jsonl"
    lines = index.read_bytes().splitlines(keepends=True)
    index.write_bytes(lines[0] + b"{not json}\n" + b"".join(lines[1:]))
    with pytest.raises(StoreCorrupted, match=r"index\.jsonl.*line 2"):
        open_store(store_path)
    index.rename(store_path / "index.jsonl.damaged")
    rebuilt = open_store(store_path)
    assert rebuilt.count_comments() == 3
    assert rebuilt.count_waiting() == 2
    assert rebuilt.public_counts(["a"]) == {"a": 1}
    assert rebuilt.get_comment(comments[2].id) == comments[2]


@pytest.mark.tinydb_only("index.jsonl")
def test_a_partial_last_index_line_is_ignored_then_cut_before_the_next_append(
    store: TinyDBStore, store_path: Path
) -> None:
    store.add_comment(make_comment())
    store.add_comment(make_comment())
    index = store_path / "index.jsonl"
    with index.open("ab") as index_file:  # an append cut short by a crash
        index_file.write(b'{"id":"half-written","thread":"hel')
    reopened = open_store(store_path)
    assert reopened.count_comments() == 2
    reopened.add_comment(make_comment())
    assert index.read_bytes().endswith(b"\n")
    assert [line["id"] for line in index_lines(store_path)][-1] != "half-written"
    assert len(index_lines(store_path)) == 3
    assert open_store(store_path).count_comments() == 3
    assert store.count_comments() == 3  # the first store reads on from where it was


def append_index_line(store_path: Path, record: dict[str, object]) -> None:
    with (store_path / "index.jsonl").open("a") as index_file:
        index_file.write(json.dumps(record) + "\n")


@pytest.mark.tinydb_only("index.jsonl")
def test_an_index_line_without_its_comment_is_skipped_and_settled(
    store: TinyDBStore, store_path: Path
) -> None:
    """A crash after the index line of an add and before its thread file write."""
    kept = store.add_comment(make_comment(created=created_at(20)))
    lost = make_comment(created=created_at(10))
    append_index_line(store_path, {"id": lost.id, "thread": "hello", "created": lost.created,
                                   "state": "awaiting_reply", "public": False, "question": None})
    assert store.count_waiting() == 2  # the index alone cannot know yet
    assert store.get_comment(lost.id) is None
    assert store.waiting_comments() == [kept]
    assert store.count_waiting() == 1 and store.count_comments() == 1
    with pytest.raises(CommentNotFound):
        store.update_comment(lost.id, replied)
    assert store.add_comment(lost) == lost  # the add can be tried again
    assert store.waiting_comments() == [lost, kept]


@pytest.mark.tinydb_only("index.jsonl")
def test_a_page_is_filled_past_many_index_lines_without_comments(
    store: TinyDBStore, store_path: Path
) -> None:
    kept = [store.add_comment(make_comment(created=created_at(30))) for _ in range(3)]
    for number in range(40):  # more than the slack the queue reads beyond a page
        append_index_line(store_path, {
            "id": f"lost-{number}", "thread": "hello", "created": created_at(10),
            "state": "awaiting_reply", "public": False, "question": None,
        })
    assert store.waiting_comments(limit=3) == kept
    assert store.count_waiting() == 3


@pytest.mark.tinydb_only("index.jsonl")
def test_a_stale_index_state_is_skipped_and_settled(store: TinyDBStore, store_path: Path) -> None:
    """A crash after a reply reached the thread file and before its index line."""
    comment = store.add_comment(make_comment())
    other = store.add_comment(make_comment())
    store.update_comment(comment.id, replied)
    append_index_line(store_path, {"id": comment.id, "thread": "hello", "created": comment.created,
                                   "state": "awaiting_reply", "public": False, "question": None})
    assert store.waiting_comments() == [other]
    assert store.count_waiting() == 1
    assert store.public_counts(["hello"]) == {"hello": 1}


@pytest.mark.tinydb_only("index.jsonl")
def test_rebuild_index_derives_it_from_the_thread_files(
    store: TinyDBStore, store_path: Path
) -> None:
    for thread in ["a", "a", "b"]:
        store.add_comment(make_comment(thread))
    append_index_line(store_path, {"id": "orphan", "thread": "b", "created": created_at(1),
                                   "state": "awaiting_reply", "public": False, "question": None})
    assert store.count_comments() == 4
    assert store.rebuild_index() == 3
    assert store.count_comments() == 3
    assert len(index_lines(store_path)) == 3


@pytest.mark.tinydb_only("index.jsonl")
def test_rebuild_index_keeps_the_lines_of_a_thread_being_written(
    store: TinyDBStore, store_path: Path
) -> None:
    store.add_comment(make_comment("a"))
    for thread in ["a", "b"]:
        append_index_line(store_path, {
            "id": f"in-flight-{thread}", "thread": thread, "created": created_at(1),
            "state": "awaiting_reply", "public": False, "question": None,
        })
    # Another writer holds b's lock: its index line may belong to an add not yet committed.
    with files.exclusive_lock(store_path / "locks" / "b.lock"):
        assert store.rebuild_index() == 2
    assert store.get_comment("in-flight-a") is None
    assert {line["id"] for line in index_lines(store_path)} == {
        comment.id for comment in store.all_comments()
    } | {"in-flight-b"}


@pytest.mark.tinydb_only("index.jsonl")
def test_the_index_is_compacted_and_other_views_follow(
    store: TinyDBStore, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tinydb_index_file, "COMPACT_SLACK_LINES", 10)
    watcher = open_store(store_path)
    comments = [store.add_comment(make_comment()) for _ in range(5)]
    for round_number in range(6):
        for comment in comments:
            state = CommentState.REPLIED if round_number % 2 == 0 else CommentState.AWAITING_REPLY
            store.update_comment(
                comment.id, lambda latest, state=state: dataclasses.replace(latest, state=state)
            )
    assert len(index_lines(store_path)) < 2 * 5 + 10 + 1
    assert watcher.count_comments() == 5
    assert watcher.count_waiting() == 5
    assert watcher.waiting_comments() == store.waiting_comments()


@pytest.mark.tinydb_only("index.jsonl")
def test_a_missing_index_is_rebuilt_on_open(store: TinyDBStore, store_path: Path) -> None:
    comments = [store.add_comment(make_comment(thread)) for thread in ["a", "b", "b"]]
    (store_path / "index.jsonl").unlink()
    reopened = open_store(store_path)
    assert reopened.count_comments() == 3
    assert reopened.waiting_comments() == sorted(comments, key=lambda comment: comment.created)


# -- thread files that lost comments the index lists (check_store_files) ----------------------


def lost(store_path: Path, thread: str = "hello") -> list[str]:
    """The problems the check reports for one thread file."""
    return [problem for problem in check_store_files(store_path).problems
            if problem.startswith(f"threads/{thread}.json:")]


@pytest.mark.tinydb_only("a thread file emptied by hand")
def test_a_thread_file_replaced_by_an_empty_one_is_damage(
    store: TinyDBStore, store_path: Path
) -> None:
    """"{}" is a valid TinyDB file without comments: the index tells what it held."""
    comments = [store.add_comment(make_comment()) for _ in range(3)]
    store.add_comment(make_comment("other"))
    compacted(store)
    store.close()
    (store_path / "threads" / "hello.json").write_text("{}")
    first = min(comment.id for comment in comments)
    assert check_store_files(store_path).problems == [
        f"threads/hello.json: lacks 3 comments the index lists in it (e.g. {first})"]
    with pytest.raises(StoreDamaged) as damaged:
        open_store(store_path, check=True)
    assert damaged.value.problems == lost(store_path)


@pytest.mark.tinydb_only("a thread file deleted by hand")
def test_a_deleted_thread_file_is_damage(store: TinyDBStore, store_path: Path) -> None:
    comments = [store.add_comment(make_comment()) for _ in range(2)]
    compacted(store)
    store.close()
    (store_path / "threads" / "hello.json").unlink()
    first = min(comment.id for comment in comments)
    assert check_store_files(store_path).problems == [
        f"threads/hello.json: missing, but the index lists 2 comments in it (e.g. {first})"]
    with pytest.raises(StoreDamaged, match=r"threads/hello\.json: missing"):
        open_store(store_path, check=True)


@pytest.mark.tinydb_only("a thread file deleted by hand")
def test_a_lost_comment_changed_since_its_add_is_damage(
    store: TinyDBStore, store_path: Path
) -> None:
    """One comment is enough when the index recorded a change of it: the store writes that
    line only after reading the comment from its file."""
    comment = store.add_comment(make_comment())
    store.update_comment(comment.id, replied)
    compacted(store)
    store.close()
    (store_path / "threads" / "hello.json").unlink()
    assert lost(store_path) == [
        f"threads/hello.json: missing, but the index lists 1 comment in it (e.g. {comment.id})"]


@pytest.mark.tinydb_only("index.jsonl")
@pytest.mark.parametrize("thread", ["new", "hello"], ids=["first add", "later add"])
def test_an_add_cut_short_before_its_thread_file_is_not_damage(
    store: TinyDBStore, store_path: Path, thread: str
) -> None:
    """An add writes its index line first; a crash before the thread file is written leaves
    one listed comment the file lacks (or no file at all, for a thread's first comment)."""
    kept = store.add_comment(make_comment())
    store.close()
    append_index_line(store_path, {
        "id": "in-flight", "thread": thread, "created": created_at(1),
        "state": "awaiting_reply", "public": False, "question": None,
    })
    assert check_store_files(store_path).problems == []
    reopened = open_store(store_path, check=True)
    assert reopened.get_comment("in-flight") is None
    assert reopened.thread_comments("hello") == [kept]
    assert reopened.thread_comments("new") == []


@pytest.mark.tinydb_only("the index file held open")
def test_close_releases_the_open_index_file_and_the_store_still_works(
    store: TinyDBStore,
) -> None:
    comment = store.add_comment(make_comment())
    open_files = len(os.listdir("/proc/self/fd"))
    store.close()
    assert len(os.listdir("/proc/self/fd")) == open_files - 1
    assert store.get_comment(comment.id) == comment
    store.close()


# -- concurrency within one process ------------------------------------------------------------


def test_threads_adding_at_once_store_every_comment_once(open_test_store) -> None:
    shared_store = open_test_store()
    added: list[list[str]] = [[] for _ in range(8)]

    def add_many(worker: int) -> None:
        # Half the workers share one store object, half open their own, as apps may.
        own = shared_store if worker % 2 else open_test_store()
        for number in range(50):
            thread = "shared" if number % 2 else f"worker-{worker}"
            added[worker].append(own.add_comment(make_comment(thread)).id)

    workers = [threading.Thread(target=add_many, args=(worker,)) for worker in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    expected = {comment_id for ids in added for comment_id in ids}
    assert len(expected) == 400
    fresh = open_test_store()
    stored = [comment.id for comment in fresh.all_comments()]
    assert len(stored) == 400 and set(stored) == expected
    assert fresh.count_comments() == shared_store.count_comments() == 400
    assert len(fresh.thread_comments("shared")) == 200
    assert {comment.id for comment in fresh.waiting_comments(limit=1000)} == expected


# -- a property test against an in-memory model ------------------------------------------------

THREADS = ["alpha", "beta", "gamma.en"]
QUESTIONS = [None, "why", "how"]
# Texts to look for: fixed ones that match the bodies and names make_comment gives, and random
# ones (which may hold characters JSON escapes, or change length when casefolded).
SEARCHES = st.one_of(st.sampled_from(["", "comment 1", "READER", "author", "ss"]),
                     st.text(max_size=3))


def newest_first(comments: list[Comment]) -> list[Comment]:
    return sorted(comments, key=lambda comment: (comment.created, comment.id), reverse=True)


class StoreAgainstModel(RuleBasedStateMachine):
    """Random operations on a real store and on a dict of comments must give the same answers.
    Each run starts from an empty store of ``backend`` (set by the test below)."""

    comment_ids = Bundle("comment_ids")
    backend = "tinydb"

    def __init__(self) -> None:
        super().__init__()
        self.cleanup = ExitStack()
        self.folder = Path(tempfile.mkdtemp(prefix="tellmemore-store-model-"))
        self.cleanup.callback(shutil.rmtree, self.folder, ignore_errors=True)
        store_url = (self.cleanup.enter_context(fresh_postgres_schema())
                     if self.backend == "postgresql" else "")
        self.config = {"STORE_PATH": str(self.folder), "STORE_URL": store_url}
        self.store = open_configured_store(self.config)
        # Another store object on the same data, standing for another process: it only
        # reads, so its view and its cache of author comments must follow the writes.
        self.other = open_configured_store(self.config)
        self.model: dict[str, Comment] = {}

    def teardown(self) -> None:
        self.store.close()
        self.other.close()
        self.cleanup.close()

    def reader(self, other: bool) -> Store:
        return self.other if other else self.store

    @initialize()
    def start_empty(self) -> None:
        assert self.store.count_comments() == 0

    @rule(
        target=comment_ids,
        thread=st.sampled_from(THREADS),
        question=st.sampled_from(QUESTIONS),
        state=st.sampled_from(list(CommentState)),
        public=st.booleans(),
        second=st.integers(0, 59),
        author=st.booleans(),
    )
    def add(
        self, thread: str, question: str | None, state: CommentState, public: bool, second: int,
        author: bool,
    ) -> str:
        comment = make_comment(thread, question=question, state=state, public=public,
                               created=created_at(second), is_author=author,
                               name="The author" if author else "Reader")
        assert self.store.add_comment(comment) == comment
        self.model[comment.id] = comment
        return comment.id

    @rule(comment_id=comment_ids)
    def add_again(self, comment_id: str) -> None:
        try:
            self.store.add_comment(self.model[comment_id])
        except DuplicateComment:
            return
        raise AssertionError("a stored id was added twice")

    @rule(comment_id=comment_ids, state=st.sampled_from(list(CommentState)), public=st.booleans())
    def set_state(self, comment_id: str, state: CommentState, public: bool) -> None:
        updated = self.store.update_comment(
            comment_id, lambda latest: dataclasses.replace(latest, state=state, public=public)
        )
        self.model[comment_id] = dataclasses.replace(self.model[comment_id], state=state,
                                                     public=public)
        assert updated == self.model[comment_id]

    @rule(comment_id=comment_ids, body=st.text(max_size=30))
    def edit_body(self, comment_id: str, body: str) -> None:
        self.store.update_comment(comment_id, lambda latest: dataclasses.replace(latest, body=body))
        self.model[comment_id] = dataclasses.replace(self.model[comment_id], body=body)

    @rule(comment_id=comment_ids)
    def get(self, comment_id: str) -> None:
        assert self.store.get_comment(comment_id) == self.model[comment_id]

    @rule()
    def update_missing(self) -> None:
        try:
            self.store.update_comment("never-stored", replied)
        except CommentNotFound:
            return
        raise AssertionError("updated a comment that does not exist")

    @rule(
        thread=st.sampled_from([None, *THREADS]),
        question=st.sampled_from([None, *QUESTIONS[1:]]),
        limit=st.integers(1, 8),
        offset=st.integers(0, 4),
    )
    def waiting(self, thread: str | None, question: str | None, limit: int, offset: int) -> None:
        expected = sorted(
            (comment for comment in self.model.values()
             if comment.in_queue and thread in (None, comment.thread)
             and question in (None, comment.question)),
            key=lambda comment: (comment.created, comment.id),
        )
        got = self.store.waiting_comments(thread=thread, question=question, limit=limit,
                                          offset=offset)
        assert got == expected[offset:offset + limit]
        assert self.store.count_waiting(thread=thread, question=question) == len(expected)

    @rule(
        state=st.sampled_from(list(CommentState)),
        thread=st.sampled_from([None, *THREADS]),
        question=st.sampled_from([None, *QUESTIONS[1:]]),
        limit=st.integers(1, 8),
        offset=st.integers(0, 4),
        other=st.booleans(),
    )
    def in_state(
        self, state: CommentState, thread: str | None, question: str | None, limit: int,
        offset: int, other: bool,
    ) -> None:
        store = self.reader(other)
        expected = sorted(
            (comment for comment in self.model.values()
             if comment.state is state and thread in (None, comment.thread)
             and question in (None, comment.question)),
            key=lambda comment: (comment.created, comment.id),
        )
        got = store.comments_in_state(state, thread=thread, question=question, limit=limit,
                                      offset=offset)
        assert got == expected[offset:offset + limit]
        assert store.count_in_state(state, thread=thread, question=question) == len(expected)

    @rule(other=st.booleans())
    def state_counts(self, other: bool) -> None:
        assert self.reader(other).state_counts() == {
            state: sum(comment.state is state for comment in self.model.values())
            for state in CommentState
        }

    @rule(
        text=SEARCHES,
        state=st.sampled_from([None, *CommentState]),
        thread=st.sampled_from([None, *THREADS]),
        limit=st.integers(1, 8),
        offset=st.integers(0, 4),
        other=st.booleans(),
    )
    def find(
        self, text: str, state: CommentState | None, thread: str | None, limit: int,
        offset: int, other: bool,
    ) -> None:
        needle = text.casefold()
        expected = newest_first([
            comment for comment in self.model.values()
            if state in (None, comment.state) and thread in (None, comment.thread)
            and (needle in comment.body.casefold() or needle in comment.name.casefold())
        ])
        got = self.reader(other).find_comments(text=text, state=state, thread=thread,
                                               limit=limit, offset=offset)
        assert got == (expected[offset:offset + limit], len(expected))

    @rule(limit=st.sampled_from([None, 1, 3]), other=st.booleans())
    def author_replies(self, limit: int | None, other: bool) -> None:
        expected = newest_first([
            comment for comment in self.model.values()
            if comment.is_author and comment.state is not CommentState.WITHDRAWN
        ])
        assert self.reader(other).author_replies(limit=limit) == expected[:limit]

    @rule()
    def counts(self) -> None:
        assert self.store.count_comments() == len(self.model)
        assert self.store.public_counts([*THREADS, "none"]) == {
            thread: sum(comment.public and comment.thread == thread
                        for comment in self.model.values())
            for thread in [*THREADS, "none"]
        }

    @rule(thread=st.sampled_from(THREADS))
    def read_thread(self, thread: str) -> None:
        expected = sorted((comment for comment in self.model.values() if comment.thread == thread),
                          key=lambda comment: comment.created)
        assert self.store.thread_comments(thread) == expected

    @rule()
    def export_and_import_again(self) -> None:
        exported = list(self.store.all_comments())
        assert sorted(exported, key=lambda comment: comment.id) == sorted(
            self.model.values(), key=lambda comment: comment.id
        )
        assert self.store.import_comments(exported) == 0

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = open_configured_store(self.config)

    @rule()
    def reopen_other(self) -> None:
        self.other.close()
        self.other = open_configured_store(self.config)


def test_store_against_model(store_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StoreAgainstModel, "backend", store_backend)
    run_state_machine_as_test(StoreAgainstModel, settings=settings(
        max_examples=60, stateful_step_count=30, deadline=None, database=None))


def test_grouped_comments_are_exactly_those_with_a_request(store: Store) -> None:
    asking = store.add_comment(make_comment(request="1-0"))
    moved_on = store.add_comment(make_comment(thread="second", request="1-3"))
    store.add_comment(make_comment())
    store.set_comment_requests({moved_on.id: None})
    assert [comment.id for comment in store.grouped_comments()] == [asking.id]
    assert list(store.grouped_comments()) == [store.get_comment(asking.id)]


@pytest.mark.tinydb_only("index.jsonl")
def test_adds_cut_short_by_several_crashes_in_one_thread_are_not_damage(
    store: TinyDBStore, store_path: Path
) -> None:
    """Workers killed one after another during posts to one thread each leave an add that never
    happened; the next workers must still start (FAULTS.md)."""
    kept = store.add_comment(make_comment())
    store.close()
    for number in (1, 2, 3):
        append_index_line(store_path, {
            "id": f"in-flight-{number}", "thread": "hello", "created": created_at(number),
            "state": "awaiting_reply", "public": False, "question": None,
        })
    assert check_store_files(store_path).problems == []
    reopened = open_store(store_path, check=True)
    assert reopened.thread_comments("hello") == [kept]

