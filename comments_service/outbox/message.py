"""What every outbox message is made of, whatever its transport: an id that names the day file
it is kept in, times written the way the store sorts them, and header values that stay on one
line."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

SUBJECT_LIMIT = 200
# What headers must never carry: line breaks of any kind (header injection) and controls.
HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def utc_moment() -> datetime:
    """Now, in UTC (the sender takes another clock in tests)."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """A time as the store keeps it (as models.utc_now): sortable ISO 8601, UTC."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def new_message_id(moment: datetime) -> str:
    """The day (UTC) the message is made on, then a random part: the id names its day file."""
    return f"{moment.astimezone(UTC):%Y%m%d}-{secrets.token_urlsafe(9)}"


def header_text(value: str, limit: int = SUBJECT_LIMIT) -> str:
    """One line fit for a header: line breaks and other controls become one space, so a name
    like "Rosa\\r\\nBcc: x@y" stays part of the text instead of starting a header."""
    text = " ".join(HEADER_UNSAFE.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
