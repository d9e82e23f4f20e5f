"""`flask … stats`: the listening figures of the metrics page, as plain-text tables or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from comments_service import metrics
from comments_service.extensions import MANIFEST_EXTENSION, STORE_EXTENSION
from comments_service.manifest import ArticleEntry, ManifestError
from comments_service.metrics_measure import measure

TEXT_CELL_WIDTH = 36


def _cell(text: str | None, fallback: str = "—") -> str:
    text = fallback if text is None else text
    return text if len(text) <= TEXT_CELL_WIDTH else text[: TEXT_CELL_WIDTH - 1] + "…"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]],
               right: Sequence[int] = ()) -> list[str]:
    """Columns padded to their widest cell; the ``right`` columns (numbers) aligned right."""
    widths = [max([len(header), *(len(row[column]) for row in rows)])
              for column, header in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), line(["-" * width for width in widths]), *map(line, rows)]


def text_report(report: metrics.Metrics) -> str:
    """The figures as aligned plain-text tables for a terminal."""
    fmt_time, fmt_share = metrics.format_duration, metrics.format_percent
    overall, target = report.overall, report.target
    out = [f"Listening figures as of {report.now:%Y-%m-%d %H:%M} UTC", ""]
    out += text_table(["Figure", "Value"], [
        ["Reader comments", str(overall.reader_comments)],
        ["Replied", str(overall.replied)],
        ["Reply rate", fmt_share(overall.reply_rate)],
        ["Individually replied", str(overall.individually_replied)],
        ["Individual reply rate", fmt_share(overall.individual_reply_rate)],
        ["Median time to first reply", fmt_time(overall.median_reply_seconds)],
        ["90th percentile", fmt_time(overall.p90_reply_seconds)],
        ["Waiting", str(overall.waiting)],
        ["Oldest waiting", fmt_time(report.oldest_waiting_seconds)],
        ["Spam (left out)", str(report.spam)],
        ["Withdrawn (left out)", str(report.withdrawn)],
        ["Readers' words", str(overall.reader_words)],
        ["Your words", str(overall.author_words)],
        ["Readers : you", metrics.format_ratio(overall.listen_ratio)],
    ], right=[1])
    verdict = {True: "target met", False: "below target", None: "nothing decided yet"}
    out += ["", f"Target: {fmt_share(report.targets.reply_rate)} answered individually within "
                f"{report.targets.label} (comments since {target.since:%Y-%m-%d})", ""]
    out += text_table(["Comments", "Count"], [
        ["Answered individually within target", str(target.within)],
        ["Missed the target", str(target.missed)],
        ["Waiting, still within target", str(target.pending)],
        ["Share answered within target", fmt_share(target.share)],
        ["Verdict", verdict[report.target_met]],
    ], right=[1])
    titles = {row.thread: row.title or row.thread for row in report.articles}
    out += ["", "About to miss the target or past it", ""]
    if report.due:
        out += text_table(["Status", "Waiting", "Reader", "Article", "Id"], [
            [badge.label, fmt_time(badge.waiting_seconds), _cell(badge.comment.name),
             _cell(titles.get(badge.comment.thread, badge.comment.thread)), badge.comment.id]
            for badge in report.due
        ], right=[1])
    else:
        out.append("None.")
    out += ["", "Articles", ""]
    out += text_table(
        ["Article", "Comments", "Replied", "Rate", "Waiting", "Median reply", "90th pct"],
        [[_cell(row.title, row.thread), str(row.figures.reader_comments),
          str(row.figures.replied), fmt_share(row.figures.reply_rate),
          str(row.figures.waiting), fmt_time(row.figures.median_reply_seconds),
          fmt_time(row.figures.p90_reply_seconds)] for row in report.articles],
        right=[1, 2, 3, 4, 5, 6],
    )
    out += ["", "Questions", ""]
    out += text_table(
        ["Article", "Question", "Comments", "Replied", "Rate", "Waiting", "Median reply"],
        [[_cell(row.article_title, row.thread), _cell(row.text, row.question),
          str(row.figures.reader_comments), str(row.figures.replied),
          fmt_share(row.figures.reply_rate), str(row.figures.waiting),
          fmt_time(row.figures.median_reply_seconds)] for row in report.questions],
        right=[2, 3, 4, 5, 6],
    )
    out += ["", "Listen more than you speak", ""]
    out += text_table(
        ["Article", "Readers' words", "Your words", "Readers : you"],
        [[_cell(row.title, row.thread), str(row.figures.reader_words),
          str(row.figures.author_words), metrics.format_ratio(row.figures.listen_ratio)]
         for row in report.articles],
        right=[1, 2, 3],
    )
    out += ["", "Weeks", ""]
    out += text_table(
        ["Week", "From", "Received", "Answered", "Median reply"],
        [[row.week, row.start.isoformat(), str(row.received), str(row.answered),
          fmt_time(row.median_reply_seconds)] for row in report.weeks],
        right=[2, 3, 4],
    )
    return "\n".join(out) + "\n"


# --- as data (`stats --json`) ----------------------------------------------------------------


def _figures_data(figures: metrics.Figures, *, words: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "reader_comments": figures.reader_comments,
        "replied": figures.replied,
        "individually_replied": figures.individually_replied,
        "waiting": figures.waiting,
        "reply_rate": figures.reply_rate,
        "individual_reply_rate": figures.individual_reply_rate,
        "median_reply_seconds": figures.median_reply_seconds,
        "p90_reply_seconds": figures.p90_reply_seconds,
    }
    if words:
        data.update({
            "reader_words": figures.reader_words,
            "author_words": figures.author_words,
            "listen_ratio": figures.listen_ratio,
        })
    return data


def as_data(report: metrics.Metrics) -> dict[str, Any]:
    """The figures as JSON-ready data with stable keys (documented in the README)."""
    return {
        "generated_at": report.now.isoformat(timespec="seconds"),
        "targets": {
            "reply_hours": report.targets.reply_hours,
            "reply_rate": report.targets.reply_rate,
            "due_soon_share": report.targets.due_soon_share,
            "window_days": report.targets.window_days,
        },
        "totals": {
            **_figures_data(report.overall),
            "spam": report.spam,
            "withdrawn": report.withdrawn,
            "oldest_waiting_seconds": report.oldest_waiting_seconds,
        },
        "target": {
            "since": report.target.since.isoformat(timespec="seconds"),
            "comments": report.target.comments,
            "within": report.target.within,
            "missed": report.target.missed,
            "pending": report.target.pending,
            "share": report.target.share,
            "met": report.target_met,
        },
        "due": [
            {
                "id": badge.comment.id,
                "thread": badge.comment.thread,
                "name": badge.comment.name,
                "created": badge.comment.created,
                "waiting_seconds": badge.waiting_seconds,
                "status": badge.status,
            }
            for badge in report.due
        ],
        "articles": [
            {"thread": row.thread, "title": row.title, **_figures_data(row.figures)}
            for row in report.articles
        ],
        "questions": [
            {"thread": row.thread, "question": row.question, "text": row.text,
             **_figures_data(row.figures, words=False)}
            for row in report.questions
        ],
        "weeks": [
            {"week": row.week, "start": row.start.isoformat(), "received": row.received,
             "answered": row.answered, "median_reply_seconds": row.median_reply_seconds}
            for row in report.weeks
        ],
    }


def _parse_now(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {text!r}", param_hint="--now") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--now", "now_text", metavar="TIME",
              help="Compute ages and windows as of this ISO 8601 time (UTC unless it says).")
@click.option("--weeks", type=click.IntRange(1, 520), default=metrics.TREND_WEEKS,
              show_default=True, help="How many ISO weeks the weekly figures cover.")
@with_appcontext
def stats_command(as_json: bool, now_text: str | None, weeks: int) -> None:
    """Print the listening figures: reply rate and times, waiting, target, per article."""
    articles: dict[str, ArticleEntry] = {}
    try:
        articles = current_app.extensions[MANIFEST_EXTENSION].get().articles
    except ManifestError as error:
        click.echo(f"Warning: {error}; articles are shown by thread key.", err=True)
    # From the store's running aggregates; every due comment is listed (due_shown=None).
    report = measure(
        current_app.extensions[STORE_EXTENSION], _parse_now(now_text),
        metrics.targets_from_config(current_app.config), articles, weeks=weeks, due_shown=None,
    )
    if as_json:
        click.echo(json.dumps(as_data(report), ensure_ascii=False, indent=2))
    else:
        click.echo(text_report(report), nl=False)
