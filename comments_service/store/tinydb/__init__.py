"""The embedded store: TinyDB files in one folder, safe for several threads and processes.

<store>/threads/<thread>.json   per comment thread, a TinyDB file: its snapshot, and
<store>/threads/<thread>.log    the append-only log of its writes since; together the truth
<store>/index.jsonl             append-only index of every comment's queue fields (derived)
<store>/authors.json            the authors
<store>/mail_addresses.json     what each mail address has said about mail
<store>/outbox/                 the outbox, one file per day of creation
<store>/requests/               the request tally's log and snapshot, the author's groups
<store>/vectors/                sentence vectors of comment texts, one file per model (derived)
<store>/incoming_mail.json      messages read from the author's mailbox (replies by email)
<store>/locks/                  one flock file per thread and per other file

Each part lives in its own module, as one object :class:`TinyDBStore` is built of: threads.py
and thread_log.py (a thread's snapshot and log), index.py and index_file.py (the index),
comments.py and author_replies.py (CommentStore), authors.py, outbox.py, addresses.py,
requests.py, vectors.py, inbox.py; check.py reads every file without changing anything. Every
write is atomic (a whole line appended to a log and cut off again if torn, or a temporary file
and rename, files.py) and durable (fsync) before the method returns; every read-modify-write
holds an flock. Each module's docstring says which locks it takes and in what order.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from comments_service.models import Comment
from comments_service.store import files
from comments_service.store.base import ReaderHistory, RequestFiling
from comments_service.store.composed import ComposedStore
from comments_service.store.request_summaries import (
    FIRST_PEOPLE,
    NEWEST_MEMBERS,
    TOP_PLACES,
    RequestSummary,
)
from comments_service.store.tinydb.addresses import TinyDBAddresses
from comments_service.store.tinydb.author_replies import AuthorReplies
from comments_service.store.tinydb.authors import TinyDBAuthors
from comments_service.store.tinydb.comments import TinyDBComments
from comments_service.store.tinydb.inbox import TinyDBInbox
from comments_service.store.tinydb.index_file import CommentIndex
from comments_service.store.tinydb.outbox import TinyDBOutbox
from comments_service.store.tinydb.requests import TinyDBRequests
from comments_service.store.tinydb.storage import LOCKS_FOLDER
from comments_service.store.tinydb.threads import THREADS_FOLDER, ThreadFiles
from comments_service.store.tinydb.vectors import TinyDBVectors


class TinyDBStore(ComposedStore):
    """The embedded store: a snapshot and a log per thread, plus an append-only index.

    Safe for several threads and processes on one machine (flock); every write is atomic
    (a whole appended line, or temporary file and rename) and durable (fsync) before the
    method returns. Each method
    hands the call to the part that keeps that kind of record; the protocols in store.base
    document them.
    """

    def __init__(self, store_path: str | os.PathLike[str]) -> None:
        self.path = Path(store_path)
        locks = self.path / LOCKS_FOLDER
        self._threads = ThreadFiles(self.path / THREADS_FOLDER, locks)
        self._index = CommentIndex(self.path, self._threads)
        self._comments = TinyDBComments(self._threads, self._index)
        self._author_replies = AuthorReplies(self._threads, self._index)
        self._authors = TinyDBAuthors(self.path, locks)
        self._outbox = TinyDBOutbox(self.path, locks)
        self._addresses = TinyDBAddresses(self.path, locks)
        self._requests = TinyDBRequests(self.path, locks, self._threads, self._index)
        self._vectors = TinyDBVectors(self.path, locks)
        self._inbox = TinyDBInbox(self.path, locks)
        for folder in (self.path, self._threads.folder, locks):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                # A folder made just now must survive a power cut with the files put in it.
                files.fsync_folder(folder.parent)
        # Every folder of the store: outbox days, dedupe keys and the tally write files too.
        files.remove_stale_temp_files(
            [self.path, *(entry for entry in self.path.rglob("*") if entry.is_dir())])
        self._index.refresh()

    def rebuild_index(self) -> int:
        """Rebuild index.jsonl from the thread files (e.g. after restoring thread files from a
        backup); returns the number of comments indexed."""
        return self._index.rebuild()

    def close(self) -> None:
        """Close the index file this process holds open (it is reopened if used again)."""
        self._index.close()

    # -- what only this backend has ---------------------------------------------------------

    def author_replies(self, limit: int | None = None) -> list[Comment]:
        return self._author_replies.newest(limit)

    def grouped_comments(self) -> Iterator[Comment]:
        return self._comments.grouped_comments()

    def author_replies_to(self, comment_ids: Iterable[str]) -> dict[str, list[Comment]]:
        """Found in the index, taken from the author's replies this process keeps."""
        replies: dict[str, list[Comment]] = {}
        for answer in self._author_replies.these(self._comments.replies_to(comment_ids)):
            replies.setdefault(answer.parent or "", []).append(answer)
        return replies

    def request_filings(self, requests: Iterable[str] | None = None) -> list[RequestFiling]:
        return self._comments.request_filings(requests)

    def request_summaries(
        self, merged: Mapping[str, str] | None = None, *, newest: int = NEWEST_MEMBERS,
        firsts: int = FIRST_PEOPLE, places: int = TOP_PLACES,
    ) -> dict[str, RequestSummary]:
        return self._comments.request_summaries(merged, newest=newest, firsts=firsts,
                                                places=places)

    def requests_version(self) -> Hashable:
        return self._comments.requests_version()

    def learned_filings(self, newest: int, step: int = 1) -> list[RequestFiling]:
        return self._comments.learned_filings(newest, step)

    def reader_history(self, reader_key: str, *, limit: int = 5) -> ReaderHistory:
        """The reader's newest comments read from their threads; the author's replies to all
        of the reader's comments found in the index and taken from the author's replies this
        process keeps (author_replies.py), so an older reply costs no thread read."""
        history = self._comments.reader_history(reader_key, limit=limit)
        replies: dict[str, list[Comment]] = {}
        for answer in self._author_replies.these(self._comments.replies_to_reader(reader_key)):
            replies.setdefault(answer.parent or "", []).append(answer)
        return replace(history, replies=replies)
