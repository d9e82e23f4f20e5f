"""Email follow-up against a real SMTP server (aiosmtpd on loopback): what is sent and how it
looks, retries, concurrent senders, unsubscribe and double opt-in, abuse guards, the outbox
page, the sender thread and the send-mail command."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from bs4 import BeautifulSoup

from comments_service import create_app
from comments_service.config import ConfigError
from comments_service.mail import notify
from comments_service.mail.tokens import confirm_token, unsubscribe_token
from comments_service.models import (
    Author,
    Comment,
    CommentState,
    MailAddress,
    OutboxStatus,
    utc_now,
)
from comments_service.outbox.message import iso
from comments_service.outbox.queue import SENDER_EXTENSION, retry_message
from comments_service.outbox.sender import send_due

AUTHOR_EMAIL = "ada@blog.test"
READER = "rosa@example.org"
COMMENT = "The queue idea helped me a lot with my newsletter."
REPLY = "Rosa, a newsletter is a great place for a queue: which issue drew the most replies?"
PUBLIC = "http://comments.test"


# --- a real SMTP server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    """What the SMTP server received (kept across restarts of the server)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.lock = threading.Lock()
        self.refuse: set[str] = set()
        self.delay = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"

    @property
    def messages(self) -> list[email.message.EmailMessage]:
        with self.lock:
            return [message for _sender, _rcpts, message in self.received]

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} mails arrived"
            time.sleep(0.02)


class SmtpServer:
    def __init__(self, port: int, **options: object) -> None:
        self.port, self.options = port, options
        self.mailbox = Mailbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port,
                                     **self.options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> SmtpServer:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail_config(service_config, smtp) -> dict[str, object]:
    return {
        **service_config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp.port,
        "SMTP_FROM": "blog@blog.test", "PUBLIC_URL": PUBLIC, "SMTP_TIMEOUT_SECONDS": 5,
        "SMTP_RETRY_BASE_SECONDS": 0, "MAIL_DOUBLE_OPT_IN": False, "AUTHOR_NOTIFY": "off",
        "SPAM_CHECKS": "off", "MAIL_SENDER_THREAD": False,
    }


@pytest.fixture
def app(mail_config):
    application = create_app(mail_config)
    yield application
    application.extensions["tellmemore.store"].close()


def store(app):
    return app.extensions["tellmemore.store"]


def send(app, **options):
    with app.app_context():
        return send_due(store(app), app.config, **options)


def queue(app, to=READER, **fields):
    values = {"subject": "Hello", "text": "Plain words.", **fields}
    with app.test_request_context():
        return notify.queue_message(store(app), to=to, **values)


def outbox(app, *statuses):
    return store(app).list_messages(statuses or None, limit=1000)


# --- the author, readers and replies ------------------------------------------------------------


def token_of(response) -> str:
    page = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    return page.find("input", {"name": "csrf_token"})["value"]


def post_reader(client, **fields) -> str:
    payload = {"name": "Rosa", "body": COMMENT, "email": READER, "notify": True, **fields}
    response = client.post("/api/threads/hello/comments", json=payload)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["comment"]["id"]


def reply(client, comment_id: str, body: str = REPLY) -> None:
    token = token_of(client.get(f"/moderate/comments/{comment_id}"))
    response = client.post(f"/moderate/comments/{comment_id}/reply",
                           data={"csrf_token": token, "body": body, "intent": "reply"})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


# --- delivery and content -----------------------------------------------------------------------


def test_a_reply_reaches_the_reader_with_both_parts_and_the_unsubscribe_headers(
        app, author_client, smtp):
    comment_id = post_reader(author_client)
    reply(author_client, comment_id)
    # Stored before any attempt to send it; nothing sent on the request path.
    [queued] = outbox(app)
    assert (queued.status, queued.kind, queued.to) == (OutboxStatus.QUEUED, "reply", READER)
    assert smtp.mailbox.messages == []

    report = send(app)
    assert report.sent == 1
    [(envelope_from, recipients, message)] = smtp.mailbox.received
    assert (envelope_from, recipients) == ("blog@blog.test", [READER])
    assert message["From"].addresses[0].display_name == "Test blog"
    assert message["From"].addresses[0].addr_spec == "blog@blog.test"
    assert message["To"] == READER
    assert message["Subject"] == "Ada replied to your comment on “Hello”"
    assert message["Message-ID"] == f"<{queued.id}@blog.test>"
    assert message["Auto-Submitted"] == "auto-generated"
    unsubscribe = re.fullmatch(r"<(http://comments\.test/unsubscribe/[\w.-]+)>",
                               message["List-Unsubscribe"])
    assert unsubscribe, message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    reply_id = next(c.id for c in store(app).all_comments() if c.is_author)
    link = f"http://blog.test/hello/#comment-{reply_id}"
    text, html = parts(message)
    assert REPLY in text
    assert f"> {COMMENT}" in text  # their own comment, quoted
    assert link in text and unsubscribe.group(1) in text
    page = BeautifulSoup(html, "html.parser")
    assert page.find("a", href=link)
    assert page.find("a", href=unsubscribe.group(1))
    assert COMMENT in page.find("blockquote").get_text()
    assert "Test blog" in page.get_text()
    sent = store(app).get_message(queued.id)
    assert (sent.status, sent.attempts, sent.claimed_by) == (OutboxStatus.SENT, 1, None)
    assert sent.sent_at


def test_no_mail_for_readers_who_did_not_ask(app, author_client, smtp):
    reply(author_client, post_reader(author_client, notify=False))
    reply(author_client, post_reader(author_client, email=None, notify=False,
                                     body="Newsletters and queues, a second thought."),
          "Rosa, your second thought on newsletters: which queue would you try first?")
    assert outbox(app) == []


def test_html_in_names_and_subjects_is_escaped(app, smtp):
    queue(app, subject="<b>bold</b>", text="<script>alert(1)</script>")
    send(app)
    _text, html = parts(smtp.mailbox.messages[0])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<title>&lt;b&gt;bold&lt;/b&gt;</title>" in html


# --- the server down, retries and back-off ------------------------------------------------------


def test_messages_wait_while_the_server_is_down_and_all_go_once_it_is_back(app, smtp):
    smtp.stop()
    ids = {queue(app, subject=f"Message {number}").id for number in range(4)}
    report = send(app)
    assert (report.sent, report.retried) == (0, 4)
    for message in outbox(app):
        assert message.status is OutboxStatus.QUEUED
        assert message.attempts == 1
        assert "Could not connect" in message.last_error
    smtp.start()
    assert send(app).sent == 4
    assert send(app).total == 0
    received = Counter(message["Message-ID"] for message in smtp.mailbox.messages)
    assert sorted(received) == sorted(f"<{message_id}@blog.test>" for message_id in ids)
    assert set(received.values()) == {1}


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_each_failed_attempt_is_recorded_and_the_wait_doubles(mail_config, smtp):
    smtp.stop()
    app = create_app({**mail_config, "SMTP_RETRY_BASE_SECONDS": 60, "SMTP_MAX_ATTEMPTS": 3})
    message = queue(app)
    clock = Clock()
    send(app, now=clock)
    first = store(app).get_message(message.id)
    assert first.attempts == 1
    assert first.next_attempt_at == iso(clock.now + timedelta(seconds=60))
    clock.now += timedelta(seconds=30)
    assert send(app, now=clock).total == 0  # not due yet
    clock.now += timedelta(seconds=31)
    send(app, now=clock)
    second = store(app).get_message(message.id)
    assert second.next_attempt_at == iso(clock.now + timedelta(seconds=120))
    clock.now += timedelta(seconds=121)
    assert send(app, now=clock).failed == 1
    last = store(app).get_message(message.id)
    assert last.status is OutboxStatus.FAILED
    assert last.last_error.startswith("Gave up after 3 attempts: Could not connect")
    assert [line.split(" ", 3)[1:3] for line in last.errors] == [
        ["attempt", "1:"], ["attempt", "2:"], ["attempt", "3:"]]
    assert all("ConnectionRefusedError" in line for line in last.errors)
    app.extensions["tellmemore.store"].close()


def test_a_refused_recipient_fails_at_once_with_the_servers_answer(app, smtp):
    smtp.mailbox.refuse.add("nobody@example.org")
    refused = queue(app, to="nobody@example.org")
    fine = queue(app)
    report = send(app)
    assert (report.sent, report.failed) == (1, 1)
    failed = store(app).get_message(refused.id)
    assert failed.status is OutboxStatus.FAILED and failed.attempts == 1
    assert "550 5.1.1 No such mailbox here" in failed.last_error
    assert store(app).get_message(fine.id).status is OutboxStatus.SENT


def test_a_sender_that_died_mid_send_leaves_a_lease_that_runs_out(app, smtp):
    message = queue(app)
    clock = Clock()
    lease_end = iso(clock.now + timedelta(seconds=300))
    [_claimed] = store(app).claim_messages("dead", iso(clock.now), lease_end, 10)
    assert send(app, now=clock).total == 0  # the lease still runs
    clock.now += timedelta(seconds=301)
    assert send(app, now=clock).sent == 1
    sent = store(app).get_message(message.id)
    assert (sent.status, sent.attempts) == (OutboxStatus.SENT, 2)
    assert len(smtp.mailbox.messages) == 1


# --- several senders at once --------------------------------------------------------------------


def test_senders_in_threads_deliver_each_message_exactly_once(app, smtp):
    smtp.mailbox.delay = 0.005
    ids = {queue(app, to=f"reader{number}@example.org").id for number in range(24)}
    barrier = threading.Barrier(3)
    reports = []

    def run() -> None:
        barrier.wait()
        reports.append(send(app))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report.sent for report in reports) == 24
    received = Counter(message["Message-ID"] for message in smtp.mailbox.messages)
    assert set(received) == {f"<{message_id}@blog.test>" for message_id in ids}
    assert set(received.values()) == {1}


def test_send_mail_commands_in_two_processes_deliver_each_message_once(app, mail_config, smtp,
                                                                        tmp_path):
    ids = {queue(app, to=f"reader{number}@example.org").id for number in range(16)}
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("TELLMEMORE_")}
    for name in ("MANIFEST", "STORE_PATH", "SECRET_KEY", "SMTP_HOST", "SMTP_FROM",
                 "PUBLIC_URL"):
        environment[f"TELLMEMORE_{name}"] = str(mail_config[name])
    environment.update({
        "TELLMEMORE_INSTANCE_PATH": str(tmp_path / "instance"),
        "TELLMEMORE_SMTP_PORT": str(smtp.port), "TELLMEMORE_AUTHOR_NOTIFY": "off",
        "TELLMEMORE_MAIL_SENDER_THREAD": "false",
    })
    processes = [subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "comments_service", "send-mail"],
        env=environment, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    sent = [int(re.search(r"(\d+) sent", stdout).group(1)) for stdout, _ in outputs]
    assert sum(sent) == 16
    received = Counter(message["Message-ID"] for message in smtp.mailbox.messages)
    assert set(received) == {f"<{message_id}@blog.test>" for message_id in ids}
    assert set(received.values()) == {1}


# --- unsubscribe --------------------------------------------------------------------------------


def unsubscribe_path(message: email.message.EmailMessage) -> str:
    return urlsplit(message["List-Unsubscribe"].strip("<>")).path


def test_unsubscribe_confirm_page_then_post_then_no_more_mail(app, author_client, smtp):
    reply(author_client, post_reader(author_client))
    send(app)
    path = unsubscribe_path(smtp.mailbox.messages[0])
    visitor = app.test_client()
    page = visitor.get(path)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    form = BeautifulSoup(page.get_data(as_text=True), "html.parser").find("form")
    assert form["method"] == "post" and form.find("button")
    assert form.find("input", {"name": "csrf_token"}) is None  # the signed link is the proof
    assert "ro***@example.org" in page.get_data(as_text=True)
    assert store(app).get_mail_address(READER) is None  # a GET changes nothing

    done = visitor.post(path)
    assert done.status_code == 200
    assert "You are unsubscribed" in done.get_data(as_text=True)
    assert store(app).get_mail_address(READER).unsubscribed_at

    # Never again: not queued for a new reply, nor by anyone calling queue_message.
    reply(author_client, post_reader(author_client, body="Another thought on newsletters."),
          "Rosa, another thought deserves another newsletter experiment: try one?")
    assert queue(app) is None
    send(app)
    assert len(smtp.mailbox.messages) == 1
    assert "You are unsubscribed" in visitor.get(path).get_data(as_text=True)


def test_one_click_unsubscribe_post_needs_no_confirmation(app, smtp):
    queue(app)
    queue(app, subject="Waiting")
    send(app, limit=1)
    path = unsubscribe_path(smtp.mailbox.messages[0])
    response = app.test_client().post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert store(app).get_mail_address(READER).unsubscribed_at
    # What was still waiting for that address is discarded, not sent.
    assert send(app).sent == 0
    assert [message.status for message in outbox(app)].count(OutboxStatus.DISCARDED) == 1
    assert len(smtp.mailbox.messages) == 1


def test_the_sender_checks_again_just_before_sending(app, smtp):
    message = queue(app)
    # Recorded by another process, which has not discarded this message.
    store(app).update_mail_address(READER, lambda record: replace(record,
                                                                  unsubscribed_at=utc_now()))
    report = send(app)
    assert (report.sent, report.discarded) == (0, 1)
    assert store(app).get_message(message.id).status is OutboxStatus.DISCARDED
    assert smtp.mailbox.messages == []


def test_a_forged_or_damaged_link_does_nothing(app):
    client = app.test_client()
    forged = unsubscribe_token("another-key", READER)
    for path in (f"/unsubscribe/{forged}", "/unsubscribe/garbage", "/confirm/garbage"):
        assert client.get(path).status_code == 404
        assert client.post(path).status_code == 404
    assert store(app).get_mail_address(READER) is None


# --- double opt-in ------------------------------------------------------------------------------


def test_the_first_reply_waits_for_the_reader_to_confirm_the_address(mail_config, smtp, auth):
    app = create_app({**mail_config, "MAIL_DOUBLE_OPT_IN": True})
    client = auth.for_app(app).login()
    reply(client, post_reader(client))
    reply(client, post_reader(client, body="And my newsletter has a queue too now."),
          "Rosa, a queue in your newsletter: which reader answered first?")
    assert sorted(message.status for message in outbox(app)) == [
        OutboxStatus.HELD, OutboxStatus.HELD, OutboxStatus.QUEUED]
    assert send(app).sent == 1  # only the confirmation: one, for two held replies
    [confirmation] = smtp.mailbox.messages
    assert confirmation["Subject"] == "Confirm your email address for Test blog"
    assert confirmation["List-Unsubscribe"]
    text, html = parts(confirmation)
    link = re.search(r"http://comments\.test/confirm/\S+", text).group(0)
    assert BeautifulSoup(html, "html.parser").find("a", href=link)

    path = urlsplit(link).path
    page = client.get(path)
    assert page.status_code == 200
    assert store(app).get_mail_address(READER).confirmed_at is None  # GET: only the button
    confirmed = client.post(path)
    assert "Your address is confirmed" in confirmed.get_data(as_text=True)
    assert "2 waiting messages are on the way" in confirmed.get_data(as_text=True)
    assert send(app).sent == 2
    subjects = sorted(message["Subject"] for message in smtp.mailbox.messages[1:])
    assert subjects == ["Ada replied to your comment on “Hello”"] * 2
    # Confirmed for good: the next reply goes straight to the queue.
    reply(client, post_reader(client, body="Third newsletter note, about readers."),
          "Rosa, readers of newsletters answer queues: did your third note get replies?")
    assert sum(message.status is OutboxStatus.HELD for message in outbox(app)) == 0
    assert send(app).sent == 1
    app.extensions["tellmemore.store"].close()


def test_confirming_does_not_undo_an_unsubscribe(app):
    store(app).update_mail_address(READER, lambda record: replace(record,
                                                                  unsubscribed_at=utc_now()))
    path = f"/confirm/{confirm_token(app.config['SECRET_KEY'], READER)}"
    response = app.test_client().post(path)
    assert "This address is unsubscribed" in response.get_data(as_text=True)
    assert store(app).get_mail_address(READER).confirmed_at is None


# --- abuse guards -------------------------------------------------------------------------------


def test_line_breaks_in_names_and_subjects_never_make_a_header(mail_config, smtp, tmp_path):
    manifest = json.loads(Path(mail_config["MANIFEST"]).read_text())
    manifest["site_name"] = "Test blog\r\nBcc: evil@example.org"
    Path(mail_config["MANIFEST"]).write_text(json.dumps(manifest))
    app = create_app({**mail_config, "AUTHOR_NOTIFY": "immediately"})
    store(app).add_author(Author(id="author-1", name="Ada", email=AUTHOR_EMAIL,
                                 created=utc_now(), password_hash="x"))
    # The API refuses such a name …
    refused = app.test_client().post("/api/threads/hello/comments", json={
        "name": "Rosa\r\nBcc: x@y", "body": COMMENT})
    assert refused.status_code == 422
    # … but a comment can arrive by other doors (an import), and the mail must still be safe.
    comment = store(app).add_comment(Comment(
        id="injected", thread="hello", name="Rosa\r\nBcc: x@y", body=COMMENT,
        html=f"<p>{COMMENT}</p>", created=utc_now(), state=CommentState.AWAITING_REPLY,
        public=False))
    with app.test_request_context():
        [message] = notify.comment_posted(store(app), comment)
        assert notify.queue_message(store(app), to="rosa@example.org\r\nBcc: x@y",
                                    subject="Hi", text="Hi") is None
        notify.queue_message(store(app), to=READER, subject="Hi\r\nBcc: x@y\nCc: z@y\u2028X: 1",
                             text="Hi")
    assert message.subject == "New comment from Rosa Bcc: x@y on “Hello”"
    assert send(app).sent == 2
    for _sender, recipients, received in smtp.mailbox.received:
        assert received["Bcc"] is None and received["Cc"] is None and received["X"] is None
        assert len(recipients) == 1
        assert received["From"].addresses[0].addr_spec == "blog@blog.test"
        assert received["From"].addresses[0].display_name == "Test blog Bcc: evil@example.org"
    assert sorted(recipients for _sender, recipients, _message in smtp.mailbox.received) == [
        [AUTHOR_EMAIL], [READER]]
    assert smtp.mailbox.messages[1]["Subject"] == "Hi Bcc: x@y Cc: z@y X: 1"
    app.extensions["tellmemore.store"].close()


def test_at_most_the_daily_limit_is_queued_for_one_address(mail_config, smtp):
    app = create_app({**mail_config, "MAIL_PER_ADDRESS_PER_DAY": 3})
    statuses = [queue(app, subject=f"Message {number}").status for number in range(5)]
    assert statuses == [OutboxStatus.QUEUED] * 3 + [OutboxStatus.FAILED] * 2
    over = outbox(app, OutboxStatus.FAILED)[0]
    assert "3 messages were queued for this address in the last 24 hours" in over.last_error
    assert queue(app, to="tom@example.org").status is OutboxStatus.QUEUED  # others are fine
    assert send(app).sent == 4
    assert sorted(rcpts[0] for _s, rcpts, _m in smtp.mailbox.received) == [
        READER, READER, READER, "tom@example.org"]
    # The author can still send one on purpose.
    with app.app_context():
        retry_message(store(app), over.id)
    assert send(app).sent == 1
    app.extensions["tellmemore.store"].close()


# --- the author's notifications ----------------------------------------------------------------


def test_the_author_hears_of_each_new_comment_immediately(mail_config, smtp):
    app = create_app({**mail_config, "AUTHOR_NOTIFY": "immediately", "SPAM_CHECKS": "on"})
    store(app).add_author(Author(id="author-1", name="Ada", email=AUTHOR_EMAIL,
                                 created=utc_now(), password_hash="x"))
    client = app.test_client()
    comment_id = post_reader(client, question="why")
    post_reader(client, fax="I am a bot")  # the honeypot: spam, no mail
    send(app)
    [message] = smtp.mailbox.messages
    assert message["To"] == AUTHOR_EMAIL
    assert message["Subject"] == "New comment from Rosa on “Hello”"
    text, _html = parts(message)
    assert f"{PUBLIC}/moderate/comments/{comment_id}" in text
    assert "Why?" in text and COMMENT in text
    app.extensions["tellmemore.store"].close()


def test_author_notices_over_the_daily_limit_wait_for_the_next_digest(mail_config, smtp):
    """Issue 20, item 7: the author's own notices are never marked failed by the per-address
    guard; those over it go out in the next digest (itself exempt: one a day)."""
    app = create_app({**mail_config, "AUTHOR_NOTIFY": "immediately",
                      "MAIL_PER_ADDRESS_PER_DAY": 3})
    store(app).add_author(Author(id="author-1", name="Ada", email=AUTHOR_EMAIL,
                                 created=utc_now(), password_hash="x"))
    client = app.test_client()
    for number in range(5):
        post_reader(client, name=f"Reader {number}", body=f"Comment number {number}.",
                    email=None, notify=False)
    notices = outbox(app)
    assert [message.kind for message in notices] == ["new_comment"] * 3
    assert outbox(app, OutboxStatus.FAILED) == []
    real_now = datetime.now(UTC)
    app.config["AUTHOR_DIGEST_HOUR"] = (real_now + timedelta(hours=1)).hour
    with app.app_context():
        [digest] = notify.queue_due_digests(store(app), real_now + timedelta(hours=2))
    assert digest.status is OutboxStatus.QUEUED and digest.to == AUTHOR_EMAIL
    assert digest.subject == "2 new comments on Test blog"
    assert send(app).sent == 4
    text, _html = parts(smtp.mailbox.messages[-1])
    assert "Comment number 3." in text and "Comment number 4." in text
    assert "Comment number 0." not in text
    assert outbox(app, OutboxStatus.FAILED) == []
    app.extensions["tellmemore.store"].close()


def test_the_daily_digest_lists_the_days_comments_once(mail_config, smtp):
    app = create_app({**mail_config, "AUTHOR_NOTIFY": "digest"})
    store(app).add_author(Author(id="author-1", name="Ada", email=AUTHOR_EMAIL,
                                 created=utc_now(), password_hash="x"))
    client = app.test_client()
    post_reader(client)
    post_reader(client, name="Tom", body="Digest me please.", email=None, notify=False)
    assert outbox(app) == []  # nothing at once
    real_now = datetime.now(UTC)
    app.config["AUTHOR_DIGEST_HOUR"] = (real_now + timedelta(hours=1)).hour
    later = real_now + timedelta(hours=2)
    with app.app_context():
        [digest] = notify.queue_due_digests(store(app), later)
        assert notify.queue_due_digests(store(app), later) == []
        notify._digests_done.clear()  # as a new process would: the dedupe key still holds
        assert [message.id for message in notify.queue_due_digests(store(app), later)] == [
            digest.id]
    assert digest.subject == "2 new comments on Test blog"
    send(app)
    text, _html = parts(smtp.mailbox.messages[0])
    assert "Rosa" in text and "Digest me please." in text and "2 comments wait" in text
    app.extensions["tellmemore.store"].close()


def test_the_sender_pass_that_finds_the_digest_due_queues_and_sends_it(mail_config, smtp):
    """No job of its own: the digest rides on the sender's passes (outbox.sender's
    pass_starting signal), once per window."""
    app = create_app({**mail_config, "AUTHOR_NOTIFY": "digest"})
    store(app).add_author(Author(id="author-1", name="Ada", email=AUTHOR_EMAIL,
                                 created=utc_now(), password_hash="x"))
    post_reader(app.test_client())
    clock = Clock()
    app.config["AUTHOR_DIGEST_HOUR"] = (clock.now + timedelta(hours=1)).hour
    clock.now += timedelta(hours=2)
    assert send(app, now=clock).sent == 1
    [digest] = outbox(app, OutboxStatus.SENT)
    assert digest.kind == "digest" and digest.to == AUTHOR_EMAIL
    assert send(app, now=clock).total == 0
    assert len(smtp.mailbox.messages) == 1
    app.extensions["tellmemore.store"].close()


# --- secure connections and login ---------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True)
    return key, cert


def server_context(certificate) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[1]), str(certificate[0]))
    return context


def check_login(server, session, envelope, mechanism, auth_data):
    # handled=False: aiosmtpd answers 535 itself (True would mean the check already did).
    return AuthResult(success=(auth_data.login, auth_data.password) == (b"blog", b"s3cret"),
                      handled=False)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_starttls_or_ssl_with_login(mail_config, certificate, security):
    options: dict[str, object] = {"authenticator": check_login}
    if security == "starttls":
        options.update(tls_context=server_context(certificate), require_starttls=True)
    else:
        # aiosmtpd offers AUTH only after its own STARTTLS unless told the link is safe.
        options.update(ssl_context=server_context(certificate), auth_require_tls=False)
    server = SmtpServer(free_port(), **options)
    server.start()
    try:
        settings = {**mail_config, "SMTP_PORT": server.port, "SMTP_SECURITY": security,
                    "SMTP_CA_FILE": str(certificate[1]), "SMTP_USERNAME": "blog"}
        wrong = create_app({**settings, "SMTP_PASSWORD": "wrong"})
        queue(wrong)
        assert send(wrong).retried == 1
        assert "535" in outbox(wrong)[0].last_error
        wrong.extensions["tellmemore.store"].close()
        right = create_app({**settings, "SMTP_PASSWORD": "s3cret"})
        assert send(right).sent == 1
        assert len(server.mailbox.messages) == 1
        right.extensions["tellmemore.store"].close()
    finally:
        server.stop()


# --- the outbox page ----------------------------------------------------------------------------


def test_the_outbox_page_lists_retries_and_discards(mail_config, smtp, auth):
    app = create_app({**mail_config, "MAIL_PER_ADDRESS_PER_DAY": 1})
    ada = auth.for_app(app)
    ada.add_author()
    waiting = queue(app, subject="Waiting one")
    failed = queue(app, subject="Over the limit")
    client = ada.client
    anonymous = client.get("/moderate/outbox/")
    assert anonymous.status_code == 302 and "/moderate/sign-in" in anonymous.headers["Location"]
    token = ada.csrf_token()
    assert client.post(f"/moderate/outbox/{failed.id}/retry",
                       data={"csrf_token": token}).status_code == 401
    ada.login()

    page = BeautifulSoup(client.get("/moderate/outbox/").get_data(as_text=True), "html.parser")
    assert page.find("a", href="/moderate/outbox/", attrs={"aria-current": "page"})
    assert [card["data-message-id"] for card in page.select("article.card")] == [waiting.id]
    failed_page = BeautifulSoup(client.get("/moderate/outbox/?show=failed").get_data(
        as_text=True), "html.parser")
    [card] = failed_page.select("article.card")
    assert "MAIL_PER_ADDRESS_PER_DAY" in card.select_one(".outbox__error").get_text()
    token = token_of(client.get("/moderate/outbox/?show=failed"))

    assert client.post(f"/moderate/outbox/{failed.id}/retry").status_code == 400  # no CSRF
    assert store(app).get_message(failed.id).status is OutboxStatus.FAILED
    retried = client.post(f"/moderate/outbox/{failed.id}/retry",
                          data={"csrf_token": token, "show": "failed"})
    assert retried.status_code == 303
    assert retried.headers["Location"].endswith("/moderate/outbox/?show=failed")
    assert store(app).get_message(failed.id).status is OutboxStatus.QUEUED
    discarded = client.post(f"/moderate/outbox/{waiting.id}/discard",
                            data={"csrf_token": token})
    assert discarded.status_code == 303
    assert store(app).get_message(waiting.id).status is OutboxStatus.DISCARDED
    refused = client.post(f"/moderate/outbox/{waiting.id}/discard",
                          data={"csrf_token": token}, follow_redirects=True)
    assert "cannot be discarded" in refused.get_data(as_text=True)
    final = client.post(f"/moderate/outbox/{waiting.id}/retry",
                        data={"csrf_token": token}, follow_redirects=True)
    assert "cannot be retried" in final.get_data(as_text=True)  # discarded is final
    assert client.post("/moderate/outbox/20260101-nothing/retry",
                       data={"csrf_token": token}).status_code == 404
    assert send(app).sent == 1
    sent_page = client.get("/moderate/outbox/?show=sent").get_data(as_text=True)
    assert "Over the limit" in sent_page
    app.extensions["tellmemore.store"].close()


# --- the sender thread, the command, settings ---------------------------------------------------


def sender_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate()
            if thread.name == "tellmemore-mail-sender"]


def test_the_sender_thread_starts_once_per_process_and_sends_off_the_request_path(
        mail_config, smtp):
    before = len(sender_threads())
    app = create_app({**mail_config, "MAIL_SENDER_THREAD": True, "MAIL_POLL_SECONDS": 30})
    assert len(sender_threads()) == before  # not in create_app: only with the first request
    client = app.test_client()
    client.get("/healthz")
    client.get("/api/counts?thread=hello")
    assert len(sender_threads()) == before + 1
    with app.test_request_context():
        notify.queue_message(store(app), to=READER, subject="Woken", text="Sent by the thread.")
    smtp.mailbox.wait_for(1, timeout=10)  # woken at once, not after the 30 s poll
    sender = app.extensions[SENDER_EXTENSION]
    sender.stop()
    assert not sender.running
    assert len(sender_threads()) == before
    app.extensions["tellmemore.store"].close()


def test_send_mail_command_goes_through_the_queue_once(app, smtp):
    queue(app)
    result = app.test_cli_runner().invoke(args=["send-mail"])
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output
    assert len(smtp.mailbox.messages) == 1


@pytest.mark.parametrize(("name", "value"), [
    ("SMTP_SECURITY", "tls"), ("AUTHOR_NOTIFY", "sometimes"), ("MAIL_DOUBLE_OPT_IN", "maybe"),
    ("SMTP_MAX_ATTEMPTS", "0"), ("PUBLIC_URL", "comments.example.org"),
    ("MAIL_LEASE_SECONDS", 10),
])
def test_bad_mail_settings_are_refused_at_start(mail_config, name, value):
    with pytest.raises(ConfigError, match=name):
        create_app({**mail_config, name: value})


def test_addresses_are_masked_on_public_pages():
    assert notify.mask_address("rosa@example.org") == "ro***@example.org"
    assert MailAddress("a@b.cd").unsubscribed_at is None


def test_unsubscribe_works_while_the_manifest_is_broken(tmp_path, monkeypatch):
    """A reader can always stop mail, even when the site's manifest cannot be loaded."""
    from comments_service import create_app

    monkeypatch.setenv("TELLMEMORE_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"MANIFEST": str(tmp_path / "missing.json"), "SECRET_KEY": "k",
                      "STORE_PATH": str(tmp_path / "store")})
    token = unsubscribe_token(app.config["SECRET_KEY"], "reader@example.org")
    client = app.test_client()
    assert client.get(f"/unsubscribe/{token}").status_code == 200
    assert client.post(f"/unsubscribe/{token}").status_code in (200, 303)
    assert client.get("/api/threads/x").status_code == 503
