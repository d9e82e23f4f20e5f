"""The public listening figures (#22): what readers see of how this author answers, before they
decide whether to write.

On an article, "The author has answered N of M comments here"; on the site, the share of the
last WINDOW_DAYS days' comments answered individually and the median time to that reply. Both
come from the metrics page's own figures (metrics.individual_reply_times: a reply the nudge
flagged as generic or repeated, sent anyway, does not count), over reader comments that are
neither spam nor withdrawn. No figure is given about fewer than MIN_COMMENTS comments: "1 of
1" says nothing. The setting PUBLIC_LISTENING (on/off) turns them off everywhere.

The site's figures reach readers twice: baked into every page's footer at build time (the
public export, base.html), and refreshed on an article by the widget from the numbers
footer_fields gives the thread payload, so the footer is current without a rebuild.
They come from the store's running aggregates (:func:`site_listening_of`, the
reader comments of the window that ``CommentStore.listening_inputs`` lists); ``site_listening``
works them out from comments (tests check the two agree).
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from comments_service.metrics import individual_reply_times
from comments_service.metrics_inputs import RecentComment, seconds_between, stored_time
from comments_service.models import Comment, CommentState

MIN_COMMENTS = 10
WINDOW_DAYS = 90


def _counted(comments: Iterable[Comment]) -> list[Comment]:
    return [comment for comment in comments if not comment.is_author
            and comment.state not in (CommentState.SPAM, CommentState.WITHDRAWN)]


def article_listening(comments: list[Comment]) -> dict[str, int] | None:
    """{"received", "answered"} for one thread's comments; None below MIN_COMMENTS."""
    counted = _counted(comments)
    if len(counted) < MIN_COMMENTS:
        return None
    answered = individual_reply_times(comments)
    return {"received": len(counted),
            "answered": sum(1 for comment in counted if comment.id in answered)}


def site_listening(comments: Iterable[Comment], now: datetime) -> dict[str, Any] | None:
    """{"window_days", "received", "answered", "answered_share", "median_reply_hours"} over
    the reader comments of the last WINDOW_DAYS days; None below MIN_COMMENTS."""
    since = window_start(now)
    everything = list(comments)
    answered = individual_reply_times(everything)
    recent = [comment for comment in _counted(everything) if comment.created >= since]
    if len(recent) < MIN_COMMENTS:
        return None
    hours = [seconds_between(comment.created, at) / 3600 for comment in recent
             if (at := answered.get(comment.id))]
    done = sum(1 for comment in recent if comment.id in answered)
    return {
        "window_days": WINDOW_DAYS, "received": len(recent), "answered": done,
        "answered_share": round(done / len(recent), 2),
        "median_reply_hours": round(statistics.median(hours), 1) if hours else None,
    }


def footer_fields(figures: dict[str, Any] | None) -> dict[str, int]:
    """The site's figures as the numbers in the footer's ``[data-l]`` spans (base.html), for
    the widget to copy into them: ``site_share`` (per cent) and the median time to reply in
    each unit the build may have chosen for it (``site_reply_min``, ``site_reply_h``,
    ``site_reply_days``). Empty when there are no figures, so nothing is added to a page.

    Numbers, not text: the words and units around them were written, translated, by the
    build (strings plugin), and the service knows neither the site's language nor its
    catalogue. The footer wraps the number of the unit it chose, so a refreshed figure keeps
    that unit until the next build ("50 h" rather than "2 days"); each is at least 1, so it
    never claims "0 days". The rounding is the templates' (Jinja's round is Python's)."""
    if figures is None:
        return {}
    fields = {"site_share": int(round(figures["answered_share"] * 100, 0))}
    hours = figures["median_reply_hours"]
    if hours is not None:  # no median: the footer says a dash, in no span
        fields |= {"site_reply_min": max(int(round(hours * 60, 0)), 1),
                   "site_reply_h": max(int(round(hours, 0)), 1),
                   "site_reply_days": max(int(round(hours / 24, 0)), 1)}
    return fields


def window_start(now: datetime) -> str:
    """The stored time from which the site's figures count comments."""
    return stored_time(now - timedelta(days=WINDOW_DAYS))


def site_listening_of(
    recent: Iterable[RecentComment], threads: Collection[str]
) -> dict[str, Any] | None:
    """:func:`site_listening` from the reader comments written since :func:`window_start`
    (``CommentStore.listening_inputs``), counting those of ``threads`` (the site's)."""
    counted = [row for row in recent if row.thread in threads]
    if len(counted) < MIN_COMMENTS:
        return None
    hours = [seconds_between(row.created, row.individual_at) / 3600 for row in counted
             if row.individual and row.individual_at]
    done = sum(1 for row in counted if row.individual)
    return {
        "window_days": WINDOW_DAYS, "received": len(counted), "answered": done,
        "answered_share": round(done / len(counted), 2),
        "median_reply_hours": round(statistics.median(hours), 1) if hours else None,
    }
