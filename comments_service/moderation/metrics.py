"""The listening figures for the author: the page /moderate/metrics (`flask … stats` prints
the same figures, cli/stats.py).

    GET  /moderate/metrics       reply rate and times, what waits, the target, per article and
                                 per question, the weekly trend (inline SVG), readers' words

The figures are metrics.py's, from the store's running aggregates (metrics_measure.py); the
list of due comments shows the oldest DUE_SHOWN and links to the queue for the rest. This
module lays them out, as a blueprint nested in the
moderation one (same sign-in, navigation and header counts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, render_template

from comments_service import metrics
from comments_service.extensions import manifest, store
from comments_service.metrics_measure import measure
from comments_service.moderation.auth import login_required

bp = Blueprint("metrics", __name__, url_prefix="/metrics")

CHART_WIDTH = 640
CHART_HEIGHT = 236  # the plot, the week labels below it, a legend line
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 52, 624, 14, 184
HOUR_STEPS = (0.25, 0.5, 1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720, 1440)


def current_targets() -> metrics.Targets:
    return metrics.targets_from_config(current_app.config)


# --- the page --------------------------------------------------------------------------------


@bp.get("", endpoint="index")
@login_required
def metrics_page():
    """The listening figures of every comment in the store, from what the store keeps up to
    date on write (metrics_measure.py): only the oldest due comments are read whole."""
    report = measure(store(), datetime.now(UTC), current_targets(), manifest().articles)
    return render_template(
        "moderation/metrics.html", report=report,
        counts_chart=counts_chart(report.weeks), hours_chart=hours_chart(report),
        duration=metrics.format_duration, percent=metrics.format_percent,
        listen_ratio=metrics.format_ratio,
        titles={row.thread: row.title for row in report.articles if row.title},
    )


# --- the trend charts (geometry for the template's inline SVG) -------------------------------


def _count_step(top: float) -> int:
    """A round step (1, 2, 5, 10, 20…) giving at most five gridlines up to ``top``."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if top / (factor * magnitude) <= 5:
                return factor * magnitude
        magnitude *= 10


def _hour_step(top: float) -> float:
    return next((step for step in HOUR_STEPS if top / step <= 5), HOUR_STEPS[-1])


def _ticks(top: float, step: float, label) -> tuple[float, list[dict[str, Any]]]:
    """The axis' top (a whole number of steps) and its gridlines."""
    steps = max(1, math.ceil(top / step))
    axis_top = steps * step
    height = PLOT_BOTTOM - PLOT_TOP
    return axis_top, [
        {"y": round(PLOT_BOTTOM - height * number / steps, 1), "label": label(number * step)}
        for number in range(steps + 1)
    ]


def _slots(weeks: Sequence[metrics.WeekFigures]) -> tuple[float, list[dict[str, Any]]]:
    width = (PLOT_RIGHT - PLOT_LEFT) / max(1, len(weeks))
    labels = [
        {"x": round(PLOT_LEFT + width * (number + 0.5), 1), "label": f"W{week.week[-2:]}"}
        for number, week in enumerate(weeks)
    ]
    return width, labels


def _y(value: float, axis_top: float) -> float:
    return round(PLOT_BOTTOM - (PLOT_BOTTOM - PLOT_TOP) * value / axis_top, 1)


def counts_chart(weeks: Sequence[metrics.WeekFigures]) -> dict[str, Any]:
    """Bars of comments received and answered per week."""
    top = max([1, *(week.received for week in weeks), *(week.answered for week in weeks)])
    axis_top, ticks = _ticks(top, _count_step(top), str)
    slot, labels = _slots(weeks)
    bar = slot * 0.36
    bars = []
    for number, week in enumerate(weeks):
        middle = PLOT_LEFT + slot * (number + 0.5)
        for kind, value, x in (("received", week.received, middle - bar),
                               ("answered", week.answered, middle)):
            y = _y(value, axis_top)
            bars.append({
                "kind": kind, "x": round(x, 1), "y": y, "width": round(bar, 1),
                "height": round(PLOT_BOTTOM - y, 1),
                "title": f"{week.week} (from {week.start:%d %b}): {value} {kind}",
            })
    received = sum(week.received for week in weeks)
    answered = sum(week.answered for week in weeks)
    busiest = max(weeks, key=lambda week: week.received, default=None)
    description = (
        f"Reader comments received and answered in each of the last {len(weeks)} ISO weeks"
        f"{_span(weeks)}: {received} received and {answered} answered in all."
    )
    if busiest is not None and busiest.received:
        description += f" The busiest week, {busiest.week}, brought {busiest.received}."
    return {"ticks": ticks, "labels": labels, "bars": bars, "description": description,
            **_frame()}


def hours_chart(report: metrics.Metrics) -> dict[str, Any]:
    """Points (joined across consecutive weeks) of each week's median time to first reply."""
    weeks = report.weeks
    target = report.targets.reply_hours
    medians = [week.median_reply_seconds for week in weeks]
    top = max([target, *(value / 3600 for value in medians if value is not None)])
    axis_top, ticks = _ticks(top, _hour_step(top), metrics.format_hours)
    _, labels = _slots(weeks)
    points, lines, run = [], [], []
    for label, week, value in zip(labels, weeks, medians, strict=True):
        if value is None:
            if len(run) > 1:
                lines.append(" ".join(run))
            run = []
            continue
        y = _y(value / 3600, axis_top)
        points.append({"x": label["x"], "y": y, "title":
                       f"{week.week}: median reply {metrics.format_duration(value)} "
                       f"({week.answered} answered)"})
        run.append(f"{label['x']},{y}")
    if len(run) > 1:
        lines.append(" ".join(run))
    answered = [(week, value) for week, value in zip(weeks, medians, strict=True)
                if value is not None]
    description = (
        f"Median time to first reply of the comments answered in each of the last {len(weeks)}"
        f" ISO weeks{_span(weeks)}; the dashed line is the {report.targets.label} target."
    )
    if answered:
        fastest = min(answered, key=lambda pair: pair[1])
        slowest = max(answered, key=lambda pair: pair[1])
        description += (
            f" Fastest week {fastest[0].week}: {metrics.format_duration(fastest[1])};"
            f" slowest {slowest[0].week}: {metrics.format_duration(slowest[1])}."
            " Weeks without replies have no point."
        )
    else:
        description += " No comment was answered in these weeks."
    return {"ticks": ticks, "labels": labels, "points": points, "lines": lines,
            "target_y": _y(target, axis_top), "target_label": f"target {report.targets.label}",
            "description": description, **_frame()}


def _span(weeks: Sequence[metrics.WeekFigures]) -> str:
    return f", {weeks[0].week} to {weeks[-1].week}" if weeks else ""


def _frame() -> dict[str, Any]:
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "left": PLOT_LEFT,
            "right": PLOT_RIGHT, "top": PLOT_TOP, "bottom": PLOT_BOTTOM}
