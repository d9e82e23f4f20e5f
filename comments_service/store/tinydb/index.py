"""The comment index of the TinyDB store: its line format and this process's view of it.

<store>/index.jsonl is an append-only log of every comment's queue fields (and, for the
author's comments, a digest of all fields), derived from the thread files: one JSON line per
change, the latest line of an id winning, ``{"id", "thread", "gone": true}`` when a comment is
gone. :class:`IndexView` keeps it in memory, sorted and counted the ways the queue, the counts
and the author's replies need, reading only what was appended since it last looked. Writing
the file (appends, compaction, rebuilds) is ``index_file.CommentIndex``'s job.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import heapq
import itertools
import json
import os
import weakref
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comments_service.metrics_inputs import is_stock, word_count
from comments_service.models import LIVE_STATES, Comment, CommentState
from comments_service.store.base import RequestFiling, is_thread_key
from comments_service.store.errors import StoreCorrupted
from comments_service.store.tinydb.metrics_index import MetricsIndex
from comments_service.store.tinydb.request_index import RequestIndex
from comments_service.store.tinydb.storage import RESTORE_HINT

# The "author" field of an index line written before the field existed: not known yet.
UNKNOWN_AUTHOR = ""
# The "reader" field (the reader_key) of a line written before it existed: not known yet.
UNKNOWN_READER = ""
# The "request" field of a reader's comment's line written before it existed: not known yet.
UNKNOWN_REQUEST = ""
# The "words" field of a line written before the listening fields (words, replied_at, stock)
# existed: none of the three is known yet.
UNKNOWN_WORDS = -1


def author_digest(comment: Comment) -> str:
    """A short hash of every field of an author's comment: it changes with any edit."""
    record = json.dumps(comment.to_record(), ensure_ascii=False, sort_keys=True,
                        separators=(",", ":")).encode("utf-8")
    return hashlib.blake2b(record, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """The fields of one comment that the index keeps (what the queue and counts need).

    ``author`` is None for a reader's comment and, for the author's own, a digest of all its
    fields, so that an edit of an author comment appends an index line and a process can tell
    from the index alone whether the copy of it that it keeps is current (author_replies).
    Lines written before the field existed read as UNKNOWN_AUTHOR.

    ``reader`` is a reader's comment's reader_key (who wrote it, for the reader's history
    beside the reply box), None for the author's comments and readers without a key; lines
    written before the field existed read as UNKNOWN_READER. ``parent`` is kept for the
    author's comments only (the replies to a reader's comments, found without a thread read).

    ``request`` and ``filed`` are a reader's comment's request group and whether the author
    filed it there (the requests pages count people from the index); a reader's line always
    names its request, null when none, so one without the key predates the field and reads
    as UNKNOWN_REQUEST. ``edited`` (a reader's edited_at) and ``rejected`` (how many requests
    the author said it is not in: the list only grows), written with the request, make an edit
    or a rejection change the entry: with them, an entry that has not changed names a reader's
    comment that has not changed, which lets a process keep comments it read (comments.py).

    The listening figures' fields (store/tinydb/metrics_index.py): ``words``, the comment's word
    count (UNKNOWN_WORDS on lines written before these fields); ``replied_at``, a reader
    comment's; ``stock``, whether an author's reply was sent over a stock-reply warning.
    """

    thread: str
    created: str
    state: str
    public: bool
    question: str | None
    author: str | None = None
    reader: str | None = None
    parent: str | None = None
    request: str | None = None
    filed: bool = False
    edited: str | None = None
    rejected: int = 0
    words: int = UNKNOWN_WORDS
    replied_at: str | None = None
    stock: bool = False

    @classmethod
    def of(cls, comment: Comment) -> IndexEntry:
        if comment.is_author:
            return cls(comment.thread, comment.created, str(comment.state), comment.public,
                       comment.question, author_digest(comment), None, comment.parent,
                       words=word_count(comment.body), stock=is_stock(comment.nudge_warnings))
        return cls(comment.thread, comment.created, str(comment.state), comment.public,
                   comment.question, None, comment.reader_key, None, comment.request or None,
                   comment.request_filed, comment.edited_at, len(comment.rejected_requests),
                   words=word_count(comment.body), replied_at=comment.replied_at)

    @property
    def waiting(self) -> bool:
        return self.state == CommentState.AWAITING_REPLY

    @property
    def is_author(self) -> bool:
        return bool(self.author)

    @property
    def complete(self) -> bool:
        """Whether this entry changes with every change of its comment that a page shows
        (the author's: their digest; a reader's: the fields up to ``edited``), so a copy of
        the comment read while the entry was this one is still current."""
        if self.author is None:
            return self.request != UNKNOWN_REQUEST
        return self.author != UNKNOWN_AUTHOR

    def agrees_with(self, comment: Comment) -> bool:
        """Whether this entry indexes ``comment`` as stored (an entry from a line older than
        the author field agrees whatever the comment's author field would be)."""
        fresh = IndexEntry.of(comment)
        if self.author == UNKNOWN_AUTHOR:
            fresh = dataclasses.replace(fresh, author=UNKNOWN_AUTHOR)
        if self.reader == UNKNOWN_READER:
            fresh = dataclasses.replace(fresh, reader=UNKNOWN_READER, parent=self.parent)
        if self.request == UNKNOWN_REQUEST:
            fresh = dataclasses.replace(fresh, request=UNKNOWN_REQUEST, filed=self.filed,
                                        edited=self.edited, rejected=self.rejected)
        if self.words == UNKNOWN_WORDS:
            fresh = dataclasses.replace(fresh, words=UNKNOWN_WORDS, replied_at=self.replied_at,
                                        stock=self.stock)
        return fresh == self


def index_line(comment_id: str, thread: str, entry: IndexEntry | None) -> bytes:
    """One line of index.jsonl: the comment's indexed fields, or that it is gone."""
    if entry is None:
        record: dict[str, Any] = {"id": comment_id, "thread": thread, "gone": True}
    else:
        record = {"id": comment_id, "thread": entry.thread, "created": entry.created,
                  "state": entry.state, "public": entry.public, "question": entry.question}
        if entry.author != UNKNOWN_AUTHOR:
            record["author"] = entry.author
        if entry.reader != UNKNOWN_READER:
            record["reader"] = entry.reader
        if entry.parent is not None:
            record["parent"] = entry.parent
        if entry.author is None and entry.request != UNKNOWN_REQUEST:
            record["request"] = entry.request
            if entry.filed:
                record["filed"] = True
            if entry.edited is not None:
                record["edited"] = entry.edited
            if entry.rejected:
                record["rejected"] = entry.rejected
        if entry.words != UNKNOWN_WORDS:
            record["words"] = entry.words
        if entry.replied_at is not None:
            record["replied_at"] = entry.replied_at
        if entry.stock:
            record["stock"] = True
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def parse_index_line(raw: bytes) -> tuple[str, IndexEntry | None]:
    """Read one index line; raises ValueError when it is not a record this module wrote."""
    record = json.loads(raw)
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise ValueError("no comment id")
    if record.get("gone") is True:
        return record["id"], None
    entry = IndexEntry(record["thread"], record["created"], record["state"], record["public"],
                        record.get("question"), record.get("author", UNKNOWN_AUTHOR),
                        record.get("reader", UNKNOWN_READER), record.get("parent"),
                        # The author's lines never name a request (readers' always do).
                        record.get("request", None if record.get("author") else UNKNOWN_REQUEST),
                        record.get("filed", False), record.get("edited"),
                        record.get("rejected", 0), record.get("words", UNKNOWN_WORDS),
                        record.get("replied_at"), record.get("stock", False))
    if not (is_thread_key(entry.thread) and isinstance(entry.created, str)
            and isinstance(entry.state, str) and isinstance(entry.public, bool)
            and (entry.question is None or isinstance(entry.question, str))
            and (entry.author is None or isinstance(entry.author, str))
            and (entry.reader is None or isinstance(entry.reader, str))
            and (entry.parent is None or isinstance(entry.parent, str))
            and (entry.request is None or isinstance(entry.request, str))
            and isinstance(entry.filed, bool)
            and (entry.edited is None or isinstance(entry.edited, str))
            and isinstance(entry.rejected, int) and not isinstance(entry.rejected, bool)
            and type(entry.words) is int and entry.words >= UNKNOWN_WORDS
            and (entry.replied_at is None or isinstance(entry.replied_at, str))
            and isinstance(entry.stock, bool)):
        raise ValueError("a field has the wrong type")
    return record["id"], entry


def _step(counter: Counter[Any], key: Any, step: int) -> None:
    """Add ``step`` to ``counter[key]``, forgetting keys that reach 0 (so keys mean "some")."""
    counter[key] += step
    if counter[key] == 0:
        del counter[key]


def _remove_sorted(ordered: list[tuple[str, str]], key: tuple[str, str]) -> None:
    position = bisect.bisect_left(ordered, key)
    if position < len(ordered) and ordered[position] == key:
        del ordered[position]


class IndexView:
    """This process's in-memory picture of index.jsonl, kept current by reading only the bytes
    appended since the last look. Not thread-safe by itself: the store guards it with a lock.

    It holds the index file open: while it is open its inode cannot be reused, so a changed
    inode number at the path reliably means a compaction or rebuild replaced the file.

    Besides the entries it keeps, sorted by (created, id), the ids of each state, of each state
    within each thread, and of the author's comments; and counts per state and question.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held: list[int] = []  # the open descriptor, in a list the finalizer can see
        self._finalizer = weakref.finalize(self, close_descriptors, self._held)
        self._clear()

    def close(self) -> None:
        self._finalizer()

    def _clear(self) -> None:
        # Which comments changed, in the order applied, for what a process keeps per comment
        # (search_texts.py): a new generation whenever the entries are read afresh.
        self.generation = getattr(self, "generation", 0) + 1
        self.changed: list[str] = []
        self.offset = 0  # bytes of the file applied so far (always just after a newline)
        self.lines = 0  # lines applied from the current file, for the compaction rule
        self.entries: dict[str, IndexEntry] = {}
        self._clear_sorted()
        # (state, question) and (state, thread, question) → number of comments
        self.by_question: Counter[tuple[str, str | None]] = Counter()
        self.by_thread_question: Counter[tuple[str, str, str | None]] = Counter()
        # (thread, question) → readers' answers waiting or replied; only answered ones are
        # keys, also kept sorted, so the themes page's list of questions costs the questions,
        # not the threads, nor a sort
        self.answered: Counter[tuple[str, str]] = Counter()
        self.answered_sorted: list[tuple[str, str]] = []
        self.per_thread: Counter[str] = Counter()  # only threads with comments are keys
        self.public_by_thread: Counter[str] = Counter()
        self.unknown_authors = 0  # entries from lines written before the author field
        self.unknown_readers = 0  # entries from lines written before the reader field
        self.unknown_requests = 0  # readers' entries from lines before the request field
        self.unknown_words = 0  # entries from lines written before the listening fields
        # The listening figures' running aggregates: built when first asked for, then kept
        # up to date line by line (dropped by a bulk load, which is cheaper to build again).
        self.listening: MetricsIndex | None = None

    def _clear_sorted(self) -> None:
        # (created, id), sorted: per state; per state and thread; the author's comments
        self.in_state: dict[str, list[tuple[str, str]]] = {}
        self.in_thread: dict[str, dict[str, list[tuple[str, str]]]] = {}
        self.authored: list[tuple[str, str]] = []
        self.by_reader: dict[str, list[tuple[str, str]]] = {}  # each reader's comments
        self.replies_to: dict[str, list[tuple[str, str]]] = {}  # the author's, by parent
        # Per (state, thread, question), the comments answering a question while they wait
        # or are replied (LIVE_STATES): a question's newest answers, whatever the thread's size
        self.answering: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
        # Readers' comments whose request is set, and each request's running summary
        self.requests = RequestIndex()

    def _open_current(self) -> int | None:
        """The descriptor of the file now at the path (reopened if it was replaced)."""
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            return None
        if self._held and os.fstat(self._held[0]).st_ino == inode:
            return self._held[0]
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        close_descriptors(self._held)
        self._held.append(fd)
        self._clear()
        return fd

    def refresh(self) -> bool:
        """Apply what was appended since the last call; False when the index file is missing."""
        fd = self._open_current()
        if fd is None:
            return False
        size = os.fstat(fd).st_size
        if size < self.offset:  # cut below what we applied: not by us, so start over
            self._clear()
        if size == self.offset:
            return True
        chunk = os.pread(fd, size - self.offset, self.offset)
        # Bytes after the last newline are a line still being appended, or the remains of an
        # append cut short by a crash: neither is a record yet.
        complete = chunk[: chunk.rfind(b"\n") + 1]
        bulk = complete.count(b"\n") > 1000
        for raw in complete.splitlines(keepends=True):
            if raw.strip():
                try:
                    comment_id, entry = parse_index_line(raw)
                except (ValueError, KeyError, TypeError) as error:
                    raise StoreCorrupted(
                        f"The comment index {self.path} cannot be read: line {self.lines + 1} "
                        f"is not an index record ({error}). The index is derived from the "
                        "thread files: move it aside and the store rebuilds it when it next "
                        f"opens. {RESTORE_HINT}"
                    ) from error
                self.apply(comment_id, entry, keep_sorted=not bulk)
            self.lines += 1
            self.offset += len(raw)
        if bulk:
            # Sorting once beats thousands of insertions into the middle of long lists.
            self._clear_sorted()
            for comment_id, entry in self.entries.items():
                self._list(comment_id, entry, append=True)
            for ordered in itertools.chain(
                self.in_state.values(),
                (ordered for threads in self.in_thread.values() for ordered in threads.values()),
                [self.authored], self.by_reader.values(), self.replies_to.values(),
                self.answering.values(),
            ):
                ordered.sort()
            self.requests.sort()
        return True

    def apply(
        self, comment_id: str, entry: IndexEntry | None, *, keep_sorted: bool = True
    ) -> None:
        """Make ``entry`` the comment's latest indexed state (None: the comment is gone)."""
        self.changed.append(comment_id)
        old = self.entries.pop(comment_id, None)
        if old is not None:
            self._count(old, -1)
            if keep_sorted:
                self._unlist(comment_id, old)
        if entry is not None:
            self.entries[comment_id] = entry
            self._count(entry, +1)
            if keep_sorted:
                self._list(comment_id, entry)
        if self.listening is not None:
            if keep_sorted:
                self.listening.apply(comment_id, old, entry)
            else:
                self.listening = None

    def listening_index(self) -> MetricsIndex:
        """The listening figures' aggregates of the current entries (built on first use)."""
        if self.listening is None:
            self.listening = MetricsIndex.build(self.entries)
        return self.listening

    def _list(self, comment_id: str, entry: IndexEntry, *, append: bool = False) -> None:
        """Put the comment in its sorted lists (``append``: at the end, to be sorted later)."""
        key = (entry.created, comment_id)
        add = list.append if append else bisect.insort
        add(self.in_state.setdefault(entry.state, []), key)
        add(self.in_thread.setdefault(entry.state, {}).setdefault(entry.thread, []), key)
        if entry.is_author:
            add(self.authored, key)
        if entry.reader:
            add(self.by_reader.setdefault(entry.reader, []), key)
        if entry.is_author and entry.parent:
            add(self.replies_to.setdefault(entry.parent, []), key)
        if entry.question and entry.state in LIVE_STATES:
            add(self.answering.setdefault((entry.state, entry.thread, entry.question), []), key)
        if entry.request:
            self.requests.add(RequestFiling(
                comment_id, entry.request, entry.filed, entry.reader, entry.thread,
                entry.question, entry.created, CommentState(entry.state)), append=append)

    def _unlist(self, comment_id: str, entry: IndexEntry) -> None:
        key = (entry.created, comment_id)
        _remove_sorted(self.in_state.get(entry.state, []), key)
        threads = self.in_thread.get(entry.state, {})
        in_thread = threads.get(entry.thread, [])
        _remove_sorted(in_thread, key)
        if not in_thread:
            threads.pop(entry.thread, None)
        if entry.is_author:
            _remove_sorted(self.authored, key)
        if entry.reader:
            written = self.by_reader.get(entry.reader, [])
            _remove_sorted(written, key)
            if not written:
                self.by_reader.pop(entry.reader, None)
        if entry.request:
            self.requests.remove(comment_id)
        if entry.question and entry.state in LIVE_STATES:
            answering = (entry.state, entry.thread, entry.question)
            answers = self.answering.get(answering, [])
            _remove_sorted(answers, key)
            if not answers:
                self.answering.pop(answering, None)
        if entry.is_author and entry.parent:
            answers = self.replies_to.get(entry.parent, [])
            _remove_sorted(answers, key)
            if not answers:
                self.replies_to.pop(entry.parent, None)

    def _count(self, entry: IndexEntry, step: int) -> None:
        if entry.public:
            self.public_by_thread[entry.thread] += step
        _step(self.per_thread, entry.thread, step)
        self.by_question[entry.state, entry.question] += step
        self.by_thread_question[entry.state, entry.thread, entry.question] += step
        if entry.question and not entry.is_author and entry.state in LIVE_STATES:
            question = (entry.thread, entry.question)
            known = question in self.answered
            _step(self.answered, question, step)
            if known != (question in self.answered):
                if known:
                    _remove_sorted(self.answered_sorted, question)
                else:
                    bisect.insort(self.answered_sorted, question)
        if entry.author == UNKNOWN_AUTHOR:
            self.unknown_authors += step
        if entry.reader == UNKNOWN_READER:
            self.unknown_readers += step
        if entry.author is None and entry.request == UNKNOWN_REQUEST:
            self.unknown_requests += step
        if entry.words == UNKNOWN_WORDS:
            self.unknown_words += step

    def count_in_state(self, state: str, thread: str | None, question: str | None) -> int:
        if thread is None:
            if question is None:
                return len(self.in_state.get(state, ()))
            return self.by_question[state, question]
        if question is None:
            return len(self.in_thread.get(state, {}).get(thread, ()))
        return self.by_thread_question[state, thread, question]

    def ids_in_state(
        self, state: str, thread: str | None, question: str | None, stop: int
    ) -> list[tuple[str, IndexEntry]]:
        """(id, entry) of the first ``stop`` comments in ``state`` that pass the filters,
        oldest first."""
        if thread is None:
            ordered = self.in_state.get(state, [])
        else:
            ordered = self.in_thread.get(state, {}).get(thread, [])
        matching: list[tuple[str, IndexEntry]] = []
        for _created, comment_id in ordered:
            entry = self.entries[comment_id]
            if question is None or entry.question == question:
                matching.append((comment_id, entry))
                if len(matching) == stop:
                    break
        return matching

    def newest_answer_ids(self, thread: str, question: str, limit: int
                          ) -> list[tuple[str, IndexEntry]]:
        """(id, entry) of the newest ``limit`` comments waiting or replied in ``thread`` that
        answer ``question``, oldest first."""
        if limit <= 0:
            return []
        newest = heapq.merge(*(self.answering.get((state, thread, question), [])[-limit:]
                               for state in LIVE_STATES))
        return [(comment_id, self.entries[comment_id])
                for _created, comment_id in list(newest)[-limit:]]

    def newest_ids(self, state: str | None, stop: int) -> list[tuple[str, IndexEntry]]:
        """(id, entry) of the ``stop`` newest comments, of one state or of all."""
        lists = [self.in_state.get(state, [])] if state is not None else self.in_state.values()
        merged = heapq.merge(*(reversed(ordered) for ordered in lists), reverse=True)
        return [(comment_id, self.entries[comment_id])
                for _created, comment_id in itertools.islice(merged, stop)]

    def threads_with(self, state: str | None) -> list[str]:
        """The threads holding at least one comment (in ``state``, when given)."""
        if state is None:
            return list(self.per_thread)
        return list(self.in_thread.get(state, {}))

    def author_ids(self, stop: int | None) -> list[tuple[str, IndexEntry]]:
        """(id, entry) of the first ``stop`` (None: all) of the author's comments, except
        withdrawn ones, newest first."""
        found: list[tuple[str, IndexEntry]] = []
        for _created, comment_id in reversed(self.authored):
            entry = self.entries[comment_id]
            if entry.state != CommentState.WITHDRAWN:
                found.append((comment_id, entry))
                if len(found) == stop:
                    break
        return found

    def reader_ids(self, reader: str) -> list[tuple[str, IndexEntry]]:
        """(id, entry) of every comment ``reader`` (a reader_key) wrote, newest first."""
        return [(comment_id, self.entries[comment_id])
                for _created, comment_id in reversed(self.by_reader.get(reader, []))]

    def reply_ids(self, parents: list[str]) -> list[tuple[str, IndexEntry]]:
        """(id, entry) of the author's comments answering any of ``parents``, except withdrawn
        ones, oldest first within each parent."""
        return [(comment_id, self.entries[comment_id]) for parent in parents
                for _created, comment_id in self.replies_to.get(parent, [])
                if self.entries[comment_id].state != CommentState.WITHDRAWN]

    def request_ids(self) -> list[tuple[str, IndexEntry]]:
        """(id, entry) of every reader's comment whose request is set, in no set order."""
        return [(comment_id, self.entries[comment_id]) for comment_id in self.requests.filings]

    def neighbours(self, state: str, thread: str | None, question: str | None,
                   created: str, comment_id: str) -> tuple[str | None, str | None]:
        """The ids just before and just after (created, comment_id) among the comments in
        ``state`` that pass the filters, in queue order (the comment itself left out)."""
        if thread is None:
            ordered = self.in_state.get(state, [])
        else:
            ordered = self.in_thread.get(state, {}).get(thread, [])

        def passes(key: tuple[str, str]) -> bool:
            return key[1] != comment_id and (
                question is None or self.entries[key[1]].question == question)

        position = bisect.bisect_left(ordered, (created, comment_id))
        before = next((ordered[number][1] for number in range(position - 1, -1, -1)
                       if passes(ordered[number])), None)
        after = next((key[1] for key in itertools.islice(ordered, position, None)
                      if passes(key)), None)
        return before, after

    def adopt(self, fd: int) -> None:
        """Hold ``fd``, a rewritten index whose lines are exactly the current entries."""
        close_descriptors(self._held)
        self._held.append(fd)
        self.offset, self.lines = os.fstat(fd).st_size, len(self.entries)


def close_descriptors(held: list[int]) -> None:
    while held:
        os.close(held.pop())
