"""The stores' summaries of the requests (request_summaries, learned_filings; issue 19) agree
with the same summaries worked out from every filing, through every kind of change, on both
backends: the embedded store's running summary in its index (also as another instance of the
store sees it, and after a bulk load), PostgreSQL's counts kept by a trigger (also when
migration 0007 fills them from comments already stored)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from comments_service.models import Comment, CommentState
from comments_service.store.request_summaries import (
    learned_window,
    summaries_of,
)

pytestmark = pytest.mark.both_stores

START = datetime(2026, 2, 1, tzinfo=UTC)
REQUESTS = ("1-1", "1-2", "1-3", "0-7", "-")
STATES = (CommentState.AWAITING_REPLY, CommentState.REPLIED, CommentState.SPAM,
          CommentState.WITHDRAWN)
SHAPES = ({}, {"newest": 2, "firsts": 2, "places": 1}, {"newest": 0, "firsts": 1, "places": 0},
          {"newest": 50, "firsts": 5, "places": 9})


def made(chance: random.Random, number: int) -> Comment:
    """A reader's comment somewhere in the requests (or in none), at a time that often ties."""
    request = chance.choice((*REQUESTS, None))
    return Comment(
        id=f"c{number:04d}", thread=f"t{chance.randrange(4)}", name="Rosa",
        body=f"Please write about {number}", html=f"<p>{number}</p>",
        created=(START + timedelta(hours=chance.randrange(40))).isoformat(
            timespec="microseconds"),
        state=chance.choice(STATES), public=True, question=chance.choice((None, "why", "how")),
        reader_key=chance.choice((None, "k1", "k2", "k3", "k4", "k5")),
        request=request, request_filed=request is not None and chance.random() < 0.7)


def assert_agree(store, merged: dict[str, str] | None = None) -> None:
    filings = store.request_filings()
    for shape in SHAPES:
        assert store.request_summaries(merged, **shape) == summaries_of(
            filings, merged or {}, **shape), shape
    for newest, step in ((1, 1), (3, 2), (5, 4), (100, 7)):
        assert store.learned_filings(newest, step) == learned_window(filings, newest, step)


def test_summaries_follow_every_change(store, open_test_store) -> None:
    chance = random.Random(7)  # noqa: S311 - test data, not a secret
    comments = [store.add_comment(made(chance, number)) for number in range(60)]
    assert_agree(store)
    other = open_test_store()  # another instance: on TinyDB, it tails the index
    for round_number in range(6):
        for comment in chance.sample(comments, 12):
            twin = made(chance, 0)
            store.update_comment(comment.id, lambda c, twin=twin: replace(
                c, request=twin.request, request_filed=twin.request_filed, state=twin.state))
        store.set_comment_requests({comment.id: chance.choice((*REQUESTS, None))
                                    for comment in chance.sample(comments, 5)})
        merged = {"1-2": "1-1"} if round_number % 2 else {"1-3": "0-7", "1-2": "0-7"}
        assert_agree(store, merged)
        assert_agree(other, merged)


def test_a_summary_counts_people_places_and_firsts(store) -> None:
    def add(number: int, reader: str | None, thread: str, *, request: str = "1-1",
            state: CommentState = CommentState.REPLIED) -> None:
        store.add_comment(Comment(
            id=f"c{number}", thread=thread, name="R", body="b", html="<p>b</p>",
            created=(START + timedelta(days=number)).isoformat(timespec="microseconds"),
            state=state, public=True, reader_key=reader, request=request, request_filed=True))

    add(1, "ann", "a")
    add(2, "ann", "b")
    add(3, None, "b")
    add(4, None, "b")  # two comments without a key: two people
    add(5, "bob", "c")
    add(6, "cy", "c", state=CommentState.SPAM)  # not counted
    add(7, "dee", "d", request="-")  # filed as not a request: learned from, not counted
    summary = store.request_summaries(newest=2, firsts=3, places=2)["1-1"]
    assert (summary.people, summary.filed, summary.place_count) == (4, 5, 3)
    assert [f.id for f in summary.newest] == ["c4", "c5"]
    assert [f.id for f in summary.firsts] == ["c1", "c3", "c4"]
    assert summary.places == ((("b", None), 3), (("a", None), 1))
    assert [f.id for f in store.learned_filings(3)] == ["c4", "c5", "c7"]
    assert "-" not in store.request_summaries()


@pytest.mark.tinydb_only("the embedded store's index read in bulk")
def test_a_bulk_load_sums_up_as_writes_one_by_one_do(store, open_test_store) -> None:
    chance = random.Random(3)  # noqa: S311 - test data, not a secret
    store.import_comments([made(chance, number) for number in range(1500)])
    again = open_test_store()  # reads the whole index at once: the bulk path
    assert_agree(again)
    assert again.request_summaries() == store.request_summaries()


def test_migration_7_fills_the_counts_from_stored_comments(store_backend: str) -> None:
    if store_backend != "postgresql":
        pytest.skip("PostgreSQL only: its migrations")
    import psycopg

    from comments_service.store.postgres import open_postgres_store
    from comments_service.store.postgres.rows import INSERT_COMMENT, comment_row
    from comments_service.store.postgres.schema import migrate
    from tests.conftest import fresh_postgres_schema
    from tests.test_store_postgres import at_schema_version

    chance = random.Random(5)  # noqa: S311 - test data, not a secret
    comments = [made(chance, number) for number in range(200)]
    with fresh_postgres_schema(migrated=False) as url:
        with psycopg.connect(url, autocommit=True) as connection:
            at_schema_version(connection, 6)
            for comment in comments:  # as the store wrote them at version 6
                connection.execute(INSERT_COMMENT, comment_row(comment))
        assert [name[:5] for name in migrate(url)] == ["0007_", "0008_", "0009_"]
        upgraded = open_postgres_store(url)
        try:
            assert_agree(upgraded)
            assert upgraded.request_summaries()
        finally:
            upgraded.close()


def test_the_requests_version_moves_with_every_write_of_a_filed_comment(store) -> None:
    from comments_service.tally import ranking
    from comments_service.tally.embedders import embedder_named

    def add(number: int, body: str, **fields) -> Comment:
        return store.add_comment(Comment(
            id=f"c{number}", thread="t", name="R", body=body, html="<p>b</p>",
            created=(START + timedelta(hours=number)).isoformat(timespec="microseconds"),
            state=CommentState.AWAITING_REPLY, public=True, reader_key=f"k{number}", **fields))

    lexical = embedder_named("lexical")
    add(1, "please add a dark mode to the site", request="1-1", request_filed=True)
    add(2, "a recipe for bread would be lovely", request="1-2", request_filed=True)
    asked = add(3, "could you write about sourdough bread recipes")
    seen = [store.requests_version()]
    before = ranking.rank(store, asked, lexical)
    assert before.suggestions[0].id == "1-2"
    # Each write of a filed comment gives a new version, and the ranking follows it.
    store.update_comment("c1", lambda c: replace(c, body="sourdough bread recipes please"))
    seen.append(store.requests_version())
    after = ranking.rank(store, asked, lexical)
    assert after.suggestions[0].id == "1-1"
    store.update_comment("c2", lambda c: replace(c, state=CommentState.SPAM))
    seen.append(store.requests_version())
    assert [s.id for s in ranking.rank(store, asked, lexical).suggestions] == ["1-1"]
    assert len(set(seen)) == len(seen)
    # A write of no filed comment leaves it as it was.
    add(4, "thank you")
    store.update_comment("c3", lambda c: replace(c, request="1-1"))  # a guess: not filed
    assert store.requests_version() == seen[-1]
