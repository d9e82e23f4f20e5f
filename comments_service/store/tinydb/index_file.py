"""Keeping index.jsonl in step with the thread files: appends, compaction, rebuilds, settling.

<store>/index.jsonl          the index (line format and in-memory view: index.py)
<store>/locks/_index.lock    flock held while appending to or rewriting the index

The thread's log line (threads.py) is the commit point of every write; the index is derived
from the thread files and may disagree with them only after a crash between the two writes
(or while a write is in flight). A reader that meets a disagreement settles it
(:meth:`CommentIndex.settle`); an index that is missing is rebuilt from the thread files.

Locks are always taken in the order thread → index → this process's view lock, so two
writers can never wait on each other in a circle.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from comments_service.models import Comment
from comments_service.store import files
from comments_service.store.errors import StoreError, StoreUnavailable
from comments_service.store.tinydb.index import IndexEntry, IndexView, index_line
from comments_service.store.tinydb.threads import ThreadFiles

logger = logging.getLogger(__name__)

INDEX_FILE = "index.jsonl"
# "_" cannot start a thread key, so no thread's lock file can ever be the index lock.
INDEX_LOCK = "_index.lock"
# The index is rewritten once it holds this many lines more than twice its live entries.
COMPACT_SLACK_LINES = 1000


class CommentIndex:
    """index.jsonl of one store and this process's view of it (guarded by ``view_lock``)."""

    def __init__(self, store_path: Path, threads: ThreadFiles) -> None:
        self.store_path = store_path
        self.path = store_path / INDEX_FILE
        self.threads = threads
        self.view = IndexView(self.path)
        self.view_lock = threading.Lock()

    @contextmanager
    def viewing(self) -> Iterator[IndexView]:
        """Hold the view lock and yield the current view (a rebuild replaces the view)."""
        with self.view_lock:
            yield self.view

    def lock(self) -> AbstractContextManager[bool]:
        """The index file's write lock."""
        return files.exclusive_lock(self.threads.locks / INDEX_LOCK)

    def close(self) -> None:
        """Close the index file this process holds open (it is reopened if used again)."""
        with self.view_lock:
            self.view.close()

    def refresh(self) -> None:
        """Bring this process's view of the index up to date (no lock needed to read it)."""
        with self.view_lock:
            if self.view.refresh():
                return
        with self.lock(), self.view_lock:
            self._refresh_holding_lock()

    def _refresh_holding_lock(self) -> None:
        if not self.view.refresh():
            # A new store, or an index someone moved aside: derive it from the thread files.
            self._rebuild_holding_lock()

    def entry(self, comment_id: str) -> IndexEntry | None:
        """The comment's latest entry, after a refresh (None: the index does not list it)."""
        self.refresh()
        with self.view_lock:
            return self.view.entries.get(comment_id)

    def threads_of(self, comment_ids: Iterable[str]) -> dict[str, set[str]]:
        """The listed ones of ``comment_ids``, by the thread the index files them under."""
        self.refresh()
        by_thread: dict[str, set[str]] = {}
        with self.view_lock:
            for comment_id in comment_ids:
                entry = self.view.entries.get(comment_id)
                if entry is not None:
                    by_thread.setdefault(entry.thread, set()).add(comment_id)
        return by_thread

    def set_entries(
        self, thread: str, wanted: dict[str, IndexEntry | None], *, adding: bool = False
    ) -> set[str]:
        """Make the index say ``wanted`` for these ids of ``thread``; the caller holds the
        thread lock. Appends one line per id whose indexed state differs, then fsyncs.

        With ``adding``, ids the index files under another thread are refused and returned
        (ids are unique store-wide; checking under the index lock makes that race-free).
        """
        with self.lock(), self.view_lock:
            self._refresh_holding_lock()
            entries = self.view.entries
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
                self.append(b"".join(
                    index_line(comment_id, thread, entry) for comment_id, entry in changes
                ))
                self.view.refresh()
                if self.view.lines > 2 * len(self.view.entries) + COMPACT_SLACK_LINES:
                    self._compact_holding_lock()
            return refused

    def take_back(self, thread: str, wanted: dict[str, IndexEntry | None]) -> None:
        """After a failed thread write, put the index back to what the file says (best effort:
        if this fails too, readers settle it when they meet the stale line)."""
        try:
            self.set_entries(thread, wanted)
        except (StoreError, OSError) as error:
            logger.warning("Could not take back the index line: %s", error)

    def append(self, payload: bytes) -> None:
        """Append whole lines to index.jsonl and fsync; the caller holds the index lock."""
        with files.full_disk_as_unavailable(self.path):
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                size = self._cut_partial_line(fd)
                files.append_durably(fd, payload, size)
            finally:
                os.close(fd)
            if size == 0:
                files.fsync_folder(self.store_path)  # the file may be new: make its name durable

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
                       size - end, self.path)
        os.ftruncate(fd, end)
        return end

    def _write_file(self, entries: dict[str, IndexEntry]) -> None:
        """Replace index.jsonl by one line per entry, oldest first. Other processes notice the
        new inode and reload it whole."""
        payload = b"".join(
            index_line(comment_id, entry.thread, entry)
            for comment_id, entry in sorted(entries.items(), key=lambda item: item[1].created)
        )
        files.atomic_write(self.path, payload)

    def _compact_holding_lock(self) -> None:
        """Rewrite the index with only the latest line per comment."""
        self._write_file(self.view.entries)
        # Under the index lock the file at the path is the one just written: adopt it as read.
        self.view.adopt(os.open(self.path, os.O_RDONLY | os.O_CLOEXEC))
        logger.info("Compacted %s to %d lines", self.path, len(self.view.entries))

    def _rebuild_holding_lock(self) -> None:
        """Derive the index from the thread files, keeping what they cannot settle yet.

        A thread whose lock is free has no write in flight, so its file is the whole truth
        for it. A thread being written right now keeps its index entries (its writer will
        append what follows) and gains any comment the index lacks.
        """
        known: dict[str, dict[str, IndexEntry]] = {}
        for comment_id, entry in self.view.entries.items():
            known.setdefault(entry.thread, {})[comment_id] = entry
        threads = set(self.threads.names())
        rebuilt: dict[str, IndexEntry] = {}
        for thread in sorted(threads | known.keys()):
            with self.threads.lock(thread, wait=False) as settled:
                # locked=True: never wait for the thread lock here, holding the index lock
                # (the lock order is thread → index). Unsettled, a read racing a compaction
                # could miss lines; the index's own entries for the thread stand in for them.
                truth = {comment.id: IndexEntry.of(comment)
                         for comment in self.threads.state(thread, locked=True).ordered()}
            if not settled:
                truth = {**truth, **known.get(thread, {})}
            for comment_id in truth.keys() & rebuilt.keys():
                logger.warning("Comment %s is stored in two threads; indexing the one in %s",
                               comment_id, thread)
            rebuilt.update(truth)
        self._write_file(rebuilt)
        self.view.close()
        self.view = IndexView(self.path)
        self.view.refresh()
        logger.info("Rebuilt %s from %d thread files: %d comments",
                    self.path, len(threads), len(rebuilt))

    def refresh_with_every_field(self) -> None:
        """:meth:`refresh`, then rebuild (once) when the view holds lines written before a
        field was added (the author's digest, the reader, the reply's parent, the request, the
        listening figures' fields): what is looked up by those fields would be missing from
        them."""
        self.refresh()
        with self.viewing() as view:
            unknown = max(view.unknown_authors, view.unknown_readers, view.unknown_requests,
                          view.unknown_words)
        if unknown:
            logger.info("Rebuilding %s: %d lines predate a field of the index", self.path,
                        unknown)
            self.rebuild()

    def rebuild(self) -> int:
        """Rebuild index.jsonl from the thread files; returns the number of comments indexed."""
        with self.lock(), self.view_lock:
            self._refresh_holding_lock()
            self._rebuild_holding_lock()
            return len(self.view.entries)

    def settle(self, thread: str, comment_ids: Iterable[str]) -> dict[str, Comment | None]:
        """Make the index agree with the thread file for these ids, and return their truth.

        Called when a reader finds the two disagreeing: a crash between the two writes of an
        add or update, or a write still in flight. Under the thread lock no write of the
        thread is in flight, so the file then is the settled truth.
        """
        with self.threads.lock(thread):
            stored = {comment.id: comment
                      for comment in self.threads.state(thread, locked=True).ordered()}
            truth = {comment_id: stored.get(comment_id) for comment_id in comment_ids}
            wanted = {comment_id: None if comment is None else IndexEntry.of(comment)
                      for comment_id, comment in truth.items()}
            try:
                self.set_entries(thread, wanted)
            except StoreUnavailable as error:
                # A read must not fail for this; the next reader settles it again.
                logger.warning("Could not correct the index: %s", error)
        return truth
