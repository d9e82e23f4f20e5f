"""The listening figures (metrics.py) from what the store keeps up to date on write, for the
metrics page, ``flask … stats`` and the public figures: ``CommentStore.listening_inputs`` gives
the tallies (metrics_inputs.py), and only the few oldest waiting comments are read whole.

``metrics.compute`` (over comments) stays the definition; tests check that the two agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from comments_service.manifest import ArticleEntry
from comments_service.metrics import (
    TREND_WEEKS,
    Figures,
    Metrics,
    TargetFigures,
    Targets,
    WeekFigures,
    age_seconds,
    article_rows,
    deadline,
    first_week,
    is_reader_comment,
    iso_week,
    question_rows,
    ratio,
)
from comments_service.metrics_inputs import (
    GroupInputs,
    ListeningInputs,
    RecentComment,
    stored_time,
)
from comments_service.models import Comment, CommentState

if TYPE_CHECKING:
    from comments_service.store.base import CommentStore

# Due comments the metrics page lists; it gives how many there are and links to the queue.
DUE_SHOWN = 25


def measure(
    store: CommentStore, now: datetime, targets: Targets | None = None,
    articles: Mapping[str, ArticleEntry] | None = None, weeks: int = TREND_WEEKS,
    due_shown: int | None = DUE_SHOWN,
) -> Metrics:
    """:func:`compute`'s figures from what the store keeps up to date on write
    (``CommentStore.listening_inputs``) and the oldest waiting comments, without reading any
    other comment. ``due`` lists the oldest ``due_shown`` due comments (None: all of them)."""
    targets = targets or Targets()
    now = now.astimezone(UTC)
    due_from = now - timedelta(seconds=targets.due_soon_seconds)
    inputs = store.listening_inputs(
        since=stored_time(now - timedelta(days=targets.window_days)),
        due_from=stored_time(due_from), weeks_from=first_week(now, weeks))
    shown = inputs.due if due_shown is None else min(due_shown, inputs.due)
    # At least one: the oldest waiting comment is shown even when none is due yet.
    waiting = store.comments_in_state(CommentState.AWAITING_REPLY, limit=max(1, shown))
    return from_inputs(inputs, waiting[:max(1, shown)], now, targets, articles, weeks)


def _window_counts(recent: Iterable[RecentComment], now: datetime,
                   target: float) -> tuple[int, int, int]:
    """(within the target, missed, pending) of the window's comments: a loop over thousands
    of rows on every view of a busy site, so it unpacks each row once and compares times as
    text wherever it can."""
    within = missed = pending = 0
    # Written before this (a stored time in the store's own form, UTC with microseconds,
    # compares as text) has waited longer than the target: no time to parse for most rows.
    late = stored_time(now - timedelta(seconds=target))
    for _, _, created, individual, _, seconds in recent:
        if individual:
            # No reply time (an import from before replied_at existed): taken as in time.
            if seconds is None or seconds <= target:
                within += 1
            else:
                missed += 1
        elif (created < late if len(created) == 32 and created.endswith("+00:00")
              else age_seconds(created, now) > target):
            missed += 1
        else:
            pending += 1
    return within, missed, pending


def _figures_of(group: GroupInputs) -> Figures:
    return Figures(
        reader_comments=group.reader_comments, replied=group.replied,
        individually_replied=group.individually_replied, waiting=group.waiting,
        reply_rate=ratio(group.replied, group.reader_comments),
        individual_reply_rate=ratio(group.individually_replied, group.reader_comments),
        median_reply_seconds=group.median_reply_seconds,
        p90_reply_seconds=group.p90_reply_seconds,
        reader_words=group.reader_words, author_words=group.author_words,
    )


def from_inputs(
    inputs: ListeningInputs, waiting: list[Comment], now: datetime,
    targets: Targets | None = None, articles: Mapping[str, ArticleEntry] | None = None,
    weeks: int = TREND_WEEKS,
) -> Metrics:
    """The figures of :func:`compute` from a store's ``inputs`` (asked as :func:`measure`
    asks) and the oldest waiting comments, oldest first (``due`` lists those of them due)."""
    targets = targets or Targets()
    articles = articles or {}
    now = now.astimezone(UTC)
    within, missed, pending = _window_counts(inputs.recent, now, targets.reply_seconds)
    readers = [comment for comment in waiting if is_reader_comment(comment)]
    oldest = readers[0] if readers else None
    first = first_week(now, weeks)
    trend = []
    for number in range(weeks):
        start = first + timedelta(weeks=number)
        week = inputs.weeks.get(start)
        trend.append(WeekFigures(
            week=iso_week(start), start=start, received=week.received if week else 0,
            answered=week.answered if week else 0,
            median_reply_seconds=week.median_reply_seconds if week else None))
    return Metrics(
        now=now, targets=targets, overall=_figures_of(inputs.overall), spam=inputs.spam,
        withdrawn=inputs.withdrawn, oldest_waiting=oldest,
        oldest_waiting_seconds=age_seconds(oldest.created, now) if oldest else None,
        target=TargetFigures(since=now - timedelta(days=targets.window_days),
                             comments=len(inputs.recent), within=within, missed=missed,
                             pending=pending),
        due=[badge for badge in (deadline(c, now, targets) for c in readers) if badge],
        due_total=inputs.due,
        articles=article_rows(
            {key: _figures_of(group) for key, group in inputs.articles.items()}, articles),
        questions=question_rows(
            {key: _figures_of(group) for key, group in inputs.questions.items()}, articles),
        weeks=trend,
    )
