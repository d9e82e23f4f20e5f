"""The moderation text search's index on both stores (issue 19): the TinyDB store's trigram
lists (store/tinydb/search_texts.py) and PostgreSQL's trigram indexes (migration 0008) must
answer exactly as a plain casefolded substring test of every comment's body and name would,
through every kind of write, and a counted-up-to search must stop early but say so."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from comments_service.models import Comment, CommentState
from comments_service.store import Store, TinyDBStore, open_store
from comments_service.store.postgres.comments import like_escaped
from comments_service.store.tinydb import search_texts
from tests.test_store import created_at, make_comment

pytestmark = pytest.mark.both_stores

NEEDLES = ("magic", "MAGIC", "ma", "m", "gic q", "strasse", "STRAS", "ss", "ß", "é", "100%",
           "%", "_", "a_b", "a\\b", "\\", "x", "zzz", "reader", "ünïcödé", "İ", "i̇", "\ufb01")


def expected(store: Store, needle: str, state: CommentState | None = None) -> list[str]:
    """The ids a plain scan finds, newest first: what the index must agree with."""
    folded = needle.casefold()
    found = [comment for comment in store.all_comments()
             if (state is None or comment.state is state)
             and (folded in comment.body.casefold() or folded in comment.name.casefold())]
    found.sort(key=lambda comment: (comment.created, comment.id), reverse=True)
    return [comment.id for comment in found]


def assert_agrees(store: Store) -> None:
    for needle in NEEDLES:
        for state in (None, CommentState.SPAM, CommentState.AWAITING_REPLY):
            wanted = expected(store, needle, state)
            page, total = store.find_comments(text=needle, state=state, limit=1000)
            assert ([comment.id for comment in page], total) == (wanted, len(wanted)), needle


def seeded(store: Store) -> list[Comment]:
    bodies = ["Pure magic queue", "100% sure", "a_b and a\\b", "Straße and strasse",
              "ünïcödé text", "Ünïcödé TEXT İstanbul", "ﬁne print", "nothing here", "100x",
              "aXb", "é"]
    return [store.add_comment(make_comment(
        f"t{number % 3}", body=body, name=f"Reader {number}", created=created_at(number),
        state=CommentState.SPAM if number % 4 == 0 else CommentState.AWAITING_REPLY))
        for number, body in enumerate(bodies)]


def test_the_search_follows_every_write(store: Store) -> None:
    comments = seeded(store)
    assert_agrees(store)
    store.add_comment(make_comment("t9", body="more MAGIC", name="Mage", created=created_at(50)))
    assert_agrees(store)
    store.update_comment(comments[0].id, lambda c: dataclasses.replace(
        c, body="edited away", edited_at="2026-12-07T10:00:00.000000+00:00"))
    assert_agrees(store)
    store.update_comment(comments[1].id, lambda c: dataclasses.replace(
        c, state=CommentState.SPAM))
    store.update_comment(comments[4].id, lambda c: dataclasses.replace(
        c, state=CommentState.WITHDRAWN))
    store.update_comment(comments[5].id, lambda c: dataclasses.replace(
        c, state=CommentState.REPLIED, public=True))
    assert_agrees(store)
    store.update_comment(comments[2].id, lambda c: dataclasses.replace(
        c, name="magic name", edited_at="2026-12-07T11:00:00.000000+00:00"))
    assert_agrees(store)
    # "%" is not a wildcard, nor is "_"
    assert store.find_comments(text="100%") == ([store.get_comment(comments[1].id)], 1)
    assert store.find_comments(text="a_b")[1] == 1


def test_pattern_characters_are_escaped_for_like() -> None:
    assert like_escaped("100%_a\\b") == "100\\%\\_a\\\\b"


def test_a_counted_search_stops_and_says_there_are_more(store: Store) -> None:
    made = [store.add_comment(make_comment(
        "t", body=f"podcast {number}" if number % 3 else "something else",
        created=created_at(number))) for number in range(40)]
    matching = [comment for comment in reversed(made) if "podcast" in comment.body]
    assert len(matching) == 26
    assert store.find_comments(text="podcast", limit=5) == (matching[:5], 26)
    assert store.find_comments(text="podcast", limit=5, count_up_to=10) == (matching[:5], 11)
    assert store.find_comments(text="podcast", limit=5, offset=20, count_up_to=10) == (
        matching[20:25], 11)
    assert store.find_comments(text="podcast", limit=5, count_up_to=26) == (matching[:5], 26)
    assert store.find_comments(text="podcast", limit=0, count_up_to=3) == ([], 4)
    assert store.find_comments(text="po", limit=2, count_up_to=3) == (matching[:2], 4)
    assert store.find_comments(text="nowhere", count_up_to=3) == ([], 0)
    assert store.find_comments(text="podcast", limit=1, count_up_to=-5) == (matching[:1], 1)
    assert store.find_comments(text="podcast", thread="t", limit=2, count_up_to=3) == (
        matching[:2], 4)
    assert store.find_comments(count_up_to=3)[1] == 40  # without text: the exact count


@pytest.mark.tinydb_only("the trigram lists and their limits")
def test_common_and_rare_needles_past_the_limits_agree_with_a_scan(
    store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With tiny limits every path is taken: the list checked whole, the walk newest first,
    the walk given up for the list or for a scan, and the lists built again."""
    monkeypatch.setattr(search_texts, "SHORT_LIST", 2)
    monkeypatch.setattr(search_texts, "WALK_LIMIT", 3)
    monkeypatch.setattr(search_texts, "DEAD_ALLOWED", 2)
    comments = seeded(store)
    for number, comment in enumerate(comments):
        store.update_comment(comment.id, lambda c, n=number: dataclasses.replace(
            c, body=f"{c.body} magic{n}", edited_at="2026-12-07T10:00:00.000000+00:00"))
    for count_up_to in (None, 0, 1, 2, 5, 100):
        for needle in NEEDLES:
            wanted = expected(store, needle)
            page, total = store.find_comments(text=needle, limit=2, count_up_to=count_up_to)
            assert [comment.id for comment in page] == wanted[:2], needle
            assert total == (len(wanted) if count_up_to is None
                             else min(len(wanted), count_up_to + 1)), needle
    assert store.rebuild_index()
    assert_agrees(store)  # a new generation of the index: the texts are read afresh


@pytest.mark.tinydb_only("another process writing the same store")
def test_the_search_follows_another_process(store: TinyDBStore) -> None:
    seeded(store)
    assert store.find_comments(text="magic")[1] == 1
    script = (
        "import dataclasses, sys\n"
        "from pathlib import Path\n"
        "from comments_service.models import Comment, CommentState\n"
        "from comments_service.store import open_store\n"
        "store = open_store(Path(sys.argv[1]))\n"
        "store.add_comment(Comment(id='other', thread='t1', name='Far', body='Remote MAGIC',"
        " html='<p/>', created='2026-02-01T00:00:00.000000+00:00',"
        " state=CommentState.AWAITING_REPLY, public=False))\n"
        "first = next(c for c in store.all_comments() if c.body == 'Pure magic queue')\n"
        "store.update_comment(first.id, lambda c: dataclasses.replace(c, body='gone'))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(store.path)], check=True,
                   cwd=Path(__file__).parent.parent, timeout=60)
    page, total = store.find_comments(text="magic")
    assert ([comment.id for comment in page], total) == (["other"], 1)
    assert_agrees(store)
    assert_agrees(open_store(store.path))  # and a process searching for the first time


def test_migration_8_indexes_the_folded_text(store: Store, store_backend: str) -> None:
    """`init` made the trigram indexes, and a rare word's search uses them."""
    if store_backend != "postgresql":
        pytest.skip("PostgreSQL only: its migrations")
    connections = store._comments._connections  # type: ignore[attr-defined]
    with connections.transaction() as cursor:
        names = {row[0] for row in cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
        assert {"comments_body_search", "comments_name_search"} <= names
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in cursor.execute(
            "EXPLAIN SELECT id FROM comments WHERE body_folded LIKE '%zanzibar%'"))
    assert "comments_body_search" in plan


def test_the_search_page_says_when_it_stopped_counting(author_client, app) -> None:
    from comments_service.moderation import queue

    store = app.extensions["tellmemore.store"]
    store.import_comments(make_comment(
        "hello", body=f"podcast number {number}", created=created_at(number))
        for number in range(30))
    page = author_client.get("/moderate/all?q=podcast").get_data(as_text=True)
    assert ">30</span>" in page and "only that many are counted" not in page
    assert f'maxlength="{queue.MAX_SEARCH}"' in page  # the browser keeps within the limit
    queue_counted = queue.SEARCH_COUNTED
    try:
        queue.SEARCH_COUNTED = 10
        page = author_client.get("/moderate/all?q=podcast").get_data(as_text=True)
        assert ">25+</span>" in page  # the first page itself counts as far as it shows
        assert "More than 25 comments match; only that many are counted" in page
        assert "Page 1 of 2 or more" in page
        page = author_client.get("/moderate/all?q=podcast&page=2").get_data(as_text=True)
        assert ">30</span>" in page and "Page 2 of 2<" in page
    finally:
        queue.SEARCH_COUNTED = queue_counted


def test_bad_search_input_is_refused(author_client) -> None:
    assert author_client.get("/moderate/all?q=" + "x" * 2000).status_code == 400
    assert author_client.get("/moderate/all?q=a&page=x").status_code == 400
    assert author_client.get("/moderate/all?q=a&state=lost").status_code == 400
    assert author_client.get("/moderate/all?q=%00%25_").status_code == 200

