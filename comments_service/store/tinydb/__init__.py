"""The embedded store: TinyDB files in one folder, safe for several threads and processes.

<store>/threads/<thread>.json   one TinyDB file per comment thread: the source of truth
<store>/index.jsonl             append-only index of every comment's queue fields (derived)
<store>/authors.json            the authors
<store>/mail_addresses.json     what each mail address has said about mail
<store>/outbox/                 the outbox, one file per day of creation
<store>/requests/               the request tally's log and snapshot, the author's groups
<store>/locks/                  one flock file per thread and per other file

Each part lives in its own module, as one object :class:`TinyDBStore` is built of: threads.py
(thread files), index.py and index_file.py (the index), comments.py and author_replies.py
(CommentStore), authors.py, outbox.py, addresses.py, requests.py; check.py reads every file
without changing anything. Every write is atomic (temporary file and rename, files.py) and
durable (fsync) before the method returns; every read-modify-write holds an flock. Each
module's docstring says which locks it takes and in what order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from comments_service.models import (
    Author,
    Comment,
    CommentState,
    MailAddress,
    OutboxMessage,
    OutboxStatus,
    RequestGroup,
)
from comments_service.store import files
from comments_service.store.base import RequestTally, Store
from comments_service.store.tinydb.addresses import TinyDBAddresses
from comments_service.store.tinydb.author_replies import AuthorReplies
from comments_service.store.tinydb.authors import TinyDBAuthors
from comments_service.store.tinydb.comments import TinyDBComments
from comments_service.store.tinydb.index_file import CommentIndex
from comments_service.store.tinydb.outbox import TinyDBOutbox
from comments_service.store.tinydb.requests import TinyDBRequests
from comments_service.store.tinydb.storage import LOCKS_FOLDER
from comments_service.store.tinydb.threads import THREADS_FOLDER, ThreadFiles


class TinyDBStore(Store):
    """The embedded store: one TinyDB file per thread, plus an append-only index.

    Safe for several threads and processes on one machine (flock); every write is atomic
    (temporary file and rename) and durable (fsync) before the method returns. Each method
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
        for folder in (self.path, self._threads.folder, locks):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                # A folder made just now must survive a power cut with the files put in it.
                files.fsync_folder(folder.parent)
        files.remove_stale_temp_files([self.path, self._threads.folder])
        self._index.refresh()

    def rebuild_index(self) -> int:
        """Rebuild index.jsonl from the thread files (e.g. after restoring thread files from a
        backup); returns the number of comments indexed."""
        return self._index.rebuild()

    def close(self) -> None:
        """Close the index file this process holds open (it is reopened if used again)."""
        self._index.close()

    # -- CommentStore -------------------------------------------------------------------------

    def add_comment(self, comment: Comment) -> Comment:
        return self._comments.add_comment(comment)

    def get_comment(self, comment_id: str) -> Comment | None:
        return self._comments.get_comment(comment_id)

    def thread_comments(self, thread: str) -> list[Comment]:
        return self._comments.thread_comments(thread)

    def update_comment(self, comment_id: str, change: Callable[[Comment], Comment]) -> Comment:
        return self._comments.update_comment(comment_id, change)

    def waiting_comments(
        self, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        return self._comments.waiting_comments(thread=thread, question=question, limit=limit,
                                               offset=offset)

    def count_waiting(self, *, thread: str | None = None, question: str | None = None) -> int:
        return self._comments.count_waiting(thread=thread, question=question)

    def public_counts(self, threads: Iterable[str]) -> dict[str, int]:
        return self._comments.public_counts(threads)

    def thread_version(self, thread: str) -> str:
        return self._comments.thread_version(thread)

    def all_comments(self) -> Iterator[Comment]:
        return self._comments.all_comments()

    def import_comments(self, comments: Iterable[Comment]) -> int:
        return self._comments.import_comments(comments)

    def count_comments(self) -> int:
        return self._comments.count_comments()

    def comments_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> list[Comment]:
        return self._comments.comments_in_state(state, thread=thread, question=question,
                                                limit=limit, offset=offset)

    def count_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None
    ) -> int:
        return self._comments.count_in_state(state, thread=thread, question=question)

    def state_counts(self) -> dict[CommentState, int]:
        return self._comments.state_counts()

    def find_comments(
        self, *, text: str | None = None, state: CommentState | None = None,
        thread: str | None = None, limit: int = 50, offset: int = 0,
    ) -> tuple[list[Comment], int]:
        return self._comments.find_comments(text=text, state=state, thread=thread, limit=limit,
                                            offset=offset)

    def author_replies(self, limit: int | None = None) -> list[Comment]:
        return self._author_replies.newest(limit)

    # -- AuthorStore --------------------------------------------------------------------------

    def add_author(self, author: Author) -> Author:
        return self._authors.add_author(author)

    def get_author(self, author_id: str) -> Author | None:
        return self._authors.get_author(author_id)

    def author_by_email(self, email: str) -> Author | None:
        return self._authors.author_by_email(email)

    def list_authors(self) -> list[Author]:
        return self._authors.list_authors()

    def update_author(self, author_id: str, change: Callable[[Author], Author]) -> Author:
        return self._authors.update_author(author_id, change)

    # -- OutboxStore --------------------------------------------------------------------------

    def add_message(self, message: OutboxMessage) -> OutboxMessage:
        return self._outbox.add_message(message)

    def get_message(self, message_id: str) -> OutboxMessage | None:
        return self._outbox.get_message(message_id)

    def update_message(
        self, message_id: str, change: Callable[[OutboxMessage], OutboxMessage]
    ) -> OutboxMessage:
        return self._outbox.update_message(message_id, change)

    def claim_messages(
        self, claimer: str, now: str, lease_until: str, limit: int
    ) -> list[OutboxMessage]:
        return self._outbox.claim_messages(claimer, now, lease_until, limit)

    def list_messages(
        self, statuses: Iterable[OutboxStatus] | None = None, *, limit: int = 50,
        offset: int = 0,
    ) -> list[OutboxMessage]:
        return self._outbox.list_messages(statuses, limit=limit, offset=offset)

    def messages_to(
        self, address: str, *, since: str | None = None, open_only: bool = False
    ) -> list[OutboxMessage]:
        return self._outbox.messages_to(address, since=since, open_only=open_only)

    # -- AddressStore -------------------------------------------------------------------------

    def get_mail_address(self, address: str) -> MailAddress | None:
        return self._addresses.get_mail_address(address)

    def update_mail_address(
        self, address: str, change: Callable[[MailAddress], MailAddress]
    ) -> MailAddress:
        return self._addresses.update_mail_address(address, change)

    def all_mail_addresses(self) -> list[MailAddress]:
        return self._addresses.all_mail_addresses()

    # -- RequestStore (grouped_comments: Store's default, from all_comments) -------------------

    def request_tally(
        self, *, timeout: float | None = None
    ) -> AbstractContextManager[RequestTally | None]:
        return self._requests.request_tally(timeout=timeout)

    def request_groups(self) -> dict[str, RequestGroup]:
        return self._requests.request_groups()

    def update_request_group(
        self, group_id: str, change: Callable[[RequestGroup], RequestGroup]
    ) -> RequestGroup:
        return self._requests.update_request_group(group_id, change)

    def replace_request_groups(self, groups: Iterable[RequestGroup]) -> None:
        self._requests.replace_request_groups(groups)

    def set_comment_requests(self, requests: Mapping[str, str | None]) -> int:
        return self._requests.set_comment_requests(requests)
