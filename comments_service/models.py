"""The records the service keeps: comments and their states (DESIGN.md, "Data")."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum, StrEnum
from functools import cache
from types import UnionType
from typing import Any, Self, Union, get_args, get_origin, get_type_hints


class StoredRecord:
    """``to_record`` / ``from_record`` for the frozen dataclasses the store keeps as JSON.

    Enums are stored as their values, tuples as lists; on the way back, unknown keys are
    ignored and a missing, null or empty enum takes the field's default (or, for a field
    without one, fails as a missing argument, which the store reports as a damaged file).
    A value of the wrong type (a number for a date, text for a flag) is a TypeError naming
    the field, so a damaged record is refused where it is read, never served to a page that
    would fail on it.
    """

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (for the store and for export)."""
        record = asdict(self)  # type: ignore[call-overload]
        for name, value in record.items():
            if isinstance(value, Enum):
                record[name] = value.value
            elif isinstance(value, tuple):
                record[name] = list(value)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Self:
        """Rebuild the record from :meth:`to_record` output."""
        values: dict[str, Any] = {}
        for name, convert in _converters(cls):
            if name in record:
                value = convert(record[name], name)
                if value is not _SKIP:
                    values[name] = value
        return cls(**values)


# A stored enum field that is null or empty: the field takes its default.
_SKIP = object()
Converter = Callable[[Any, str], Any]


@cache
def _converters(cls: type) -> tuple[tuple[str, Converter], ...]:
    """Each field's name and what checks and converts its JSON value, worked out once per
    class: looking at the type hints for every record was most of the cost of a read."""
    types = _field_types(cls)
    return tuple((item.name, _converter(types[item.name]))
                 for item in fields(cls))  # type: ignore[arg-type]


def _converter(kind: Any) -> Converter:
    if isinstance(kind, type) and issubclass(kind, Enum):
        def to_enum(value: Any, _name: str) -> Any:
            return _SKIP if value in (None, "") else kind(value)
        return to_enum
    conforms = _checker(kind)
    rebuild = {tuple: tuple, dict: dict}.get(get_origin(kind))

    def checked(value: Any, name: str) -> Any:
        if not conforms(value):
            raise TypeError(f"{name} is a {type(value).__name__}, not {kind}")
        return value if rebuild is None else rebuild(value or ())
    return checked


def _checker(kind: Any) -> Callable[[Any], bool]:
    """Whether a JSON value fits a field's type (tuples arrive as lists, None as null)."""
    origin, arguments = get_origin(kind), get_args(kind)
    if origin in (Union, UnionType):
        options = [_checker(argument) for argument in arguments]
        return lambda value: any(option(value) for option in options)
    if kind is type(None):
        return lambda value: value is None
    if origin is tuple:
        item = _checker(arguments[0])
        return lambda value: value is None or (isinstance(value, list | tuple)
                                               and all(item(one) for one in value))
    if origin is dict:
        key, item = _checker(arguments[0]), _checker(arguments[1])
        return lambda value: value is None or (isinstance(value, dict) and all(
            key(name) and item(one) for name, one in value.items()))
    if kind is bool:
        return lambda value: isinstance(value, bool)
    if kind is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return lambda value: isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return lambda value: isinstance(value, str)
    return lambda value: True  # a type these records do not use: nothing to check


@cache
def _field_types(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


class CommentState(StrEnum):
    """Where a comment stands. Only reader comments move through the queue."""

    AWAITING_REPLY = "awaiting_reply"  # a reader comment the author has not answered yet
    REPLIED = "replied"  # a reader comment with an author reply under it
    SPAM = "spam"  # kept and restorable, never public, out of the queue
    WITHDRAWN = "withdrawn"  # taken back by its writer with the edit token; kept, never public
    POSTED = "posted"  # the author's own comment or reply: never queued


# A reader's comment that counts (in the queue's figures, the listening figures, the tally):
# waiting for a reply or replied; not spam, not withdrawn.
LIVE_STATES = frozenset({CommentState.AWAITING_REPLY, CommentState.REPLIED})


def utc_now() -> str:
    """The current time as stored: ISO 8601, UTC, microseconds, so strings sort by time."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def new_comment_id() -> str:
    """A short random id, safe in URLs and HTML ids (12 characters of base64url)."""
    return secrets.token_urlsafe(9)


@dataclass(frozen=True)
class Comment(StoredRecord):
    """One comment, reader's or author's, as stored.

    ``email``, ``reader_key``, ``spam_reasons`` and ``nudge_warnings`` are private: they never
    leave the server through the public API (see api.py's public view).
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
    # True once the author filed the comment (under ``request``, or "-": not a request); until
    # then ``request`` is only the machine's suggestion and is never counted.
    request_filed: bool = False
    # Requests the author said this comment does not belong to ("not this request"): never
    # suggested for it again.
    rejected_requests: tuple[str, ...] = field(default_factory=tuple)
    reader_key: str | None = None
    spam_reasons: tuple[str, ...] = field(default_factory=tuple)
    # Imported from another system ("isso:42"); None for comments written here.
    source: str | None = None
    # Marked answered by an import (--answered-before): replied without a reply, replied_at None.
    marked_answered: bool = False
    # An author reply sent anyway over the nudge's warnings: their kinds ("generic",
    # "repeated", "no_reference"), so the metrics can tell a stock reply from an individual one
    # (an edit checks the new text again).
    nudge_warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def in_queue(self) -> bool:
        return self.state is CommentState.AWAITING_REPLY


@dataclass(frozen=True)
class Author(StoredRecord):
    """Someone who may sign in to the moderation pages and reply as the blog's author."""

    id: str
    name: str
    email: str  # unique, compared case-insensitively
    password_hash: str  # werkzeug.security hash, never the password
    created: str
    # Every session carries the version it was opened under; raising it ("sign out
    # everywhere", a password change) ends every session at its next request.
    session_version: int = 0
    # Sessions signed out before their lifetime ran out ("<signed in at>:<nonce digest>"), so
    # that a copy of a signed-out cookie stays signed out; pruned once past the lifetime.
    ended_sessions: tuple[str, ...] = field(default_factory=tuple)
    # Keyed digests of the last few client addresses the author signed in from: attacks on
    # the account from elsewhere never slow sign-ins from these (moderation/sign_in_guard.py).
    usual_addresses: tuple[str, ...] = field(default_factory=tuple)


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
class OutboxMessage(StoredRecord):
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

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class MailAddress(StoredRecord):
    """What an address has said about mail: confirmed (double opt-in), unsubscribed (for good).
    ``address`` is stored casefolded: one record per mailbox whatever the case it was typed in."""

    address: str
    confirmed_at: str | None = None
    unsubscribed_at: str | None = None
    confirmation_sent_at: str | None = None


# --- replies by email (inbox/): every message the reply worker took from the mailbox -------


class IncomingStatus(StrEnum):
    """Where a message from the author's mailbox stands (inbox/worker.py)."""

    IGNORED = "ignored"  # not the author's, no valid token, or the comment no longer waits
    PENDING = "pending"  # accepted and recorded: its reply is to be posted (claimed by a lease)
    HELD = "held"  # the nudge flagged the reply: it waits for the author's "yes"
    POSTED = "posted"  # done: the reply is stored (or the "yes" applied)
    REFUSED = "refused"  # accepted, but it could not be posted (``reason`` says why)
    REPLACED = "replaced"  # a held reply the author answered with a new text


@dataclass(frozen=True)
class IncomingMail(StoredRecord):
    """One message read from the author's mailbox, recorded before anything is posted, so
    that it is processed exactly once. ``key`` is a digest of its Message-ID; ``reply_id`` is
    chosen when it is recorded, so a post interrupted by a crash is finished, never repeated.
    ``held_key``: this message answers the hold mail of that record (its text "yes" sends the
    held reply). ``filing``: None, "none" or "new" (then ``label``) from ``#request``/``#none``."""

    key: str
    message_id: str
    received: str
    status: IncomingStatus = IncomingStatus.PENDING
    sender: str = ""
    comment_id: str | None = None
    body: str = ""
    filing: str | None = None
    label: str | None = None
    reply_id: str | None = None
    held_key: str | None = None
    send_anyway: bool = False
    reason: str | None = None
    claimed_by: str | None = None
    claimed_until: str | None = None
    done_at: str | None = None


# --- tallied requests (requests.py): what the author decided about a group ---------------


class RequestStatus(StrEnum):
    """Where a tallied request stands, as the author says."""

    OPEN = "open"
    PLANNED = "planned"
    DONE = "done"


@dataclass(frozen=True)
class RequestGroup(StoredRecord):
    """The author's decisions about one request group. Membership is not kept here (each
    comment's ``request`` names its group); a group nobody touched has no record at all."""

    id: str
    label: str | None = None  # set by the author; None shows the suggested label
    status: RequestStatus = RequestStatus.OPEN
    link: str | None = None  # what answers it (http/https)
    merged_into: str | None = None  # merged by the author: its comments belong to that group
    updated: str | None = None

