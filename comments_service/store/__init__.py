"""The only module that touches storage: the store interface and its TinyDB implementation.

The rest of the service talks to :class:`Store`; TinyDB sits behind it (the embedded default),
and a server database can sit behind it later (issue 10) without the views changing.
"""

from __future__ import annotations

import bisect
import dataclasses
import errno
import fcntl
import hashlib
import heapq
import itertools
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from comments_service.models import (
    OPEN_STATUSES,
    Author,
    Comment,
    CommentState,
    MailAddress,
    OutboxMessage,
    OutboxStatus,
    RequestGroup,
)


class StoreError(Exception):
    """Base of the store's errors."""


class CommentNotFound(StoreError):
    """No comment with that id."""


class DuplicateComment(StoreError):
    """A comment with that id is stored already."""


class DuplicateAuthor(StoreError):
    """An author with that email (compared case-insensitively) exists already."""


class AuthorNotFound(StoreError):
    """No author with that id."""


class MessageNotFound(StoreError):
    """No outbox message with that id."""


class DuplicateMessage(StoreError):
    """An outbox message with that id is stored already."""


class StoreUnavailable(StoreError):
    """The store cannot take writes now (e.g. no space left); nothing was changed."""


class StoreCorrupted(StoreError):
    """A store file cannot be read; the message names the file and how to recover."""


class SchemaMismatch(StoreError):
    """The database's schema is not the one this code knows; nothing was read or changed."""


class SchemaNotReady(SchemaMismatch):
    """The database holds no schema yet, or an older one: `flask … init` applies migrations."""


class SchemaTooNew(SchemaMismatch):
    """The database was migrated by a newer tellmemore than this one: upgrade tellmemore."""


class Store(ABC):
    """What the service needs from storage. Every method is safe across threads and processes."""

    @abstractmethod
    def add_comment(self, comment: Comment) -> Comment:
        """Store a new comment durably; when this returns, a crash cannot lose it.
        Raises DuplicateComment if the id exists, StoreUnavailable if it cannot be written."""

    @abstractmethod
    def get_comment(self, comment_id: str) -> Comment | None:
        """The comment with that id, or None."""

    @abstractmethod
    def thread_comments(self, thread: str) -> list[Comment]:
        """Every comment of a thread, any state, oldest first."""

    @abstractmethod
    def update_comment(self, comment_id: str, change: Callable[[Comment], Comment]) -> Comment:
        """Apply ``change`` to the latest stored version under the write lock and store the
        result (compare-and-set). ``change`` may raise to abort; nothing is written then.
        Raises CommentNotFound. The id and thread of a comment never change."""

    @abstractmethod
    def waiting_comments(
        self, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        """Comments in state awaiting_reply, oldest first, optionally of one thread/question."""

    @abstractmethod
    def count_waiting(self, *, thread: str | None = None, question: str | None = None) -> int:
        """How many comments wait for a reply (same filters as waiting_comments)."""

    @abstractmethod
    def public_counts(self, threads: Iterable[str]) -> dict[str, int]:
        """Number of public comments per thread, for every thread asked (0 when none)."""

    @abstractmethod
    def thread_version(self, thread: str) -> str:
        """A cheap token that changes whenever the thread's comments change (for ETags)."""

    @abstractmethod
    def all_comments(self) -> Iterator[Comment]:
        """Every comment in the store (for export), threads in name order, oldest first."""

    @abstractmethod
    def import_comments(self, comments: Iterable[Comment]) -> int:
        """Add the comments whose ids are not stored yet; returns how many were added.
        Running it twice with the same comments adds nothing the second time."""

    @abstractmethod
    def count_comments(self) -> int:
        """How many comments are stored, all states."""

    # -- for the author's pages (moderation) ----------------------------------------------

    @abstractmethod
    def comments_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        """Comments in one state, oldest first, optionally of one thread/question."""

    @abstractmethod
    def count_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None
    ) -> int:
        """How many comments are in that state (same filters as comments_in_state)."""

    @abstractmethod
    def state_counts(self) -> dict[CommentState, int]:
        """Number of comments in each state (every state present, 0 when none)."""

    @abstractmethod
    def find_comments(
        self, *, text: str | None = None, state: CommentState | None = None,
        thread: str | None = None, limit: int = 50, offset: int = 0,
    ) -> tuple[list[Comment], int]:
        """Comments whose body or name contains ``text`` (case-insensitive), newest first,
        optionally of one state/thread; returns (one page, total matching)."""

    @abstractmethod
    def author_replies(self, limit: int | None = None) -> list[Comment]:
        """The author's own comments (is_author), newest first; cheap to call on every reply
        (the nudge compares a new reply with these)."""

    @abstractmethod
    def add_author(self, author: Author) -> Author:
        """Store a new author; DuplicateAuthor when the email is taken."""

    @abstractmethod
    def get_author(self, author_id: str) -> Author | None:
        """The author with that id, or None."""

    @abstractmethod
    def author_by_email(self, email: str) -> Author | None:
        """The author with that email (case-insensitive), or None."""

    @abstractmethod
    def list_authors(self) -> list[Author]:
        """Every author, oldest first."""

    @abstractmethod
    def update_author(self, author_id: str, change: Callable[[Author], Author]) -> Author:
        """Compare-and-set as update_comment; AuthorNotFound; the id never changes."""

    # -- the outbox and mail addresses (email follow-up, notify.py) ------------------------

    @abstractmethod
    def add_message(self, message: OutboxMessage) -> OutboxMessage:
        """Store a new outbox message durably, before anyone tries to send it. When its
        ``dedupe_key`` is taken already, nothing is added and the message holding that key is
        returned instead (so the same notification queued twice is one message). Raises
        DuplicateMessage if the id exists, StoreUnavailable if it cannot be written."""

    @abstractmethod
    def get_message(self, message_id: str) -> OutboxMessage | None:
        """The message with that id, or None."""

    @abstractmethod
    def update_message(
        self, message_id: str, change: Callable[[OutboxMessage], OutboxMessage]
    ) -> OutboxMessage:
        """Compare-and-set as update_comment: ``change`` sees the latest stored version under
        the write lock and may raise to abort. MessageNotFound; the id never changes."""

    @abstractmethod
    def claim_messages(
        self, claimer: str, now: str, lease_until: str, limit: int
    ) -> list[OutboxMessage]:
        """Atomically, across threads and processes, take up to ``limit`` messages that are due
        (queued with next_attempt_at <= now, or sending with an expired claimed_until): each
        becomes sending, claimed_by ``claimer`` until ``lease_until``, attempts + 1. A message
        is never handed to two claimers while a lease on it runs. Oldest due first."""

    @abstractmethod
    def list_messages(
        self, statuses: Iterable[OutboxStatus] | None = None, *, limit: int = 50,
        offset: int = 0,
    ) -> list[OutboxMessage]:
        """Messages in those statuses (None: all), newest first."""

    @abstractmethod
    def messages_to(
        self, address: str, *, since: str | None = None, open_only: bool = False
    ) -> list[OutboxMessage]:
        """Messages to ``address`` (casefolded) created at or after ``since``, or, with
        ``open_only``, every held/queued/sending one; oldest first."""

    @abstractmethod
    def get_mail_address(self, address: str) -> MailAddress | None:
        """What ``address`` (compared casefolded) has said about mail, or None."""

    @abstractmethod
    def update_mail_address(
        self, address: str, change: Callable[[MailAddress], MailAddress]
    ) -> MailAddress:
        """Compare-and-set the address's record (a blank one when there is none yet)."""

    @abstractmethod
    def all_mail_addresses(self) -> list[MailAddress]:
        """Every address record (for backups and copies of the store)."""

    # -- tallied requests (requests.py) ----------------------------------------------------

    @abstractmethod
    def request_tally(
        self, *, timeout: float | None = None
    ) -> AbstractContextManager[RequestTally | None]:
        """Hold the request tally's lock, across threads and processes, and yield its saved
        state (a RequestTally) for one load-assign-save; with ``timeout`` (seconds), yield
        None instead when the lock is not free within it."""

    @abstractmethod
    def request_groups(self) -> dict[str, RequestGroup]:
        """Every request group record (the author's labels, statuses, links, merges) by id."""

    @abstractmethod
    def update_request_group(
        self, group_id: str, change: Callable[[RequestGroup], RequestGroup]
    ) -> RequestGroup:
        """Compare-and-set a group's record (a blank one when there is none yet)."""

    @abstractmethod
    def replace_request_groups(self, groups: Iterable[RequestGroup]) -> None:
        """Replace every group record at once (regroup)."""

    def grouped_comments(self) -> Iterator[Comment]:
        """Every comment whose ``request`` field is set, any state, in no set order (the
        requests page). This default reads every comment; a store that indexes the field
        answers from the index."""
        return (comment for comment in self.all_comments() if comment.request)

    @abstractmethod
    def set_comment_requests(self, requests: Mapping[str, str | None]) -> int:
        """Set the ``request`` field of many reader comments (id → group id or None); unknown
        ids are skipped. Returns how many comments changed."""

    def close(self) -> None:  # noqa: B027 - optional hook: most stores hold nothing open
        """Release what the store holds open."""


# ---------------------------------------------------------------------------------------------
# The embedded TinyDB store
# ---------------------------------------------------------------------------------------------
#
# <store>/threads/<thread>.json   one TinyDB file per comment thread: the source of truth
# <store>/index.jsonl             append-only index of every comment's queue fields (derived)
#                                 (and, for the author's comments, a digest of all fields)
# <store>/locks/<thread>.lock     flock held across every read-modify-write of that thread
# <store>/locks/_index.lock       flock held while appending to or rewriting the index
# <store>/authors.json            TinyDB file of the authors (table "authors"), replaced whole
# <store>/locks/_authors.lock     flock held across every read-modify-write of authors.json
#
# Locks are always taken in the order thread → index → this process's view lock, so two
# writers can never wait on each other in a circle. The authors lock is never held together
# with any other lock.

logger = logging.getLogger(__name__)

COMMENTS_TABLE = "comments"
THREADS_FOLDER = "threads"
LOCKS_FOLDER = "locks"
INDEX_FILE = "index.jsonl"
# "_" cannot start a thread key, so no thread's lock file can ever be the index lock.
INDEX_LOCK = "_index.lock"
AUTHORS_FILE = "authors.json"
AUTHORS_TABLE = "authors"
AUTHORS_LOCK = "_authors.lock"
# The "author" field of an index line written before the field existed: not known yet.
UNKNOWN_AUTHOR = ""
# Characters json.dumps escapes (ensure_ascii=False): a search text holding one of them cannot
# be looked for in a file's raw bytes.
JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')
EMPTY_THREAD_VERSION = "empty"
THREAD_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
# Write errors that mean "the disk cannot take this now", not "the code is wrong".
UNAVAILABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})
# The index is rewritten once it holds this many lines more than twice its live entries.
COMPACT_SLACK_LINES = 1000
# Temporary files older than this are leftovers of a crash (a write takes milliseconds).
STALE_TEMP_SECONDS = 3600
RESTORE_HINT = (
    "Restore it from a backup, or import an export with `flask --app comments_service import`."
)


def is_thread_key(thread: str) -> bool:
    """Whether ``thread`` is a valid thread key (and so a safe file name under threads/)."""
    return isinstance(thread, str) and THREAD_KEY.fullmatch(thread) is not None


def _check_thread_key(thread: str) -> None:
    if not is_thread_key(thread):
        raise ValueError(f"Invalid thread key {thread!r}")


def _write_all(fd: int, payload: bytes) -> None:
    """Write every byte of ``payload`` to ``fd`` (the one place where the store writes data,
    so tests can make it fail like a full disk)."""
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_folder(folder: Path) -> None:
    """Make a new or renamed entry in ``folder`` durable: the name lives in the folder."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unavailable(error: OSError, path: Path) -> StoreUnavailable:
    reason = os.strerror(error.errno) if error.errno is not None else str(error)
    return StoreUnavailable(
        f"The comment store cannot write {path}: {reason}. Nothing was changed; "
        "free space (or make the store writable) and try again."
    )


def _write_file_atomically(path: Path, payload: bytes) -> None:
    """Replace ``path`` by ``payload``: a crash at any instant leaves the old or the new file.

    The new content goes to a temporary file in the same folder (a rename is atomic only
    within one file system), is fsynced, renamed over the old one, and the folder is fsynced
    so that the rename itself survives a power cut.
    """
    temp_name: str | None = None
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            _write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_name, path)
        temp_name = None
        _fsync_folder(path.parent)
    except OSError as error:
        if error.errno in UNAVAILABLE_ERRNOS:
            raise _unavailable(error, path) from error
        raise
    finally:
        if temp_name is not None:
            with suppress(OSError):
                os.unlink(temp_name)


@contextmanager
def _exclusive_lock(lock_path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``lock_path``; yields whether it was acquired.

    The lock file is opened afresh on every acquisition: flock locks belong to the open file
    description, so a new one also excludes other threads of this process, not only other
    processes. Closing the descriptor releases the lock, also when the process dies.
    """
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as error:
        if error.errno in UNAVAILABLE_ERRNOS:
            raise _unavailable(error, lock_path) from error
        raise
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _corrupted_thread(path: Path, problem: str) -> StoreCorrupted:
    return StoreCorrupted(
        f"The comment thread file {path} cannot be read: {problem}. {RESTORE_HINT}"
    )


def _corrupted_authors(path: Path, problem: str) -> StoreCorrupted:
    return StoreCorrupted(
        f"The authors file {path} cannot be read: {problem}. Restore it from a backup."
    )


class _ThreadFileStorage(Storage):
    """TinyDB storage for one thread file: parse on every read, atomic durable writes.

    Unlike TinyDB's JSONStorage it never creates the file on open (reads stay reads), never
    rewrites a file in place, and refuses a file it cannot parse instead of starting afresh.
    """

    table_name = COMMENTS_TABLE
    corrupted = staticmethod(_corrupted_thread)

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return self.parse(raw)

    def parse(self, raw: bytes) -> dict[str, Any]:
        """The file's data, checked to be a TinyDB file holding this storage's table."""
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise self.corrupted(self.path, f"not valid JSON ({error})") from error
        table = data.get(self.table_name, {}) if isinstance(data, dict) else None
        if not isinstance(table, dict) or not all(isinstance(doc, dict) for doc in table.values()):
            raise self.corrupted(self.path, f"not a TinyDB file with a {self.table_name!r} table")
        return data

    def write(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        _write_file_atomically(self.path, payload)

    def close(self) -> None:
        """Nothing to release: every read and write opens and closes the file itself."""


class _AuthorsFileStorage(_ThreadFileStorage):
    """The same discipline for authors.json, whose table is "authors"."""

    table_name = AUTHORS_TABLE
    corrupted = staticmethod(_corrupted_authors)


def _author_digest(comment: Comment) -> str:
    """A short hash of every field of an author's comment: it changes with any edit."""
    record = json.dumps(comment.to_record(), ensure_ascii=False, sort_keys=True,
                        separators=(",", ":")).encode("utf-8")
    return hashlib.blake2b(record, digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class _IndexEntry:
    """The fields of one comment that the index keeps (what the queue and counts need).

    ``author`` is None for a reader's comment and, for the author's own, a digest of all its
    fields, so that an edit of an author comment appends an index line and a process can tell
    from the index alone whether the copy of it that it keeps is current (author_replies).
    Lines written before the field existed read as UNKNOWN_AUTHOR.
    """

    thread: str
    created: str
    state: str
    public: bool
    question: str | None
    author: str | None = None

    @classmethod
    def of(cls, comment: Comment) -> _IndexEntry:
        return cls(comment.thread, comment.created, str(comment.state), comment.public,
                   comment.question, _author_digest(comment) if comment.is_author else None)

    @property
    def waiting(self) -> bool:
        return self.state == CommentState.AWAITING_REPLY

    @property
    def is_author(self) -> bool:
        return bool(self.author)

    def agrees_with(self, comment: Comment) -> bool:
        """Whether this entry indexes ``comment`` as stored (an entry from a line older than
        the author field agrees whatever the comment's author field would be)."""
        fresh = _IndexEntry.of(comment)
        if self.author == UNKNOWN_AUTHOR:
            fresh = dataclasses.replace(fresh, author=UNKNOWN_AUTHOR)
        return fresh == self


def _index_line(comment_id: str, thread: str, entry: _IndexEntry | None) -> bytes:
    """One line of index.jsonl: the comment's indexed fields, or that it is gone."""
    if entry is None:
        record: dict[str, Any] = {"id": comment_id, "thread": thread, "gone": True}
    else:
        record = {"id": comment_id, "thread": entry.thread, "created": entry.created,
                  "state": entry.state, "public": entry.public, "question": entry.question}
        if entry.author != UNKNOWN_AUTHOR:
            record["author"] = entry.author
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def _parse_index_line(raw: bytes) -> tuple[str, _IndexEntry | None]:
    """Read one index line; raises ValueError when it is not a record this module wrote."""
    record = json.loads(raw)
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        raise ValueError("no comment id")
    if record.get("gone") is True:
        return record["id"], None
    entry = _IndexEntry(record["thread"], record["created"], record["state"], record["public"],
                        record.get("question"), record.get("author", UNKNOWN_AUTHOR))
    if not (is_thread_key(entry.thread) and isinstance(entry.created, str)
            and isinstance(entry.state, str) and isinstance(entry.public, bool)
            and (entry.question is None or isinstance(entry.question, str))
            and (entry.author is None or isinstance(entry.author, str))):
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


class _IndexView:
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
        self._finalizer = weakref.finalize(self, _close_descriptors, self._held)
        self._clear()

    def close(self) -> None:
        self._finalizer()

    def _clear(self) -> None:
        self.offset = 0  # bytes of the file applied so far (always just after a newline)
        self.lines = 0  # lines applied from the current file, for the compaction rule
        self.entries: dict[str, _IndexEntry] = {}
        self._clear_sorted()
        # (state, question) and (state, thread, question) → number of comments
        self.by_question: Counter[tuple[str, str | None]] = Counter()
        self.by_thread_question: Counter[tuple[str, str, str | None]] = Counter()
        self.per_thread: Counter[str] = Counter()  # only threads with comments are keys
        self.public_by_thread: Counter[str] = Counter()
        self.unknown_authors = 0  # entries from lines written before the author field

    def _clear_sorted(self) -> None:
        # (created, id), sorted: per state; per state and thread; the author's comments
        self.in_state: dict[str, list[tuple[str, str]]] = {}
        self.in_thread: dict[str, dict[str, list[tuple[str, str]]]] = {}
        self.authored: list[tuple[str, str]] = []

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
        _close_descriptors(self._held)
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
                    comment_id, entry = _parse_index_line(raw)
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
                [self.authored],
            ):
                ordered.sort()
        return True

    def apply(
        self, comment_id: str, entry: _IndexEntry | None, *, keep_sorted: bool = True
    ) -> None:
        """Make ``entry`` the comment's latest indexed state (None: the comment is gone)."""
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

    def _list(self, comment_id: str, entry: _IndexEntry, *, append: bool = False) -> None:
        """Put the comment in its sorted lists (``append``: at the end, to be sorted later)."""
        key = (entry.created, comment_id)
        add = list.append if append else bisect.insort
        add(self.in_state.setdefault(entry.state, []), key)
        add(self.in_thread.setdefault(entry.state, {}).setdefault(entry.thread, []), key)
        if entry.is_author:
            add(self.authored, key)

    def _unlist(self, comment_id: str, entry: _IndexEntry) -> None:
        key = (entry.created, comment_id)
        _remove_sorted(self.in_state.get(entry.state, []), key)
        threads = self.in_thread.get(entry.state, {})
        in_thread = threads.get(entry.thread, [])
        _remove_sorted(in_thread, key)
        if not in_thread:
            threads.pop(entry.thread, None)
        if entry.is_author:
            _remove_sorted(self.authored, key)

    def _count(self, entry: _IndexEntry, step: int) -> None:
        if entry.public:
            self.public_by_thread[entry.thread] += step
        _step(self.per_thread, entry.thread, step)
        self.by_question[entry.state, entry.question] += step
        self.by_thread_question[entry.state, entry.thread, entry.question] += step
        if entry.author == UNKNOWN_AUTHOR:
            self.unknown_authors += step

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
    ) -> list[tuple[str, _IndexEntry]]:
        """(id, entry) of the first ``stop`` comments in ``state`` that pass the filters,
        oldest first."""
        if thread is None:
            ordered = self.in_state.get(state, [])
        else:
            ordered = self.in_thread.get(state, {}).get(thread, [])
        matching: list[tuple[str, _IndexEntry]] = []
        for _created, comment_id in ordered:
            entry = self.entries[comment_id]
            if question is None or entry.question == question:
                matching.append((comment_id, entry))
                if len(matching) == stop:
                    break
        return matching

    def newest_ids(self, state: str | None, stop: int) -> list[tuple[str, _IndexEntry]]:
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

    def author_ids(self, stop: int | None) -> list[tuple[str, _IndexEntry]]:
        """(id, entry) of the first ``stop`` (None: all) of the author's comments, except
        withdrawn ones, newest first."""
        found: list[tuple[str, _IndexEntry]] = []
        for _created, comment_id in reversed(self.authored):
            entry = self.entries[comment_id]
            if entry.state != CommentState.WITHDRAWN:
                found.append((comment_id, entry))
                if len(found) == stop:
                    break
        return found

    def adopt(self, fd: int) -> None:
        """Hold ``fd``, a rewritten index whose lines are exactly the current entries."""
        _close_descriptors(self._held)
        self._held.append(fd)
        self.offset, self.lines = os.fstat(fd).st_size, len(self.entries)


def _close_descriptors(held: list[int]) -> None:
    while held:
        os.close(held.pop())


def _comment_of(document: Document, path: Path) -> Comment:
    try:
        return Comment.from_record(document)
    except (KeyError, TypeError, ValueError) as error:
        raise _corrupted_thread(
            path, f"document {document.doc_id} is not a comment ({error!r})"
        ) from error


def _comments_of(table: Table, path: Path) -> list[Comment]:
    """Every comment in a thread's table, oldest first (ties: in the order stored)."""
    return _sorted_comments(table.all(), path)


def _sorted_comments(documents: Iterable[Document], path: Path) -> list[Comment]:
    ordered = sorted(documents, key=lambda document: (str(document.get("created")),
                                                      document.doc_id))
    return [_comment_of(document, path) for document in ordered]


def _comments_of_bytes(path: Path, raw: bytes) -> list[Comment]:
    """The comments of a thread file's bytes, read as _thread_table would, oldest first."""
    data = _ThreadFileStorage(str(path)).parse(raw)
    try:
        documents = [Document(document, doc_id=int(doc_id))
                     for doc_id, document in data.get(COMMENTS_TABLE, {}).items()]
    except ValueError as error:
        raise _corrupted_thread(path, f"a document id is not a number ({error})") from error
    return _sorted_comments(documents, path)


def _newest_first(comment: Comment) -> tuple[str, str]:
    return comment.created, comment.id


def _author_of(document: Document, path: Path) -> Author:
    try:
        author = Author.from_record(document)
    except TypeError as error:
        raise _corrupted_authors(
            path, f"document {document.doc_id} is not an author ({error})"
        ) from error
    if not all(isinstance(getattr(author, name), str)
               for name in ("id", "name", "email", "password_hash", "created")):
        raise _corrupted_authors(path, f"document {document.doc_id} has a field of the wrong type")
    return author


def _next_doc_id(documents: list[Document]) -> int:
    return max((document.doc_id for document in documents), default=0) + 1


# ---------------------------------------------------------------------------------------------
# The outbox and mail addresses (email follow-up, notify.py)
# ---------------------------------------------------------------------------------------------
#
# <store>/outbox/<YYYY-MM-DD>.json   one TinyDB file (table "messages") per UTC day of creation;
#                                    a message id starts with that day, so the id names its file
# <store>/outbox/open/<YYYY-MM-DD>   empty marker: that day may hold held/queued/sending messages
# <store>/outbox/keys/<hash>         a dedupe key is taken: the file holds the message's id
# <store>/mail_addresses.json        TinyDB file (table "addresses"): confirmations, unsubscribes
# <store>/locks/_outbox-<day>.lock   flock over every read-modify-write of that day's file
# <store>/locks/_outbox-keys.lock    flock while a message with a dedupe key is added
# <store>/locks/_addresses.lock      flock over every read-modify-write of mail_addresses.json
#
# Why per day: a TinyDB file is rewritten whole on every change, and a sender changes a message
# two or three times (claimed, then sent or rescheduled). One file per day of creation keeps
# each write to one day's messages, and old days are never written again once settled. The
# sender reads only the days the open/ markers name. A marker is created (and made durable)
# before a day's file first holds an open message and removed after a write leaves none, both
# under the day's lock, so a crash can leave an extra marker (read once, then removed) but never
# hide a message that still has to be sent.
#
# Lock order: keys → one day at a time. These locks are never held together with a thread,
# index or authors lock, and no two day locks are held at once.

OUTBOX_FOLDER = "outbox"
OUTBOX_OPEN_FOLDER = "open"
OUTBOX_KEYS_FOLDER = "keys"
OUTBOX_TABLE = "messages"
OUTBOX_KEYS_LOCK = "_outbox-keys.lock"
ADDRESSES_FILE = "mail_addresses.json"
ADDRESSES_TABLE = "addresses"
ADDRESSES_LOCK = "_addresses.lock"
MESSAGE_ID = re.compile(r"(\d{4})(\d{2})(\d{2})-[A-Za-z0-9_-]{1,64}")
OUTBOX_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def message_day(message_id: str) -> str | None:
    """The UTC day (YYYY-MM-DD) a message id was made on, or None for a malformed id."""
    match = MESSAGE_ID.fullmatch(message_id) if isinstance(message_id, str) else None
    return None if match is None else "-".join(match.groups())


def _corrupted_outbox(path: Path, problem: str) -> StoreCorrupted:
    return StoreCorrupted(
        f"The outbox file {path} cannot be read: {problem}. Move it aside (its messages are "
        "lost, nothing else is) or restore it from a backup."
    )


def _corrupted_addresses(path: Path, problem: str) -> StoreCorrupted:
    return StoreCorrupted(
        f"The mail addresses file {path} cannot be read: {problem}. Restore it from a backup "
        "(without it, unsubscribed readers could be mailed again)."
    )


class _OutboxDayStorage(_ThreadFileStorage):
    """The same discipline (parse on read, atomic durable writes) for one day of the outbox."""

    table_name = OUTBOX_TABLE
    corrupted = staticmethod(_corrupted_outbox)


class _AddressesFileStorage(_ThreadFileStorage):
    table_name = ADDRESSES_TABLE
    corrupted = staticmethod(_corrupted_addresses)


def _message_of(record: dict[str, Any], path: Path) -> OutboxMessage:
    try:
        return OutboxMessage.from_record(record)
    except (KeyError, TypeError, ValueError) as error:
        raise _corrupted_outbox(path, f"a document is not a message ({error!r})") from error


def _address_of(record: dict[str, Any], path: Path) -> MailAddress:
    try:
        return MailAddress.from_record(record)
    except TypeError as error:
        raise _corrupted_addresses(path, f"a document is not an address ({error})") from error


class _OutboxFiles:
    """The TinyDB store's outbox and address records (mixed into TinyDBStore; see above).

    A day's file is read and written whole through its TinyDB storage (the TinyDB file format,
    one table), because a claim changes several documents and must do so in one write."""

    path: Path
    _locks: Path

    @property
    def _outbox(self) -> Path:
        return self.path / OUTBOX_FOLDER

    def _outbox_folders(self) -> None:
        for folder in (self._outbox, self._outbox / OUTBOX_OPEN_FOLDER,
                       self._outbox / OUTBOX_KEYS_FOLDER):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                _fsync_folder(folder.parent)

    def _day_path(self, day: str) -> Path:
        return self._outbox / f"{day}.json"

    def _day_lock(self, day: str) -> AbstractContextManager[bool]:
        return _exclusive_lock(self._locks / f"_outbox-{day}.lock")

    def _read_day(self, day: str) -> dict[int, OutboxMessage]:
        """doc id → message of one day (no lock needed: the file is only replaced whole)."""
        path = self._day_path(day)
        data = _OutboxDayStorage(str(path)).read() or {}
        try:
            return {int(doc_id): _message_of(record, path)
                    for doc_id, record in data.get(OUTBOX_TABLE, {}).items()}
        except ValueError as error:
            raise _corrupted_outbox(path, f"a document id is not a number ({error})") from error

    def _write_day(self, day: str, messages: dict[int, OutboxMessage]) -> None:
        """Replace the day's file (the caller holds its lock), keeping its open marker true:
        made before a write that leaves an open message, removed after one that leaves none."""
        still_open = any(message.is_open for message in messages.values())
        if still_open:
            self._mark_open(day)
        payload = {OUTBOX_TABLE: {str(doc_id): message.to_record()
                                  for doc_id, message in sorted(messages.items())}}
        _OutboxDayStorage(str(self._day_path(day))).write(payload)
        if not still_open:
            self._unmark_open(day)

    def _mark_open(self, day: str) -> None:
        marker = self._outbox / OUTBOX_OPEN_FOLDER / day
        if marker.exists():
            return
        try:
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            _fsync_folder(marker.parent)
        except OSError as error:
            if error.errno in UNAVAILABLE_ERRNOS:
                raise _unavailable(error, marker) from error
            raise

    def _unmark_open(self, day: str) -> None:
        with suppress(FileNotFoundError):
            (self._outbox / OUTBOX_OPEN_FOLDER / day).unlink()

    def _open_days(self) -> list[str]:
        try:
            names = os.listdir(self._outbox / OUTBOX_OPEN_FOLDER)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if OUTBOX_DAY.fullmatch(name))

    def _all_days(self) -> list[str]:
        if not self._outbox.is_dir():
            return []
        return sorted(path.stem for path in self._outbox.glob("*.json")
                      if OUTBOX_DAY.fullmatch(path.stem))

    # -- messages -------------------------------------------------------------------------

    def add_message(self, message: OutboxMessage) -> OutboxMessage:
        """Store a new message (see Store.add_message). With a dedupe key the key file is
        written first, under the keys lock: a crash before the message lands leaves a key
        naming a message that does not exist, which the next add with that key takes over."""
        if not isinstance(message, OutboxMessage):
            raise TypeError(f"add_message() takes an OutboxMessage, not {type(message).__name__}")
        day = message_day(message.id)
        if day is None:
            raise ValueError(f"Invalid message id {message.id!r}")
        self._outbox_folders()
        if message.dedupe_key is None:
            self._insert_message(day, message)
            return message
        key_path = self._key_path(message.dedupe_key)
        with _exclusive_lock(self._locks / OUTBOX_KEYS_LOCK):
            try:
                holder = key_path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                holder = None
            existing = self.get_message(holder) if holder else None
            if existing is not None:
                return existing
            _write_file_atomically(key_path, message.id.encode("utf-8"))
            try:
                self._insert_message(day, message)
            except BaseException:
                with suppress(OSError):
                    key_path.unlink()
                raise
        return message

    def _key_path(self, dedupe_key: str) -> Path:
        digest = hashlib.blake2b(dedupe_key.encode("utf-8"), digest_size=16).hexdigest()
        return self._outbox / OUTBOX_KEYS_FOLDER / digest

    def _insert_message(self, day: str, message: OutboxMessage) -> None:
        with self._day_lock(day):
            messages = self._read_day(day)
            if any(stored.id == message.id for stored in messages.values()):
                raise DuplicateMessage(f"Message {message.id} is stored already")
            messages[max(messages, default=0) + 1] = message
            self._write_day(day, messages)

    def get_message(self, message_id: str) -> OutboxMessage | None:
        day = message_day(message_id)
        if day is None:
            return None
        return next((message for message in self._read_day(day).values()
                     if message.id == message_id), None)

    def update_message(
        self, message_id: str, change: Callable[[OutboxMessage], OutboxMessage]
    ) -> OutboxMessage:
        """Compare-and-set under the day's lock; ``change`` must not call the store."""
        day = message_day(message_id)
        if day is None:
            raise MessageNotFound(f"No message {message_id}")
        with self._day_lock(day):
            messages = self._read_day(day)
            found = next((doc_id for doc_id, message in messages.items()
                          if message.id == message_id), None)
            if found is None:
                raise MessageNotFound(f"No message {message_id}")
            old = messages[found]
            new = change(old)
            if not isinstance(new, OutboxMessage):
                raise TypeError(f"change() returned {type(new).__name__}, not an OutboxMessage")
            if new.id != old.id:
                raise ValueError("change() must not change a message's id")
            if new != old:
                messages[found] = new
                self._write_day(day, messages)
        return new

    def claim_messages(
        self, claimer: str, now: str, lease_until: str, limit: int
    ) -> list[OutboxMessage]:
        """Claim due messages day by day, each day under its lock: read, mark, write once.
        The flock makes the read and the write one step for every other claimer, so a due
        message goes to exactly one of them; the lease is the compare-and-set's condition."""
        claimed: list[OutboxMessage] = []
        for day in self._open_days():
            if len(claimed) >= limit:
                break
            with self._day_lock(day):
                messages = self._read_day(day)
                due = sorted(
                    (doc_id for doc_id, message in messages.items()
                     if (message.status is OutboxStatus.QUEUED and message.next_attempt_at <= now)
                     or (message.status is OutboxStatus.SENDING
                         and (message.claimed_until or "") <= now)),
                    key=lambda doc_id: (messages[doc_id].next_attempt_at,
                                        messages[doc_id].created, doc_id),
                )[: limit - len(claimed)]
                for doc_id in due:
                    old = messages[doc_id]
                    messages[doc_id] = dataclasses.replace(
                        old, status=OutboxStatus.SENDING, claimed_by=claimer,
                        claimed_until=lease_until, attempts=old.attempts + 1,
                    )
                    claimed.append(messages[doc_id])
                if due:
                    self._write_day(day, messages)
                elif not any(message.is_open for message in messages.values()):
                    self._unmark_open(day)  # left by a crash: nothing to do on that day
        return claimed

    def list_messages(
        self, statuses: Iterable[OutboxStatus] | None = None, *, limit: int = 50,
        offset: int = 0,
    ) -> list[OutboxMessage]:
        """Newest first. Only open statuses: reads the open days only. Otherwise it reads day
        files from the newest back until the page is full (the cost grows with ``offset``
        and, for rare statuses, with the outbox's history)."""
        wanted = None if statuses is None else {OutboxStatus(status) for status in statuses}
        if limit <= 0:
            return []
        days = self._open_days() if wanted is not None and wanted <= OPEN_STATUSES else (
            self._all_days())
        found: list[OutboxMessage] = []
        for day in reversed(days):
            matching = [message for message in self._read_day(day).values()
                        if wanted is None or message.status in wanted]
            found.extend(sorted(matching, key=lambda message: (message.created, message.id),
                                reverse=True))
            if len(found) >= offset + limit:
                break
        return found[max(offset, 0): max(offset, 0) + limit]

    def messages_to(
        self, address: str, *, since: str | None = None, open_only: bool = False
    ) -> list[OutboxMessage]:
        wanted = address.casefold()
        if open_only:
            days = self._open_days()
        else:
            first = (since or "")[:10]
            days = [day for day in self._all_days() if day >= first]
        found = [
            message for day in days for message in self._read_day(day).values()
            if message.to.casefold() == wanted
            and (since is None or message.created >= since)
            and (not open_only or message.is_open)
        ]
        return sorted(found, key=lambda message: (message.created, message.id))

    # -- mail addresses -------------------------------------------------------------------

    @contextmanager
    def _addresses_table(self) -> Iterator[Table]:
        database = TinyDB(str(self.path / ADDRESSES_FILE), storage=_AddressesFileStorage)
        try:
            yield database.table(ADDRESSES_TABLE, cache_size=0)
        finally:
            database.close()

    def get_mail_address(self, address: str) -> MailAddress | None:
        wanted = address.casefold()
        with self._addresses_table() as table:
            for document in table.all():
                record = _address_of(document, self.path / ADDRESSES_FILE)
                if record.address == wanted:
                    return record
        return None

    def all_mail_addresses(self) -> list[MailAddress]:
        """Every address record (for backups)."""
        with self._addresses_table() as table:
            return [_address_of(document, self.path / ADDRESSES_FILE) for document in table.all()]

    def update_mail_address(
        self, address: str, change: Callable[[MailAddress], MailAddress]
    ) -> MailAddress:
        """Compare-and-set under the addresses lock; ``change`` must not call the store."""
        wanted = address.casefold()
        with _exclusive_lock(self._locks / ADDRESSES_LOCK), self._addresses_table() as table:
            documents = table.all()
            found = next((document for document in documents
                          if document.get("address") == wanted), None)
            old = (MailAddress(wanted) if found is None
                   else _address_of(found, self.path / ADDRESSES_FILE))
            new = change(old)
            if not isinstance(new, MailAddress):
                raise TypeError(f"change() returned {type(new).__name__}, not a MailAddress")
            if new.address != wanted:
                raise ValueError("change() must not change the address")
            if new != old and found is None:
                table.insert(Document(new.to_record(), doc_id=_next_doc_id(documents)))
            elif new != old:
                table.update(new.to_record(), doc_ids=[found.doc_id])
        return new


# ---------------------------------------------------------------------------------------------
# Request groups: the tally of repeated requests (requests.py, docs/ARCHITECTURE.md)
# ---------------------------------------------------------------------------------------------
#
# <store>/requests/log.jsonl             the grouper's log: a header line {"log_id", "snapshot"},
#                                        then one JSON record per assignment (append-only)
# <store>/requests/grouper-<log_id>.json the grouper's state the log starts from (a snapshot)
# <store>/requests/groups.json           TinyDB file (table "groups"): the author's labels,
#                                        statuses, links and merges, replaced whole
# <store>/locks/_requests.lock           flock over every load-assign-save of the grouper
# <store>/locks/_request-groups.lock     flock over every read-modify-write of groups.json
#
# Which group a comment is in is the comment's own ``request`` field (its thread file). An
# assignment appends one line to the log, so its cost does not grow with the store; the log is
# folded into a new snapshot now and then (requests.py decides when). The log's header names
# its snapshot, and a new log replaces the old one by a rename after its snapshot is written:
# that rename is the commit point, so a crash leaves the old pair or the new pair, never a log
# replayed over a snapshot that already holds it. A half-written last line (a crash during an
# append) is ignored and cut off before the next append.
#
# Lock order: the tally lock may be held while the groups lock or a thread lock is taken, never
# the other way round.

REQUESTS_FOLDER = "requests"
REQUEST_LOG = "log.jsonl"
REQUEST_GROUPS_FILE = "groups.json"
REQUEST_GROUPS_TABLE = "groups"
REQUEST_TALLY_LOCK = "_requests.lock"
REQUEST_GROUPS_LOCK = "_request-groups.lock"
REQUEST_LOG_ID = re.compile(r"[0-9a-f]{16}")
# How far back from the end a partial last line is looked for (a record is a few kB at most).
REQUEST_TAIL_BYTES = 1 << 16


class RequestTally(ABC):
    """The grouper's saved state, handed out while the tally lock is held (Store.request_tally):
    a snapshot and the records appended after it. ``log_id`` names the pair ("" when nothing
    was ever saved) and changes whenever :meth:`replace` starts a new pair; positions are
    offsets valid for one ``log_id`` only."""

    log_id: str = ""

    @abstractmethod
    def snapshot(self) -> dict[str, Any] | None:
        """The state the log starts from, or None (start from an empty grouper)."""

    @abstractmethod
    def records(self, position: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """The records after ``position`` (None: every record) and the position after them."""

    @abstractmethod
    def append(self, record: dict[str, Any]) -> int:
        """Append one record durably; returns the position after it."""

    @abstractmethod
    def replace(self, snapshot: dict[str, Any]) -> None:
        """Make ``snapshot`` the new starting point with an empty log (new ``log_id``)."""


def _corrupted_requests(path: Path, problem: str) -> StoreCorrupted:
    return StoreCorrupted(
        f"The request tally file {path} cannot be read: {problem}. Move the requests folder's "
        "log.jsonl aside and run `flask --app comments_service regroup` (groups are computed "
        "again from the comments)."
    )


def _corrupted_request_groups(path: Path, problem: str) -> StoreCorrupted:
    return StoreCorrupted(
        f"The request groups file {path} cannot be read: {problem}. Restore it from a backup "
        "(without it, labels, statuses and merges of requests are lost; groups are not)."
    )


class _RequestGroupsStorage(_ThreadFileStorage):
    table_name = REQUEST_GROUPS_TABLE
    corrupted = staticmethod(_corrupted_request_groups)


def _request_group_of(record: dict[str, Any], path: Path) -> RequestGroup:
    try:
        return RequestGroup.from_record(record)
    except (KeyError, TypeError, ValueError) as error:
        raise _corrupted_request_groups(path, f"a document is not a group ({error!r})") from error


class _TinyDBRequestTally(RequestTally):
    """The log and snapshot files of one store (see above); used only under the tally lock."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._log = folder / REQUEST_LOG
        header = self._header()
        self.log_id = header["log_id"] if header else ""
        self._has_snapshot = bool(header and header.get("snapshot"))
        self._start = 0  # byte offset of the first record, known once the header was read

    def _header(self) -> dict[str, Any] | None:
        try:
            with open(self._log, "rb") as file:
                line = file.readline(4096)
        except FileNotFoundError:
            return None
        try:
            header = json.loads(line)
        except ValueError as error:
            raise _corrupted_requests(self._log, f"the header is not JSON ({error})") from error
        if (not isinstance(header, dict) or not line.endswith(b"\n")
                or not REQUEST_LOG_ID.fullmatch(str(header.get("log_id")))):
            raise _corrupted_requests(self._log, "the first line is not a log header")
        return header

    def _snapshot_path(self, log_id: str) -> Path:
        return self._folder / f"grouper-{log_id}.json"

    def snapshot(self) -> dict[str, Any] | None:
        if not self._has_snapshot:
            return None
        path = self._snapshot_path(self.log_id)
        try:
            state = json.loads(path.read_bytes())
        except FileNotFoundError as error:
            raise _corrupted_requests(path, "the log's snapshot is missing") from error
        except ValueError as error:
            raise _corrupted_requests(path, f"not valid JSON ({error})") from error
        if not isinstance(state, dict):
            raise _corrupted_requests(path, "not a grouper snapshot")
        return state

    def records(self, position: int | None = None) -> tuple[list[dict[str, Any]], int]:
        if not self.log_id:
            return [], 0
        with open(self._log, "rb") as file:
            if position is None:
                file.readline()
                position = file.tell()
            file.seek(position)
            data = file.read()
        complete = data[: data.rfind(b"\n") + 1]
        found = []
        for line in complete.splitlines():
            try:
                record = json.loads(line)
            except ValueError as error:
                raise _corrupted_requests(self._log, f"a record is not JSON ({error})") from error
            if not isinstance(record, dict):
                raise _corrupted_requests(self._log, "a record is not a JSON object")
            found.append(record)
        return found, position + len(complete)

    def _new_log(self, *, snapshot: bool) -> str:
        log_id = secrets.token_hex(8)
        header = json.dumps({"log_id": log_id, "snapshot": snapshot}) + "\n"
        _write_file_atomically(self._log, header.encode("utf-8"))
        return log_id

    def append(self, record: dict[str, Any]) -> int:
        if not self.log_id:
            self.log_id, self._has_snapshot = self._new_log(snapshot=False), False
        payload = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        try:
            with open(self._log, "r+b") as file:
                end = file.seek(0, os.SEEK_END)
                tail_start = max(0, end - REQUEST_TAIL_BYTES)
                file.seek(tail_start)
                tail = file.read()
                if tail and not tail.endswith(b"\n"):  # a crash cut the last record short
                    cut = tail.rfind(b"\n")
                    if cut < 0:
                        raise _corrupted_requests(self._log, "its last line never ends")
                    end = tail_start + cut + 1
                    file.truncate(end)
                file.seek(end)
                _write_all(file.fileno(), payload)
                os.fsync(file.fileno())
        except OSError as error:
            if error.errno in UNAVAILABLE_ERRNOS:
                raise _unavailable(error, self._log) from error
            raise
        return end + len(payload)

    def replace(self, snapshot: dict[str, Any]) -> None:
        log_id = secrets.token_hex(8)
        payload = json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")).encode()
        _write_file_atomically(self._snapshot_path(log_id), payload)
        header = json.dumps({"log_id": log_id, "snapshot": True}) + "\n"
        _write_file_atomically(self._log, header.encode("utf-8"))  # the commit point
        for old in self._folder.glob("grouper-*.json"):
            if old.name != self._snapshot_path(log_id).name:
                with suppress(OSError):
                    old.unlink()
        self.log_id, self._has_snapshot = log_id, True


class _RequestFiles:
    """The TinyDB store's request groups (mixed into TinyDBStore; see above)."""

    path: Path
    _locks: Path
    _view: _IndexView
    _view_lock: threading.Lock
    _refresh: Callable[[], None]
    _thread_lock: Callable[..., AbstractContextManager[bool]]
    _thread_table: Callable[[str], AbstractContextManager[Table]]

    @property
    def _requests(self) -> Path:
        return self.path / REQUESTS_FOLDER

    def _requests_folder(self) -> None:
        if not self._requests.is_dir():
            self._requests.mkdir(parents=True, exist_ok=True)
            _fsync_folder(self.path)

    @contextmanager
    def request_tally(self, *, timeout: float | None = None) -> Iterator[RequestTally | None]:
        """Hold the tally lock (see Store.request_tally); with ``timeout``, poll for it that
        long and yield None if it stays taken."""
        self._requests_folder()
        lock = self._locks / REQUEST_TALLY_LOCK
        if timeout is None:
            with _exclusive_lock(lock):
                yield _TinyDBRequestTally(self._requests)
            return
        deadline = time.monotonic() + timeout
        while True:
            with _exclusive_lock(lock, wait=False) as acquired:
                if acquired:
                    yield _TinyDBRequestTally(self._requests)
                    return
            if time.monotonic() >= deadline:
                yield None
                return
            time.sleep(0.02)

    @contextmanager
    def _request_groups_table(self) -> Iterator[Table]:
        self._requests_folder()
        database = TinyDB(str(self._requests / REQUEST_GROUPS_FILE), storage=_RequestGroupsStorage)
        try:
            yield database.table(REQUEST_GROUPS_TABLE, cache_size=0)
        finally:
            database.close()

    def request_groups(self) -> dict[str, RequestGroup]:
        """Every group record by id (a small file: only groups the author touched)."""
        path = self._requests / REQUEST_GROUPS_FILE
        if not path.exists():
            return {}
        with self._request_groups_table() as table:
            groups = [_request_group_of(document, path) for document in table.all()]
        return {group.id: group for group in groups}

    def update_request_group(
        self, group_id: str, change: Callable[[RequestGroup], RequestGroup]
    ) -> RequestGroup:
        """Compare-and-set under the groups lock; ``change`` must not call the store."""
        path = self._requests / REQUEST_GROUPS_FILE
        self._requests_folder()
        with _exclusive_lock(self._locks / REQUEST_GROUPS_LOCK), \
                self._request_groups_table() as table:
            documents = table.all()
            found = next((document for document in documents
                          if document.get("id") == group_id), None)
            old = RequestGroup(group_id) if found is None else _request_group_of(found, path)
            new = change(old)
            if not isinstance(new, RequestGroup):
                raise TypeError(f"change() returned {type(new).__name__}, not a RequestGroup")
            if new.id != group_id:
                raise ValueError("change() must not change a group's id")
            if new != old and found is None:
                table.insert(Document(new.to_record(), doc_id=_next_doc_id(documents)))
            elif new != old:
                table.update(new.to_record(), doc_ids=[found.doc_id])
        return new

    def replace_request_groups(self, groups: Iterable[RequestGroup]) -> None:
        """Replace every group record in one write (regroup)."""
        path = self._requests / REQUEST_GROUPS_FILE
        self._requests_folder()
        payload = {REQUEST_GROUPS_TABLE: {str(number): group.to_record()
                                          for number, group in enumerate(groups, start=1)}}
        with _exclusive_lock(self._locks / REQUEST_GROUPS_LOCK):
            _RequestGroupsStorage(str(path)).write(payload)

    def set_comment_requests(self, requests: Mapping[str, str | None]) -> int:
        """Set the ``request`` field of many reader comments, one write per thread (the index
        does not hold the field, so it is not touched). Unknown ids and the author's own
        comments are skipped; returns how many comments changed."""
        self._refresh()
        by_thread: dict[str, set[str]] = {}
        with self._view_lock:
            for comment_id in requests:
                entry = self._view.entries.get(comment_id)
                if entry is not None:
                    by_thread.setdefault(entry.thread, set()).add(comment_id)
        changed = 0
        for thread, wanted in sorted(by_thread.items()):
            with self._thread_lock(thread), self._thread_table(thread) as table:
                doc_ids = [document.doc_id for document in table.all()
                           if document.get("id") in wanted and not document.get("is_author")
                           and document.get("request") != requests[document["id"]]]
                if doc_ids:
                    def set_request(document: dict[str, Any]) -> None:
                        document["request"] = requests[document["id"]]
                    table.update(set_request, doc_ids=doc_ids)
                    changed += len(doc_ids)
        return changed


class TinyDBStore(_RequestFiles, _OutboxFiles, Store):
    """The embedded store: one TinyDB file per thread, plus an append-only index.

    Safe for several threads and processes on one machine (flock); every write is atomic
    (temporary file and rename) and durable (fsync) before the method returns.
    """

    def __init__(self, store_path: str | os.PathLike[str]) -> None:
        self.path = Path(store_path)
        self._threads = self.path / THREADS_FOLDER
        self._locks = self.path / LOCKS_FOLDER
        self._index_path = self.path / INDEX_FILE
        self._authors_path = self.path / AUTHORS_FILE
        self._view = _IndexView(self._index_path)
        self._view_lock = threading.Lock()
        # id → (the index entry it was read at, the comment): the author's comments read so
        # far, reused while the index still holds that entry (author_replies).
        self._author_cache: dict[str, tuple[_IndexEntry, Comment]] = {}
        self._author_cache_lock = threading.Lock()
        self._create_folders()
        self._remove_stale_temp_files()
        self._refresh()

    # -- files and locks ------------------------------------------------------------------

    def _create_folders(self) -> None:
        for folder in (self.path, self._threads, self._locks):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                # A folder made just now must survive a power cut with the files put in it.
                _fsync_folder(folder.parent)

    def _remove_stale_temp_files(self) -> None:
        cutoff = time.time() - STALE_TEMP_SECONDS
        for folder in (self.path, self._threads):
            for temp_path in folder.glob(".*.tmp"):
                with suppress(OSError):
                    if temp_path.stat().st_mtime < cutoff:
                        temp_path.unlink()

    def _thread_path(self, thread: str) -> Path:
        return self._threads / f"{thread}.json"

    def _thread_lock(self, thread: str, *, wait: bool = True) -> AbstractContextManager[bool]:
        return _exclusive_lock(self._locks / f"{thread}.lock", wait=wait)

    def _index_lock(self) -> AbstractContextManager[bool]:
        return _exclusive_lock(self._locks / INDEX_LOCK)

    def _authors_lock(self) -> AbstractContextManager[bool]:
        return _exclusive_lock(self._locks / AUTHORS_LOCK)

    @contextmanager
    def _authors_table(self) -> Iterator[Table]:
        """The authors' TinyDB table, opened afresh (as _thread_table)."""
        database = TinyDB(str(self._authors_path), storage=_AuthorsFileStorage)
        try:
            yield database.table(AUTHORS_TABLE, cache_size=0)
        finally:
            database.close()

    def _read_authors(self) -> list[Author]:
        """Every author, oldest first; no lock needed (the file is only replaced whole)."""
        with self._authors_table() as table:
            documents = sorted(table.all(), key=lambda document: (str(document.get("created")),
                                                                   document.doc_id))
            return [_author_of(document, self._authors_path) for document in documents]

    @contextmanager
    def _thread_table(self, thread: str) -> Iterator[Table]:
        """The thread's TinyDB table, opened afresh: TinyDB caches the next document id and
        query results per instance, which another process's writes would make wrong."""
        database = TinyDB(str(self._thread_path(thread)), storage=_ThreadFileStorage)
        try:
            yield database.table(COMMENTS_TABLE, cache_size=0)
        finally:
            database.close()

    def _read_thread(self, thread: str) -> list[Comment]:
        """The thread's comments, oldest first. Needs no lock: files are only ever replaced
        whole by a rename, so a reader sees the old file or the new one."""
        if not is_thread_key(thread):
            return []
        with self._thread_table(thread) as table:
            return _comments_of(table, self._thread_path(thread))

    # -- the index ------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Bring this process's view of the index up to date (no lock needed to read it)."""
        with self._view_lock:
            if self._view.refresh():
                return
        with self._index_lock(), self._view_lock:
            self._refresh_holding_index_lock()

    def _refresh_holding_index_lock(self) -> None:
        if not self._view.refresh():
            # A new store, or an index someone moved aside: derive it from the thread files.
            self._rebuild_holding_index_lock()

    def _set_index(
        self, thread: str, wanted: dict[str, _IndexEntry | None], *, adding: bool = False
    ) -> set[str]:
        """Make the index say ``wanted`` for these ids of ``thread``; the caller holds the
        thread lock. Appends one line per id whose indexed state differs, then fsyncs.

        With ``adding``, ids the index files under another thread are refused and returned
        (ids are unique store-wide; checking under the index lock makes that race-free).
        """
        with self._index_lock(), self._view_lock:
            self._refresh_holding_index_lock()
            entries = self._view.entries
            refused = {comment_id for comment_id in wanted
                       if adding and comment_id in entries and entries[comment_id].thread != thread}
            changes = [
                (comment_id, entry) for comment_id, entry in wanted.items()
                if comment_id not in refused and entries.get(comment_id) != entry
                # "gone" only ever removes this thread's own entry.
                and not (entry is None and (comment_id not in entries
                                            or entries[comment_id].thread != thread))
            ]
            if changes:
                self._append_index(b"".join(
                    _index_line(comment_id, thread, entry) for comment_id, entry in changes
                ))
                self._view.refresh()
                if self._view.lines > 2 * len(self._view.entries) + COMPACT_SLACK_LINES:
                    self._compact_holding_index_lock()
            return refused

    def _append_index(self, payload: bytes) -> None:
        """Append whole lines to index.jsonl and fsync; the caller holds the index lock."""
        try:
            fd = os.open(self._index_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o600)
            try:
                size = self._cut_partial_line(fd)
                try:
                    _write_all(fd, payload)
                    os.fsync(fd)
                except OSError:
                    # Take a short append back now rather than leave half a line behind.
                    with suppress(OSError):
                        os.ftruncate(fd, size)
                    raise
            finally:
                os.close(fd)
            if size == 0:
                _fsync_folder(self.path)  # the file may be new: make its name durable too
        except OSError as error:
            if error.errno in UNAVAILABLE_ERRNOS:
                raise _unavailable(error, self._index_path) from error
            raise

    def _cut_partial_line(self, fd: int) -> int:
        """Truncate an incomplete last line (an append cut short by a crash); returns the
        size of the file from which to append."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        end = size
        while end > 0:
            start = max(0, end - 65536)
            newline = os.pread(fd, end - start, start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        logger.warning("Removing %d bytes of an incomplete last line from %s",
                       size - end, self._index_path)
        os.ftruncate(fd, end)
        return end

    def _write_index_file(self, entries: dict[str, _IndexEntry]) -> None:
        """Replace index.jsonl by one line per entry, oldest first. Other processes notice the
        new inode and reload it whole."""
        payload = b"".join(
            _index_line(comment_id, entry.thread, entry)
            for comment_id, entry in sorted(entries.items(), key=lambda item: item[1].created)
        )
        _write_file_atomically(self._index_path, payload)

    def _compact_holding_index_lock(self) -> None:
        """Rewrite the index with only the latest line per comment."""
        self._write_index_file(self._view.entries)
        # Under the index lock the file at the path is the one just written: adopt it as read.
        self._view.adopt(os.open(self._index_path, os.O_RDONLY | os.O_CLOEXEC))
        logger.info("Compacted %s to %d lines", self._index_path, len(self._view.entries))

    def _rebuild_holding_index_lock(self) -> None:
        """Derive the index from the thread files, keeping what they cannot settle yet.

        A thread whose lock is free has no write in flight, so its file is the whole truth
        for it. A thread being written right now keeps its index entries (its writer will
        append what follows) and gains any comment the index lacks.
        """
        known = {}
        for comment_id, entry in self._view.entries.items():
            known.setdefault(entry.thread, {})[comment_id] = entry
        threads = {path.stem for path in self._threads.glob("*.json") if is_thread_key(path.stem)}
        rebuilt: dict[str, _IndexEntry] = {}
        for thread in sorted(threads | known.keys()):
            with self._thread_lock(thread, wait=False) as settled:
                truth = {comment.id: _IndexEntry.of(comment)
                         for comment in self._read_thread(thread)}
            if not settled:
                truth = {**truth, **known.get(thread, {})}
            for comment_id in truth.keys() & rebuilt.keys():
                logger.warning("Comment %s is stored in two threads; indexing the one in %s",
                               comment_id, thread)
            rebuilt.update(truth)
        self._write_index_file(rebuilt)
        self._view.close()
        self._view = _IndexView(self._index_path)
        self._view.refresh()
        logger.info("Rebuilt %s from %d thread files: %d comments",
                    self._index_path, len(threads), len(rebuilt))

    def rebuild_index(self) -> int:
        """Rebuild index.jsonl from the thread files (e.g. after restoring thread files from a
        backup); returns the number of comments indexed."""
        with self._index_lock(), self._view_lock:
            self._refresh_holding_index_lock()
            self._rebuild_holding_index_lock()
            return len(self._view.entries)

    def _settle(self, thread: str, comment_ids: Iterable[str]) -> dict[str, Comment | None]:
        """Make the index agree with the thread file for these ids, and return their truth.

        Called when a reader finds the two disagreeing: a crash between the two writes of an
        add or update, or a write still in flight. Under the thread lock no write of the
        thread is in flight, so the file then is the settled truth.
        """
        with self._thread_lock(thread):
            stored = {comment.id: comment for comment in self._read_thread(thread)}
            truth = {comment_id: stored.get(comment_id) for comment_id in comment_ids}
            wanted = {comment_id: None if comment is None else _IndexEntry.of(comment)
                      for comment_id, comment in truth.items()}
            try:
                self._set_index(thread, wanted)
            except StoreUnavailable as error:
                # A read must not fail for this; the next reader settles it again.
                logger.warning("Could not correct the index: %s", error)
        return truth

    # -- the Store interface ----------------------------------------------------------------

    def add_comment(self, comment: Comment) -> Comment:
        """Store a new comment durably (index line first, then the thread file)."""
        _check_thread_key(comment.thread)
        with self._thread_lock(comment.thread), self._thread_table(comment.thread) as table:
            # Raw documents, not Comments: building 100 Comments would double the cost of an add.
            documents = table.all()
            if any(document.get("id") == comment.id for document in documents):
                raise DuplicateComment(f"Comment {comment.id} is stored already")
            # The index line goes first: a crash before the thread file is written leaves a
            # line that readers check against the file and drop, never a comment the queue
            # cannot see.
            if self._set_index(comment.thread, {comment.id: _IndexEntry.of(comment)}, adding=True):
                raise DuplicateComment(f"Comment {comment.id} is stored already in another thread")
            try:
                # An explicit document id spares TinyDB a second read of the file to find one.
                table.insert(Document(comment.to_record(), doc_id=_next_doc_id(documents)))
            except BaseException:
                self._take_back(comment.thread, {comment.id: None})
                raise
        return comment

    def _take_back(self, thread: str, wanted: dict[str, _IndexEntry | None]) -> None:
        """After a failed thread write, put the index back to what the file says (best effort:
        if this fails too, readers settle it when they meet the stale line)."""
        try:
            self._set_index(thread, wanted)
        except (StoreError, OSError) as error:
            logger.warning("Could not take back the index line: %s", error)

    def get_comment(self, comment_id: str) -> Comment | None:
        """The comment with that id: found through the index, read from its thread file."""
        self._refresh()
        with self._view_lock:
            entry = self._view.entries.get(comment_id)
        if entry is None:
            return None
        comment = next((item for item in self._read_thread(entry.thread) if item.id == comment_id),
                       None)
        if comment is None or not entry.agrees_with(comment):
            comment = self._settle(entry.thread, [comment_id])[comment_id]
        return comment

    def thread_comments(self, thread: str) -> list[Comment]:
        """Every comment of a thread, any state, oldest first (an unknown thread has none)."""
        return self._read_thread(thread)

    def update_comment(self, comment_id: str, change: Callable[[Comment], Comment]) -> Comment:
        """Compare-and-set under the thread lock; see :meth:`Store.update_comment`.

        ``change`` runs while the thread's lock is held, so it must not call the store."""
        self._refresh()
        with self._view_lock:
            entry = self._view.entries.get(comment_id)
        if entry is None:
            raise CommentNotFound(f"No comment {comment_id}")
        thread = entry.thread
        with self._thread_lock(thread), self._thread_table(thread) as table:
            found = next((document for document in table.all()
                          if document.get("id") == comment_id), None)
            if found is None:
                # An index line whose add never reached the thread file: drop it.
                self._take_back(thread, {comment_id: None})
                raise CommentNotFound(f"No comment {comment_id}")
            doc_id, old = found.doc_id, _comment_of(found, self._thread_path(thread))
            new = change(old)
            if not isinstance(new, Comment):
                raise TypeError(f"change() returned {type(new).__name__}, not a Comment")
            if new.id != old.id or new.thread != old.thread:
                raise ValueError("change() must not change a comment's id or thread")
            new_entry = _IndexEntry.of(new)
            # Order the two writes so that a crash between them can only leave the index
            # listing *more* waiting comments than there are (readers check and drop those),
            # never fewer: a comment entering the queue is indexed first, one leaving it is
            # written first.
            index_first = new_entry.waiting
            if index_first:
                self._set_index(thread, {comment_id: new_entry})
            if new != old:
                try:
                    table.update(new.to_record(), doc_ids=[doc_id])
                except BaseException:
                    if index_first:
                        self._take_back(thread, {comment_id: _IndexEntry.of(old)})
                    raise
            if not index_first:
                try:
                    self._set_index(thread, {comment_id: new_entry})
                except StoreUnavailable as error:
                    # The change is stored (the thread file is the commit point); the stale
                    # line only lists a comment as waiting that readers then check and drop.
                    logger.error("Updated %s but could not index the change: %s",
                                 comment_id, error)
        return new

    def waiting_comments(
        self, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        """A page of the queue: chosen from the index, each comment checked in its thread file.

        ``offset`` counts the index's candidates; they differ from the thread files only after
        a crash, until the first listing that meets the difference settles it."""
        return self.comments_in_state(CommentState.AWAITING_REPLY, thread=thread,
                                      question=question, limit=limit, offset=offset)

    def count_waiting(self, *, thread: str | None = None, question: str | None = None) -> int:
        """How many comments the index lists as waiting (same filters as waiting_comments)."""
        return self.count_in_state(CommentState.AWAITING_REPLY, thread=thread, question=question)

    def _verified_page(
        self, pick: Callable[[int], list[tuple[str, _IndexEntry]]],
        accept: Callable[[Comment], bool], limit: int, offset: int,
    ) -> list[Comment]:
        """A page of the comments that ``pick(n)`` (called under the view lock) lists first in
        the index, each checked in its thread file and kept if ``accept`` takes it."""
        files: dict[str, dict[str, Comment]] = {}
        # Take only as many candidates as the page needs, plus a few to replace any that the
        # thread files reject; more only in the rare case that this was not enough.
        window = offset + limit + 16
        while True:
            with self._view_lock:
                candidates = pick(window)
            page: list[Comment] = []
            for comment_id, entry in candidates[offset:]:
                if entry.thread not in files:
                    files[entry.thread] = {
                        item.id: item for item in self._read_thread(entry.thread)
                    }
                comment = files[entry.thread].get(comment_id)
                if comment is None or not entry.agrees_with(comment):
                    # The index and the file disagree (a crash between the two writes, or a
                    # write in flight): settle it, then trust the file.
                    comment = self._settle(entry.thread, [comment_id])[comment_id]
                if comment is not None and accept(comment):
                    page.append(comment)
                    if len(page) == limit:
                        return page
            if len(candidates) < window:
                return page
            window *= 4

    def comments_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        """A page of the comments in ``state``, oldest first (ties by id): chosen from the
        index, each checked in its thread file, as waiting_comments (which is this for
        awaiting_reply). ``question=None`` means any question.

        Only the queue is kept crash-safe by the write order: after a crash between the two
        writes of an update, a comment may be missing from its new state's listing until a
        listing of its old state (or rebuild_index) settles it."""
        if limit <= 0 or (thread is not None and not is_thread_key(thread)):
            return []
        state = CommentState(state)
        self._refresh()

        def accept(comment: Comment) -> bool:
            return comment.state is state and (question is None or comment.question == question)

        return self._verified_page(
            lambda stop: self._view.ids_in_state(state, thread, question, stop),
            accept, limit, max(offset, 0),
        )

    def count_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None
    ) -> int:
        """How many comments the index lists in ``state`` (same filters as comments_in_state)."""
        self._refresh()
        with self._view_lock:
            return self._view.count_in_state(str(state), thread, question)

    def state_counts(self) -> dict[CommentState, int]:
        """Comments per state, from the index; every state is a key."""
        self._refresh()
        with self._view_lock:
            return {state: self._view.count_in_state(state, None, None) for state in CommentState}

    def find_comments(
        self, *, text: str | None = None, state: CommentState | None = None,
        thread: str | None = None, limit: int = 50, offset: int = 0,
    ) -> tuple[list[Comment], int]:
        """Comments whose body or name contains ``text`` (casefolded substring), newest first
        (ties by id), optionally of one state and/or thread; returns (page, total matching).

        Cost: with ``thread``, one read of that thread file. With neither ``text`` nor
        ``thread``, the page comes from the index like comments_in_state (each comment checked
        in its file) and the total is the index's count. With ``text`` and no ``thread`` it
        reads every thread file that can match: only threads the index lists with a comment in
        ``state`` when a state is given, and a file whose raw text does not contain ``text``
        (casefolded) is skipped without being parsed. So a store-wide text search reads
        (nearly) every thread file and grows with the store: measured ~15 ms per 10,000 comments
        when few threads hold the text, ~150 ms per 10,000 when most do (or when the text holds
        a character JSON escapes, such as a quote, so the raw files cannot be searched first).
        """
        state = None if state is None else CommentState(state)
        offset = max(offset, 0)
        if thread is None and not text:
            return self._find_in_index(state, limit, offset)
        if thread is not None:
            threads = [thread] if is_thread_key(thread) else []
        else:
            self._refresh()
            with self._view_lock:
                threads = self._view.threads_with(state)
        needle = text.casefold() if text else None
        # The raw file can be searched first when the text cannot have been escaped in it.
        raw_search = needle is not None and JSON_ESCAPED.search(needle) is None
        matching: list[Comment] = []
        for name in sorted(threads):
            try:
                raw = self._thread_path(name).read_bytes()
            except FileNotFoundError:
                continue
            if raw_search and b"\\u" not in raw:
                try:
                    if needle not in raw.decode("utf-8").casefold():
                        continue
                except UnicodeDecodeError:
                    pass  # parsing reports the damaged file
            for comment in _comments_of_bytes(self._thread_path(name), raw):
                if (state is None or comment.state is state) and (
                    needle is None or needle in comment.body.casefold()
                    or needle in comment.name.casefold()
                ):
                    matching.append(comment)
        if limit <= 0:
            return [], len(matching)
        page = heapq.nlargest(offset + limit, matching, key=_newest_first)[offset:]
        return page, len(matching)

    def _find_in_index(
        self, state: CommentState | None, limit: int, offset: int
    ) -> tuple[list[Comment], int]:
        """find_comments without text or thread: newest first from the index."""
        self._refresh()
        with self._view_lock:
            total = len(self._view.entries) if state is None else self._view.count_in_state(
                state, None, None)
        if limit <= 0:
            return [], total
        page = self._verified_page(
            lambda stop: self._view.newest_ids(state, stop),
            lambda comment: state is None or comment.state is state, limit, offset,
        )
        return page, total

    # -- the author's comments --------------------------------------------------------------

    def author_replies(self, limit: int | None = None) -> list[Comment]:
        """The author's comments (is_author) except withdrawn ones, newest first.

        The index lists them, with a digest of each one's fields; this process keeps every one
        it has read with the index entry it was read at. A call reads a thread file only for
        comments whose entry changed since (added, edited or moved by any process), so after
        the first call it costs a refresh of the index view and a dict look-up per comment.
        The first call reads every thread holding an author comment once.

        Lines of an index written before the author field existed cannot tell; if the view
        holds any, the first call rebuilds the index from the thread files (once)."""
        if limit is not None and limit <= 0:
            return []
        self._refresh()
        with self._view_lock:
            unknown = self._view.unknown_authors
        if unknown:
            logger.info("Rebuilding %s: %d lines predate the author field",
                        self._index_path, unknown)
            self.rebuild_index()
        read: set[str] = set()
        # As in _verified_page: the page's worth of candidates plus a few, more if needed.
        window = None if limit is None else limit + 16
        while True:
            with self._view_lock:
                candidates = self._view.author_ids(window)
            replies: list[Comment] = []
            for comment_id, entry in candidates:
                comment = self._cached_author_comment(comment_id, entry)
                if comment is None and entry.thread not in read:
                    read.add(entry.thread)
                    self._remember_author_comments(self._read_thread(entry.thread))
                    comment = self._cached_author_comment(comment_id, entry)
                if comment is None:
                    # The index and the file disagree: settle it, then trust the file.
                    comment = self._settle(entry.thread, [comment_id])[comment_id]
                    if comment is not None:
                        self._remember_author_comments([comment])
                if (comment is not None and comment.is_author
                        and comment.state is not CommentState.WITHDRAWN):
                    replies.append(comment)
                    if len(replies) == limit:
                        break
            if window is None or len(replies) == limit or len(candidates) < window:
                break
            window *= 4
        self._forget_author_comments()
        return replies

    def _cached_author_comment(self, comment_id: str, entry: _IndexEntry) -> Comment | None:
        with self._author_cache_lock:
            cached = self._author_cache.get(comment_id)
        return cached[1] if cached is not None and cached[0] == entry else None

    def _remember_author_comments(self, comments: Iterable[Comment]) -> None:
        read = {comment.id: (_IndexEntry.of(comment), comment)
                for comment in comments if comment.is_author}
        with self._author_cache_lock:
            self._author_cache.update(read)

    def _forget_author_comments(self) -> None:
        """Drop the comments the index no longer lists as the author's, once they could be a
        sizeable part of the cache."""
        with self._view_lock:
            listed = len(self._view.authored)
        with self._author_cache_lock:
            if len(self._author_cache) <= 2 * listed + 100:
                return
        with self._view_lock:
            kept = {comment_id for _created, comment_id in self._view.authored}
        with self._author_cache_lock:
            self._author_cache = {comment_id: cached for comment_id, cached
                                  in self._author_cache.items() if comment_id in kept}

    # -- authors ----------------------------------------------------------------------------

    def add_author(self, author: Author) -> Author:
        """Store a new author durably; DuplicateAuthor when the email (casefolded) or the id
        is taken. Written under the authors lock, so of two adds with one email only one
        succeeds, across threads and processes."""
        if not isinstance(author, Author):
            raise TypeError(f"add_author() takes an Author, not {type(author).__name__}")
        with self._authors_lock(), self._authors_table() as table:
            documents = table.all()
            for document in documents:
                stored = _author_of(document, self._authors_path)
                if stored.email.casefold() == author.email.casefold():
                    raise DuplicateAuthor(f"An author with the email {author.email} exists")
                if stored.id == author.id:
                    raise DuplicateAuthor(f"An author with the id {author.id} exists")
            table.insert(Document(author.to_record(), doc_id=_next_doc_id(documents)))
        return author

    def get_author(self, author_id: str) -> Author | None:
        """The author with that id, or None (reads authors.json, a small file)."""
        return next((author for author in self._read_authors() if author.id == author_id), None)

    def author_by_email(self, email: str) -> Author | None:
        """The author with that email, compared casefolded, or None."""
        wanted = email.casefold()
        return next((author for author in self._read_authors()
                     if author.email.casefold() == wanted), None)

    def list_authors(self) -> list[Author]:
        """Every author, oldest first (by created; ties in the order added)."""
        return self._read_authors()

    def update_author(self, author_id: str, change: Callable[[Author], Author]) -> Author:
        """Compare-and-set under the authors lock; see :meth:`Store.update_author`.

        ``change`` may raise to abort (nothing is written); it must not call the store. The id
        must not change (ValueError); a new email taken by another author raises
        DuplicateAuthor."""
        with self._authors_lock(), self._authors_table() as table:
            documents = table.all()
            authors = [(document.doc_id, _author_of(document, self._authors_path))
                       for document in documents]
            found = next(((doc_id, author) for doc_id, author in authors
                          if author.id == author_id), None)
            if found is None:
                raise AuthorNotFound(f"No author {author_id}")
            doc_id, old = found
            new = change(old)
            if not isinstance(new, Author):
                raise TypeError(f"change() returned {type(new).__name__}, not an Author")
            if new.id != old.id:
                raise ValueError("change() must not change an author's id")
            if any(other.id != author_id and other.email.casefold() == new.email.casefold()
                   for _doc_id, other in authors):
                raise DuplicateAuthor(f"An author with the email {new.email} exists")
            if new != old:
                table.update(new.to_record(), doc_ids=[doc_id])
        return new

    # -- counts and export ------------------------------------------------------------------

    def public_counts(self, threads: Iterable[str]) -> dict[str, int]:
        """Public comments per thread, from the index."""
        self._refresh()
        with self._view_lock:
            return {thread: self._view.public_by_thread.get(thread, 0) for thread in threads}

    def thread_version(self, thread: str) -> str:
        """A hash of the thread file's bytes, or "empty" when the thread has no file.

        Reading and hashing a thread of ~100 comments takes under 0.1 ms. os.stat would not
        do: each write renames a new inode into place and frees the old one for reuse, and
        mtime moves in clock ticks, so two quick writes of the same size could repeat it.
        """
        if not is_thread_key(thread):
            return EMPTY_THREAD_VERSION
        try:
            raw = self._thread_path(thread).read_bytes()
        except FileNotFoundError:
            return EMPTY_THREAD_VERSION
        return hashlib.blake2b(raw, digest_size=12).hexdigest()

    def all_comments(self) -> Iterator[Comment]:
        """Every comment, threads in name order, oldest first within each thread."""
        threads = sorted(
            path.stem for path in self._threads.glob("*.json") if is_thread_key(path.stem)
        )
        for thread in threads:
            yield from self._read_thread(thread)

    def import_comments(self, comments: Iterable[Comment]) -> int:
        """Add the comments whose ids are not stored yet, one write per thread."""
        by_thread: dict[str, list[Comment]] = {}
        seen: set[str] = set()
        for comment in comments:
            _check_thread_key(comment.thread)  # all checked before anything is written
            if comment.id not in seen:
                seen.add(comment.id)
                by_thread.setdefault(comment.thread, []).append(comment)
        added = 0
        for thread, candidates in sorted(by_thread.items()):
            with self._thread_lock(thread), self._thread_table(thread) as table:
                documents = table.all()
                stored_ids = {document.get("id") for document in documents}
                new = [comment for comment in candidates if comment.id not in stored_ids]
                if not new:
                    continue
                refused = self._set_index(
                    thread, {comment.id: _IndexEntry.of(comment) for comment in new}, adding=True
                )
                new = [comment for comment in new if comment.id not in refused]
                if not new:
                    continue
                next_doc_id = _next_doc_id(documents)
                try:
                    table.insert_multiple(
                        Document(comment.to_record(), doc_id=next_doc_id + number)
                        for number, comment in enumerate(new)
                    )
                except BaseException:
                    self._take_back(thread, dict.fromkeys((comment.id for comment in new), None))
                    raise
                added += len(new)
        return added

    def count_comments(self) -> int:
        """How many comments the index lists, all states."""
        self._refresh()
        with self._view_lock:
            return len(self._view.entries)

    def close(self) -> None:
        """Close the index file this process holds open (it is reopened if used again)."""
        with self._view_lock:
            self._view.close()


# ---------------------------------------------------------------------------------------------
# Checking the files (start-up and `flask … check`; docs/FAULTS.md)
# ---------------------------------------------------------------------------------------------


class StoreDamaged(StoreCorrupted):
    """Files of the store cannot be read; ``problems`` holds one "file: reason" per file."""

    def __init__(self, store_path: Path, problems: list[str]) -> None:
        super().__init__(f"The comment store {store_path} is damaged: " + "; ".join(problems))
        self.store_path, self.problems = store_path, problems


@dataclass
class StoreCheck:
    """What a check of the store's files found: the damaged files, and what was read."""

    problems: list[str] = dataclasses.field(default_factory=list)
    threads: int = 0
    comments: int = 0
    authors: int = 0
    messages: int = 0
    # Comments in thread files that the index does not list (a rebuild puts them back).
    unindexed: set[str] = dataclasses.field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (self.threads or self.authors or self.messages)


def _short_reason(error: StoreCorrupted) -> str:
    """"not valid JSON (…)" out of "The … file X cannot be read: not valid JSON (…). Hint"."""
    return str(error).partition("cannot be read: ")[2].split(". ", 1)[0] or str(error)


def check_store_files(store_path: str | os.PathLike[str], *, full: bool = False) -> StoreCheck:
    """Read every file of the store without changing anything: thread files (each comment),
    the index (each complete line), authors, mail addresses and the outbox days still open;
    with ``full`` every outbox day. Each file that cannot be read is one problem."""
    root = Path(store_path)
    check = StoreCheck()

    def read(path: Path, parse: Callable[[Path, bytes], int]) -> int:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as error:
            check.problems.append(f"{path.relative_to(root)}: cannot be read ({error.strerror})")
            return 0
        try:
            return parse(path, raw)
        except StoreCorrupted as error:
            check.problems.append(f"{path.relative_to(root)}: {_short_reason(error)}")
            return 0

    stored: set[str] = set()

    def thread(path: Path, raw: bytes) -> int:
        comments = _comments_of_bytes(path, raw)
        stored.update(comment.id for comment in comments)
        return len(comments)

    for path in sorted((root / THREADS_FOLDER).glob("*.json")):
        if is_thread_key(path.stem):
            check.threads += 1
            check.comments += read(path, thread)

    indexed: dict[str, _IndexEntry | None] = {}

    def index(path: Path, raw: bytes) -> int:
        for number, line in enumerate(raw[: raw.rfind(b"\n") + 1].splitlines(), start=1):
            if line.strip():
                try:
                    comment_id, entry = _parse_index_line(line)
                except (ValueError, KeyError, TypeError) as error:
                    raise StoreCorrupted(
                        f"The index cannot be read: line {number} is not an index record "
                        f"({error}). Move it aside"
                    ) from error
                indexed[comment_id] = entry
        return 1

    if read(root / INDEX_FILE, index):
        check.unindexed = {comment_id for comment_id in stored if indexed.get(comment_id) is None}

    def records(kind: type[_ThreadFileStorage], of: Callable[[Any, Path], Any]) -> Callable:
        def parse(path: Path, raw: bytes) -> int:
            table = kind(str(path)).parse(raw).get(kind.table_name, {})
            for doc_id, record in table.items():
                of(Document(record, doc_id=int(doc_id) if doc_id.isdigit() else 0), path)
            return len(table)
        return parse

    check.authors = read(root / AUTHORS_FILE, records(_AuthorsFileStorage, _author_of))
    read(root / ADDRESSES_FILE, records(_AddressesFileStorage, _address_of))
    outbox = root / OUTBOX_FOLDER
    days = ({path.stem for path in outbox.glob("*.json")} if full
            else {path.name for path in (outbox / OUTBOX_OPEN_FOLDER).glob("*")})
    for day in sorted(day for day in days if OUTBOX_DAY.fullmatch(day)):
        check.messages += read(outbox / f"{day}.json", records(_OutboxDayStorage, _message_of))
    return check


def open_store(store_path: str | os.PathLike[str], *, check: bool = False) -> Store:
    """The embedded store in ``store_path``, creating the folder on first use.

    With ``check`` (the service's start) every file is read first (check_store_files):
    StoreDamaged names the files that cannot be read, and comments the index lacks are
    indexed again."""
    if check:
        found = check_store_files(store_path)
        if found.problems:
            raise StoreDamaged(Path(store_path), found.problems)
        store = TinyDBStore(store_path)
        if found.unindexed:
            logger.warning("%d comments are missing from the index; rebuilding it",
                           len(found.unindexed))
            store.rebuild_index()
        return store
    return TinyDBStore(store_path)


# ---------------------------------------------------------------------------------------------
# Choosing the store (STORE_URL; docs/ARCHITECTURE.md, "Stores")
# ---------------------------------------------------------------------------------------------

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(store_url: str | None) -> bool:
    """Whether STORE_URL names a PostgreSQL database (empty means the embedded store)."""
    return bool(store_url) and str(store_url).startswith(POSTGRES_SCHEMES)


def open_configured_store(config: Mapping[str, Any], *, check: bool = False) -> Store:
    """The store the settings choose: STORE_URL empty → the TinyDB store at STORE_PATH,
    ``postgresql://…`` (or ``postgres://…``) → the PostgreSQL store. ``check`` as open_store
    (TinyDB) or the schema check (PostgreSQL, which checks its schema version in any case)."""
    from comments_service.config import (
        ConfigError,  # config imports Flask; only this function needs it
    )

    store_url = config.get("STORE_URL") or ""
    if not store_url:
        return open_store(config["STORE_PATH"], check=check)
    if is_postgres_url(store_url):
        from comments_service.store.postgres import (
            open_postgres_store,  # psycopg is loaded only when used
        )

        return open_postgres_store(store_url)
    raise ConfigError(
        "STORE_URL must be empty (the embedded store in STORE_PATH) or a PostgreSQL URL "
        f"(postgresql://user@host/database), not {store_url.split('://')[0]!r}…"
    )
