"""Webhooks through the outbox: a real HTTP receiver on loopback checks the signature; a dead
receiver gets the event once it is back, exactly once; a slow one never slows a reader's POST."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import socket
import threading
import time

import pytest

from comments_service import create_app
from comments_service.comments import replying
from comments_service.config import ConfigError
from comments_service.mail import webhook_events
from comments_service.models import Author, OutboxStatus, utc_now
from comments_service.outbox import webhooks
from comments_service.outbox.queue import SENDER_EXTENSION
from comments_service.outbox.sender import send_due

SECRET = "webhook-test-secret"
# Longest a receiver holds a delivery it was told to hold, so a test that fails never hangs.
HOLD_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    """An HTTP server on loopback that records every POST and answers ``status``; given a
    ``hold`` event, it answers (and records) only once the event is set."""

    def __init__(self, port: int, status: int = 204,
                 hold: threading.Event | None = None) -> None:
        self.port, self.status, self.hold = port, status, hold
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.hold is not None:
                    receiver.hold.wait(HOLD_SECONDS)
                receiver.received.append((dict(self.headers), body))
                receiver.arrived.set()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver(free_port())
    yield server
    server.stop()


def hook_config(service_config, url, **extra):
    return {**service_config, "WEBHOOK_URLS": url, "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_RETRY_BASE_SECONDS": 0, "WEBHOOK_TIMEOUT_SECONDS": 5, "SPAM_CHECKS": "off",
            "AUTHOR_NOTIFY": "off", "MAIL_SENDER_THREAD": False, **extra}


@pytest.fixture
def make_app():
    made = []

    def make(config):
        application = create_app(config)
        made.append(application)
        return application

    yield make
    for application in made:
        sender = application.extensions.get(SENDER_EXTENSION)
        if sender is not None:
            sender.stop()
        application.extensions["tellmemore.store"].close()


def send(app):
    with app.app_context():
        return send_due(app.extensions["tellmemore.store"], app.config)


def post(client, **fields):
    payload = {"name": "Rosa", "body": "Hello", "email": "rosa@example.org", **fields}
    response = client.post("/api/threads/hello/comments", json=payload)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["comment"]["id"]


def check_signature(headers: dict[str, str], body: bytes) -> None:
    timestamp = headers["X-Tellmemore-Timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Tellmemore-Signature"], f"sha256={expected}")
    assert abs(int(timestamp) - time.time()) < 60


def test_new_comment_and_reply_are_signed_posts_without_emails(
        service_config, receiver, make_app):
    app = make_app(hook_config(service_config, receiver.url))
    client = app.test_client()
    comment_id = post(client)
    assert receiver.received == []  # queued, not sent by the request
    store = app.extensions["tellmemore.store"]
    author = store.add_author(Author(id="a1", name="Ada", email="ada@blog.test",
                                     password_hash="x", created=utc_now()))
    with app.test_request_context():
        replying.reply(store, comment_id, author, "Thank you, Rosa.")
    report = send(app)
    assert report.sent == 2
    events = []
    for headers, body in receiver.received:
        check_signature(headers, body)
        assert headers["Content-Type"] == "application/json"
        assert b"@" not in body and b"reader_key" not in body
        document = json.loads(body)
        assert headers["X-Tellmemore-Event"] == document["event"]
        events.append(document)
    created, replied = sorted(events, key=lambda document: document["event"])
    assert created["event"] == "comment.created"
    assert created["data"]["comment"]["id"] == comment_id
    assert created["data"]["comment"]["name"] == "Rosa"
    assert created["data"]["comment"]["link"] == f"http://blog.test/hello/#comment-{comment_id}"
    assert replied["event"] == "reply.created"
    assert replied["data"]["in_reply_to"]["id"] == comment_id
    assert replied["data"]["comment"]["is_author"] is True
    assert send(app).total == 0  # each delivered once


def test_spam_sends_nothing(service_config, receiver, make_app):
    app = make_app(hook_config(service_config, receiver.url, SPAM_CHECKS="on"))
    post(app.test_client(), fax="I am a bot")
    assert app.extensions["tellmemore.store"].list_messages(None) == []


def test_a_dead_receiver_gets_the_event_once_it_is_back(service_config, make_app):
    port = free_port()
    app = make_app(hook_config(service_config, f"http://127.0.0.1:{port}/hook"))
    post(app.test_client())
    first = send(app)
    assert (first.sent, first.retried) == (0, 1)
    [message] = app.extensions["tellmemore.store"].list_messages(None)
    assert message.status is OutboxStatus.QUEUED and "Could not deliver" in message.last_error
    receiver = Receiver(port, status=503)  # alive but refusing: retried again
    try:
        assert send(app).retried == 1
        receiver.status = 200
        assert send(app).sent == 1
        assert send(app).total == 0
        assert len(receiver.received) == 2  # the refused attempt (503), then the delivery
        deliveries = {headers["X-Tellmemore-Delivery"] for headers, _ in receiver.received}
        assert deliveries == {message.id}  # the same delivery id on every attempt
    finally:
        receiver.stop()
    [sent] = app.extensions["tellmemore.store"].list_messages(None)
    assert sent.status is OutboxStatus.SENT and sent.attempts == 3


def test_gives_up_after_the_last_attempt(service_config, receiver, make_app):
    receiver.status = 500
    app = make_app(hook_config(service_config, receiver.url, WEBHOOK_MAX_ATTEMPTS=2))
    post(app.test_client())
    send(app)
    send(app)
    [message] = app.extensions["tellmemore.store"].list_messages(None)
    assert message.status is OutboxStatus.FAILED
    assert "Gave up after 2 attempts: HTTP 500" in message.last_error


def test_a_slow_receiver_does_not_slow_the_readers_post(service_config, make_app):
    """The reader's POST is answered while the receiver still holds the delivery (how long it
    takes next to one with a fast receiver: bench/slow_webhook_post.py)."""
    held = threading.Event()
    slow = Receiver(free_port(), hold=held)
    try:
        # A timeout longer than the hold: a POST that delivered the event itself would wait
        # for the receiver's answer, and find it recorded below.
        app = make_app(hook_config(service_config, slow.url, MAIL_SENDER_THREAD=True,
                                   MAIL_POLL_SECONDS=30, WEBHOOK_TIMEOUT_SECONDS=2 * HOLD_SECONDS))
        client = app.test_client()
        client.get("/healthz")  # starts the sender thread
        post(client)
        assert slow.received == []  # the receiver has answered nothing yet
        held.set()
        assert slow.arrived.wait(10)  # the sender thread, woken by the queued event
    finally:
        held.set()
        slow.stop()


def test_queue_webhook_for_other_features_drops_private_fields(
        service_config, receiver, make_app):
    app = make_app(hook_config(service_config, f"{receiver.url}, {receiver.url}?second=1"))
    assert len(app.config["WEBHOOK_URLS"]) == 2
    with app.app_context():
        queued = webhooks.queue_webhook(webhook_events.REQUEST_STATUS_CHANGED, {
            "request": {"id": "r1", "status": "done"},
            "readers": [{"name": "Rosa", "email": "rosa@example.org"}],
        }, dedupe_key="request:r1:done")
        again = webhooks.queue_webhook(webhook_events.REQUEST_STATUS_CHANGED, {},
                                       dedupe_key="request:r1:done")
    assert [m.id for m in again] == [m.id for m in queued]
    assert send(app).sent == 2
    for headers, body in receiver.received:
        check_signature(headers, body)
        assert json.loads(body)["data"] == {"request": {"id": "r1", "status": "done"},
                                            "readers": [{"name": "Rosa"}]}


def test_no_urls_no_messages_and_bad_urls_are_refused(service_config, make_app):
    app = make_app({**service_config})
    post(app.test_client(), fax="")
    assert app.extensions["tellmemore.store"].list_messages(None) == []
    with pytest.raises(ConfigError, match="WEBHOOK_URLS"):
        create_app({**service_config, "WEBHOOK_URLS": "ftp://example.org/x"})
