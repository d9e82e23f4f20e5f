"""What a reader module gives the plan: the source's threads and comments as it has them, and
the small checks every reader applies to names, emails, websites and dates.

A reader refuses a file (``ImportRefused``) only when the file itself is broken: not the
format, not well formed, a date or status it cannot read. What it cannot place it hands on as
it found it: a thread without a link (``url`` empty) or whose id appears twice with different
links (``problem``), a comment on a thread the file does not have, a parent that is missing.
What it cannot even name (a comment without an id, a second comment with the same id) it
lists in ``SourceData.skipped``. The plan (``common.plan_import``) decides the rest, and the
summary says every :class:`Skip` with its count and first source ids.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from comments_service.comments import validation
from comments_service.comments.validation import EMAIL_RE, MAX_NAME, MAX_WEBSITE
from comments_service.store.transfer import ImportRefused

__all__ = [
    "ANONYMOUS",
    "STATUS_SKIPS",
    "ImportRefused",
    "Skip",
    "SourceComment",
    "SourceData",
    "SourceThread",
    "Status",
    "clean_email",
    "clean_name",
    "clean_website",
    "parse_utc",
]

# "other": a kind of comment that is not a reader's (WordPress's comment types beyond these).
Status = Literal["public", "pending", "deleted", "spam", "pingback", "other"]
ANONYMOUS = "Anonymous"


class Skip(StrEnum):
    """Why a comment is not imported, or not where the source had it; the summary's rows, in
    this order."""

    DELETED = "skipped: deleted at the source"
    SPAM = "skipped: spam at the source"
    PINGBACK = "skipped: a pingback or trackback"
    OTHER_KIND = "skipped: not a reader's comment (its comment type)"
    EMPTY = "skipped: empty"
    NO_ID = "skipped: it has no id"
    DUPLICATE = "skipped: its id appears earlier in the file"
    NO_THREAD = "skipped: its thread is not in the file"
    NO_LINK = "skipped: its thread has no link"
    THREAD_TWICE = "skipped: its thread's id appears twice, with different links"
    UNMATCHED = "skipped: its page matches no article (listed below)"
    AMBIGUOUS = "skipped: its page matches several articles (listed below)"
    PARENT_MISSING = "imported at the top: its parent is not in the file"
    PARENT_ELSEWHERE = "imported at the top: its parent is on another page"
    PARENT_SKIPPED = "imported higher up: its parent is not imported"
    PARENT_LOOP = "imported at the top: its parents loop back to it"


# The statuses that are never imported, and the row that counts them.
STATUS_SKIPS = {"deleted": Skip.DELETED, "spam": Skip.SPAM, "pingback": Skip.PINGBACK,
                "other": Skip.OTHER_KIND}


@dataclass(frozen=True)
class SourceThread:
    """One page with comments, as the source knows it."""

    key: str  # the source's own id for the thread (Isso's tid, Disqus's dsq:id, WP's post_id)
    url: str  # a URL or a site-relative path
    title: str = ""
    slug: str | None = None  # WordPress's post_name
    problem: Skip | None = None  # why its comments cannot be placed (an empty url: NO_LINK)

    @property
    def cannot_place(self) -> Skip | None:
        return self.problem or (None if self.url.strip() else Skip.NO_LINK)


@dataclass(frozen=True)
class SourceComment:
    """One comment as the source has it, already checked by the reader module."""

    key: str  # the source's id of the comment
    thread: str  # SourceThread.key
    parent: str | None
    name: str
    email: str | None
    website: str | None
    created: datetime  # aware
    body: str  # Markdown source (HTML sources are converted before this)
    status: Status
    edited: datetime | None = None


@dataclass(frozen=True)
class SourceData:
    source: str  # "isso", "disqus", "wordpress": the id prefix
    label: str  # "Isso", for messages
    location: str  # the file read
    threads: dict[str, SourceThread]
    comments: list[SourceComment]  # each key once (see ``skipped``)
    skipped: list[tuple[Skip, str]] = field(default_factory=list)  # (why, source id)


def clean_name(value: str | None) -> str:
    """The name as readers saw it (entities decoded, spaces folded; bidi controls and
    zero-width characters dropped as for a posted name), or ANONYMOUS."""
    text = " ".join(validation.clean_name(html.unescape(value or "")).split())
    return text[:MAX_NAME] if text else ANONYMOUS


def clean_email(value: str | None) -> str | None:
    """The address when it is one, else None (exports carry junk and trailing newlines)."""
    text = (value or "").strip()
    return text if text and EMAIL_RE.match(text) else None


def clean_website(value: str | None) -> str | None:
    """An http(s) URL short enough to keep, else None."""
    text = html.unescape((value or "").strip())
    if not text or len(text) > MAX_WEBSITE or urlsplit(text).scheme not in ("http", "https"):
        return None
    return text


def parse_utc(text: str, where: str, what: str = "date") -> datetime:
    """An ISO 8601 time (a trailing Z allowed; without a zone: UTC) or ImportRefused."""
    value = (text or "").strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError as error:
        raise ImportRefused(f"{where}: {what} {value!r} is not a date and time") from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
