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
