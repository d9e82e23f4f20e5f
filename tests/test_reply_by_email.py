"""Replies by email against a real IMAP server: the tests start Debian's Dovecot on loopback
(tests/dovecot.py), deliver the author's replies into a mailbox of their own with IMAP APPEND,
and let the reply worker (comments_service/inbox/) read them, as `flask poll-replies` or the
worker thread would. No IMAP mocks. The worker is killed in the middle in a process of its own
to show each reply is posted exactly once. Both store backends.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from comments_service import create_app
from comments_service.comments import replying
from comments_service.inbox.worker import WORKER_EXTENSION, PollReport, poll_once
from comments_service.models import CommentState, IncomingStatus
from comments_service.outbox.queue import SENDER_EXTENSION
from comments_service.outbox.smtp import build_email
from comments_service.tally.filing import file_comment
from comments_service.tally.groups import MOVED_OUT
from tests.conftest import AUTHOR_EMAIL, AuthActions
from tests.dovecot import NOT_INSTALLED, Dovecot, dovecot_binary
from tests.servers import free_port
from tests.test_notify import SmtpServer

pytestmark = pytest.mark.both_stores

FIXTURES = Path(__file__).parent / "fixtures" / "replies"
ROOT = Path(__file__).resolve().parent.parent
READER = "rosa@reader.test"
REPLY_BASE = "replies@blog.test"
EXPECTED = ("Rosa, the queue per article is planned: I will write about it next week.\n\n"
            "It will show each article's waiting comments first, oldest on top.")


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    binary = dovecot_binary()
    if binary is None:
        pytest.skip(NOT_INSTALLED)
    server = Dovecot(binary)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def mailbox(dovecot_server: Dovecot) -> str:
    """A fresh, empty mailbox on the server; its user name."""
    return dovecot_server.mailbox()[0]


@pytest.fixture
def mail_config(service_config: dict[str, object], dovecot_server: Dovecot,
                mailbox: str) -> dict[str, object]:
    return {
        **service_config,
        "REPLY_MAIL_IMAP_URL": dovecot_server.url(),
        "REPLY_MAIL_USERNAME": mailbox,
        "REPLY_MAIL_PASSWORD": dovecot_server.password,
        "REPLY_MAIL_ADDRESS": REPLY_BASE,
        "REPLY_MAIL_CA_FILE": str(dovecot_server.cert),
        "REPLY_MAIL_THREAD": False,
        "REPLY_MAIL_TIMEOUT_SECONDS": 10,
        "REPLY_MAIL_LEASE_SECONDS": 1,
        "PUBLIC_URL": "http://comments.test",
        "AUTHOR_NOTIFY": "immediately",
        "SPAM_CHECKS": "off",
        "MAIL_DOUBLE_OPT_IN": False,
    }


@pytest.fixture
def mail_app(mail_config: dict[str, object]) -> Iterator[Flask]:
    """The service with replies by email on, and the author (AUTHOR_EMAIL) in its store."""
    app = create_app(mail_config)
    AuthActions(app.test_client).add_author()
    yield app
    worker = app.extensions.get(WORKER_EXTENSION)
    if worker is not None:
        worker.stop()
    app.extensions["tellmemore.store"].close()


def store_of(app: Flask):
    return app.extensions["tellmemore.store"]


def post_comment(app: Flask, body: str = "Could the queue be per article? I lose track of "
                 "older posts.", name: str = "Rosa") -> str:
    response = app.test_client().post("/api/threads/hello/comments", json={
        "name": name, "body": body, "email": READER, "notify": True})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["comment"]["id"]


def notification_reply_to(app: Flask, comment_id: str) -> str:
    """The Reply-To of the new-comment mail the author got about ``comment_id``, as sent."""
    for message in store_of(app).list_messages(None, limit=500):
        if message.kind == "new_comment" and (message.dedupe_key or "").startswith(
                f"new_comment:{comment_id}:"):
            return str(build_email(message)["Reply-To"])
    raise AssertionError(f"no notification about {comment_id}")


def client_reply(fixture: str, to: str, sender: str = AUTHOR_EMAIL,
                 message_id: str | None = None) -> str:
    raw = (FIXTURES / fixture).read_text(encoding="utf-8")
    raw = raw.replace("%%FROM%%", sender).replace("%%TO%%", to)
    if message_id is not None:
        lines = raw.split("\n")
        raw = "\n".join(f"Message-ID: {message_id}" if line.lower().startswith("message-id:")
                        else line for line in lines)
    return raw


def plain_reply(to: str, text: str, *, sender: str = AUTHOR_EMAIL,
                message_id: str | None = None) -> str:
    """A plain reply as most clients send one: the text, then the quote."""
    return (f"From: Ada <{sender}>\nTo: {to}\nSubject: Re: your comment\n"
            f"Message-ID: {message_id or f'<{time.time_ns()}@client.test>'}\n"
            "Date: Mon, 7 Dec 2026 11:02:03 +0100\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n\n"
            f"{text}\n\nOn Mon, 7 Dec 2026 at 10:01, Test blog <no-reply@comments.test> "
            "wrote:\n> Rosa commented on \"Hello\":\n>\n> Could the queue be per article?\n")


def poll(app: Flask) -> PollReport:
    with app.app_context():
        return poll_once(store_of(app), app.config)


def author_replies_to(app: Flask, comment_id: str) -> list:
    comment = store_of(app).get_comment(comment_id)
    return [other for other in store_of(app).thread_comments(comment.thread)
            if other.parent == comment_id and other.is_author]


def reader_notifications(app: Flask) -> list:
    return [message for message in store_of(app).list_messages(None, limit=500)
            if message.kind == "reply" and message.to == READER]


# --- the path of one reply ------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["gmail_plain.eml", "outlook_html.eml",
                                     "apple_mail_html.eml", "thunderbird_plain.eml"])
def test_a_reply_from_a_mail_client_is_posted_without_its_quote(
        mail_app: Flask, dovecot_server: Dovecot, mailbox: str, fixture: str) -> None:
    comment_id = post_comment(mail_app)
    reply_to = notification_reply_to(mail_app, comment_id)
    assert reply_to.startswith("replies+") and reply_to.endswith("@blog.test")
    dovecot_server.append(mailbox, client_reply(fixture, reply_to))

    report = poll(mail_app)

    assert (report.read, report.ignored, report.posted, report.error) == (
        1, 0, {"posted": 1}, None)
    [answer] = author_replies_to(mail_app, comment_id)
    assert answer.body == EXPECTED and answer.name == "Ada" and answer.public
    assert "wrote:" not in answer.html and "lose track" not in answer.html
    comment = store_of(mail_app).get_comment(comment_id)
    assert comment.state is CommentState.REPLIED and comment.public
    # Filed as "#request queue per article" said; the line is not in the reply.
    assert comment.request_filed
    assert store_of(mail_app).request_groups()[comment.request].label == "queue per article"
    # The reader is told, as for a reply from the moderation page.
    [notice] = reader_notifications(mail_app)
    assert "next week" in notice.text
    assert dovecot_server.flags(mailbox) == ["\\Seen"]
    # Nothing is posted twice: a second poll finds the message read and recorded.
    assert poll(mail_app).read == 0
    assert len(author_replies_to(mail_app, comment_id)) == 1


def test_the_issue_scenario_from_the_mail_sink_to_the_public_thread_within_one_poll(
        mail_config: dict[str, object], dovecot_server: Dovecot, mailbox: str) -> None:
    """Issue 22's "done when": both threads running, the notification is taken from a real
    SMTP server, answered as Apple Mail would (quote included), and within one poll the reply
    is public under the comment without the quote, and the reader's mail reaches the server."""
    smtp = SmtpServer(free_port())
    smtp.start()
    app = create_app({**mail_config, "REPLY_MAIL_THREAD": True, "REPLY_MAIL_POLL_SECONDS": 0.5,
                      "MAIL_SENDER_THREAD": True, "MAIL_POLL_SECONDS": 0.1,
                      "SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port,
                      "SMTP_TIMEOUT_SECONDS": 5})
    try:
        AuthActions(app.test_client).add_author()
        comment_id = post_comment(app)  # the first request starts both threads
        smtp.mailbox.wait_for(1)
        [notification] = smtp.mailbox.messages
        assert notification["To"] == AUTHOR_EMAIL
        dovecot_server.append(mailbox, client_reply("apple_mail_plain.eml",
                                                    str(notification["Reply-To"])))
        started = time.monotonic()
        client = app.test_client()
        while time.monotonic() - started < 10:
            thread = client.get("/api/threads/hello").get_json()["comments"]
            if any(item.get("replies") for item in thread):
                break
            time.sleep(0.05)
        within = time.monotonic() - started
        [item] = client.get("/api/threads/hello").get_json()["comments"]
        [answer] = item["replies"]
        assert item["id"] == comment_id
        # One poll, plus the time to read and post on a machine other tests load too.
        assert within < 0.5 + 5.0, within
        assert "next week" in answer["html"]
        assert "wrote:" not in answer["html"] and "lose track" not in answer["html"]
        assert "Sent from my iPhone" not in answer["html"]
        smtp.mailbox.wait_for(2)
        reader_mail = smtp.mailbox.messages[1]
        assert reader_mail["To"] == READER and "next week" in reader_mail.get_body(
            ("plain",)).get_content()
    finally:
        app.extensions[WORKER_EXTENSION].stop()
        app.extensions[SENDER_EXTENSION].stop()
        store_of(app).close()
        smtp.stop()


def test_starttls_works_as_well(mail_config: dict[str, object], dovecot_server: Dovecot,
                                mailbox: str) -> None:
    app = create_app({**mail_config, "REPLY_MAIL_IMAP_URL": dovecot_server.url("starttls")})
    try:
        AuthActions(app.test_client).add_author()
        comment_id = post_comment(app)
        dovecot_server.append(mailbox, plain_reply(
            notification_reply_to(app, comment_id), "Rosa, per article it is."))
        assert poll(app).posted == {"posted": 1}
        assert [reply.body for reply in author_replies_to(app, comment_id)] == [
            "Rosa, per article it is."]
    finally:
        store_of(app).close()


# --- what is not posted -------------------------------------------------------------------------


def test_mail_not_from_the_author_or_without_a_genuine_token_is_left_unread_and_counted(
        mail_app: Flask, dovecot_server: Dovecot, mailbox: str) -> None:
    comment_id = post_comment(mail_app)
    reply_to = notification_reply_to(mail_app, comment_id)
    local, _, domain = reply_to.partition("@")
    tampered = f"{local[:-1]}{'a' if local[-1] != 'a' else 'b'}@{domain}"
    other_comment = f"replies+c{local.split('+')[1][1:5]}xx.{'a' * 24}@{domain}"
    dovecot_server.append(mailbox, plain_reply(reply_to, "Rosa, I agree with you.",
                                               sender="mallory@evil.test"))
    dovecot_server.append(mailbox, plain_reply(tampered, "Rosa, tampered token."))
    dovecot_server.append(mailbox, plain_reply(other_comment, "Rosa, forged token."))
    dovecot_server.append(mailbox, plain_reply(REPLY_BASE, "Rosa, no token at all."))

    report = poll(mail_app)

    assert (report.read, report.ignored, report.posted) == (4, 4, {})
    assert author_replies_to(mail_app, comment_id) == []
    assert store_of(mail_app).get_comment(comment_id).state is CommentState.AWAITING_REPLY
    assert dovecot_server.flags(mailbox) == ["", "", "", ""]  # all left unread
    assert poll(mail_app).ignored == 0  # counted once, not at every poll
    counts = store_of(mail_app).incoming_mail_counts()
    assert counts[IncomingStatus.IGNORED] == 4 and counts[IncomingStatus.POSTED] == 0
    page = AuthActions(mail_app.test_client).login().get("/moderate/outbox/")
    section = BeautifulSoup(page.get_data(as_text=True), "html.parser").select_one(
        "#replies-by-mail")
    assert section.select_one("[data-ignored]")["data-ignored"] == "4"
    assert "4 left unread in the mailbox" in section.get_text()
    assert "from ma***@evil.test: Not from an author's address." in section.get_text()


def test_a_reply_to_a_comment_answered_meanwhile_is_not_posted(
        mail_app: Flask, dovecot_server: Dovecot, mailbox: str) -> None:
    comment_id = post_comment(mail_app)
    reply_to = notification_reply_to(mail_app, comment_id)
    author = store_of(mail_app).author_by_email(AUTHOR_EMAIL)
    with mail_app.test_request_context():
        replying.reply(store_of(mail_app), comment_id, author, "Rosa, answered on the page.")
    dovecot_server.append(mailbox, plain_reply(reply_to, "Rosa, and again by mail."))

    assert poll(mail_app).ignored == 1
    assert [reply.body for reply in author_replies_to(mail_app, comment_id)] == [
        "Rosa, answered on the page."]
    assert dovecot_server.flags(mailbox) == [""]


# --- filing --------------------------------------------------------------------------------------


def test_request_matches_an_existing_request_by_label_and_none_files_as_not_a_request(
        mail_app: Flask, dovecot_server: Dovecot, mailbox: str) -> None:
    store = store_of(mail_app)
    first = post_comment(mail_app, "A queue per article, please.")
    filed = file_comment(store, first, "new", "Queue per article")
    second = post_comment(mail_app, "Could the queue be split by article?", name="Sam")
    third = post_comment(mail_app, "Lovely photos of the harbour.", name="Kim")
    dovecot_server.append(mailbox, plain_reply(
        notification_reply_to(mail_app, second),
        "Sam, splitting the queue by article is planned.\n#request  queue per ARTICLE "))
    dovecot_server.append(mailbox, plain_reply(
        notification_reply_to(mail_app, third), "#none\nKim, the harbour at dawn, yes."))

    assert poll(mail_app).posted == {"posted": 2}

    assert store.get_comment(second).request == filed.request.id
    assert store.get_comment(second).request_filed
    assert store.get_comment(third).request == MOVED_OUT
    bodies = {reply.parent: reply.body for reply in store.author_replies()}
    assert bodies[second] == "Sam, splitting the queue by article is planned."
    assert bodies[third] == "Kim, the harbour at dawn, yes."


# --- the nudge -----------------------------------------------------------------------------------


def held_mail(app: Flask):
    [message] = [message for message in store_of(app).list_messages(None, limit=500)
                 if message.kind == "reply_held"]
    return message


def test_a_reply_the_nudge_flags_is_held_until_the_author_answers_yes(
        mail_app: Flask, dovecot_server: Dovecot, mailbox: str) -> None:
    comment_id = post_comment(mail_app)
    dovecot_server.append(mailbox, plain_reply(notification_reply_to(mail_app, comment_id),
                                               "Thanks!"))

    assert poll(mail_app).posted == {"held": 1}
    assert author_replies_to(mail_app, comment_id) == []
    assert store_of(mail_app).get_comment(comment_id).state is CommentState.AWAITING_REPLY
    message = held_mail(mail_app)
    assert message.to == AUTHOR_EMAIL
    assert "> Thanks!" in message.text and "yes" in message.text
    assert f"http://comments.test/moderate/comments/{comment_id}" in message.text
    held_reply_to = str(build_email(message)["Reply-To"])
    assert held_reply_to.startswith("replies+h")

    # The author answers the held mail with "yes" (its quote below, as clients do).
    dovecot_server.append(mailbox, plain_reply(held_reply_to, "Yes"))
    assert poll(mail_app).posted == {"posted": 2}  # the "yes" and the held reply
    assert [reply.body for reply in author_replies_to(mail_app, comment_id)] == ["Thanks!"]
    assert len(reader_notifications(mail_app)) == 1
    # One mail back per held reply: polling again queues no other.
    poll(mail_app)
    held_mail(mail_app)


def test_another_text_in_answer_to_a_held_reply_replaces_it(
        mail_app: Flask, dovecot_server: Dovecot, mailbox: str) -> None:
    comment_id = post_comment(mail_app)
    dovecot_server.append(mailbox, plain_reply(notification_reply_to(mail_app, comment_id),
                                               "Great point!"))
    poll(mail_app)
    held_reply_to = str(build_email(held_mail(mail_app))["Reply-To"])
    dovecot_server.append(mailbox, plain_reply(
        held_reply_to, "Rosa, a queue per article is what I will build next."))

    assert poll(mail_app).posted == {"posted": 1}
    assert [reply.body for reply in author_replies_to(mail_app, comment_id)] == [
        "Rosa, a queue per article is what I will build next."]
    counts = store_of(mail_app).incoming_mail_counts()
    assert (counts[IncomingStatus.REPLACED], counts[IncomingStatus.POSTED]) == (1, 1)
    # A late "yes" to the replaced reply posts nothing more.
    dovecot_server.append(mailbox, plain_reply(held_reply_to, "yes"))
    assert poll(mail_app).ignored == 1
    assert len(author_replies_to(mail_app, comment_id)) == 1


# --- exactly once, whatever dies when ------------------------------------------------------------

# Runs one pass of the worker in a process of its own that stops, at the named point, to wait
# to be killed: after writing a marker file, it sleeps. The pass is real (IMAP, store); only
# the function at that point is wrapped.
CRASHING_WORKER = """
import json, sys, time
from pathlib import Path

config = json.loads(Path(sys.argv[1]).read_text())
point, marker = sys.argv[2], Path(sys.argv[3])

from comments_service import create_app
from comments_service.comments import replying
from comments_service.inbox import imap, posting, worker


def stop_here(*args, **kwargs):
    marker.write_text(point)
    time.sleep(120)


if point == "recorded-not-seen":
    imap.Mailbox.mark_seen = stop_here
elif point == "seen-not-posted":
    posting.post_record = stop_here
elif point == "reply-stored-not-finished":
    replying.finish_reply = stop_here
app = create_app(config)
with app.app_context():
    worker.poll_once(app.extensions["tellmemore.store"], app.config)
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["recorded-not-seen", "seen-not-posted",
                                   "reply-stored-not-finished"])
def test_killing_the_worker_between_reading_and_posting_never_loses_or_doubles_a_reply(
        mail_app: Flask, mail_config: dict[str, object], dovecot_server: Dovecot,
        mailbox: str, tmp_path: Path, point: str) -> None:
    comment_id = post_comment(mail_app)
    dovecot_server.append(mailbox, client_reply(
        "outlook_plain.eml", notification_reply_to(mail_app, comment_id)))
    settings, marker = tmp_path / "settings.json", tmp_path / "reached"
    settings.write_text(json.dumps(mail_config))
    log = tmp_path / "worker.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", CRASHING_WORKER, str(settings), point, str(marker)],
            cwd=ROOT, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the worker never reached " + point
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)

    store = store_of(mail_app)
    [record] = store.list_incoming_mail()
    assert record.status is IncomingStatus.PENDING
    stored = author_replies_to(mail_app, comment_id)
    assert len(stored) == (1 if point == "reply-stored-not-finished" else 0)
    assert store.get_comment(comment_id).state is CommentState.AWAITING_REPLY
    assert dovecot_server.flags(mailbox) == (
        [""] if point == "recorded-not-seen" else ["\\Seen"])

    time.sleep(1.1)  # the dead worker's lease (REPLY_MAIL_LEASE_SECONDS) runs out
    report = poll(mail_app)

    assert report.read == 0 and report.posted == {"posted": 1}
    [answer] = author_replies_to(mail_app, comment_id)
    assert answer.body == ("Rosa, the queue per article is planned: I will write about it "
                           "next week.\n\nIt will show each article's waiting comments "
                           "first, oldest on top.")
    assert store.get_comment(comment_id).state is CommentState.REPLIED
    assert len(reader_notifications(mail_app)) == 1
    assert dovecot_server.flags(mailbox) == ["\\Seen"]
    assert store.get_incoming_mail(record.key).status is IncomingStatus.POSTED
    assert poll(mail_app).posted == {}


# --- the command ---------------------------------------------------------------------------------


def test_poll_replies_says_what_it_did_and_fails_on_a_wrong_password(
        mail_config: dict[str, object], dovecot_server: Dovecot, mailbox: str) -> None:
    app = create_app(mail_config)
    wrong = create_app({**mail_config, "REPLY_MAIL_PASSWORD": "not-the-password"})
    try:
        result = app.test_cli_runner().invoke(args=["poll-replies"])
        assert result.exit_code == 0, result.output
        assert "0 read, 0 ignored; nothing posted" in result.output
        result = wrong.test_cli_runner().invoke(args=["poll-replies"])
        assert result.exit_code == 1
        assert "refused the sign-in" in result.output
    finally:
        store_of(app).close()
        store_of(wrong).close()
