"""The listening figures from what each store keeps up to date on write
(CommentStore.listening_inputs, metrics_measure.measure) against the figures worked out from
the comments themselves (metrics.compute, listening.site_listening): identical on both
backends, after imports and after every kind of change, and on the pages that show them."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from comments_service import metrics
from comments_service.listening import site_listening, site_listening_of, window_start
from comments_service.metrics_inputs import GroupInputs, stored_time
from comments_service.metrics_measure import measure
from comments_service.models import Comment, CommentState
from comments_service.store.errors import StoreCorrupted
from tests.test_metrics import ARTICLES, NOW, fixture_comments

pytestmark = pytest.mark.both_stores

THREADS = ("hello", "second", "gone")


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def mixed_comments(count: int, seed: int = 7) -> list[Comment]:
    """Reader comments of every state over 20 weeks, with the author's replies: stock ones
    (before, after or instead of an individual one), deleted ones, several under one comment,
    imports answered without a reply or without replied_at; some with equal times."""
    chance = random.Random(seed)  # noqa: S311 - test data, not a secret
    made: list[Comment] = []
    for number in range(count):
        created = NOW - timedelta(hours=chance.choice([1, 5, 30, 40, 47, 49, 60])
                                  + chance.randrange(0, 20 * 7 * 24))
        state = chance.choice([CommentState.AWAITING_REPLY, CommentState.REPLIED,
                               CommentState.REPLIED, CommentState.SPAM, CommentState.WITHDRAWN])
        replied_at = None
        if state is CommentState.REPLIED and chance.random() > 0.1:
            replied_at = stamp(created + timedelta(minutes=chance.randrange(0, 5000)))
        comment = Comment(
            id=f"c{number:04d}", thread=chance.choice(THREADS), name=f"Reader {number}",
            body=" ".join(chance.choice(["well", "don't", "https://x.test/a", "ok"])
                          for _ in range(chance.randrange(0, 9))),
            html="<p>x</p>", created=stamp(created), state=state,
            public=state is CommentState.REPLIED,
            question=chance.choice([None, None, "why", "how", "what-next"]),
            replied_at=replied_at, reader_key=f"k{number % 5}",
        )
        made.append(comment)
        if state is not CommentState.REPLIED or chance.random() < 0.1:
            continue  # an import marked answered: no reply kept
        at = created + timedelta(minutes=chance.randrange(1, 6000))
        for reply in range(chance.choice([1, 1, 2, 3])):
            made.append(Comment(
                id=f"{comment.id}-a{reply}", thread=comment.thread, name="Ada",
                body="thanks " * chance.randrange(1, 4), html="<p>t</p>",
                created=stamp(at + timedelta(hours=reply * chance.choice([0, 3]))),
                state=chance.choice([CommentState.POSTED] * 4 + [CommentState.WITHDRAWN]),
                public=True, parent=comment.id, is_author=True,
                nudge_warnings=chance.choice([(), (), ("generic",), ("repeated", "short"),
                                              ("short",)]),
            ))
    return made


def assert_same(store, comments: list[Comment] | None = None, *, now: datetime = NOW) -> None:
    """The store's figures are compute's over every comment it holds, due list and all."""
    stored = list(store.all_comments()) if comments is None else comments
    expected = metrics.compute(stored, now, metrics.Targets(), ARTICLES)
    found = measure(store, now, metrics.Targets(), ARTICLES, due_shown=None)
    for name in expected.__dataclass_fields__:
        assert getattr(found, name) == getattr(expected, name), name
    assert found == expected
    window = store.listening_inputs(since=window_start(now), due_from=None, weeks_from=None)
    assert (site_listening_of(window.recent, ARTICLES.keys())
            == site_listening([c for c in stored if c.thread in ARTICLES], now))


def test_the_fixture_figures_match_compute(store) -> None:
    store.import_comments(fixture_comments())
    assert_same(store, fixture_comments())


def test_an_empty_store_has_empty_figures(store) -> None:
    inputs = store.listening_inputs(since=stored_time(NOW), due_from=stored_time(NOW),
                                    weeks_from=date(2026, 1, 5))
    assert inputs.overall == GroupInputs()
    assert (inputs.articles, inputs.questions, inputs.weeks, inputs.recent) == ({}, {}, {}, [])
    assert (inputs.spam, inputs.withdrawn, inputs.due) == (0, 0, 0)
    assert_same(store)


def test_the_window_the_due_count_and_the_weeks_follow_the_times_asked(store) -> None:
    store.import_comments(fixture_comments())
    since = stored_time(datetime(2026, 10, 16, 12, tzinfo=UTC))
    inputs = store.listening_inputs(since=since, due_from=stored_time(NOW - timedelta(hours=36)),
                                    weeks_from=date(2026, 10, 19))
    assert [row.id for row in inputs.recent] == ["r4", "r5", "r6", "r7"]  # from r4's time on
    assert [(row.individual, row.individual_at) for row in inputs.recent[:2]] == [
        (True, "2026-10-16T16:00:00.000000+00:00"), (False, None)]
    assert inputs.due == 2  # r5 and r6 have waited 36 h or more
    assert set(inputs.weeks) == {date(2026, 10, 19)}
    assert inputs.weeks[date(2026, 10, 19)].received == 3  # r5, r6, r7
    assert store.listening_inputs(since=since, due_from=None, weeks_from=None).weeks == {}


def test_mixed_comments_match_compute_after_an_import(store) -> None:
    store.import_comments(mixed_comments(300))
    assert_same(store)
    assert_same(store, now=NOW + timedelta(days=9))  # other windows, weeks and deadlines


def test_every_kind_of_change_keeps_the_figures(store) -> None:
    comments = mixed_comments(120, seed=3)
    store.import_comments(comments)
    assert_same(store)
    by_id = {comment.id: comment for comment in comments}
    waiting = [c for c in comments if c.state is CommentState.AWAITING_REPLY]
    replies = [c for c in comments if c.is_author and c.state is CommentState.POSTED]

    # A reply to a waiting comment; then a stock reply before it; an edit of the reader's words.
    parent = waiting[0]
    store.update_comment(parent.id, lambda c: replace(
        c, state=CommentState.REPLIED, replied_at=stamp(NOW - timedelta(hours=1))))
    store.add_comment(Comment(
        id="new-reply", thread=parent.thread, name="Ada", body="a real answer", html="<p/>",
        created=stamp(NOW - timedelta(hours=1)), state=CommentState.POSTED, public=True,
        parent=parent.id, is_author=True))
    assert_same(store)
    store.add_comment(Comment(
        id="stock-reply", thread=parent.thread, name="Ada", body="thanks", html="<p/>",
        created=stamp(NOW - timedelta(hours=2)), state=CommentState.POSTED, public=True,
        parent=parent.id, is_author=True, nudge_warnings=("generic",)))
    assert_same(store)
    store.update_comment(parent.id, lambda c: replace(c, body=c.body + " three more words"))
    assert_same(store)
    # The nudge warning taken off a reply, one put on, a reply deleted, one deleted outright.
    store.update_comment("stock-reply", lambda c: replace(c, nudge_warnings=()))
    store.update_comment(replies[0].id, lambda c: replace(c, nudge_warnings=("repeated",)))
    store.update_comment(replies[1].id, lambda c: replace(c, state=CommentState.WITHDRAWN))
    assert_same(store)
    # A reader comment to spam, back, withdrawn; a replied one waiting again.
    store.update_comment(waiting[1].id, lambda c: replace(c, state=CommentState.SPAM))
    store.update_comment(waiting[2].id, lambda c: replace(c, state=CommentState.WITHDRAWN))
    replied = next(c for c in comments if c.state is CommentState.REPLIED
                   and by_id[c.id].replied_at and c.id != parent.id)
    store.update_comment(replied.id, lambda c: replace(c, state=CommentState.AWAITING_REPLY,
                                                       replied_at=None))
    assert_same(store)
    store.update_comment(waiting[1].id, lambda c: replace(c, state=CommentState.AWAITING_REPLY))
    assert_same(store)


def test_another_process_follows_the_changes(open_test_store) -> None:
    """A second store object (another worker) keeps its aggregates from the lines the first
    appends, not from a new read of everything."""
    first, second = open_test_store(), open_test_store()
    first.import_comments(fixture_comments())
    assert_same(second)
    first.update_comment("r6", lambda c: replace(
        c, state=CommentState.REPLIED, replied_at=stamp(NOW - timedelta(hours=2))))
    first.add_comment(Comment(
        id="a6", thread="hello", name="Ada", body="Over a stock warning", html="<p/>",
        created=stamp(NOW - timedelta(hours=2)), state=CommentState.POSTED, public=True,
        parent="r6", is_author=True, nudge_warnings=("generic",)))
    assert_same(second)


def test_the_page_lists_the_oldest_due_comments_and_how_many(store, app, author_client) -> None:
    old = [Comment(id=f"d{number:02d}", thread="hello", name=f"Due {number:02d}", body="late",
                   html="<p>late</p>", created=stamp(datetime.now(UTC) - timedelta(days=5,
                                                                                   minutes=number)),
                   state=CommentState.AWAITING_REPLY, public=False)
           for number in range(metrics_page_limit() + 5)]
    store.import_comments(old)
    page = author_client.get("/moderate/metrics").get_data(as_text=True)
    assert f"the oldest {metrics_page_limit()} of {len(old)}" in page
    assert page.count('class="badge badge--overdue"') == metrics_page_limit()
    assert f"Due {len(old) - 1:02d}" in page and "Due 00<" not in page  # oldest first
    assert 'href="/moderate/">all in the queue' in page


def metrics_page_limit() -> int:
    from comments_service.metrics_measure import DUE_SHOWN

    return DUE_SHOWN


@pytest.mark.tinydb_only("the embedded store's index file")
def test_an_index_from_before_the_listening_fields_is_rebuilt_then_answers(
    store, open_test_store
) -> None:
    store.import_comments(fixture_comments())
    index = store.path / "index.jsonl"
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    for line in lines:
        for name in ("words", "replied_at", "stock"):
            line.pop(name, None)
    index.write_text("".join(json.dumps(line) + "\n" for line in lines))
    again = open_test_store()
    assert again.count_waiting() == 3  # the old lines still serve the queue as they are
    assert_same(again, fixture_comments())
    assert '"words":4' in index.read_text()  # rebuilt once, with the new fields
    assert again.get_comment("r1") == next(c for c in fixture_comments() if c.id == "r1")


@pytest.mark.tinydb_only("the embedded store's index file")
@pytest.mark.parametrize("field", ['"words":"4"', '"words":-2', '"words":true',
                                   '"replied_at":5', '"stock":"yes"'])
def test_an_index_line_with_a_bad_listening_field_is_reported(
    store, open_test_store, field: str
) -> None:
    store.import_comments(fixture_comments())
    index = store.path / "index.jsonl"
    lines = index.read_bytes().splitlines(keepends=True)
    damaged = lines[1].replace(b'"words":', b'"was":').rstrip(b"}\n") + b"," + field.encode()
    index.write_bytes(lines[0] + damaged + b"}\n" + b"".join(lines[2:]))
    with pytest.raises(StoreCorrupted, match=r"index\.jsonl.*line 2"):
        open_test_store()
    assert (store.path / "threads").is_dir() and len(list(store.all_comments())) == len(
        fixture_comments())  # the thread files, the data, are untouched


def test_migration_6_fills_the_listening_columns_of_existing_comments(
    store_backend: str,
) -> None:
    """Comments stored at version 4 (stock replies, imports, one holding NUL, one whose text
    imitates the record's keys) are counted after `init` as compute counts them."""
    if store_backend != "postgresql":
        pytest.skip("PostgreSQL only: its migrations")
    import psycopg

    from comments_service.store.postgres import open_postgres_store
    from comments_service.store.postgres.schema import json_text, migrate
    from tests.conftest import fresh_postgres_schema
    from tests.test_store_postgres import at_schema_version

    comments = [*fixture_comments(), *mixed_comments(150, seed=11), Comment(
        id="nul", thread="hello", name="N\x00", html="<p/>", created=stamp(NOW),
        body='"replied_at": "2020-01-01T00:00:00+00:00", "nudge_warnings": ["generic"] x',
        state=CommentState.AWAITING_REPLY, public=False)]
    with fresh_postgres_schema(migrated=False) as url:
        with psycopg.connect(url, autocommit=True) as connection:
            at_schema_version(connection, 4)
            for comment in comments:
                connection.execute(
                    "INSERT INTO comments (id, thread, state, public, question, is_author,"
                    " created, request, body_folded, name_folded, reader_key, parent, record)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, NULL, '', '', NULL, %s, %s::json)",
                    (comment.id, comment.thread, str(comment.state), comment.public,
                     comment.question, comment.is_author, comment.created, comment.parent,
                     json_text(comment.to_record())))
        assert [name[:5] for name in migrate(url)] == ["0005_", "0006_", "0007_", "0008_", "0009_"]
        upgraded = open_postgres_store(url)
        try:
            assert_same(upgraded, comments)
        finally:
            upgraded.close()


def test_comments_sharing_a_reply_time_are_each_counted_once(store) -> None:
    """Two replied comments of one question with the same time to a reply: one waiting again
    takes one time out of the group's, not both; then it is replied again."""
    made = mixed_comments(40, seed=5)
    twins = [Comment(
        id=f"twin{number}", thread="hello", name="Twin", body="same words here", html="<p/>",
        created=stamp(NOW - timedelta(days=3)), state=CommentState.REPLIED, public=True,
        question="why", replied_at=stamp(NOW - timedelta(days=2)), reader_key=f"t{number}")
        for number in range(3)]
    store.import_comments([*made, *twins])
    assert_same(store)
    store.update_comment("twin0", lambda c: replace(c, state=CommentState.AWAITING_REPLY,
                                                    replied_at=None))
    assert_same(store)
    store.update_comment("twin0", lambda c: replace(c, state=CommentState.REPLIED,
                                                    replied_at=stamp(NOW - timedelta(days=1))))
    assert_same(store)
    for twin in twins:
        store.update_comment(twin.id, lambda c: replace(c, state=CommentState.SPAM))
    assert_same(store)


def test_migration_9_sums_up_stored_comments_and_keeps_them(store_backend: str) -> None:
    """Comments a version 8 store holds are summed up by `init`, and the sums follow every
    later write as a recount over the comments would find them."""
    if store_backend != "postgresql":
        pytest.skip("PostgreSQL only: its migrations")
    import psycopg

    from comments_service.store.postgres import open_postgres_store
    from comments_service.store.postgres.listening import refresh_individual
    from comments_service.store.postgres.rows import INSERT_COMMENT, comment_row
    from comments_service.store.postgres.schema import migrate
    from tests.conftest import fresh_postgres_schema
    from tests.test_store_postgres import at_schema_version

    comments = [*fixture_comments(), *mixed_comments(200, seed=13)]
    recount = """
        SELECT thread, coalesce(question, ''), count(*), count(*) FILTER (WHERE individual),
               count(*) FILTER (WHERE state = 'awaiting_reply'), coalesce(sum(words), 0)
        FROM comments WHERE NOT is_author AND state IN ('awaiting_reply', 'replied')
        GROUP BY 1, 2 ORDER BY 1, 2"""
    kept = ("SELECT thread, question, reader_comments, individual, waiting, reader_words"
            " FROM listening_groups WHERE reader_comments > 0 ORDER BY 1, 2")
    with fresh_postgres_schema(migrated=False) as url:
        with psycopg.connect(url, autocommit=True) as connection:
            at_schema_version(connection, 8)
            for comment in comments:  # as the store wrote them at version 8
                connection.execute(INSERT_COMMENT, comment_row(comment))
            refresh_individual(connection.cursor(), comments)
        assert [name[:5] for name in migrate(url)] == ["0009_"]
        upgraded = open_postgres_store(url)
        try:
            assert_same(upgraded, comments)
            waiting = [c for c in comments if c.state is CommentState.AWAITING_REPLY]
            upgraded.update_comment(waiting[0].id, lambda c: replace(
                c, state=CommentState.REPLIED, replied_at=stamp(NOW - timedelta(hours=3)),
                body=c.body + " and more words"))
            upgraded.update_comment(waiting[1].id, lambda c: replace(c, state=CommentState.SPAM))
            assert_same(upgraded)
            with psycopg.connect(url) as connection:
                assert (connection.execute(kept).fetchall()
                        == connection.execute(recount).fetchall())
        finally:
            upgraded.close()


def test_a_group_emptied_and_filled_again_is_followed(store) -> None:
    """A question's only comment turned spam takes the question and its thread off the
    figures; put back, they return (the kept row stays at zero in between)."""
    store.import_comments(fixture_comments())
    store.add_comment(Comment(
        id="solo", thread="second", name="Solo", body="one two three", html="<p/>",
        created=stamp(NOW - timedelta(days=2)), state=CommentState.REPLIED, public=True,
        question="what-next", replied_at=stamp(NOW - timedelta(days=1))))
    assert_same(store)
    measured = measure(store, NOW, metrics.Targets(), ARTICLES)
    assert any(row.question == "what-next" for row in measured.questions)
    for state in (CommentState.SPAM, CommentState.REPLIED, CommentState.WITHDRAWN):
        store.update_comment("solo", lambda c, state=state: replace(c, state=state))
        assert_same(store)
