"""The public listening figures (#22, item 3): on each article how many of its comments the
author answered individually, on the site the share answered and the median time to reply
over the last 90 days; nothing about fewer than 10 comments; PUBLIC_LISTENING=off hides them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from comments_service.listening import (
    MIN_COMMENTS,
    article_listening,
    footer_fields,
    site_listening,
)
from comments_service.models import Comment, CommentState
from tests.test_api import check

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def reader(number: int, *, days_ago: float = 1, state=CommentState.REPLIED,
           thread: str = "hello") -> Comment:
    created = (NOW - timedelta(days=days_ago)).isoformat(timespec="microseconds")
    return Comment(id=f"r{number}", thread=thread, name="Rosa", body="A comment.",
                   html="<p>A comment.</p>", created=created, state=state, public=True,
                   replied_at=None)


def reply(to: Comment, *, hours: float, warnings: tuple[str, ...] = ()) -> Comment:
    created = (datetime.fromisoformat(to.created) + timedelta(hours=hours)).isoformat(
        timespec="microseconds")
    return Comment(id=f"a-{to.id}", thread=to.thread, name="Ada", body="A reply.",
                   html="<p>A reply.</p>", created=created, state=CommentState.POSTED,
                   public=True, is_author=True, parent=to.id, nudge_warnings=warnings)


def test_no_figure_about_fewer_than_ten_comments() -> None:
    comments = [reader(n) for n in range(MIN_COMMENTS - 1)]
    assert article_listening(comments) is None
    assert site_listening(comments, NOW) is None


def test_only_individual_replies_count_and_spam_is_left_out() -> None:
    answered = [reader(n) for n in range(8)]
    comments = [*answered, *(reply(c, hours=2 + n) for n, c in enumerate(answered))]
    stock = reader(8)
    comments += [stock, reply(stock, hours=1, warnings=("generic",))]  # sent over the nudge
    comments += [reader(9, state=CommentState.AWAITING_REPLY),
                 reader(10, state=CommentState.AWAITING_REPLY),
                 reader(11, state=CommentState.SPAM), reader(12, state=CommentState.WITHDRAWN)]
    assert article_listening(comments) == {"received": 11, "answered": 8}
    site = site_listening(comments, NOW)
    assert site == {"window_days": 90, "received": 11, "answered": 8, "answered_share": 0.73,
                    "median_reply_hours": 5.5}


def test_the_site_figure_covers_the_last_ninety_days() -> None:
    recent = [reader(n, days_ago=10) for n in range(MIN_COMMENTS)]
    old = [reader(100 + n, days_ago=200, state=CommentState.AWAITING_REPLY) for n in range(50)]
    figures = site_listening([*recent, *old, *(reply(c, hours=1) for c in recent)], NOW)
    assert figures["received"] == MIN_COMMENTS and figures["answered_share"] == 1.0


pytestmark = pytest.mark.both_stores


@pytest.fixture
def service_config(service_config):
    return {**service_config, "SPAM_CHECKS": "off"}


# The footer's [data-l] numbers (base.html) for 1 of 10 answered, three hours after.
SITE_FIELDS = {"site_share": 10, "site_reply_min": 180, "site_reply_h": 3, "site_reply_days": 1}


def test_the_thread_the_export_and_the_listening_route_carry_them(app, client, store) -> None:
    store.add_comment(reader(0))
    for number in range(1, MIN_COMMENTS):
        store.add_comment(reader(number, state=CommentState.AWAITING_REPLY))
    store.add_comment(reply(store.get_comment("r0"), hours=3))
    thread = check(client.get("/api/threads/hello"), "/api/threads/{thread}")
    assert thread["listening"] == {"received": MIN_COMMENTS, "answered": 1, **SITE_FIELDS}
    # An article under ten comments has no line of its own, but the footer still has the site's.
    second = check(client.get("/api/threads/second"), "/api/threads/{thread}")
    assert second["listening"] == SITE_FIELDS
    export = client.get("/api/public-export").get_json()
    assert export["threads"]["hello"]["listening"] == {"received": MIN_COMMENTS, "answered": 1}
    assert export["threads"]["second"]["listening"] is None  # the site's once, at the top
    assert export["listening"]["received"] == MIN_COMMENTS
    assert client.get("/api/listening").get_json()["listening"]["answered"] == 1


@pytest.mark.parametrize(("hours", "fields"), [
    (None, {}),  # no median: the footer shows a dash, in no span
    (0.004, {"site_reply_min": 1, "site_reply_h": 1, "site_reply_days": 1}),
    (0.4, {"site_reply_min": 24, "site_reply_h": 1, "site_reply_days": 1}),
    (7.5, {"site_reply_min": 450, "site_reply_h": 8, "site_reply_days": 1}),
    (50.0, {"site_reply_min": 3000, "site_reply_h": 50, "site_reply_days": 2}),
])
def test_the_footer_fields_are_the_numbers_the_build_prints(hours, fields) -> None:
    """Rounded as Jinja rounds (Python's round: 0.955 → 96, 0.925 → 92), at least 1 in
    every unit: the footer keeps the unit it was built with until the next build."""
    figures = {"window_days": 90, "received": 40, "answered": 38, "answered_share": 0.955,
               "median_reply_hours": hours}
    assert footer_fields(figures) == {"site_share": 96, **fields}
    assert footer_fields({**figures, "answered_share": 0.925})["site_share"] == 92
    assert footer_fields(None) == {}


def test_no_site_figure_in_a_thread_about_fewer_than_ten_comments(client, store) -> None:
    for comment in (reader(n) for n in range(MIN_COMMENTS - 1)):
        store.add_comment(comment)
        store.add_comment(reply(comment, hours=1))
    assert client.get("/api/threads/hello").get_json()["listening"] is None
    assert client.get("/api/threads/second").get_json()["listening"] is None


def test_the_site_figure_is_worked_out_once_a_minute_and_changes_the_etag(
        app, client, store, monkeypatch) -> None:
    """A thread GET reuses the site's figures of the last LISTENING_CACHE_SECONDS (they read
    every article's comments): a change elsewhere on the site leaves the thread's 304 alone
    until they are worked out again; then the body and its ETag change, and 304 holds again."""
    from comments_service.api import views

    worked_out = []
    original = views.site_listening_figures

    def counted(*args):
        worked_out.append(1)
        return original(*args)

    monkeypatch.setattr(views, "site_listening_figures", counted)
    comments = [reader(n, thread="second", state=CommentState.REPLIED if n == 0
                       else CommentState.AWAITING_REPLY) for n in range(MIN_COMMENTS)]
    for comment in comments:
        store.add_comment(comment)
    store.add_comment(reply(comments[0], hours=3))
    first = client.get("/api/threads/hello")
    assert first.get_json()["listening"] == SITE_FIELDS
    etag = first.headers["ETag"]
    assert client.get("/api/threads/hello", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/api/threads/second").status_code == 200
    client.get("/api/listening")
    assert len(worked_out) == 1  # four requests, one reading of the whole site

    # Answered on "second": hello's own comments, and so its store version, are unchanged.
    store.update_comment("r1", lambda comment: replace(comment, state=CommentState.REPLIED))
    store.add_comment(reply(comments[1], hours=5))
    again = client.get("/api/threads/hello", headers={"If-None-Match": etag})
    assert again.status_code == 304 and len(worked_out) == 1  # within the minute

    app.config["LISTENING_CACHE_SECONDS"] = 0  # the minute is over
    fresh = client.get("/api/threads/hello", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and len(worked_out) == 2
    assert fresh.headers["ETag"] != etag
    assert fresh.get_json()["listening"] == {"site_share": 20, "site_reply_min": 240,
                                             "site_reply_h": 4, "site_reply_days": 1}
    unchanged = client.get("/api/threads/hello", headers={"If-None-Match": fresh.headers["ETag"]})
    assert unchanged.status_code == 304


def test_public_listening_off_hides_every_figure(service_config, store) -> None:
    from comments_service import create_app

    app = create_app({**service_config, "PUBLIC_LISTENING": "off"})
    client = app.test_client()
    for comment in (reader(n) for n in range(MIN_COMMENTS + 2)):
        store.add_comment(comment)
    assert client.get("/api/threads/hello").get_json()["listening"] is None  # no site_* either
    assert client.get("/api/public-export").get_json()["listening"] is None
    assert client.get("/api/listening").get_json() == {"listening": None}
    app.extensions["tellmemore.store"].close()
