"""The listening figures (metrics.py), the page /moderate/metrics, the queue's deadline badges
and `flask … stats`: every figure checked against comments with known timestamps."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from bs4 import BeautifulSoup

from comments_service import create_app, metrics
from comments_service.cli.stats import text_table
from comments_service.comments import replying
from comments_service.config import ConfigError
from comments_service.manifest import parse_manifest
from comments_service.models import Author, Comment, CommentState
from comments_service.moderation.metrics import counts_chart, hours_chart
from comments_service.store import open_store
from tests.conftest import SERVICE_MANIFEST

NOW = datetime(2026, 10, 21, 12, 0, tzinfo=UTC)  # a Wednesday, ISO week 2026-W43
ARTICLES = parse_manifest(json.dumps(SERVICE_MANIFEST), "test").articles
READER_BODY = "alpha beta gamma delta"  # 4 words
HOUR = 3600.0
EMAIL = "ada@blog.test"


def at(text: str) -> str:
    """A stored time from a short one: "10-11 14:00" → 2026-10-11T14:00:00.000000+00:00."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC).isoformat(
        timespec="microseconds")


def reader(comment_id: str, thread: str, created: str, state=CommentState.AWAITING_REPLY, *,
           replied_at: str | None = None, question: str | None = None,
           body: str = READER_BODY) -> Comment:
    return Comment(
        id=comment_id, thread=thread, name=f"Reader {comment_id}", body=body,
        html=f"<p>{body}</p>", created=at(created), state=state,
        public=state is CommentState.REPLIED, question=question,
        replied_at=at(replied_at) if replied_at else None,
    )


def author_reply(comment_id: str, parent: Comment, created: str, body: str,
                 state=CommentState.POSTED, edited_at: str | None = None) -> Comment:
    return Comment(
        id=comment_id, thread=parent.thread, name="Ada", body=body, html=f"<p>{body}</p>",
        created=at(created), state=state, public=state is CommentState.POSTED,
        parent=parent.id, is_author=True, edited_at=at(edited_at) if edited_at else None,
    )


def fixture_comments() -> list[Comment]:
    """Eight reader comments (five replied, three waiting), spam, a withdrawn one, and replies:
    one comment answered twice, one reply edited later, one reply deleted."""
    r1 = reader("r1", "hello", "10-11 12:00", CommentState.REPLIED, question="why",
                replied_at="10-11 14:00")  # 2 h
    r2 = reader("r2", "hello", "10-12 12:00", CommentState.REPLIED, question="why",
                replied_at="10-12 22:00")  # 10 h; answered twice: the first reply counts
    r3 = reader("r3", "hello", "10-13 12:00", CommentState.REPLIED, question="what-next",
                replied_at="10-16 00:00")  # 60 h: missed the 48 h target
    r4 = reader("r4", "second", "10-16 12:00", CommentState.REPLIED, question="how",
                replied_at="10-16 16:00")  # 4 h; its reply edited two days later
    r5 = reader("r5", "second", "10-19 10:00")  # waiting 50 h (its only reply was deleted)
    r6 = reader("r6", "hello", "10-19 20:00", question="why")  # waiting 40 h: due soon
    r7 = reader("r7", "hello", "10-21 09:00")  # waiting 3 h
    r8 = reader("r8", "gone", "09-11 12:00", CommentState.REPLIED,
                replied_at="09-11 13:00")  # 1 h, 40 days ago, article no longer on the site
    spam = reader("s1", "hello", "10-20 12:00", CommentState.SPAM,
                  body="buy cheap pills now at http://spam.test today")
    withdrawn = reader("w1", "second", "10-19 12:00", CommentState.WITHDRAWN,
                       body="words taken back by their writer")
    return [
        r1, r2, r3, r4, r5, r6, r7, r8, spam, withdrawn,
        author_reply("a1", r1, "10-11 14:00", "Thanks Rosa"),
        author_reply("a2", r2, "10-12 22:00", "First answer here"),
        author_reply("a3", r2, "10-14 08:00", "Second answer"),
        author_reply("a4", r4, "10-16 16:00", "Edited reply text now", edited_at="10-18 16:00"),
        author_reply("a5", r5, "10-19 11:00", "deleted reply", state=CommentState.WITHDRAWN),
    ]


def compute(comments, **options) -> metrics.Metrics:
    return metrics.compute(comments, NOW, metrics.Targets(), ARTICLES, **options)


# --- the figures -------------------------------------------------------------------------------


def test_totals_rates_times_and_waiting():
    report = compute(fixture_comments())
    overall = report.overall
    assert (overall.reader_comments, overall.replied, overall.waiting) == (8, 5, 3)
    assert overall.reply_rate == 5 / 8
    # Reply times 1 h, 2 h, 4 h, 10 h, 60 h.
    assert overall.median_reply_seconds == 4 * HOUR
    assert overall.p90_reply_seconds == 10 * HOUR + (60 - 10) * HOUR * 0.6
    assert (report.spam, report.withdrawn) == (1, 1)
    assert report.oldest_waiting.id == "r5"
    assert report.oldest_waiting_seconds == 50 * HOUR
    assert (overall.reader_words, overall.author_words) == (8 * 4, 2 + 3 + 2 + 4)
    assert overall.listen_ratio == 32 / 11


def test_the_target_share_of_the_last_thirty_days():
    report = compute(fixture_comments())
    target = report.target
    assert target.since == NOW - timedelta(days=30)
    # r8 is older than 30 days; r1, r2, r4 within 48 h; r3 answered late and r5 waiting past
    # it missed; r6 and r7 still have time.
    assert (target.comments, target.within, target.missed, target.pending) == (7, 3, 2, 2)
    assert target.decided == 5
    assert target.share == 3 / 5
    assert report.target_met is False
    assert compute(fixture_comments()[:4]).target.share == 3 / 4  # r1-r4: r3 missed
    generous = metrics.compute(fixture_comments(), NOW, metrics.Targets(reply_hours=72,
                                                                        reply_rate=0.5))
    assert (generous.target.within, generous.target.missed, generous.target.pending) == (4, 0, 3)
    assert generous.target_met is True


def test_waiting_comments_about_to_miss_the_target():
    report = compute(fixture_comments())
    assert [(badge.comment.id, badge.status, badge.waiting_seconds) for badge in report.due] == [
        ("r5", "overdue", 50 * HOUR), ("r6", "due_soon", 40 * HOUR),
    ]
    assert report.due[0].label == "Overdue"
    assert report.due[0].detail == "past the 48 h target by 2 h"
    assert report.due[1].label == "Due soon"
    assert report.due[1].detail == "8 h left of the 48 h target"
    # 75 % of the target is the threshold, inclusive; the target itself is still "due soon".
    targets = metrics.Targets()
    fresh = reader("x", "hello", "10-21 12:00")
    assert metrics.deadline(fresh, NOW + timedelta(hours=36) - timedelta(seconds=1),
                            targets) is None
    assert metrics.deadline(fresh, NOW + timedelta(hours=36), targets).status == "due_soon"
    assert metrics.deadline(fresh, NOW + timedelta(hours=48), targets).status == "due_soon"
    late = metrics.deadline(fresh, NOW + timedelta(hours=48, seconds=1), targets)
    assert late.status == "overdue"
    replied = replace(fresh, state=CommentState.REPLIED, replied_at=fresh.created)
    assert metrics.deadline(replied, NOW + timedelta(days=9), targets) is None
    by_id = metrics.deadlines(fixture_comments(), NOW, targets)
    assert sorted(by_id) == ["r5", "r6"]


def test_per_article_figures_with_titles_from_the_manifest():
    rows = compute(fixture_comments()).articles
    assert [(row.thread, row.title) for row in rows] == [
        ("hello", "Hello"), ("second", "Second post"), ("gone", None),
    ]
    hello, second, gone = (row.figures for row in rows)
    assert (hello.reader_comments, hello.replied, hello.waiting) == (5, 3, 2)
    assert hello.reply_rate == 3 / 5
    assert hello.median_reply_seconds == 10 * HOUR  # of 2 h, 10 h, 60 h
    assert hello.p90_reply_seconds == 10 * HOUR + 50 * HOUR * 0.8
    assert (hello.reader_words, hello.author_words, hello.listen_ratio) == (20, 7, 20 / 7)
    assert (second.reader_comments, second.replied, second.waiting) == (2, 1, 1)
    assert second.reply_rate == 0.5
    assert second.median_reply_seconds == second.p90_reply_seconds == 4 * HOUR
    # The edited reply counts with its text as it is now; the deleted one not at all.
    assert (second.reader_words, second.author_words, second.listen_ratio) == (8, 4, 2.0)
    assert (gone.reader_comments, gone.replied, gone.reply_rate) == (1, 1, 1.0)
    assert gone.median_reply_seconds == HOUR
    assert (gone.reader_words, gone.author_words, gone.listen_ratio) == (4, 0, None)


def test_per_question_figures_in_article_and_question_order():
    rows = compute(fixture_comments()).questions
    assert [(row.thread, row.question, row.text) for row in rows] == [
        ("hello", "why", "Why?"), ("hello", "what-next", "What next?"), ("second", "how", "How?"),
    ]
    why, what_next, how = (row.figures for row in rows)
    assert (why.reader_comments, why.replied, why.waiting) == (3, 2, 1)
    assert why.reply_rate == 2 / 3
    assert why.median_reply_seconds == 6 * HOUR  # between 2 h and 10 h
    assert why.p90_reply_seconds == 2 * HOUR + 8 * HOUR * 0.9
    assert (what_next.reader_comments, what_next.replied) == (1, 1)
    assert what_next.median_reply_seconds == 60 * HOUR
    assert (how.reader_comments, how.replied, how.median_reply_seconds) == (1, 1, 4 * HOUR)


def test_a_question_no_longer_in_the_article_keeps_its_row():
    old = reader("q1", "hello", "10-20 12:00", question="removed-question")
    rows = compute([old]).questions
    assert [(row.question, row.text, row.figures.reader_comments) for row in rows] == [
        ("why", "Why?", 0), ("what-next", "What next?", 0), ("removed-question", None, 1),
        ("how", "How?", 0),
    ]


def test_weekly_received_answered_and_median_reply_time():
    weeks = compute(fixture_comments(), weeks=3).weeks
    assert [(w.week, w.start, w.received, w.answered, w.median_reply_seconds) for w in weeks] == [
        ("2026-W41", date(2026, 10, 5), 1, 1, 2 * HOUR),
        ("2026-W42", date(2026, 10, 12), 3, 3, 10 * HOUR),  # r2, r3, r4: 10 h, 60 h, 4 h
        ("2026-W43", date(2026, 10, 19), 3, 0, None),
    ]
    twelve = compute(fixture_comments()).weeks
    assert len(twelve) == 12
    assert (twelve[0].week, twelve[-1].week) == ("2026-W32", "2026-W43")
    w37 = next(week for week in twelve if week.week == "2026-W37")
    assert (w37.received, w37.answered, w37.median_reply_seconds) == (1, 1, HOUR)


def test_answered_counts_by_the_week_of_the_first_reply():
    late = reader("l1", "hello", "10-09 12:00", CommentState.REPLIED, replied_at="10-13 12:00")
    weeks = compute([late], weeks=2).weeks
    assert [(w.week, w.received, w.answered, w.median_reply_seconds) for w in weeks] == [
        ("2026-W42", 0, 1, 96 * HOUR), ("2026-W43", 0, 0, None),
    ]


def test_an_empty_store():
    report = compute([])
    overall = report.overall
    assert (overall.reader_comments, overall.replied, overall.waiting) == (0, 0, 0)
    assert overall.reply_rate is None
    assert overall.median_reply_seconds is None and overall.p90_reply_seconds is None
    assert overall.listen_ratio is None
    assert report.oldest_waiting is None and report.oldest_waiting_seconds is None
    assert (report.target.comments, report.target.share, report.target_met) == (0, None, None)
    assert report.due == []
    assert [(row.thread, row.figures.reader_comments) for row in report.articles] == [
        ("hello", 0), ("second", 0),
    ]
    assert all(row.figures.reply_rate is None for row in report.questions)
    assert all((w.received, w.answered, w.median_reply_seconds) == (0, 0, None)
               for w in report.weeks)
    assert not report.has_comments
    assert metrics.compute([], NOW).articles == []  # without a manifest: nothing to list


def test_only_spam():
    spam = [reader(f"s{number}", "hello", "10-20 12:00", CommentState.SPAM) for number in range(3)]
    report = compute(spam)
    assert report.spam == 3
    assert (report.overall.reader_comments, report.overall.reply_rate) == (0, None)
    assert report.overall.reader_words == 0
    assert report.due == [] and report.target.comments == 0
    assert sum(week.received for week in report.weeks) == 0


@pytest.fixture
def lifecycle_store(tmp_path, monkeypatch):
    """A real store and replying.py's own actions, with the clock under the test's control."""
    store = open_store(tmp_path / "store")
    clock = {"now": at("10-01 12:00")}
    monkeypatch.setattr(replying, "utc_now", lambda: clock["now"])
    yield store, clock
    store.close()


def test_reply_times_follow_the_replying_actions(lifecycle_store):
    store, clock = lifecycle_store
    author = Author(id="a", name="Ada", email=EMAIL, password_hash="x", created=at("01-01 00:00"))
    for comment_id in ("A", "B", "C"):
        store.add_comment(reader(comment_id, "hello", "10-01 12:00"))

    def act(when: str, action, *args):
        clock["now"] = at(when)
        return action(store, *args)

    first_a = act("10-01 13:00", replying.reply, "A", author, "Rosa, queues help here")
    act("10-01 17:00", replying.reply, "A", author, "And a second thought")  # answered twice
    act("10-03 09:00", replying.edit_reply, first_a.id, "Rosa, queues help a lot")  # edited
    only_b = act("10-01 14:00", replying.reply, "B", author, "Deleted soon")
    act("10-02 10:00", replying.delete_reply, only_b.id)  # B waits again
    first_c = act("10-01 15:00", replying.reply, "C", author, "First for C")
    act("10-01 16:00", replying.reply, "C", author, "Second for C")
    act("10-02 11:00", replying.delete_reply, first_c.id)  # another reply stands under C

    stored = {comment.id: comment for comment in store.all_comments()}
    assert stored[first_a.id].edited_at == at("10-03 09:00")
    assert stored["B"].state is CommentState.AWAITING_REPLY and stored["B"].replied_at is None
    report = metrics.compute(store.all_comments(), datetime(2026, 10, 4, 12, tzinfo=UTC),
                             metrics.Targets(), ARTICLES, weeks=1)
    overall = report.overall
    assert (overall.reader_comments, overall.replied, overall.waiting) == (3, 2, 1)
    # A: first reply after 1 h (not the second reply, not the edit); C: its first reply, 3 h.
    assert overall.median_reply_seconds == 2 * HOUR
    assert overall.p90_reply_seconds == HOUR + 2 * HOUR * 0.9
    assert report.oldest_waiting.id == "B" and report.oldest_waiting_seconds == 72 * HOUR
    assert [badge.status for badge in report.due] == ["overdue"]
    # Words: A's two replies (the edited one as it is now) and C's standing reply.
    assert overall.author_words == 5 + 4 + 3
    assert (report.target.within, report.target.missed, report.target.pending) == (2, 1, 0)


def test_word_counts():
    assert metrics.word_count("") == 0
    assert metrics.word_count("I don't think so — really?") == 5
    assert metrics.word_count("It\u2019s well-known: see [the docs](https://example.org/a/b).") == 6
    assert metrics.word_count("*Bold* `code` and www.example.org/x or 42 things") == 6
    assert metrics.word_count("Grüße aus Köln, 東京") == 4


def test_percentiles_and_formats():
    assert metrics.percentile([], 0.9) is None
    assert metrics.percentile([5.0], 0.9) == 5.0
    assert metrics.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert metrics.percentile([10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0],
                              0.9) == pytest.approx(91.0)
    assert metrics.format_duration(None) == "—"
    assert metrics.format_duration(42.9) == "42 s"
    assert metrics.format_duration(25 * 60 + 59) == "25 min"
    assert metrics.format_duration(5 * HOUR + 180) == "5 h 3 min"
    assert metrics.format_duration(47 * HOUR + 59 * 60 + 59) == "47 h 59 min"
    assert metrics.format_duration(48 * HOUR) == "2 days"
    assert metrics.format_duration(76 * HOUR + 1800) == "3 days 4 h"
    assert metrics.format_percent(None) == "—"
    assert metrics.format_percent(0.625) == "62.5 %"
    assert metrics.format_percent(0.8996) == "89.9 %"
    assert metrics.format_percent(0.9) == "90 %"
    assert metrics.format_percent(1.0) == "100 %"
    assert metrics.format_percent(7 / 10) == "70 %"
    assert metrics.format_ratio(32 / 11) == "2.9 : 1"
    assert metrics.format_ratio(None) == "—"


def test_targets_from_config():
    assert metrics.targets_from_config({}) == metrics.Targets(48.0, 0.9)
    assert metrics.targets_from_config(
        {"TARGET_REPLY_HOURS": "24", "TARGET_REPLY_RATE": "0.75"}
    ) == metrics.Targets(24.0, 0.75)
    for bad in ({"TARGET_REPLY_HOURS": 0}, {"TARGET_REPLY_HOURS": "soon"},
                {"TARGET_REPLY_HOURS": "nan"}, {"TARGET_REPLY_RATE": 90},
                {"TARGET_REPLY_RATE": 0}, {"TARGET_REPLY_RATE": True}):
        with pytest.raises(metrics.TargetSettingError, match=next(iter(bad))):
            metrics.targets_from_config(bad)


def test_bad_targets_stop_the_service_at_start(service_config):
    with pytest.raises(ConfigError, match="TARGET_REPLY_RATE"):
        create_app({**service_config, "TARGET_REPLY_RATE": 1.5})


def test_chart_geometry():
    weeks = compute(fixture_comments(), weeks=3).weeks
    chart = counts_chart(weeks)
    assert [tick["label"] for tick in chart["ticks"]] == ["0", "1", "2", "3"]
    received = [bar for bar in chart["bars"] if bar["kind"] == "received"]
    assert [bar["height"] for bar in received] == [
        round((chart["bottom"] - chart["top"]) / 3, 1), chart["bottom"] - chart["top"],
        chart["bottom"] - chart["top"],
    ]
    assert [label["label"] for label in chart["labels"]] == ["W41", "W42", "W43"]
    assert "3 ISO weeks, 2026-W41 to 2026-W43: 7 received and 4 answered" in chart["description"]
    hours = hours_chart(compute(fixture_comments(), weeks=3))
    assert [tick["label"] for tick in hours["ticks"]] == ["0 h", "12 h", "24 h", "36 h", "48 h"]
    assert hours["target_y"] == hours["top"]
    assert len(hours["points"]) == 2 and hours["lines"] == [
        " ".join(f"{point['x']},{point['y']}" for point in hours["points"])
    ]
    assert "Fastest week 2026-W41: 2 h; slowest 2026-W42: 10 h" in hours["description"]


def test_text_tables_align_columns():
    lines = text_table(["Name", "Count"], [["a", "1"], ["longer", "12345"]], right=[1])
    assert lines == ["Name    Count", "------  -----", "a           1", "longer  12345"]


# --- the page and the queue --------------------------------------------------------------------


def ago(hours: float) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat(timespec="microseconds")


def add_recent(app) -> None:
    """Comments relative to the real clock: one overdue, one due soon, one fresh, one replied."""
    store = app.extensions["tellmemore.store"]
    for comment_id, hours, question in (("late", 60, "why"), ("soon", 40, None),
                                        ("fresh", 1, None)):
        store.add_comment(replace(reader(comment_id, "hello", "10-01 00:00", question=question),
                                  name=f"Reader {comment_id}", created=ago(hours)))
    answered = replace(reader("done", "second", "10-01 00:00", CommentState.REPLIED,
                              question="how"), created=ago(30), replied_at=ago(27))
    store.add_comment(answered)
    store.add_comment(replace(author_reply("reply", answered, "10-01 00:00", "Thank you kindly"),
                              created=ago(27)))


def page_of(response) -> BeautifulSoup:
    assert response.status_code == 200
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def test_the_metrics_page_shows_every_figure(app, author_client):
    add_recent(app)
    page = page_of(author_client.get("/moderate/metrics"))
    assert page.find("h1").get_text() == "Listening metrics"
    assert page.find("a", attrs={"aria-current": "page"}).get_text() == "Metrics"
    figures = {div.dt.get_text(): div.dd.get_text(" ", strip=True)
               for div in page.select(".figures .figure")}
    assert figures["Reply rate"].startswith("25 %")  # 1 of 4
    assert figures["Median time to first reply"] == "3 h"
    assert figures["Waiting"].startswith("3 oldest 2 days 12 h")
    assert figures["Readers' words : yours"].startswith("5.3 : 1")  # 16 : 3
    meter = page.find("meter", id="target-meter")
    assert float(meter["value"]) == 0.5  # "done" in time, "late" missed, two still pending
    assert page.find("label", attrs={"for": "target-meter"}).get_text() == (
        "Answered individually within 48 h")
    due = page.select(".due li")
    assert [item.find(class_="badge").get_text() for item in due] == ["Overdue", "Due soon"]
    assert due[0].find("a")["href"] == "/moderate/comments/late"
    assert "past the 48 h target by 12 h" in due[0].get_text()
    for svg in page.select("svg.chart__svg"):
        assert svg["role"] == "img"
        title_id, desc_id = svg["aria-labelledby"].split()
        assert svg.find("title", id=title_id).get_text()
        assert "ISO weeks" in svg.find("desc", id=desc_id).get_text()
    assert len(page.select("svg.chart__svg")) == 2
    assert len(page.select(".chart__data tbody tr")) == metrics.TREND_WEEKS
    articles = page.find("table", id="articles-table")
    assert [row.th.get_text(strip=True) for row in articles.tbody.find_all("tr")] == [
        "Hello", "Second post"]
    questions = page.find("table", id="questions-table")
    assert [row["data-question"] for row in questions.tbody.find_all("tr")] == [
        "why", "what-next", "how"]
    listen = page.find("table", id="listen-table")
    assert [cell.get_text() for cell in listen.tfoot.find_all(["th", "td"])] == [
        "All articles", "16", "3", "5.3 : 1"]


def test_the_metrics_page_of_an_empty_store(author_client):
    page = page_of(author_client.get("/moderate/metrics"))
    assert "No reader comments yet" in page.find(class_="empty").get_text()
    assert page.find("meter") is None
    assert "Nothing to measure yet" in page.get_text()


def test_the_metrics_page_refuses_strangers(client):
    response = client.get("/moderate/metrics")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/moderate/sign-in")


def test_the_target_comes_from_the_settings(service_config, auth):
    app = create_app({**service_config, "TARGET_REPLY_HOURS": 24, "TARGET_REPLY_RATE": 0.5})
    try:
        ada = auth.for_app(app)
        ada.add_author()
        add_recent(app)
        client = ada.login()
        metrics_page = page_of(client.get("/moderate/metrics"))
        assert metrics_page.find("label", attrs={"for": "target-meter"}).get_text() == (
            "Answered individually within 24 h")
        queue = page_of(client.get("/moderate/"))
        badges = {card["data-comment-id"]: card.find(class_="badge--overdue")
                  for card in queue.select("article.card")}
        assert badges["soon"] is not None  # 40 h is past a 24 h target
    finally:
        app.extensions["tellmemore.store"].close()


def test_the_queue_marks_comments_about_to_miss_the_target(app, author_client):
    add_recent(app)
    page = page_of(author_client.get("/moderate/"))
    cards = {card["data-comment-id"]: card for card in page.select("article.card")}
    assert list(cards) == ["late", "soon", "fresh"]
    late_meta = cards["late"].find(class_="card__meta").get_text(" ", strip=True)
    assert "Overdue" in late_meta and "past the 48 h target by 12 h" in late_meta
    soon_meta = cards["soon"].find(class_="card__meta").get_text(" ", strip=True)
    assert "Due soon" in soon_meta and "left of the 48 h target" in soon_meta
    assert cards["fresh"].find(class_="badge") is None


# --- the command -------------------------------------------------------------------------------


@pytest.fixture
def stats(app):
    app.extensions["tellmemore.store"].import_comments(fixture_comments())

    def run(*args: str):
        result = app.test_cli_runner().invoke(args=["stats", "--now", NOW.isoformat(), *args])
        assert result.exit_code == 0, result.output
        return result.output

    return run


def test_stats_json_has_every_figure(stats):
    data = json.loads(stats("--json", "--weeks", "3"))
    assert list(data) == ["generated_at", "targets", "totals", "target", "due", "articles",
                          "questions", "weeks"]
    assert data["generated_at"] == "2026-10-21T12:00:00+00:00"
    assert data["targets"] == {"reply_hours": 48.0, "reply_rate": 0.9, "due_soon_share": 0.75,
                               "window_days": 30}
    assert data["totals"] == {
        "reader_comments": 8, "replied": 5, "individually_replied": 5, "waiting": 3,
        "reply_rate": 0.625, "individual_reply_rate": 0.625,
        "median_reply_seconds": 14400.0, "p90_reply_seconds": 144000.0,
        "reader_words": 32, "author_words": 11, "listen_ratio": 32 / 11,
        "spam": 1, "withdrawn": 1, "oldest_waiting_seconds": 180000.0,
    }
    assert data["target"] == {"since": "2026-09-21T12:00:00+00:00", "comments": 7, "within": 3,
                              "missed": 2, "pending": 2, "share": 0.6, "met": False}
    assert data["due"] == [
        {"id": "r5", "thread": "second", "name": "Reader r5", "created": at("10-19 10:00"),
         "waiting_seconds": 180000.0, "status": "overdue"},
        {"id": "r6", "thread": "hello", "name": "Reader r6", "created": at("10-19 20:00"),
         "waiting_seconds": 144000.0, "status": "due_soon"},
    ]
    assert data["articles"][0] == {
        "thread": "hello", "title": "Hello", "reader_comments": 5, "replied": 3,
        "individually_replied": 3, "waiting": 2, "individual_reply_rate": 0.6,
        "reply_rate": 0.6, "median_reply_seconds": 36000.0, "p90_reply_seconds": 180000.0,
        "reader_words": 20, "author_words": 7, "listen_ratio": 20 / 7,
    }
    assert [(row["thread"], row["title"], row["listen_ratio"]) for row in data["articles"]] == [
        ("hello", "Hello", 20 / 7), ("second", "Second post", 2.0), ("gone", None, None)]
    assert data["questions"][0] == {
        "thread": "hello", "question": "why", "text": "Why?", "reader_comments": 3,
        "replied": 2, "individually_replied": 2, "waiting": 1, "reply_rate": 2 / 3,
        "individual_reply_rate": 2 / 3, "median_reply_seconds": 21600.0,
        "p90_reply_seconds": 33120.0,
    }
    assert data["weeks"] == [
        {"week": "2026-W41", "start": "2026-10-05", "received": 1, "answered": 1,
         "median_reply_seconds": 7200.0},
        {"week": "2026-W42", "start": "2026-10-12", "received": 3, "answered": 3,
         "median_reply_seconds": 36000.0},
        {"week": "2026-W43", "start": "2026-10-19", "received": 3, "answered": 0,
         "median_reply_seconds": None},
    ]


def test_stats_prints_aligned_tables(stats):
    output = stats("--weeks", "3")
    lines = output.splitlines()
    assert lines[0] == "Listening figures as of 2026-10-21 12:00 UTC"
    summary = lines[2:lines.index("", 2)]
    assert len({len(line) for line in summary}) == 1  # values right-aligned in one column
    rows = {line.rsplit("  ", 1)[0].strip(): line.rsplit("  ", 1)[1].strip()
            for line in summary[2:]}
    assert rows == {
        "Reader comments": "8", "Replied": "5", "Reply rate": "62.5 %",
        "Individually replied": "5", "Individual reply rate": "62.5 %",
        "Median time to first reply": "4 h", "90th percentile": "40 h",
        "Waiting": "3", "Oldest waiting": "2 days 2 h", "Spam (left out)": "1",
        "Withdrawn (left out)": "1", "Readers' words": "32", "Your words": "11",
        "Readers : you": "2.9 : 1",
    }
    assert "Target: 90 % answered individually within 48 h (comments since 2026-09-21)" in lines
    assert any(line.startswith("Share answered within target") and line.endswith("60 %")
               for line in lines)
    assert any(line.startswith("Verdict") and line.endswith("below target") for line in lines)
    due = lines[lines.index("About to miss the target or past it") + 2:]
    assert due[2].split() == ["Overdue", "2", "days", "2", "h", "Reader", "r5", "Second",
                              "post", "r5"]
    articles = lines[lines.index("Articles") + 2:]
    assert articles[2].split() == ["Hello", "5", "3", "60", "%", "2", "10", "h", "2", "days",
                                   "2", "h"]
    assert articles[4].split()[:2] == ["gone", "1"]
    weeks = lines[lines.index("Weeks") + 2:]
    assert [line.split()[:4] for line in weeks[2:]] == [
        ["2026-W41", "2026-10-05", "1", "1"], ["2026-W42", "2026-10-12", "3", "3"],
        ["2026-W43", "2026-10-19", "3", "0"],
    ]
    assert len({len(line) for line in weeks}) == 1  # the last column is right-aligned too


def test_stats_without_a_manifest_names_threads(app, stats, tmp_path):
    (tmp_path / "comments-manifest.json").unlink()
    result = app.test_cli_runner().invoke(
        args=["stats", "--json", "--now", NOW.isoformat()])
    assert result.exit_code == 0
    assert "articles are shown by thread key" in result.stderr
    data = json.loads(result.stdout)
    assert [(row["thread"], row["title"]) for row in data["articles"]] == [
        ("gone", None), ("hello", None), ("second", None)]


def test_stats_refuses_a_bad_time(app):
    result = app.test_cli_runner().invoke(args=["stats", "--now", "yesterday"])
    assert result.exit_code == 2
    assert "not an ISO 8601 time" in result.output
