"""The records the service keeps: comments and their states (DESIGN.md, "Data")."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class CommentState(StrEnum):
    """Where a comment stands. Only reader comments move through the queue."""

    AWAITING_REPLY = "awaiting_reply"  # a reader comment the author has not answered yet
    REPLIED = "replied"  # a reader comment with an author reply under it
    SPAM = "spam"  # kept and restorable, never public, out of the queue
    WITHDRAWN = "withdrawn"  # taken back by its writer with the edit token; kept, never public
    POSTED = "posted"  # the author's own comment or reply: never queued


def utc_now() -> str:
    """The current time as stored: ISO 8601, UTC, microseconds, so strings sort by time."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def new_comment_id() -> str:
    """A short random id, safe in URLs and HTML ids (12 characters of base64url)."""
    return secrets.token_urlsafe(9)


@dataclass(frozen=True)
class Comment:
    """One comment, reader's or author's, as stored.

    ``email``, ``reader_key`` and ``spam_reasons`` are private: they never leave the server
    through the public API (see api.py's public view).
    """

    id: str
    thread: str
    name: str
    body: str  # Markdown source as written
    html: str  # body rendered and sanitised at write time
    created: str
    state: CommentState
    public: bool
    parent: str | None = None
    question: str | None = None
    email: str | None = None
    website: str | None = None
    is_author: bool = False
    notify: bool = False
    replied_at: str | None = None
    edited_at: str | None = None
    request: str | None = None
    reader_key: str | None = None
    spam_reasons: tuple[str, ...] = field(default_factory=tuple)
    # Imported from another system ("isso:42"); None for comments written here.
    source: str | None = None
    # Marked answered by an import (--answered-before): replied without a reply, replied_at None.
    marked_answered: bool = False

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (for the store and for export)."""
        record = asdict(self)
        record["state"] = str(self.state)
        record["spam_reasons"] = list(self.spam_reasons)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Comment:
        """Rebuild a comment from :meth:`to_record` output; unknown keys are ignored."""
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in record.items() if key in known}
        values["state"] = CommentState(values["state"])
        values["spam_reasons"] = tuple(values.get("spam_reasons") or ())
        return cls(**values)

    @property
    def in_queue(self) -> bool:
        return self.state is CommentState.AWAITING_REPLY


@dataclass(frozen=True)
class Author:
    """Someone who may sign in to the moderation pages and reply as the blog's author."""

    id: str
    name: str
    email: str  # unique, compared case-insensitively
    password_hash: str  # werkzeug.security hash, never the password
    created: str

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Author:
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in known})


# --- email follow-up (notify.py): the outbox and the addresses mail goes to -----------------


class OutboxStatus(StrEnum):
    """Where a message in the outbox stands. Only queued (and expired sending) ones are sent."""

    HELD = "held"  # waits for its address to be confirmed (double opt-in), then queued
    QUEUED = "queued"  # to be sent at next_attempt_at
    SENDING = "sending"  # claimed by a sender until claimed_until (a lease)
    SENT = "sent"
    FAILED = "failed"  # gave up: last_error says why (the author can retry it)
    DISCARDED = "discarded"  # by the author, or because the address unsubscribed


# Statuses whose messages still need something done (their day file stays "open").
OPEN_STATUSES = frozenset({OutboxStatus.HELD, OutboxStatus.QUEUED, OutboxStatus.SENDING})


@dataclass(frozen=True)
class OutboxMessage:
    """One email, stored before anyone tries to send it. ``to`` is one bare address; the
    ``headers`` (From, List-Unsubscribe…) are fixed when the message is queued; ``errors`` keeps
    every failed attempt ("time attempt n: error"), ``last_error`` the latest."""

    id: str  # "YYYYMMDD-" + random: the day of creation names the file it is kept in
    kind: str  # reply, confirm, new_comment, digest, or whatever queue_message was given
    to: str
    subject: str
    text: str
    html: str
    created: str
    status: OutboxStatus = OutboxStatus.QUEUED
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    next_attempt_at: str = ""
    last_error: str | None = None
    sent_at: str | None = None
    claimed_by: str | None = None
    claimed_until: str | None = None
    dedupe_key: str | None = None
    errors: tuple[str, ...] = field(default_factory=tuple)

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["status"] = str(self.status)
        record["headers"] = dict(self.headers)
        record["errors"] = list(self.errors)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> OutboxMessage:
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in record.items() if key in known}
        values["status"] = OutboxStatus(values["status"])
        values["headers"] = dict(values.get("headers") or {})
        values["errors"] = tuple(values.get("errors") or ())
        return cls(**values)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class MailAddress:
    """What an address has said about mail: confirmed (double opt-in), unsubscribed (for good).
    ``address`` is stored casefolded: one record per mailbox whatever the case it was typed in."""

    address: str
    confirmed_at: str | None = None
    unsubscribed_at: str | None = None
    confirmation_sent_at: str | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MailAddress:
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in known})


# --- tallied requests (requests.py): what the author decided about a group ---------------


class RequestStatus(StrEnum):
    """Where a tallied request stands, as the author says."""

    OPEN = "open"
    PLANNED = "planned"
    DONE = "done"


@dataclass(frozen=True)
class RequestGroup:
    """The author's decisions about one request group. Membership is not kept here (each
    comment's ``request`` names its group); a group nobody touched has no record at all."""

    id: str
    label: str | None = None  # set by the author; None shows the suggested label
    status: RequestStatus = RequestStatus.OPEN
    link: str | None = None  # what answers it (http/https)
    merged_into: str | None = None  # merged by the author: its comments belong to that group
    updated: str | None = None

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["status"] = str(self.status)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RequestGroup:
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in record.items() if key in known}
        values["status"] = RequestStatus(values.get("status") or "open")
        return cls(**values)
