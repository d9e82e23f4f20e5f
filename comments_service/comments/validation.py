"""Checking what readers send: an allow-list of fields, each with a clear reason when refused.

Both the JSON API and the plain HTML form end here, so a comment is judged the same way
whichever door it came through. Nothing is stored unless every field passes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from comments_service.config import parse_switch
from comments_service.manifest import ArticleEntry
from comments_service.models import Comment

MAX_NAME = 80
MAX_BODY = 10_000
MAX_EMAIL = 254
MAX_WEBSITE = 200
# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is the mail
# server's business; this only catches what is plainly not an address.
EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"]{1,64}@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\".]{2,}$")
# Controls, and the two code points XML 1.0 forbids besides them (U+FFFE, U+FFFF): a feed or
# a page carrying one would not be well-formed (lone surrogates are refused as a 400 earlier).
CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


# U+200B-U+200F (zero-width space, joiners, marks), U+202A-U+202E (embeddings, overrides),
# U+2060-U+2064 (word joiner, invisible operators), U+2066-U+2069 (isolates), U+FEFF (BOM).
INVISIBLE_IN_NAMES_RE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


class ValidationFailed(Exception):
    """One or more fields were refused; ``fields`` maps each to the reason."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class CommentInput:
    """A reader's comment after checking, before it is stored."""

    name: str
    body: str
    email: str | None
    website: str | None
    parent: str | None
    question: str | None
    notify: bool
    reader_token: str | None


def _text(raw: Mapping[str, Any], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(name)
    return value


def _boolean(value: Any) -> bool | None:
    if value is None:
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        return None  # a form or JSON field says true or false, not a number
    return parse_switch(value)


def clean_name(value: str) -> str:
    """A name as shown: controls dropped, and so are bidi embeddings, overrides and isolates
    and zero-width characters, which would let a name reorder the text around it ("Ada" shown
    as someone else's, a reply seeming to say the opposite) or hide itself; NFC, stripped."""
    return unicodedata.normalize("NFC", INVISIBLE_IN_NAMES_RE.sub("", clean_text(value))).strip()


def clean_text(value: str) -> str:
    """Normalise line ends and drop control characters that have no business in a comment."""
    return CONTROL_CHARS_RE.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def check_comment(
    raw: Mapping[str, Any],
    article: ArticleEntry,
    find_parent: Any,
) -> CommentInput:
    """Check a new comment for ``article``; raises ValidationFailed listing every problem.

    ``find_parent(comment_id)`` returns the stored comment or None.
    """
    errors: dict[str, str] = {}
    values: dict[str, str | None] = {}
    for name in ("name", "body", "email", "website", "parent", "question", "reader_token"):
        try:
            values[name] = _text(raw, name)
        except TypeError:
            errors[name] = "must be a string"
            values[name] = None

    name = clean_name(values["name"] or "")
    if "name" not in errors:
        if not name:
            errors["name"] = "Please give a name (any name you like)."
        elif len(name) > MAX_NAME:
            errors["name"] = f"A name can be at most {MAX_NAME} characters."
        elif "\n" in name:
            errors["name"] = "A name is one line."

    body = clean_text(values["body"] or "").strip()
    if "body" not in errors:
        if not body:
            errors["body"] = "The comment is empty."
        elif len(body) > MAX_BODY:
            errors["body"] = (
                f"A comment can be at most {MAX_BODY:,} characters ({len(body):,} sent)."
            )

    email = (values["email"] or "").strip() or None
    if email is not None and "email" not in errors and (
        len(email) > MAX_EMAIL or not EMAIL_RE.match(email)
    ):
        errors["email"] = "This does not look like an email address."

    website = (values["website"] or "").strip() or None
    if website is not None and "website" not in errors:
        parts = urlsplit(website)
        if len(website) > MAX_WEBSITE or parts.scheme not in ("http", "https") or not parts.netloc:
            errors["website"] = "A website must be an http:// or https:// address."

    notify = _boolean(raw.get("notify"))
    if notify is None:
        errors["notify"] = "must be true or false"
    elif notify and email is None and "email" not in errors:
        errors["email"] = "An email address is needed to tell you when the author replies."

    question = (values["question"] or "").strip() or None
    if question is not None and "question" not in errors and article.question(question) is None:
        errors["question"] = "This article has no such question."

    parent = (values["parent"] or "").strip() or None
    if parent is not None and "parent" not in errors:
        parent_comment: Comment | None = find_parent(parent)
        if parent_comment is None or parent_comment.thread != article.thread:
            errors["parent"] = "The comment you are answering is not in this thread."
        elif not parent_comment.public:
            errors["parent"] = "The comment you are answering is not public."

    reader_token = (values["reader_token"] or "").strip() or None
    if reader_token is not None and len(reader_token) > 200:
        errors["reader_token"] = "is too long"

    if errors:
        raise ValidationFailed(errors)
    return CommentInput(name, body, email, website, parent, question, bool(notify), reader_token)


def check_edit(raw: Mapping[str, Any]) -> str:
    """Check an edited body; returns it cleaned."""
    value = raw.get("body")
    if not isinstance(value, str):
        raise ValidationFailed({"body": "must be a string"})
    body = clean_text(value).strip()
    if not body:
        raise ValidationFailed({"body": "The comment is empty."})
    if len(body) > MAX_BODY:
        raise ValidationFailed({"body": f"A comment can be at most {MAX_BODY:,} characters."})
    return body
