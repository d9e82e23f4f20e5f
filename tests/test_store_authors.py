"""The authors kept by the store (both backends): uniqueness of emails, compare-and-set updates;
and the TinyDB store's authors.json and its lock."""

from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import os
import threading
from pathlib import Path

import pytest

from comments_service.models import Author, Comment, CommentState
from comments_service.store import (
    AuthorNotFound,
    DuplicateAuthor,
    Store,
    StoreCorrupted,
    StoreUnavailable,
    TinyDBStore,
    files,
)

pytestmark = pytest.mark.both_stores

_numbers = itertools.count(1)


def make_author(email: str | None = None, **overrides: object) -> Author:
    """An author with a unique id and email, created later than the last one made."""
    number = next(_numbers)
    values: dict[str, object] = {
        "id": f"a{number:04d}",
        "name": f"Author {number}",
        "email": email or f"author{number}@example.org",
        "password_hash": "scrypt:32768:8:1$salt$hash",
        "created": f"2026-01-01T00:00:00.{number:06d}+00:00",
    }
    values.update(overrides)
    return Author(**values)  # type: ignore[arg-type]


def authors_file(store: TinyDBStore) -> Path:
    return store.path / "authors.json"


def written_authors(store: Store) -> object:
    """What a refused write must leave unchanged: the TinyDB store's authors.json, byte for
    byte, or the authors as read."""
    if isinstance(store, TinyDBStore):
        return authors_file(store).read_bytes()
    return store.list_authors()


# -- adding and reading ------------------------------------------------------------------------


def test_add_then_read_by_id_and_by_email(store: Store, open_test_store) -> None:
    author = make_author("Ada@Example.org")
    assert store.add_author(author) == author
    assert store.get_author(author.id) == author
    assert store.author_by_email("Ada@Example.org") == author
    assert store.author_by_email("ada@example.ORG") == author
    assert store.get_author("nobody") is None
    assert store.author_by_email("nobody@example.org") is None
    assert open_test_store().get_author(author.id) == author


def test_reading_a_store_without_authors_creates_nothing(store: Store) -> None:
    assert store.list_authors() == []
    assert store.get_author("a1") is None
    assert store.author_by_email("a@example.org") is None
    if isinstance(store, TinyDBStore):
        assert not authors_file(store).exists()


def test_list_authors_is_oldest_first(store: Store) -> None:
    late = store.add_author(make_author(created="2026-03-01T00:00:00.000000+00:00"))
    early = store.add_author(make_author(created="2026-01-01T00:00:00.000000+00:00"))
    tied = store.add_author(make_author(created="2026-03-01T00:00:00.000000+00:00"))
    assert store.list_authors() == [early, late, tied]  # ties: in the order added


@pytest.mark.parametrize("taken", ["ada@example.org", "ADA@EXAMPLE.ORG", "Ada@example.org"])
def test_an_email_taken_in_any_case_is_refused(store: Store, taken: str) -> None:
    first = store.add_author(make_author("Ada@Example.org"))
    before = written_authors(store)
    with pytest.raises(DuplicateAuthor):
        store.add_author(make_author(taken))
    assert written_authors(store) == before
    assert store.list_authors() == [first]


def test_emails_are_compared_casefolded_not_only_lowercased(store: Store) -> None:
    author = store.add_author(make_author("STRASSE@example.org"))
    assert store.author_by_email("straße@example.org") == author
    with pytest.raises(DuplicateAuthor):
        store.add_author(make_author("Straße@example.org"))


def test_a_taken_id_is_refused(store: Store) -> None:
    author = store.add_author(make_author())
    with pytest.raises(DuplicateAuthor, match="id"):
        store.add_author(make_author(id=author.id))
    assert store.list_authors() == [author]


@pytest.mark.tinydb_only("authors.json beside the thread files")
def test_authors_live_apart_from_comments(store: TinyDBStore) -> None:
    """Authors are in authors.json under their own lock; never in the comments' export."""
    comment = store.add_comment(Comment(
        id="c1", thread="hello", name="Reader", body="Hi", html="<p>Hi</p>",
        created="2026-01-01T00:00:00.000000+00:00", state=CommentState.AWAITING_REPLY,
        public=False,
    ))
    store.add_author(make_author())
    assert list(store.all_comments()) == [comment]
    assert store.count_comments() == 1
    # A new thread has only its log (a snapshot is written when the log is first compacted).
    assert sorted(path.name for path in (store.path / "threads").iterdir()) == ["hello.log"]
    assert (store.path / "locks" / "_authors.lock").exists()
    assert list(json.loads(authors_file(store).read_text())) == ["authors"]
    assert store.rebuild_index() == 1


# -- updating ----------------------------------------------------------------------------------


def test_update_stores_the_change(store: Store, open_test_store) -> None:
    author = store.add_author(make_author())
    other = store.add_author(make_author())
    updated = store.update_author(author.id, lambda latest: dataclasses.replace(
        latest, name="Ada", email="Ada@New.example", password_hash="new"))
    assert store.get_author(author.id) == updated
    assert store.author_by_email("ada@new.example") == updated
    assert store.author_by_email(author.email) is None
    assert store.list_authors() == [updated, other]
    assert open_test_store().get_author(author.id) == updated


def test_update_may_change_the_case_of_its_own_email(store: Store) -> None:
    author = store.add_author(make_author("ada@example.org"))
    updated = store.update_author(author.id, lambda latest: dataclasses.replace(
        latest, email="Ada@Example.org"))
    assert store.author_by_email("ADA@example.org") == updated


def test_update_to_an_email_another_author_has_is_refused(store: Store) -> None:
    store.add_author(make_author("ada@example.org"))
    author = store.add_author(make_author("grace@example.org"))
    with pytest.raises(DuplicateAuthor):
        store.update_author(author.id, lambda latest: dataclasses.replace(
            latest, email="ADA@example.org"))
    assert store.get_author(author.id) == author


def test_update_cannot_change_the_id(store: Store) -> None:
    author = store.add_author(make_author())
    with pytest.raises(ValueError, match="id"):
        store.update_author(author.id, lambda latest: dataclasses.replace(latest, id="other"))
    assert store.list_authors() == [author]


def test_a_change_that_raises_aborts_with_nothing_written(store: Store) -> None:
    author = store.add_author(make_author())
    before = written_authors(store)

    def refuse(latest: Author) -> Author:
        raise RuntimeError("wrong password")

    with pytest.raises(RuntimeError, match="wrong password"):
        store.update_author(author.id, refuse)
    assert written_authors(store) == before


def test_update_of_a_missing_author_raises_author_not_found(store: Store) -> None:
    with pytest.raises(AuthorNotFound):
        store.update_author("nobody", lambda latest: latest)
    store.add_author(make_author())
    with pytest.raises(AuthorNotFound):
        store.update_author("nobody", lambda latest: latest)


def test_concurrent_updates_all_apply(store: Store, open_test_store) -> None:
    """Compare-and-set: 6 threads x 10 increments of a counter kept in the name → 60."""
    author = store.add_author(make_author(name="0"))

    def increment(own: Store) -> None:
        for _ in range(10):
            own.update_author(author.id, lambda latest: dataclasses.replace(
                latest, name=str(int(latest.name) + 1)))

    workers = [threading.Thread(target=increment, args=(store if number % 2 else
                                                         open_test_store(),))
               for number in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.get_author(author.id).name == "60"


# -- concurrency -------------------------------------------------------------------------------


def test_of_many_adds_with_one_email_exactly_one_succeeds(store: Store, open_test_store) -> None:
    """Threads, half with their own store object (as separate processes would have), add
    authors whose emails differ only in case, all at the same moment."""
    count = 8
    start = threading.Barrier(count)
    outcomes: list[str] = []
    outcomes_lock = threading.Lock()

    def add(number: int) -> None:
        own = store if number % 2 else open_test_store()
        email = "Ada@Example.org".upper() if number % 3 else "ada@example.org"
        author = make_author(email)
        start.wait()
        try:
            own.add_author(author)
            outcome = "added"
        except DuplicateAuthor:
            outcome = "refused"
        with outcomes_lock:
            outcomes.append(outcome)

    workers = [threading.Thread(target=add, args=(number,)) for number in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(outcomes) == ["added"] + ["refused"] * (count - 1)
    assert len(store.list_authors()) == 1


def test_threads_adding_different_authors_store_every_one(store: Store, open_test_store) -> None:
    authors = [make_author() for _ in range(24)]

    def add(batch: list[Author]) -> None:
        own = open_test_store()
        for author in batch:
            own.add_author(author)

    workers = [threading.Thread(target=add, args=(authors[number::4],)) for number in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(store.list_authors(), key=lambda author: author.id) == authors


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.tinydb_only("a full disk under the files")
def test_a_full_disk_on_add_leaves_the_authors_unchanged(
    store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = store.add_author(make_author())
    before = authors_file(store).read_bytes()

    def failing(fd: int, payload: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "write_all", failing)
    with pytest.raises(StoreUnavailable, match="No space left"):
        store.add_author(make_author())
    with pytest.raises(StoreUnavailable):
        store.update_author(first.id, lambda latest: dataclasses.replace(latest, name="New"))
    monkeypatch.undo()
    assert authors_file(store).read_bytes() == before
    assert [path for path in store.path.iterdir() if path.name.endswith(".tmp")] == []
    assert store.list_authors() == [first]


@pytest.mark.tinydb_only("a damaged authors.json")
@pytest.mark.parametrize(
    "damage",
    [b'{"authors": {"1": {"id": "a1"', b'{"authors": []}',
     b'{"authors": {"1": {"id": "a1", "name": "A"}}}'],
)
def test_an_authors_file_that_cannot_be_read_is_reported_with_its_path(
    store: TinyDBStore, damage: bytes
) -> None:
    store.add_author(make_author())
    authors_file(store).write_bytes(damage)
    for read in (
        store.list_authors,
        lambda: store.get_author("a1"),
        lambda: store.author_by_email("a@example.org"),
        lambda: store.add_author(make_author()),
        lambda: store.update_author("a1", lambda latest: latest),
    ):
        with pytest.raises(StoreCorrupted, match=r"authors\.json"):
            read()
    assert authors_file(store).read_bytes() == damage  # never overwritten
