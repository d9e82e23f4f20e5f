"""The demo's mailbox (issue 21, item 1): the mail sink keeps what the service really sends over
SMTP, the Mailbox page shows it with its links clickable, only in demo mode; the address is
confirmed from the moment a comment asks for replies; demo-data queues the author's digest;
the demo's console shows one line per message and not its own poll."""

from __future__ import annotations

import io
import re
from email.message import EmailMessage

import pytest
from bs4 import BeautifulSoup

from comments_service import create_app
from comments_service.cli.demo import SAMPLE_COMMENTS
from comments_service.demo_mailbox import MailboxFolder, start_sink
from comments_service.mail import notify
from comments_service.models import OutboxStatus
from comments_service.outbox.sender import send_due
from tasks import REBAKE_AGENT, announce_mail, copy_access_log
from tests.servers import free_port

READER = "rosa@example.org"


@pytest.fixture
def sink(tmp_path):
    folder = MailboxFolder(tmp_path / "mailbox")
    announced: list[tuple[str, EmailMessage]] = []
    port = free_port()
    controller = start_sink(folder, "127.0.0.1", port,
                            lambda mail_id, message: announced.append((mail_id, message)))
    yield folder, port, announced
    controller.stop()


@pytest.fixture
def demo_app(service_config, sink):
    folder, port, _ = sink
    application = create_app({
        **service_config, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": port,
        "SMTP_FROM": "blog@blog.test", "PUBLIC_URL": "http://comments.test",
        "DEMO_MAILBOX": str(folder.path), "SPAM_CHECKS": "off", "AUTHOR_NOTIFY": "off",
    })
    yield application
    application.extensions["tellmemore.store"].close()


def store(app):
    return app.extensions["tellmemore.store"]


def page_of(response) -> BeautifulSoup:
    assert response.status_code == 200, response.status_code
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def post_asking_for_replies(client, body="The queue idea helped my newsletter.") -> str:
    response = client.post("/api/threads/hello/comments", json={
        "name": "Rosa", "body": body, "email": READER, "notify": True})
    assert response.status_code == 201
    return response.get_json()["comment"]["id"]


def test_mail_sent_over_smtp_lands_in_the_mailbox_page_with_its_links(demo_app, sink, auth):
    _, _, announced = sink
    client = auth.for_app(demo_app).login()
    post_asking_for_replies(client)
    with demo_app.app_context():
        assert send_due(store(demo_app), demo_app.config).sent == 1
    [(mail_id, message)] = announced
    assert message["To"] == READER and "Confirm your email address" in message["Subject"]

    nav = page_of(client.get("/moderate/")).find("nav", attrs={"aria-label": "Moderation"})
    assert nav.find("a", string="Mailbox")["href"] == "/moderate/mailbox/"
    listing = page_of(client.get("/moderate/mailbox/"))
    [card] = listing.select("ol.mailbox article.card")
    assert READER in card.get_text() and card.find("a")["href"] == f"/moderate/mailbox/{mail_id}"
    shown = page_of(client.get(f"/moderate/mailbox/{mail_id}"))
    confirm = shown.select_one("pre.mail-text a[href*='/confirm/']")["href"]
    assert confirm.startswith("http://comments.test/confirm/")
    assert shown.select_one(".mail-unsubscribe a")["href"].startswith(
        "http://comments.test/unsubscribe/")
    # The link works: the confirmation page, then the address confirmed.
    path = confirm.removeprefix("http://comments.test")
    assert client.post(path).status_code == 200
    assert store(demo_app).get_mail_address(READER).confirmed_at


def test_the_mailbox_escapes_and_refuses_what_is_not_a_message(demo_app, sink, auth):
    folder, _, _ = sink
    raw = (b"From: x@example.org\r\nTo: <b>y@example.org</b>\r\nSubject: <script>1</script>\r\n"
           b"\r\nSee https://example.org/a?b=1&c=2. And <img src=x>.\r\n")
    mail_id = folder.add(raw)
    client = auth.for_app(demo_app).login()
    page = page_of(client.get(f"/moderate/mailbox/{mail_id}"))
    assert page.find("script") is None and page.find("img") is None
    assert [a["href"] for a in page.select("pre.mail-text a")] == ["https://example.org/a?b=1&c=2"]
    for bad in ("nope", "..%2Fsecret_key", "20261207T000000-"):
        assert client.get(f"/moderate/mailbox/{bad}").status_code == 404


def test_no_mailbox_page_outside_the_demo(app, author_client):
    assert author_client.get("/moderate/mailbox/").status_code == 404
    nav = page_of(author_client.get("/moderate/")).find("nav", attrs={"aria-label": "Moderation"})
    assert nav.find("a", string="Mailbox") is None


def test_the_address_is_confirmed_once_when_a_comment_asks_for_replies(demo_app):
    client = demo_app.test_client()
    post_asking_for_replies(client)
    post_asking_for_replies(client, body="And a second note about queues.")
    client.post("/api/threads/hello/comments", json={
        "name": "Tom", "body": "No mail for me.", "email": "tom@example.org"})
    messages = store(demo_app).list_messages(limit=100)
    assert [(m.kind, m.to, m.status) for m in messages] == [
        ("confirm", READER, OutboxStatus.QUEUED)]


def test_no_confirmation_for_spam_or_a_confirmed_address(demo_app):
    with demo_app.test_request_context():
        notify.confirm_address(store(demo_app), READER)
    client = demo_app.test_client()
    post_asking_for_replies(client)
    demo_app.config["SPAM_CHECKS"] = "on"  # the honeypot below makes the next one spam
    client.post("/api/threads/hello/comments", json={
        "name": "Bot", "body": "spam", "email": "bot@example.org", "notify": True,
        "fax": "filled"})
    assert store(demo_app).list_messages(limit=100) == []


def test_demo_data_queues_the_authors_digest_in_demo_mode(demo_app):
    demo_app.config["AUTHOR_NOTIFY"] = "digest"  # the default, which the demo keeps
    result = demo_app.test_cli_runner().invoke(args=["demo-data"])
    assert result.exit_code == 0, result.output
    assert "Queued the author's digest" in result.output
    digests = [m for m in store(demo_app).list_messages(limit=100) if m.kind == "digest"]
    assert len(digests) == 1 and digests[0].subject.startswith(
        f"{len(SAMPLE_COMMENTS)} new comments on")
    assert "http://comments.test/moderate/comments/" in digests[0].text


def test_the_demo_console_announces_each_message_and_drops_its_own_poll(capsys):
    message = EmailMessage()
    message["To"], message["Subject"] = READER, "Confirm your email address for Blog"
    announce_mail("http://127.0.0.1:5000")("20261207T101010-abcdef", message)
    line = capsys.readouterr().out
    assert line.count("\n") == 1
    assert re.fullmatch(r"  Mail to rosa@example\.org: .Confirm your email address for Blog. "
                        r". http://127\.0\.0\.1:5000/moderate/mailbox/20261207T101010-abcdef\n",
                        line)
    log = io.StringIO(
        '127.0.0.1 - - [x] "GET /api/public-export HTTP/1.1" 200 5 "-" "' + REBAKE_AGENT + '"\n'
        '127.0.0.1 - - [x] "POST /api/threads/hello/comments HTTP/1.1" 201 9 "-" "Chrome"\n')
    out = io.StringIO()
    copy_access_log(log, out)
    assert out.getvalue().splitlines() == [
        '127.0.0.1 - - [x] "POST /api/threads/hello/comments HTTP/1.1" 201 9 "-" "Chrome"']
