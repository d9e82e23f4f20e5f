"""The thread files of the TinyDB store: per thread a snapshot and an append-only log beside it.

<store>/threads/<thread>.json   the snapshot: a TinyDB file (table "comments"), the comments as
                                of the last compaction; absent for a thread never compacted
<store>/threads/<thread>.log    the comments written since, one line each (thread_log.py)
<store>/locks/<thread>.lock     flock held across every write of that thread

Together they are the source of truth. A write appends one line per comment (its whole
record) to the log and fsyncs it: the commit point, whatever the size of the thread. Once the
log outgrows the snapshot (and COMPACT_MIN_BYTES), the writer compacts the thread under its
lock: a new snapshot replaces the old by rename, then a new log (just a header naming that
snapshot) replaces the old. A thread file of the store before logs existed is read as a
snapshot without a token, and its first write starts a log beside it.

Readers take no lock. Each file is only ever appended to or replaced whole by a rename, and a
reader opens the snapshot before the log; if the log does not name the snapshot read, a
compaction ran in between, and the reader reads again under the thread lock, where a mismatch
can only be a compaction cut short after its snapshot (the old log's records are in it
already, and replaying them changes nothing). Each process keeps the parsed comments of
recently read threads and reads only the log lines appended since, so reading a thread after
a write costs that write's lines, not the thread.

Why beside TinyDB's Storage seam rather than on it: TinyDB's Table reads the whole database
and writes the whole database back on every insert or update (Storage.read / Storage.write
take and give everything), so a storage under it could only append by diffing the whole
thread on each write, which is the cost being removed. The snapshot keeps TinyDB's file format.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comments_service.models import Comment
from comments_service.store import files
from comments_service.store.base import EMPTY_THREAD_VERSION, is_thread_key
from comments_service.store.errors import StoreCorrupted, StoreError
from comments_service.store.tinydb.storage import RESTORE_HINT
from comments_service.store.tinydb.thread_log import (
    LOG_SUFFIX,
    PREFIX_BYTES,
    SNAPSHOT_SUFFIX,
    LogHeader,
    header_line,
    new_token,
    parse_header,
    parse_records,
    parse_snapshot,
    put_lines,
    snapshot_bytes,
    snapshot_token,
)

logger = logging.getLogger(__name__)

THREADS_FOLDER = "threads"
# A thread is compacted once its log is larger than its snapshot and than this: the rewrite
# then costs about as much again as the appends since the last one, so a write's share of it
# stays constant whatever the thread's size, and small threads are rarely rewritten.
COMPACT_MIN_BYTES = 256 * 1024
# Threads whose parsed comments each process keeps, and at most this many comments in all
# (the least recently read threads are dropped first; the last one read is always kept).
CACHED_THREADS = 64
CACHED_COMMENTS = 20_000


def corrupted_thread(path: Path, problem: str) -> StoreCorrupted:
    """The error for a thread file (snapshot or log) that cannot be read."""
    return StoreCorrupted(
        f"The comment thread file {path} cannot be read: {problem}. {RESTORE_HINT}"
    )


def comment_of(record: dict[str, Any], path: Path, where: str) -> Comment:
    """The comment a record of ``path`` holds (StoreCorrupted if none)."""
    try:
        return Comment.from_record(record)
    except (KeyError, TypeError, ValueError) as error:
        raise corrupted_thread(path, f"{where} is not a comment ({error!r})") from error


def read_at(fd: int, start: int, end: int) -> bytes:
    """The bytes of ``fd`` from ``start`` to ``end`` (fewer if the file is shorter)."""
    parts: list[bytes] = []
    while start < end:
        chunk = os.pread(fd, end - start, start)
        if not chunk:
            break
        parts.append(chunk)
        start += len(chunk)
    return b"".join(parts)


def open_or_none(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class FileId:
    """Which version of a snapshot file this is: replaced files differ in one of these."""

    inode: int
    size: int
    mtime_ns: int
    token: str | None

    @classmethod
    def of(cls, fd: int) -> FileId:
        stat = os.fstat(fd)
        return cls(stat.st_ino, stat.st_size, stat.st_mtime_ns,
                   snapshot_token(os.pread(fd, PREFIX_BYTES, 0)))


class ThreadState:
    """One thread as read: its comments, and which files at which length they came from.

    Never changed once built (a write makes a new one), so threads of a process share it.
    """

    def __init__(self, snapshot: FileId | None, header: LogHeader | None, end: int,
                 last_line: bytes, comments: dict[str, tuple[int, Comment]], next_seq: int):
        self.snapshot, self.header = snapshot, header
        self.end, self.last_line = end, last_line  # the log's good length and last line
        self.comments = comments  # id → (order written, comment)
        self.next_seq = next_seq
        self._ordered: list[Comment] | None = None
        self._lock = threading.Lock()

    @property
    def snapshot_token(self) -> str | None:
        return None if self.snapshot is None else self.snapshot.token

    @property
    def consistent(self) -> bool:
        """Whether the log extends the snapshot read (no log: nothing to extend)."""
        return self.header is None or self.header.follows == self.snapshot_token

    def ordered(self) -> list[Comment]:
        """The comments oldest first (ties: in the order first written)."""
        with self._lock:
            if self._ordered is None:
                self._ordered = [comment for _seq, comment in sorted(
                    self.comments.values(), key=lambda item: (item[1].created, item[0]))]
            return self._ordered

    def extended(self, comments: Iterable[Comment], end: int, last_line: bytes) -> ThreadState:
        """This state with ``comments`` put after it, the log now ``end`` bytes long and
        ending with ``last_line`` (b"": the same last line as before)."""
        merged, next_seq = dict(self.comments), self.next_seq
        for comment in comments:
            known = merged.get(comment.id)
            if known is None:
                merged[comment.id] = (next_seq, comment)
                next_seq += 1
            else:
                merged[comment.id] = (known[0], comment)
        return ThreadState(self.snapshot, self.header, end, last_line or self.last_line,
                           merged, next_seq)


def state_of(snapshot_path: Path, snapshot: FileId | None, snapshot_raw: bytes | None,
             log_path: Path, header: LogHeader | None, log_start: int,
             log_raw: bytes) -> ThreadState:
    """A thread's state from its snapshot's bytes and its log's bytes after the header."""
    comments: dict[str, tuple[int, Comment]] = {}
    next_seq = 1
    if snapshot_raw is not None:
        for doc_id, record in sorted(parse_snapshot(snapshot_path, snapshot_raw,
                                                    corrupted_thread)):
            comment = comment_of(record, snapshot_path, f"document {doc_id}")
            comments[comment.id] = (doc_id, comment)
            next_seq = max(next_seq, doc_id + 1)
    state = ThreadState(snapshot, header, log_start, b"", comments, next_seq)
    if header is None:
        return state
    tail = parse_records(log_path, log_raw, log_start, corrupted_thread)
    return state.extended(
        [comment_of(record, log_path, "a log line") for record in tail.records],
        tail.end, tail.last_line,
    )


def read_header(fd: int, path: Path) -> tuple[LogHeader, int]:
    """A log's header and where its first record starts (StoreCorrupted if it has none: a log
    is created whole, header included, by a rename)."""
    first = read_at(fd, 0, 4096)
    newline = first.find(b"\n")
    header = parse_header(first[:newline]) if newline >= 0 else None
    if header is None:
        raise corrupted_thread(path, "its first line is not a log header")
    return header, newline + 1


def comments_of_files(snapshot_path: Path, snapshot_raw: bytes | None, log_path: Path,
                      log_raw: bytes | None) -> list[Comment]:
    """The comments of a thread's files' bytes (None: no such file), oldest first."""
    snapshot = None if snapshot_raw is None else FileId(0, 0, 0, snapshot_token(snapshot_raw))
    header, start = None, 0
    if log_raw is not None:
        newline = log_raw.find(b"\n")
        header = parse_header(log_raw[:newline]) if newline >= 0 else None
        if header is None:
            raise corrupted_thread(log_path, "its first line is not a log header")
        start = newline + 1
    return state_of(snapshot_path, snapshot, snapshot_raw, log_path, header, start,
                    b"" if log_raw is None else log_raw[start:]).ordered()


class ThreadFiles:
    """The threads/ folder of one store: paths, locks, reading and writing a thread."""

    def __init__(self, folder: Path, locks: Path) -> None:
        self.folder, self.locks = folder, locks
        self._cache: OrderedDict[str, ThreadState] = OrderedDict()
        self._cached_comments = 0
        self._cache_lock = threading.Lock()

    def path(self, thread: str) -> Path:
        """The thread's snapshot file."""
        return self.folder / f"{thread}{SNAPSHOT_SUFFIX}"

    def log_path(self, thread: str) -> Path:
        return self.folder / f"{thread}{LOG_SUFFIX}"

    def lock(self, thread: str, *, wait: bool = True) -> AbstractContextManager[bool]:
        """The thread's write lock (see files.exclusive_lock)."""
        return files.exclusive_lock(self.locks / f"{thread}.lock", wait=wait)

    def names(self) -> list[str]:
        """The threads that have a file, in name order."""
        return sorted({path.stem for pattern in (f"*{SNAPSHOT_SUFFIX}", f"*{LOG_SUFFIX}")
                       for path in self.folder.glob(pattern) if is_thread_key(path.stem)})

    # -- reading ---------------------------------------------------------------------------

    def read(self, thread: str) -> list[Comment]:
        """The thread's comments, oldest first (none for an invalid key or no files)."""
        if not is_thread_key(thread):
            return []
        # A copy: the ordered list is shared by every reader of this process's cached state.
        return list(self.state(thread).ordered())

    def state(self, thread: str, *, locked: bool = False) -> ThreadState:
        """The thread as its files are now. ``locked``: the caller holds the thread lock (or
        must not wait for it), so a log that does not name the snapshot is read as left by a
        compaction cut short, without taking the lock to read again."""
        with self._opened(thread) as (snapshot_fd, log_fd):
            state = self._state_of(thread, snapshot_fd, log_fd)
        if not state.consistent and not locked:
            # A compaction replaced the log after we opened the snapshot: read again where
            # none can be in flight.
            with self.lock(thread):
                return self.state(thread, locked=True)
        self._remember(thread, state)
        return state

    @contextmanager
    def _opened(self, thread: str) -> Iterator[tuple[int | None, int | None]]:
        """The thread's snapshot and log, open for reading (None: no such file), snapshot
        first; both closed after the block."""
        snapshot_fd = open_or_none(self.path(thread))
        try:
            log_fd = open_or_none(self.log_path(thread))
            try:
                yield snapshot_fd, log_fd
            finally:
                if log_fd is not None:
                    os.close(log_fd)
        finally:
            if snapshot_fd is not None:
                os.close(snapshot_fd)

    def _state_of(self, thread: str, snapshot_fd: int | None, log_fd: int | None) -> ThreadState:
        snapshot = None if snapshot_fd is None else FileId.of(snapshot_fd)
        header, start, size = None, 0, 0
        if log_fd is not None:
            size = os.fstat(log_fd).st_size
            header, start = read_header(log_fd, self.log_path(thread))
        with self._cache_lock:
            cached = self._cache.get(thread)
        if (cached is not None and header is not None and cached.snapshot == snapshot
                and cached.header == header and size >= cached.end):
            # Only what was appended since, if the line read last is still where it was (a
            # failed append may have been taken back and written over).
            chunk = read_at(log_fd, cached.end - len(cached.last_line), size)  # type: ignore[arg-type]
            if chunk.startswith(cached.last_line):
                if len(chunk) == len(cached.last_line):
                    return cached
                tail = parse_records(self.log_path(thread), chunk[len(cached.last_line):],
                                     cached.end, corrupted_thread)
                return cached.extended(
                    [comment_of(record, self.log_path(thread), "a log line")
                     for record in tail.records], tail.end, tail.last_line)
        snapshot_raw = None if snapshot_fd is None else read_at(snapshot_fd, 0, snapshot.size)  # type: ignore[union-attr]
        log_raw = b"" if log_fd is None else read_at(log_fd, start, size)
        return state_of(self.path(thread), snapshot, snapshot_raw, self.log_path(thread),
                        header, start, log_raw)

    def _remember(self, thread: str, state: ThreadState) -> None:
        with self._cache_lock:
            old = self._cache.pop(thread, None)
            self._cached_comments += len(state.comments) - (0 if old is None else
                                                            len(old.comments))
            self._cache[thread] = state
            while len(self._cache) > 1 and (len(self._cache) > CACHED_THREADS
                                            or self._cached_comments > CACHED_COMMENTS):
                _name, dropped = self._cache.popitem(last=False)
                self._cached_comments -= len(dropped.comments)

    def forget(self) -> None:
        """Drop this process's parsed threads (they are read again when next asked for)."""
        with self._cache_lock:
            self._cache.clear()
            self._cached_comments = 0

    def version(self, thread: str) -> str:
        """A token that changes with every write of the thread (EMPTY_THREAD_VERSION when it
        has no files), from the snapshot's identity and the log's header and last line.

        Costs a stat and two small reads whatever the thread's size. A thread file from before
        logs existed and never written since is hashed whole, as the store did then. A log
        line taken back after a failed append and written over has other bytes, and a
        compaction writes new tokens, so no two states of a thread share a version."""
        if not is_thread_key(thread):
            return EMPTY_THREAD_VERSION
        digest = hashlib.blake2b(digest_size=12)
        with self._opened(thread) as (snapshot_fd, log_fd):
            if snapshot_fd is None and log_fd is None:
                return EMPTY_THREAD_VERSION
            if log_fd is None:
                assert snapshot_fd is not None
                digest.update(read_at(snapshot_fd, 0, os.fstat(snapshot_fd).st_size))
                return digest.hexdigest()
            if snapshot_fd is not None:
                digest.update(repr(FileId.of(snapshot_fd)).encode())
            digest.update(self._log_ends(log_fd))
            return digest.hexdigest()

    @staticmethod
    def _log_ends(fd: int) -> bytes:
        """A log's first line, its length up to the last newline, and its last line."""
        size = os.fstat(fd).st_size
        first = read_at(fd, 0, min(size, 4096))
        first = first[: first.find(b"\n") + 1]
        end, tail = size, b""
        while end > 0:  # bytes after the last newline are not a line yet
            start = max(0, end - 4096)
            tail = read_at(fd, start, end) + tail
            stop = tail.rfind(b"\n")
            if stop >= 0:
                begin = tail.rfind(b"\n", 0, stop)
                if begin >= 0 or start == 0:
                    return b"%s%d|%s" % (first, start + stop + 1, tail[begin + 1: stop + 1])
            end = start
        return first

    # -- writing (the caller holds the thread lock) ------------------------------------------

    def write(self, thread: str, comments: list[Comment],
              state: ThreadState | None = None) -> ThreadState:
        """Store ``comments`` (new ones, or new versions of stored ones) in the thread: one
        append and one fsync; the thread is compacted when its log has grown past the rule.
        ``state`` is the thread as read under the same hold of the lock, if the caller has it.
        StoreUnavailable when the disk cannot take it; nothing is written then."""
        if state is None:
            state = self.state(thread, locked=True)
        if not comments:
            return state
        lines = put_lines([comment.to_record() for comment in comments])
        log_path = self.log_path(thread)
        if state.header is None:
            # A new thread, or a thread file from before logs: start its log, header and
            # lines in one file made whole before it is renamed into place.
            header = LogHeader(new_token(), state.snapshot_token)
            first = header_line(header.token, header.follows)
            files.atomic_write(log_path, first + lines)
            new = ThreadState(state.snapshot, header, len(first), b"", state.comments,
                              state.next_seq).extended(comments, len(first) + len(lines),
                                                       lines[lines.rfind(b"\n", 0, -1) + 1:])
        elif not state.consistent:
            # A compaction cut short after its snapshot: finish it with these comments in.
            new = self.compact(thread, state.extended(comments, state.end, state.last_line))
            self._remember(thread, new)
            return new
        else:
            self._append(log_path, state.end, lines)
            new = state.extended(comments, state.end + len(lines),
                                 lines[lines.rfind(b"\n", 0, -1) + 1:])
        if new.end > max(COMPACT_MIN_BYTES,
                         0 if new.snapshot is None else new.snapshot.size):
            try:
                new = self.compact(thread, new)
            except (StoreError, OSError) as error:
                # The comments are stored (the log line is the commit point); the next write
                # past the threshold tries again.
                logger.warning("Could not compact %s: %s", self.path(thread), error)
        self._remember(thread, new)
        return new

    @staticmethod
    def _append(path: Path, end: int, lines: bytes) -> None:
        """Append ``lines`` to the log at ``end`` (its good length; anything after is a line a
        crash cut short, removed first) and fsync; on failure take the append back."""
        with files.full_disk_as_unavailable(path):
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            try:
                size = os.fstat(fd).st_size
                if size != end:
                    logger.warning("Removing %d bytes of an incomplete last line from %s",
                                   size - end, path)
                    os.ftruncate(fd, end)
                files.append_durably(fd, lines, end)
            finally:
                os.close(fd)

    def compact(self, thread: str, state: ThreadState) -> ThreadState:
        """Write the thread's comments as a new snapshot, then start an empty log after it
        (the caller holds the thread lock). A crash between the two renames leaves the new
        snapshot with the old log, whose records it holds already (see the module doc)."""
        token = new_token()
        ordered = [comment for _seq, comment in sorted(state.comments.values(),
                                                       key=lambda item: item[0])]
        snapshot_path = self.path(thread)
        files.atomic_write(snapshot_path,
                           snapshot_bytes(token, [comment.to_record() for comment in ordered]))
        header = LogHeader(new_token(), token)
        first = header_line(header.token, header.follows)
        files.atomic_write(self.log_path(thread), first)
        fd = os.open(snapshot_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            snapshot = FileId.of(fd)
        finally:
            os.close(fd)
        logger.info("Compacted %s: %d comments", snapshot_path, len(ordered))
        return ThreadState(snapshot, header, len(first), b"",
                           {comment.id: (number, comment)
                            for number, comment in enumerate(ordered, start=1)},
                           len(ordered) + 1)
