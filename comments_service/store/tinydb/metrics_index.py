"""The listening figures' running aggregates of the TinyDB store, kept from the comment index.

Every index line carries what the figures need of a comment (index.py: its word count, a
reader comment's ``replied_at``, whether an author's reply was a stock one, the reply's
parent), so :class:`MetricsIndex` follows the index line by line (``IndexView.apply``) and the
metrics page reads the figures without opening a thread file: counts and word sums per group,
sorted reply times per group and per week (exact medians and 90th percentiles by position,
kept with bisect), the reader comments sorted by time (the target window is a bisect away) and
the waiting ones (so is the number due).

Each comment's share of the aggregates is kept beside them and taken back whole before its new
line is counted; a change to an author's reply counts its parent again (whether the parent
was answered individually depends on the replies standing under it, metrics.py).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from comments_service.metrics_inputs import (
    GroupInputs,
    ListeningInputs,
    RecentComment,
    WeekInputs,
    individual_time,
    recent_comment,
    seconds_between,
    sorted_percentile,
    week_start,
)
from comments_service.models import LIVE_STATES, CommentState, parse_time

if TYPE_CHECKING:
    from comments_service.store.tinydb.index import IndexEntry



@dataclass(slots=True)
class _Group:
    """The running tallies of one group: all comments, a thread, or a question of a thread."""

    members: int = 0  # comments counted in it (it is left out of the figures at 0)
    reader_comments: int = 0
    replied: int = 0
    individually_replied: int = 0
    waiting: int = 0
    reader_words: int = 0
    author_words: int = 0
    seconds: list[float] = field(default_factory=list)  # time to first reply, sorted

    def inputs(self) -> GroupInputs:
        return GroupInputs(
            reader_comments=self.reader_comments, replied=self.replied,
            individually_replied=self.individually_replied, waiting=self.waiting,
            reader_words=self.reader_words, author_words=self.author_words,
            median_reply_seconds=sorted_percentile(self.seconds, 0.5),
            p90_reply_seconds=sorted_percentile(self.seconds, 0.9),
        )


@dataclass(frozen=True, slots=True)
class _Reader:
    """What one reader comment (awaiting_reply or replied) adds to the aggregates."""

    thread: str
    question: str | None
    created: str
    received_week: date
    words: int
    waiting: bool
    reply_seconds: float | None  # replied with a known replied_at
    replied_week: date | None
    individual: bool
    individual_at: str | None
    row: RecentComment  # what listening_inputs lists of it, made once


def _insert(ordered: list, value: object, append: bool) -> None:
    if append:
        ordered.append(value)
    else:
        bisect.insort(ordered, value)


def _remove(ordered: list, value: object) -> None:
    position = bisect.bisect_left(ordered, value)
    if position < len(ordered) and ordered[position] == value:
        del ordered[position]


def _is_reply(entry: IndexEntry) -> bool:
    """An author's reply that stands (what decides whether its parent was answered)."""
    return entry.is_author and bool(entry.parent) and entry.state == CommentState.POSTED


class MetricsIndex:
    """The aggregates of the entries of one ``IndexView`` (whose lock guards it too)."""

    def __init__(self, entries: Mapping[str, IndexEntry]) -> None:
        self._entries = entries  # the view's own dict: always the latest entry of each id
        self.overall = _Group()
        self.threads: dict[str, _Group] = {}
        self.questions: dict[tuple[str, str], _Group] = {}
        self.spam = self.withdrawn = 0
        self.received: Counter[date] = Counter()
        self.answered: dict[date, list[float]] = {}  # reply seconds, sorted, by reply week
        self.recent: list[tuple[str, str]] = []  # (created, id) of the reader comments
        # Their rows in the same order: a window is one slice, not a look-up per comment.
        self.recent_rows: list[RecentComment] = []
        self.waiting: list[tuple[str, str]] = []  # (created, id) of the waiting ones
        # The author's standing replies by parent, (created, id, stock) oldest first.
        self.replies: dict[str, list[tuple[str, str, bool]]] = {}
        # Each comment's share, to take back when its entry changes.
        self.readers: dict[str, _Reader] = {}
        self.authored: dict[str, tuple[str, int]] = {}  # (thread, words) of standing ones
        self.others: dict[str, str] = {}  # spam or withdrawn reader comments: their state

    @classmethod
    def build(cls, entries: Mapping[str, IndexEntry]) -> MetricsIndex:
        """The aggregates of ``entries``, in one pass (lists sorted once at the end)."""
        index = cls(entries)
        for comment_id, entry in entries.items():
            if _is_reply(entry):
                index.replies.setdefault(entry.parent or "", []).append(
                    (entry.created, comment_id, entry.stock))
        for standing in index.replies.values():
            standing.sort()
        for comment_id, entry in entries.items():
            index._add(comment_id, entry, append=True)
        for ordered in (index.recent, index.waiting, index.overall.seconds,
                        *(group.seconds for group in index.threads.values()),
                        *(group.seconds for group in index.questions.values()),
                        *index.answered.values()):
            ordered.sort()
        index.recent_rows = [index.readers[comment_id].row for _, comment_id in index.recent]
        return index

    def apply(self, comment_id: str, old: IndexEntry | None, new: IndexEntry | None) -> None:
        """Count the comment's new entry (None: gone) instead of its ``old`` one; the view's
        entries already hold the new one."""
        parents: list[str] = []
        if old is not None and _is_reply(old):
            parent = old.parent or ""
            standing = self.replies.get(parent, [])
            _remove(standing, (old.created, comment_id, old.stock))
            if not standing:
                self.replies.pop(parent, None)
            parents.append(parent)
        if new is not None and _is_reply(new):
            parent = new.parent or ""
            bisect.insort(self.replies.setdefault(parent, []), (new.created, comment_id,
                                                                new.stock))
            parents.append(parent)
        self._take_back(comment_id)
        if new is not None:
            self._add(comment_id, new, append=False)
        for parent in dict.fromkeys(parents):
            # Whether the parent counts as answered individually may have changed.
            if parent != comment_id and parent in self.readers:
                self._take_back(parent)
                self._add(parent, self._entries[parent], append=False)

    # -- one comment's share --------------------------------------------------------------

    def _thread(self, thread: str) -> _Group:
        return self.threads.setdefault(thread, _Group())

    def _add(self, comment_id: str, entry: IndexEntry, *, append: bool) -> None:
        if entry.is_author:
            if entry.state == CommentState.POSTED:
                self.authored[comment_id] = (entry.thread, entry.words)
                for group in (self.overall, self._thread(entry.thread)):
                    group.members += 1
                    group.author_words += entry.words
            return
        if entry.state in (CommentState.SPAM, CommentState.WITHDRAWN):
            self.others[comment_id] = entry.state
            self._count_other(entry.state, +1)
            return
        if entry.state not in LIVE_STATES:
            return  # a reader comment can never be "posted"; nothing to count
        replied = entry.state == CommentState.REPLIED
        seconds = replied_week = None
        if replied and entry.replied_at:
            seconds = seconds_between(entry.created, entry.replied_at)
            replied_week = week_start(parse_time(entry.replied_at))
        individual, individual_at = False, None
        if replied:
            standing = [(created, stock) for created, _, stock
                        in self.replies.get(comment_id, [])]
            individual, individual_at = individual_time(entry.replied_at, standing)
        reader = _Reader(entry.thread, entry.question, entry.created,
                         week_start(parse_time(entry.created)), entry.words, not replied,
                         seconds, replied_week, individual, individual_at,
                         recent_comment(comment_id, entry.thread, entry.created, individual,
                                        individual_at))
        self.readers[comment_id] = reader
        self._count_reader(comment_id, reader, +1, append)

    def _take_back(self, comment_id: str) -> None:
        if comment_id in self.authored:
            thread, words = self.authored.pop(comment_id)
            for group in (self.overall, self.threads[thread]):
                group.members -= 1
                group.author_words -= words
            self._forget_empty(thread, None)
        elif comment_id in self.others:
            self._count_other(self.others.pop(comment_id), -1)
        elif comment_id in self.readers:
            self._count_reader(comment_id, self.readers.pop(comment_id), -1, False)

    def _count_other(self, state: str, step: int) -> None:
        if state == CommentState.SPAM:
            self.spam += step
        else:
            self.withdrawn += step

    def _count_reader(self, comment_id: str, reader: _Reader, step: int, append: bool) -> None:
        groups = [self.overall, self._thread(reader.thread)]
        if reader.question:
            groups.append(self.questions.setdefault((reader.thread, reader.question), _Group()))
        for group in groups:
            group.members += step
            group.reader_comments += step
            group.reader_words += step * reader.words
            group.individually_replied += step * reader.individual
            if reader.waiting:
                group.waiting += step
            else:
                group.replied += step
            if reader.reply_seconds is not None:
                if step > 0:
                    _insert(group.seconds, reader.reply_seconds, append)
                else:
                    _remove(group.seconds, reader.reply_seconds)
        key = (reader.created, comment_id)
        self.received[reader.received_week] += step
        if not self.received[reader.received_week]:
            del self.received[reader.received_week]
        self._count_recent(key, reader.row, step, append)
        pairs: list[tuple[list, object]] = []
        if reader.waiting:
            pairs.append((self.waiting, key))
        if reader.replied_week is not None:
            pairs.append((self.answered.setdefault(reader.replied_week, []),
                          reader.reply_seconds))
        for ordered, value in pairs:
            if step > 0:
                _insert(ordered, value, append)
            else:
                _remove(ordered, value)
        if reader.replied_week is not None and not self.answered[reader.replied_week]:
            del self.answered[reader.replied_week]
        if step < 0:
            self._forget_empty(reader.thread, reader.question)

    def _count_recent(self, key: tuple[str, str], row: RecentComment, step: int,
                      append: bool) -> None:
        if step > 0 and append:
            self.recent.append(key)
            self.recent_rows.append(row)
            return
        position = bisect.bisect_left(self.recent, key)
        if step > 0:
            self.recent.insert(position, key)
            self.recent_rows.insert(position, row)
        elif position < len(self.recent) and self.recent[position] == key:
            del self.recent[position]
            del self.recent_rows[position]

    def _forget_empty(self, thread: str, question: str | None) -> None:
        """Drop groups no comment is counted in (as if it had never had one)."""
        if question and not self.questions[(thread, question)].members:
            del self.questions[(thread, question)]
        if not self.threads[thread].members:
            del self.threads[thread]

    # -- reading --------------------------------------------------------------------------

    def inputs(
        self, since: str, due_from: str | None, weeks_from: date | None
    ) -> ListeningInputs:
        """CommentStore.listening_inputs from the aggregates."""
        weeks = {
            start: WeekInputs(
                received=self.received.get(start, 0),
                answered=len(self.answered.get(start, ())),
                median_reply_seconds=sorted_percentile(self.answered.get(start, []), 0.5),
            )
            for start in self.received.keys() | self.answered.keys()
            if weeks_from is not None and start >= weeks_from
        }
        recent = self.recent_rows[bisect.bisect_left(self.recent, (since,)):]
        return ListeningInputs(
            overall=self.overall.inputs(),
            articles={thread: group.inputs() for thread, group in self.threads.items()},
            questions={key: group.inputs() for key, group in self.questions.items()},
            spam=self.spam, withdrawn=self.withdrawn, weeks=weeks, recent=recent,
            due=0 if due_from is None
            else bisect.bisect_right(self.waiting, due_from, key=lambda item: item[0]),
        )
