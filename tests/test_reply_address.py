"""Reply addresses (mail/reply_address.py) and the settings of replies by email: a token names
one comment and cannot be made without the secret key, changed, or read as another kind; the
notifications and the digest carry them only when replies by email are on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from comments_service import create_app
from comments_service.config import ConfigError, check_settings, imap_url
from comments_service.mail import notify
from comments_service.mail.reply_address import (
    COMMENT,
    HELD,
    read_reply_token,
    reply_address,
    reply_token,
    tokens_addressed,
)
from comments_service.models import Author, utc_now
from comments_service.outbox.smtp import build_email

KEY = "test-secret-key"
ON = {"REPLY_MAIL_ADDRESS": "replies@blog.test", "REPLY_MAIL_IMAP_URL": "imaps://imap.test/",
      "SECRET_KEY": KEY}


def test_a_token_names_its_comment_and_survives_a_change_of_case() -> None:
    token = reply_token(KEY, COMMENT, "AbC-_12xyZ09")
    assert token == token.lower()
    assert read_reply_token(KEY, token) == (COMMENT, "AbC-_12xyZ09")
    assert read_reply_token(KEY, token.upper()) == (COMMENT, "AbC-_12xyZ09")
    assert len(f"replies+{token}") <= 64  # RFC 5321's limit of a local part
    held = reply_token(KEY, HELD, "0f" * 16)
    assert read_reply_token(KEY, held) == (HELD, "0f" * 16)


def test_a_token_cannot_be_forged_changed_or_taken_for_another_kind() -> None:
    token = reply_token(KEY, COMMENT, "comment-1")
    kind, value, mac = token[0], *token[1:].split(".")
    assert read_reply_token("another-key", token) is None
    for position in range(len(mac)):  # every character of the MAC matters
        changed = mac[:position] + ("a" if mac[position] != "a" else "b") + mac[position + 1:]
        assert read_reply_token(KEY, f"{kind}{value}.{changed}") is None
    other = reply_token(KEY, COMMENT, "comment-2")
    assert read_reply_token(KEY, f"{kind}{other[1:].split('.')[0]}.{mac}") is None
    assert read_reply_token(KEY, f"h{value}.{mac}") is None
    for junk in ("", "c", "c.", "x" * 300, "c!!!.aaaa", "c" + "a" * 200 + ".b"):
        assert read_reply_token(KEY, junk) is None


def test_reply_addresses_only_when_replies_by_email_are_on() -> None:
    address = reply_address(ON, COMMENT, "comment-1")
    assert address is not None and address.startswith("replies+c") and address.endswith(
        "@blog.test")
    assert reply_address({**ON, "REPLY_MAIL_IMAP_URL": ""}, COMMENT, "comment-1") is None
    found = tokens_addressed(ON, [f"Test blog <{address.upper()}>, other@blog.test",
                                  "replies+x@elsewhere.test", "replies@blog.test"])
    assert found == [address.partition("+")[2].partition("@")[0]]


@pytest.mark.parametrize(("value", "problem"), [
    ("http://imap.test/", "must start with imaps://"),
    ("imaps://ada:secret@imap.test/", "must not hold a user name or password"),
    ("imaps:///INBOX", "needs a host"),
    ("imaps://imap.test:99999/", "bad port"),
    ("imaps://imap.test/INBOX?x=1", "takes no"),
])
def test_a_bad_imap_url_is_refused_naming_the_setting(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        imap_url("REPLY_MAIL_IMAP_URL", value)


def test_a_mailbox_needs_the_reply_address_and_a_user_name() -> None:
    config = {"REPLY_MAIL_IMAP_URL": "imaps://imap.test/INBOX"}
    with pytest.raises(ConfigError, match="needs REPLY_MAIL_ADDRESS"):
        check_settings(dict(config))
    with pytest.raises(ConfigError, match="without a \\+tag"):
        check_settings({**config, "REPLY_MAIL_ADDRESS": "replies+x@blog.test"})
    checked = {**config, "REPLY_MAIL_ADDRESS": "replies@blog.test",
               "REPLY_MAIL_USERNAME": "replies@blog.test", "REPLY_MAIL_POLL_SECONDS": "30"}
    check_settings(checked)
    assert checked["REPLY_MAIL_POLL_SECONDS"] == 30.0 and checked["REPLY_MAIL_THREAD"] is True


def test_the_new_comment_mail_and_the_digest_carry_the_comments_reply_address(
        service_config) -> None:
    app = create_app({
        **service_config, **ON, "SECRET_KEY": KEY, "REPLY_MAIL_USERNAME": "replies@blog.test",
        "REPLY_MAIL_THREAD": False, "PUBLIC_URL": "http://comments.test",
        "AUTHOR_NOTIFY": "immediately", "SPAM_CHECKS": "off",
    })
    store = app.extensions["tellmemore.store"]
    try:
        store.add_author(Author(id="author-1", name="Ada", email="ada@blog.test",
                                created=utc_now(), password_hash="x"))
        response = app.test_client().post("/api/threads/hello/comments", json={
            "name": "Rosa", "body": "Could the queue be per article?"})
        comment_id = response.get_json()["comment"]["id"]
        [message] = [message for message in store.list_messages(None)
                     if message.kind == "new_comment"]
        reply_to = build_email(message)["Reply-To"]
        assert str(reply_to) == reply_address(ON, COMMENT, comment_id)
        assert "Or answer this mail" in message.text and "#request <label>" in message.text

        app.config["AUTHOR_NOTIFY"] = "digest"
        now = datetime.now(UTC)
        app.config["AUTHOR_DIGEST_HOUR"] = (now + timedelta(hours=1)).hour
        with app.app_context():
            [digest] = notify.queue_due_digests(store, now + timedelta(hours=2))
        assert f"Reply by email: {reply_to}" in digest.text
        assert f"mailto:{reply_to}?subject=" in digest.html
        assert "Reply-To" not in digest.headers  # one mail for many comments
    finally:
        store.close()
