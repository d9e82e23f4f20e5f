"""What an import says: the summary of a plan, the one table of what was skipped (or placed
elsewhere than the source had it) and why, the threads to map, and the command to run next.

The same lines are printed by the dry run and by the import, before anything is written.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from comments_service.importers.common import ImportOptions, ImportPlan
from comments_service.importers.source import Skip
from comments_service.wording import plural

__all__ = ["FIRST_IDS", "summary"]

FIRST_IDS = 5  # source ids shown per row of the table
LONGEST_ID = 40  # longer ids (WordPress keys posts without an id by their link) are cut


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _first_ids(ids: list[str]) -> str:
    shown = [i if len(i) <= LONGEST_ID else i[: LONGEST_ID - 1] + "…" for i in ids[:FIRST_IDS]]
    return ", ".join(shown) + (", …" if len(ids) > FIRST_IDS else "")


def _header(plan: ImportPlan) -> list[str]:
    data = plan.data
    total = len(data.comments) + len(data.skipped)
    placed = f"{len(plan.matched_threads)} matched to articles"
    if plan.threads_without_place:
        placed += (f"; {plan.threads_without_place} without a link or id, or with two "
                   "links")
    lines = [f"{data.label} {data.location}: {plural(total, 'comment')} in "
             f"{plural(len(data.threads), 'thread')} "
             f"({placed})"]
    if plan.matched_how:
        lines.append("  matched " + ", ".join(
            f"by {how}: {count}" for how, count in sorted(plan.matched_how.items())))
    return lines


def _counts(plan: ImportPlan, options: ImportOptions) -> list[str]:
    new = plan.new
    lines = [
        f"  to import: {len(new)} new ({plan.present} already present)",
        *([f"    already present under another article (an earlier run placed them; this "
           f"run moves nothing): {len(plan.present_elsewhere)}, "
           f"{_first_ids(plan.present_elsewhere)}"] if plan.present_elsewhere else []),
        f"    public: {sum(1 for c in new if c.public)}, "
        f"not public (pending at the source): {sum(1 for c in new if not c.public)}",
        f"    the author's own: {sum(1 for c in new if c.is_author)}",
        f"    marked replied (a later reply by the author below them): {plan.marked_replied}",
    ]
    if options.answered_before is not None:
        lines.append(f"    marked answered (written before "
                     f"{options.answered_before.isoformat()}): {plan.marked_answered}")
    lines.append(f"    entering the reply queue: {plan.entering_queue}")
    return lines


def _table(plan: ImportPlan) -> list[str]:
    rows = [(len(plan.skipped[why]), str(why), _first_ids(plan.skipped[why]))
            for why in Skip if why in plan.skipped]
    if not rows:
        return ["  nothing skipped: every comment goes where the source had it"]
    width = max(len(why) for _count, why, _ids in rows)
    lines = ["  skipped or moved, and why:",
             f"    {'comments':>8}  {'why':<{width}}  first source ids"]
    lines += [f"    {count:>8}  {why:<{width}}  {ids}" for count, why, ids in rows]
    return lines


def _unmatched(plan: ImportPlan, rerun: Sequence[str], articles_at: str) -> list[str]:
    if not plan.unmatched:
        return []
    waiting = sum(entry.comments for entry in plan.unmatched.values())
    entries = sorted(plan.unmatched.values(), key=lambda e: (-e.comments, e.thread.url))
    lines = [f"  threads that match no article: {len(entries)} "
             f"({_plural(waiting, 'comment')} not imported)",
             f"    {'comments':>8}  page"]
    for entry in entries:
        title = f" “{entry.thread.title}”" if entry.thread.title else ""
        several = (f" (fits several articles: {', '.join(entry.candidates)})"
                   if entry.candidates else "")
        lines.append(f"    {entry.comments:>8}  {entry.thread.url}{title}{several}")
    example = shlex.join([*rerun, "--map", f"{entries[0].thread.url}=ARTICLE", "--dry-run"])
    lines += [
        "  Next: map each page to an article (its thread key, URL or path), check the result "
        "with",
        "  --dry-run, then run the same command without it:",
        f"    {example}",
        "  or, for many pages, write one \"old URL,article\" line per page in a CSV file:",
        f"    {shlex.join([*rerun, '--map-file', 'map.csv', '--dry-run'])}",
    ]
    if articles_at:
        lines.append(f"  The articles, with their thread keys and URLs: {articles_at}")
    return lines


def summary(plan: ImportPlan, options: ImportOptions, rerun: Sequence[str] = (),
            unused_map: Sequence[str] = (), articles_at: str = "") -> list[str]:
    """Every line the import prints before it writes. ``rerun``: the command that ran, as
    words, for the example of what to run next; ``unused_map``: map entries that matched no
    thread of the file; ``articles_at``: where the site's articles are listed (the manifest)."""
    lines = [*_header(plan), *_counts(plan, options), *_table(plan),
             *_unmatched(plan, rerun, articles_at)]
    if unused_map:
        lines.append("  map entries that match no thread of this file (check them): "
                     + "; ".join(unused_map))
    return lines
