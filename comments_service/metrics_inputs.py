"""What the store keeps up to date on write for the listening figures, and the small rules the
store and metrics.py share to keep them (issue 19: the metrics page reads only these).

metrics.py defines the figures (its docstring) and works them out from comments alone
(``metrics.compute``, for tests and tools); a store answers ``CommentStore.listening_inputs``
with a :class:`ListeningInputs` from its own running aggregates (TinyDB: the comment index,
store/tinydb/metrics_index.py) or SQL aggregates (PostgreSQL: store/postgres/listening.py), and
``metrics.from_inputs`` lays that out as the same ``Metrics``. Only models is imported here, so
the store (the lowest layer) can use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from comments_service.models import parse_time

# The nudge's warnings that make a reply sent over them a stock one, not an individual reply.
STOCK_REPLY_WARNINGS = frozenset({"generic", "repeated"})

URL_RE = re.compile(r"(?:https?://|mailto:|www\.)\S+", re.IGNORECASE)
WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


def word_count(text: str) -> int:
    """Runs of letters and digits in ``text``, web addresses left out (metrics.py)."""
    return len(WORD_RE.findall(URL_RE.sub(" ", text)))


def is_stock(nudge_warnings: Iterable[str]) -> bool:
    """Whether a reply with these nudge warnings was a stock or copied one."""
    return not STOCK_REPLY_WARNINGS.isdisjoint(nudge_warnings)


def seconds_between(start: str, end: str) -> float:
    """Seconds from one stored time to another, never below zero (clock skew, bad imports)."""
    return max(0.0, (parse_time(end) - parse_time(start)).total_seconds())


def week_start(moment: datetime) -> date:
    """The Monday (UTC) of ``moment``'s ISO week."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def stored_time(moment: datetime) -> str:
    """``moment`` as the store writes times (UTC, microseconds), so that strings compare as
    the times do."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def sorted_percentile(ordered: Sequence[float], share: float) -> float | None:
    """The ``share`` quantile of already sorted values (linear between the nearest two)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * share
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class GroupInputs:
    """One group's tallies (all reader comments, one thread, or one question of one thread)."""

    reader_comments: int = 0
    replied: int = 0
    individually_replied: int = 0
    waiting: int = 0
    reader_words: int = 0
    author_words: int = 0
    median_reply_seconds: float | None = None
    p90_reply_seconds: float | None = None


@dataclass(frozen=True)
class WeekInputs:
    """Reader comments written in an ISO week, and those first answered in it."""

    received: int = 0
    answered: int = 0
    median_reply_seconds: float | None = None


class RecentComment(NamedTuple):
    """A reader comment (awaiting_reply or replied) written since the window's start (a named
    tuple: a window holds thousands, made on every view).

    ``individual``: it has an individual reply (metrics.individual_reply_times); then
    ``individual_at`` is its time (None: answered at an unknown time, an import) and
    ``individual_seconds`` the time to it (``seconds_between``; None with it)."""

    id: str
    thread: str
    created: str
    individual: bool
    individual_at: str | None
    individual_seconds: float | None


def recent_comment(comment_id: str, thread: str, created: str, individual: bool,
                   individual_at: str | None) -> RecentComment:
    return RecentComment(comment_id, thread, created, individual, individual_at,
                         seconds_between(created, individual_at) if individual_at else None)


@dataclass(frozen=True)
class ListeningInputs:
    """Everything the listening figures need, without one comment's text.

    ``weeks`` holds the ISO weeks (by their Monday) from the one asked for on that have any
    comment received or answered; ``recent`` the reader comments written since the time asked
    for, oldest first; ``due`` how many reader comments wait since the time asked for or
    longer."""

    overall: GroupInputs
    articles: dict[str, GroupInputs]
    questions: dict[tuple[str, str], GroupInputs]
    spam: int
    withdrawn: int
    weeks: dict[date, WeekInputs]
    recent: list[RecentComment] = field(default_factory=list)
    due: int = 0


def individual_time(
    replied_at: str | None, standing: Sequence[tuple[str, bool]]
) -> tuple[bool, str | None]:
    """(answered individually, when) of a replied reader comment, from the author's replies
    standing under it as (created, stock) oldest first: the rule of
    metrics.individual_reply_times."""
    first = next((index for index, (_, stock) in enumerate(standing) if not stock), None)
    if not standing or first == 0:
        # No reply kept (an import) or the first reply counts: the first reply's time.
        return True, replied_at or (standing[0][0] if standing else None)
    if first is not None:
        return True, standing[first][0]
    return False, None
