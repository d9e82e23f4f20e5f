"""Taking the new text out of the author's reply (inbox/parsing.py): replies as Gmail,
Outlook, Apple Mail and Thunderbird format them (tests/fixtures/replies/), in plain text and
in HTML, lose their quote, attribution line and signature; the filing directive is taken out."""

from __future__ import annotations

import email
from email.policy import default
from pathlib import Path

import pytest

from comments_service.inbox.parsing import (
    html_text,
    message_key,
    new_text,
    read_mail,
    take_directive,
    unflow,
)

FIXTURES = Path(__file__).parent / "fixtures" / "replies"
CLIENTS = sorted(path.name for path in FIXTURES.glob("*.eml"))
EXPECTED = ("Rosa, the queue per article is planned: I will write about it next week.\n\n"
            "It will show each article's waiting comments first, oldest on top.")
CONFIG = {"REPLY_MAIL_ADDRESS": "replies@blog.test", "REPLY_MAIL_IMAP_URL": "imaps://imap.test",
          "SECRET_KEY": "k"}


def raw_reply(name: str) -> bytes:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    return text.replace("%%FROM%%", "ada@blog.test").replace(
        "%%TO%%", "replies+ctoken.mac@blog.test").encode("utf-8")


def test_there_is_a_plain_and_an_html_reply_of_each_client() -> None:
    expected = [f"{client}_{kind}.eml"
                for client in ("apple_mail", "gmail", "outlook", "thunderbird")
                for kind in ("html", "plain")]
    assert expected == CLIENTS


@pytest.mark.parametrize("name", CLIENTS)
def test_each_clients_reply_comes_down_to_the_new_text(name: str) -> None:
    mail = read_mail(raw_reply(name), CONFIG)
    assert mail.text == EXPECTED
    assert (mail.filing, mail.label) == ("request", "queue per article")
    assert mail.sender == "ada@blog.test" and mail.tokens == ("ctoken.mac",)
    assert mail.message_id.startswith("<") and not mail.automatic
    assert mail.key == message_key(mail.message_id, b"")


@pytest.mark.parametrize("name", [name for name in CLIENTS if name.endswith("_html.eml")])
def test_the_html_part_alone_comes_down_to_the_same_text(name: str) -> None:
    message = email.message_from_bytes(raw_reply(name), policy=default)
    html = message.get_body(preferencelist=("html",))
    text, filing, label = take_directive(new_text(html_text(html.get_content())))
    assert (text, filing, label) == (EXPECTED, "request", "queue per article")


def test_html_only_mail_is_read_as_text() -> None:
    raw = (b"From: ada@blog.test\r\nTo: replies+c.x@blog.test\r\nMessage-ID: <h@x>\r\n"
           b"Content-Type: text/html; charset=utf-8\r\n\r\n"
           b"<p>See <a href=\"https://blog.test/queue/\">the queue page</a>, Rosa.</p>"
           b"<ul><li>one</li><li>two</li></ul>")
    assert read_mail(raw, CONFIG).text == (
        "See the queue page <https://blog.test/queue/>, Rosa.\n\n- one\n- two")


def test_directives_on_a_line_of_their_own_only() -> None:
    assert take_directive("Yes.\n#none\nMore.") == ("Yes.\n\nMore.", "none", None)
    assert take_directive("#request   Dark   mode \nSoon.") == ("Soon.", "request", "Dark mode")
    # Inside a sentence, as #requests, or without a label: text, not a directive.
    for text in ("I read #none of it.", "#requests are welcome", "#request", "#none please"):
        assert take_directive(text) == (text, None, None)
    assert take_directive("#none\n#request feeds\nOk.") == ("Ok.", "request", "feeds")


def test_format_flowed_lines_are_joined_and_the_signature_line_kept() -> None:
    assert unflow("A long line \nwrapped here.\n-- \nAda", delsp=False) == (
        "A long line wrapped here.\n-- \nAda")
    assert unflow("Joined\u0020\nword", delsp=True) == "Joinedword"


def test_out_of_office_answers_are_automatic() -> None:
    raw = (b"From: ada@blog.test\r\nTo: replies+c.x@blog.test\r\nAuto-Submitted: auto-replied"
           b"\r\nMessage-ID: <ooo@x>\r\n\r\nI am away until Monday.\r\n")
    assert read_mail(raw, CONFIG).automatic


def test_a_message_without_message_id_is_keyed_by_its_bytes() -> None:
    raw = b"From: ada@blog.test\r\n\r\nHello\r\n"
    mail = read_mail(raw, CONFIG)
    assert mail.message_id == "" and mail.key == message_key("", raw)
    assert mail.key != message_key("", raw + b"!")
