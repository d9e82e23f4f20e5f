"""Signals (comments_service/signals.py): posting and replying announce what they stored; every
receiver hears it, and a receiver that fails loses nothing and is caught by the suite."""

from __future__ import annotations

import logging

import pytest
from blinker import Namespace

from comments_service import signals
from comments_service.comments import replying
from tests.conftest import ReceiverErrors

READER = {"name": "Rosa", "body": "Could you write about tags?", "email": "rosa@example.org",
          "notify": True}
heard: list[tuple[str, str]] = []


def remember_comment(store, comment) -> None:
    heard.append(("comment", comment.id))


def remember_reply(store, comment, reply) -> None:
    heard.append(("reply", f"{reply.id} on {comment.id}"))


def broken_receiver(store, comment) -> None:
    raise RuntimeError("this receiver is broken")


@pytest.fixture
def listening():
    heard.clear()
    signals.comment_stored.connect(remember_comment)
    signals.reply_stored.connect(remember_reply)
    yield heard
    signals.comment_stored.disconnect(remember_comment)
    signals.reply_stored.disconnect(remember_reply)


def test_posting_and_replying_announce_what_was_stored(app, client, author, listening):
    answer = client.post("/api/threads/hello/comments", json=READER)
    assert answer.status_code == 201
    comment_id = answer.get_json()["comment"]["id"]
    assert listening == [("comment", comment_id)]
    with app.test_request_context():
        reply = replying.reply(app.extensions["tellmemore.store"], comment_id, author,
                               "Rosa, tags are next: thank you.")
    assert listening[-1] == ("reply", f"{reply.id} on {comment_id}")


@pytest.mark.receiver_errors_expected
def test_a_failing_receiver_loses_nothing_and_the_others_still_hear(app, client, listening,
                                                                      caplog):
    signals.comment_stored.connect(broken_receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="comments_service.signals"):
            answer = client.post("/api/threads/hello/comments", json=READER)
    finally:
        signals.comment_stored.disconnect(broken_receiver)
    assert answer.status_code == 201
    comment_id = answer.get_json()["comment"]["id"]
    assert app.extensions["tellmemore.store"].get_comment(comment_id) is not None
    assert ("comment", comment_id) in listening
    assert "broken_receiver failed on comment-stored" in caplog.text


@pytest.mark.receiver_errors_expected
def test_errors_logged_inside_a_receiver_are_the_ones_the_suite_catches(store):
    handler = ReceiverErrors()
    logging.getLogger().addHandler(handler)
    try:
        logging.getLogger("outside").error("not a receiver's")
        probe = Namespace().signal("probe")
        probe.connect(broken_receiver)
        signals.announce(probe, store, comment=None)
    finally:
        logging.getLogger().removeHandler(handler)
    assert len(handler.found) == 1 and "broken_receiver" in handler.found[0]
