"""The public listening figures (#22, item 3): on each article how many of its comments the
author answered individually, on the site the share answered and the median time to reply
over the last 90 days; nothing about fewer than 10 comments; PUBLIC_LISTENING=off hides them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from comments_service.listening import MIN_COMMENTS, article_listening, site_listening
from comments_service.models import Comment, CommentState

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


def test_the_thread_the_export_and_the_listening_route_carry_them(app, client, store) -> None:
    store.add_comment(reader(0))
    for number in range(1, MIN_COMMENTS):
        store.add_comment(reader(number, state=CommentState.AWAITING_REPLY))
    store.add_comment(reply(store.get_comment("r0"), hours=3))
    thread = client.get("/api/threads/hello").get_json()
    assert thread["listening"] == {"received": MIN_COMMENTS, "answered": 1}
    assert client.get("/api/threads/second").get_json()["listening"] is None
    export = client.get("/api/public-export").get_json()
    assert export["threads"]["hello"]["listening"]["answered"] == 1
    assert export["listening"]["received"] == MIN_COMMENTS
    assert client.get("/api/listening").get_json()["listening"]["answered"] == 1


def test_public_listening_off_hides_every_figure(service_config, store) -> None:
    from comments_service import create_app

    app = create_app({**service_config, "PUBLIC_LISTENING": "off"})
    client = app.test_client()
    for comment in (reader(n) for n in range(MIN_COMMENTS + 2)):
        store.add_comment(comment)
    assert client.get("/api/threads/hello").get_json()["listening"] is None
    assert client.get("/api/public-export").get_json()["listening"] is None
    assert client.get("/api/listening").get_json() == {"listening": None}
    app.extensions["tellmemore.store"].close()
