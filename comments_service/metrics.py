"""Listening figures: how many reader comments get a reply, how fast, what still waits, and how
much readers write compared with the author. Pure functions over comments and a clock.

Definitions (the metrics page, `flask … stats` and the tests all use these):

- **Reader comment**: not the author's, in state ``awaiting_reply`` or ``replied``. Spam and
  comments withdrawn by their writer are left out everywhere; the author's comments are never
  reader comments.
- **Reply rate**: replied ÷ reader comments.
- **Individual reply rate**: individually replied ÷ reader comments. A replied comment counts
  unless every reply of the author's standing under it was sent anyway over the nudge's
  "generic" or "repeated" warning (a stock or copied reply, ``Comment.nudge_warnings``); one
  answered before replies were kept (an import) counts. Its *individual reply time* runs to the
  first reply that counts (``replied_at`` when that is the first reply).
- **Time to first reply**: ``replied_at - created`` of replied comments. ``replied_at`` is set by
  the first reply and kept through later replies and edits, and cleared when the only reply is
  deleted (the comment waits again), so neither an edit nor a second reply moves it.
  Median and 90th percentile interpolate linearly between the two nearest values.
- **Target**: a reader comment of the last ``window_days`` days is *within target* when it was
  answered individually within ``reply_hours``; it *missed* when it was answered individually
  later or has waited longer (a stock reply does not stop the clock). One still without an
  individual reply and still inside the target is *pending*: left out of the share until it is
  decided, so new comments do not pull the share down before the author had the time to answer.
- **Due**: a waiting comment is *due soon* once it has waited ``due_soon_share`` of the target
  and *overdue* once it has waited longer than the target.
- **Weeks**: ISO weeks (Monday to Sunday, UTC). *Received* counts reader comments by the week
  they were written; *answered* and the week's median reply time count them by the week of
  their first reply.
- **Words**: runs of letters and digits (``don't`` is one word, ``well-known`` two) in the
  Markdown source, web addresses left out. Readers' words are their comments' (reader comments
  as above); the author's are the author's comments that stand (deleted replies left out).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from comments_service.config import DEFAULTS, ConfigError, setting_value
from comments_service.manifest import ArticleEntry
from comments_service.metrics_inputs import (
    is_stock,
    seconds_between,
    sorted_percentile,
    week_start,
    word_count,
)
from comments_service.models import LIVE_STATES, Comment, CommentState, parse_time

DUE_SOON_SHARE = 0.75
TARGET_WINDOW_DAYS = 30
TREND_WEEKS = 12


# TARGET_REPLY_HOURS or TARGET_REPLY_RATE has a value the figures cannot use.
TargetSettingError = ConfigError


@dataclass(frozen=True)
class Targets:
    """What the author aims for: ``reply_rate`` of comments answered within ``reply_hours``."""

    reply_hours: float = DEFAULTS["TARGET_REPLY_HOURS"]
    reply_rate: float = DEFAULTS["TARGET_REPLY_RATE"]
    due_soon_share: float = DUE_SOON_SHARE
    window_days: int = TARGET_WINDOW_DAYS

    @property
    def reply_seconds(self) -> float:
        return self.reply_hours * 3600

    @property
    def due_soon_seconds(self) -> float:
        return self.reply_seconds * self.due_soon_share

    @property
    def label(self) -> str:
        return format_hours(self.reply_hours)


def targets_from_config(config: Mapping[str, Any]) -> Targets:
    """The targets from the service settings (the settings' defaults where ``config`` has
    none), checked by the settings table's own rules; ConfigError names a bad one."""
    return Targets(reply_hours=float(setting_value(config, "TARGET_REPLY_HOURS")),
                   reply_rate=setting_value(config, "TARGET_REPLY_RATE"))


# --- small pieces ----------------------------------------------------------------------------


def is_reader_comment(comment: Comment) -> bool:
    return not comment.is_author and comment.state in LIVE_STATES


def percentile(values: list[float], share: float) -> float | None:
    """The ``share`` quantile of ``values`` (linear between the nearest two); None if empty."""
    return sorted_percentile(sorted(values), share)


def median(values: list[float]) -> float | None:
    return percentile(values, 0.5)


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def age_seconds(created: str, now: datetime) -> float:
    return max(0.0, (now - parse_time(created)).total_seconds())


def iso_week(moment: datetime | date) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def format_duration(seconds: float | None) -> str:
    """A length of time for people, rounded down: "40 s", "25 min", "5 h 3 min", "3 days 4 h"."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    days, rest = divmod(minutes, 24 * 60)
    hours = rest // 60
    return f"{days} days {hours} h" if hours else f"{days} days"


def format_hours(hours: float) -> str:
    return f"{hours:g} h"


def format_percent(share: float | None) -> str:
    """A share as a percentage, rounded down to a tenth so 89.96 % never shows as 90 %."""
    if share is None:
        return "—"
    tenths = math.floor(share * 1000 + 1e-9)
    whole, tenth = divmod(tenths, 10)
    return f"{whole} %" if tenth == 0 else f"{whole}.{tenth} %"


def format_ratio(value: float | None) -> str:
    """Readers' words per word of the author's: "3.2 : 1"."""
    if value is None:
        return "—"
    return f"{value:.1f} : 1"


# --- results ---------------------------------------------------------------------------------


@dataclass
class _Tally:
    reader_comments: int = 0
    replied: int = 0
    individually_replied: int = 0
    waiting: int = 0
    reply_seconds: list[float] = field(default_factory=list)
    reader_words: int = 0
    author_words: int = 0

    def figures(self) -> Figures:
        return Figures(
            reader_comments=self.reader_comments,
            replied=self.replied,
            individually_replied=self.individually_replied,
            waiting=self.waiting,
            reply_rate=ratio(self.replied, self.reader_comments),
            individual_reply_rate=ratio(self.individually_replied, self.reader_comments),
            median_reply_seconds=median(self.reply_seconds),
            p90_reply_seconds=percentile(self.reply_seconds, 0.9),
            reader_words=self.reader_words,
            author_words=self.author_words,
        )


@dataclass(frozen=True)
class Figures:
    """The figures of one group of comments: all of them, one article or one question."""

    reader_comments: int
    replied: int
    individually_replied: int
    waiting: int
    reply_rate: float | None
    individual_reply_rate: float | None
    median_reply_seconds: float | None
    p90_reply_seconds: float | None
    reader_words: int
    author_words: int

    @property
    def listen_ratio(self) -> float | None:
        """Readers' words per word of the author's (None while the author wrote nothing)."""
        return self.reader_words / self.author_words if self.author_words else None


@dataclass(frozen=True)
class ArticleFigures:
    thread: str
    title: str | None  # None: the thread is no longer in the manifest
    url: str | None
    figures: Figures


@dataclass(frozen=True)
class QuestionFigures:
    thread: str
    article_title: str | None
    question: str
    text: str | None  # None: the question is no longer in the article
    figures: Figures


@dataclass(frozen=True)
class WeekFigures:
    week: str  # "2026-W41"
    start: date  # its Monday
    received: int
    answered: int
    median_reply_seconds: float | None


@dataclass(frozen=True)
class TargetFigures:
    """Reader comments of the last ``window_days`` days against the reply-time target."""

    since: datetime
    comments: int
    within: int
    missed: int
    pending: int

    @property
    def decided(self) -> int:
        return self.within + self.missed

    @property
    def share(self) -> float | None:
        return ratio(self.within, self.decided)


@dataclass(frozen=True)
class Deadline:
    """A waiting comment near or past the reply-time target."""

    comment: Comment
    waiting_seconds: float
    status: str  # "due_soon" or "overdue"
    target_seconds: float
    target_label: str  # "48 h"

    @property
    def overdue(self) -> bool:
        return self.status == "overdue"

    @property
    def label(self) -> str:
        return "Overdue" if self.overdue else "Due soon"

    @property
    def detail(self) -> str:
        if self.overdue:
            late = format_duration(self.waiting_seconds - self.target_seconds)
            return f"past the {self.target_label} target by {late}"
        left = format_duration(self.target_seconds - self.waiting_seconds)
        return f"{left} left of the {self.target_label} target"


@dataclass(frozen=True)
class Metrics:
    """Everything the metrics page and `stats` show, as of ``now``."""

    now: datetime
    targets: Targets
    overall: Figures
    spam: int
    withdrawn: int
    oldest_waiting: Comment | None
    oldest_waiting_seconds: float | None
    target: TargetFigures
    due: list[Deadline]
    articles: list[ArticleFigures]
    questions: list[QuestionFigures]
    weeks: list[WeekFigures]
    # How many comments are due in all; ``due`` may list only the oldest of them (the page
    # shows a few and links to the queue). None: ``due`` lists every one.
    due_total: int | None = None

    @property
    def due_count(self) -> int:
        return len(self.due) if self.due_total is None else self.due_total

    @property
    def target_met(self) -> bool | None:
        share = self.target.share
        return None if share is None else share >= self.targets.reply_rate

    @property
    def has_comments(self) -> bool:
        return self.overall.reader_comments > 0


def is_stock_reply(reply: Comment) -> bool:
    """Whether the author sent this reply anyway over a "generic" or "repeated" warning."""
    return is_stock(reply.nudge_warnings)


def individual_reply_times(comments: Iterable[Comment]) -> dict[str, str | None]:
    """When each replied reader comment got its first individual reply, by comment id: absent
    when only stock replies stand under it; None when answered at an unknown time."""
    replies: dict[str, list[Comment]] = defaultdict(list)
    replied: list[Comment] = []
    for comment in comments:
        if comment.is_author and comment.parent and comment.state is CommentState.POSTED:
            replies[comment.parent].append(comment)
        elif not comment.is_author and comment.state is CommentState.REPLIED:
            replied.append(comment)
    times: dict[str, str | None] = {}
    for comment in replied:
        standing = sorted(replies.get(comment.id, []), key=lambda reply: reply.created)
        first = next((reply for reply in standing if not is_stock_reply(reply)), None)
        if not standing or first is standing[0]:
            # No reply kept (an import) or the first reply counts: the first reply's time.
            times[comment.id] = comment.replied_at or (first.created if first else None)
        elif first is not None:
            times[comment.id] = first.created
    return times


# --- computing -------------------------------------------------------------------------------


def deadline(comment: Comment, now: datetime, targets: Targets) -> Deadline | None:
    """The comment's deadline badge, when it waits and has used up most of the target."""
    if not is_reader_comment(comment) or comment.state is not CommentState.AWAITING_REPLY:
        return None
    waited = age_seconds(comment.created, now)
    if waited > targets.reply_seconds:
        status = "overdue"
    elif waited >= targets.due_soon_seconds:
        status = "due_soon"
    else:
        return None
    return Deadline(comment, waited, status, targets.reply_seconds, targets.label)


def deadlines(comments: Iterable[Comment], now: datetime, targets: Targets) -> dict[str, Deadline]:
    """Deadline badges of the waiting comments that need one, by comment id (for the queue)."""
    found = {}
    for comment in comments:
        badge = deadline(comment, now, targets)
        if badge is not None:
            found[comment.id] = badge
    return found


def compute(
    comments: Iterable[Comment],
    now: datetime,
    targets: Targets | None = None,
    articles: Mapping[str, ArticleEntry] | None = None,
    weeks: int = TREND_WEEKS,
) -> Metrics:
    """Every figure in one pass over ``comments`` (any order).

    ``articles`` (the manifest's, by thread) gives titles and lists articles and questions that
    have no comments yet; ``weeks`` is how many ISO weeks the trend shows, ending with now's.
    """
    targets = targets or Targets()
    articles = articles or {}
    comments = list(comments)
    individual = individual_reply_times(comments)
    now = now.astimezone(UTC)
    since = now - timedelta(days=targets.window_days)
    first = first_week(now, weeks)
    week_keys = [first + timedelta(weeks=number) for number in range(weeks)]

    overall = _Tally()
    by_article: dict[str, _Tally] = defaultdict(_Tally)
    by_question: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    received: dict[date, int] = defaultdict(int)
    answered: dict[date, list[float]] = defaultdict(list)
    spam = withdrawn = 0
    within = missed = pending = in_window = 0
    waiting: list[Comment] = []

    for comment in comments:
        if comment.is_author:
            if comment.state is CommentState.POSTED:
                words = word_count(comment.body)
                overall.author_words += words
                by_article[comment.thread].author_words += words
            continue
        if comment.state is CommentState.SPAM:
            spam += 1
            continue
        if comment.state is CommentState.WITHDRAWN:
            withdrawn += 1
            continue
        if comment.state not in LIVE_STATES:
            continue  # a reader comment can never be "posted"; nothing to count
        words = word_count(comment.body)
        tallies = [overall, by_article[comment.thread]]
        if comment.question:
            tallies.append(by_question[(comment.thread, comment.question)])
        reply_seconds = None
        if comment.state is CommentState.REPLIED:
            if comment.replied_at:
                reply_seconds = seconds_between(comment.created, comment.replied_at)
                replied_week = week_start(parse_time(comment.replied_at))
                if replied_week >= first:
                    answered[replied_week].append(reply_seconds)
        else:
            waiting.append(comment)
        answered_individually = comment.id in individual
        for tally in tallies:
            tally.reader_comments += 1
            tally.reader_words += words
            tally.individually_replied += answered_individually
            if comment.state is CommentState.REPLIED:
                tally.replied += 1
                if reply_seconds is not None:
                    tally.reply_seconds.append(reply_seconds)
            else:
                tally.waiting += 1
        created = parse_time(comment.created)
        received[week_start(created)] += 1
        if created >= since:
            in_window += 1
            if answered_individually:
                individual_at = individual[comment.id]
                # No reply time (an import from before replied_at existed): taken as in time.
                if (individual_at is None or seconds_between(comment.created, individual_at)
                        <= targets.reply_seconds):
                    within += 1
                else:
                    missed += 1
            elif age_seconds(comment.created, now) > targets.reply_seconds:
                missed += 1
            else:
                pending += 1

    waiting.sort(key=lambda comment: (comment.created, comment.id))
    oldest = waiting[0] if waiting else None
    due = [badge for badge in (deadline(c, now, targets) for c in waiting) if badge is not None]
    return Metrics(
        now=now,
        targets=targets,
        overall=overall.figures(),
        spam=spam,
        withdrawn=withdrawn,
        oldest_waiting=oldest,
        oldest_waiting_seconds=age_seconds(oldest.created, now) if oldest else None,
        target=TargetFigures(since=since, comments=in_window, within=within, missed=missed,
                             pending=pending),
        due=due,
        due_total=len(due),
        articles=article_rows({key: tally.figures() for key, tally in by_article.items()},
                               articles),
        questions=question_rows(
            {key: tally.figures() for key, tally in by_question.items()}, articles),
        weeks=[
            WeekFigures(
                week=iso_week(start), start=start, received=received.get(start, 0),
                answered=len(answered.get(start, [])),
                median_reply_seconds=median(answered.get(start, [])),
            )
            for start in week_keys
        ],
    )


def first_week(now: datetime, weeks: int) -> date:
    """The Monday of the first of the ``weeks`` ISO weeks that end with ``now``'s."""
    return week_start(now) - timedelta(weeks=weeks - 1)


def _title_key(title: str | None, thread: str) -> tuple[bool, str, str]:
    # Articles still on the site first, by title; then the others by thread key.
    return (title is None, (title or "").casefold(), thread)


def article_rows(
    tallies: Mapping[str, Figures], articles: Mapping[str, ArticleEntry]
) -> list[ArticleFigures]:
    rows = []
    for thread in set(tallies) | set(articles):
        article = articles.get(thread)
        rows.append(ArticleFigures(
            thread=thread, title=article.title if article else None,
            url=article.url if article else None,
            figures=tallies.get(thread) or _Tally().figures(),
        ))
    rows.sort(key=lambda row: _title_key(row.title, row.thread))
    return rows


def question_rows(
    tallies: Mapping[tuple[str, str], Figures], articles: Mapping[str, ArticleEntry]
) -> list[QuestionFigures]:
    order: dict[tuple[str, str], int] = {}
    for article in articles.values():
        for number, question in enumerate(article.questions):
            order[(article.thread, question.id)] = number
    rows = []
    for thread, question_id in set(tallies) | set(order):
        article = articles.get(thread)
        question = article.question(question_id) if article else None
        rows.append(QuestionFigures(
            thread=thread, article_title=article.title if article else None,
            question=question_id, text=question.text if question else None,
            figures=tallies.get((thread, question_id)) or _Tally().figures(),
        ))
    # By article as in the article table, then in the article's own order of questions.
    rows.sort(key=lambda row: (
        *_title_key(row.article_title, row.thread),
        order.get((row.thread, row.question), len(order)), row.question,
    ))
    return rows
