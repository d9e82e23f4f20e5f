"""The listening figures per question, per thread and for the whole site, kept per process
from migration 0009's ``listening_groups`` (issue 19: the metrics page must not grow with the
store).

Each row holds one thread's and question's running counts, and every write of a row gives
it a new ``changed`` number; a group's times to a reply are read in order from an index.
:class:`KeptGroups` asks first whether anything moved (the rows' count and the sum of their
numbers, which grows with every committed write), then which rows moved, and reads only those
again: their threads' figures are worked out again, the site's sorted times lose what a row
lost and gain what it gained. So a view costs the writes since the last one, not the store's
size. The first view of a process reads every group (tens of thousands of times at 100 000
comments), and a view after a write to a busy thread reads that thread's times again.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import NamedTuple

import numpy

from comments_service.metrics_inputs import GroupInputs, sorted_percentile
from comments_service.store.postgres.rows import Cursor

VERSION = "SELECT count(*), coalesce(sum(changed), 0) FROM listening_groups"
NUMBERS = "SELECT thread, question, changed FROM listening_groups"
# The groups asked for with their times to a reply in order, from comments_reply_times alone
# (one statement: the times are those of the counts' moment; a NULL question is kept as '').
# Binary, so that the times arrive as floats without text to parse.
ROWS = """
SELECT g.thread, g.question, g.changed, g.reader_comments, g.replied, g.individual, g.waiting,
       g.reader_words,
       CASE WHEN g.question = ''
       THEN ARRAY(SELECT c.reply_seconds FROM comments AS c
                  WHERE c.thread = g.thread AND c.question IS NULL AND NOT c.is_author
                    AND c.state IN ('awaiting_reply', 'replied') AND c.reply_seconds IS NOT NULL
                  ORDER BY c.reply_seconds)
       ELSE ARRAY(SELECT c.reply_seconds FROM comments AS c
                  WHERE c.thread = g.thread AND c.question = g.question AND NOT c.is_author
                    AND c.state IN ('awaiting_reply', 'replied') AND c.reply_seconds IS NOT NULL
                  ORDER BY c.reply_seconds) END
FROM listening_groups AS g
WHERE (g.thread, g.question) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
"""
# Above this many rows to read again, the site's times are sorted anew rather than patched.
REBUILD_FROM = 40

Key = tuple[str, str]


class Row(NamedTuple):
    """One group's row: its number, five counts and sorted times."""

    changed: int
    tallies: tuple[int, int, int, int, int]
    times: list[float]


def group_inputs(tallies: Sequence[int], ordered: Sequence[float]) -> GroupInputs:
    """A group's inputs from its five counts (comments, replied, individually replied,
    waiting, words) and its sorted reply times."""
    comments, replied, individually, waiting, words = tallies
    return GroupInputs(
        reader_comments=comments, replied=replied, individually_replied=individually,
        waiting=waiting, reader_words=words,
        median_reply_seconds=sorted_percentile(ordered, 0.5),
        p90_reply_seconds=sorted_percentile(ordered, 0.9),
    )


def summed(tallies: Iterable[Sequence[int]]) -> tuple[int, int, int, int, int]:
    comments = replied = individually = waiting = words = 0
    for row in tallies:
        comments += row[0]
        replied += row[1]
        individually += row[2]
        waiting += row[3]
        words += row[4]
    return comments, replied, individually, waiting, words


@dataclass(frozen=True)
class GroupFigures:
    """The site's, each thread's and each question's inputs (without the author's words)."""

    overall: GroupInputs
    threads: dict[str, GroupInputs]
    questions: dict[Key, GroupInputs]


class KeptGroups:
    """What one process worked out of ``listening_groups``, brought up to date on each ask."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: tuple[int, int] | None = None
        self._rows: dict[Key, Row] = {}
        self._threads: dict[str, GroupInputs] = {}
        self._questions: dict[Key, GroupInputs] = {}
        self._site_times: list[float] = []
        self._figures = GroupFigures(group_inputs((0, 0, 0, 0, 0), []), {}, {})

    def figures(self, cursor: Cursor) -> GroupFigures:
        """The figures as the rows stand now (in the caller's transaction)."""
        row = cursor.execute(VERSION).fetchone()
        version = (int(row[0]), int(row[1])) if row else (0, 0)
        with self._lock:
            if version == self._version:
                return self._figures
            numbers = {(thread, question): int(changed) for thread, question, changed
                       in cursor.execute(NUMBERS).fetchall()}
            moved = [key for key, number in numbers.items()
                     if key not in self._rows or self._rows[key].changed != number]
            gone = [key for key in self._rows if key not in numbers]
            fresh = self._read(cursor, moved)
            self._apply(fresh, gone)
            self._version = version
            return self._figures

    @staticmethod
    def _read(cursor: Cursor, keys: list[Key]) -> dict[Key, Row]:
        if not keys:
            return {}
        rows = cursor.execute(ROWS, ([key[0] for key in keys], [key[1] for key in keys]),
                              binary=True).fetchall()
        return {(thread, question): Row(int(changed), tuple(int(n) for n in tallies), times)
                for thread, question, changed, *tallies, times in rows}

    def _apply(self, fresh: dict[Key, Row], gone: list[Key]) -> None:
        before = {key: self._rows.get(key) for key in chain(fresh, gone)}
        for key in gone:
            del self._rows[key]
        self._rows.update(fresh)
        if len(before) > REBUILD_FROM or not self._site_times:
            self._site_times = numpy.sort(numpy.array(
                [time for row in self._rows.values() for time in row.times],
                dtype=float)).tolist()
        else:
            for key, old in before.items():
                new = self._rows.get(key)
                self._patch(old.times if old else [], new.times if new else [])
        touched = {key[0] for key in before}
        by_thread: dict[str, list[tuple[Key, Row]]] = {thread: [] for thread in touched}
        for key, row in self._rows.items():
            if key[0] in touched:
                by_thread[key[0]].append((key, row))
        for thread, rows in by_thread.items():
            self._threads.pop(thread, None)
            for key, row in rows:
                self._questions.pop(key, None)
                if key[1] and row.tallies[0]:
                    self._questions[key] = group_inputs(row.tallies, row.times)
            tallies = summed(row.tallies for _, row in rows)
            if tallies[0]:
                self._threads[thread] = group_inputs(
                    tallies, sorted(chain.from_iterable(row.times for _, row in rows)))
        for key in gone:
            self._questions.pop(key, None)
        self._figures = GroupFigures(
            overall=group_inputs(summed(row.tallies for row in self._rows.values()),
                                 self._site_times),
            threads=dict(self._threads), questions=dict(self._questions))

    def _patch(self, old: list[float], new: list[float]) -> None:
        """Take ``old``'s times out of the site's and put ``new``'s in (one row's change:
        usually one time gained or lost)."""
        lost, gained = Counter(old), Counter(new)
        for time in (lost - gained).elements():
            del self._site_times[bisect.bisect_left(self._site_times, time)]
        for time in (gained - lost).elements():
            bisect.insort(self._site_times, time)
