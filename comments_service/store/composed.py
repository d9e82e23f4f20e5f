"""A store built of parts: one object per kind of record, each call handed to its part.

Both backends are built this way (tinydb/__init__.py, postgres/__init__.py): the parts differ,
the way calls reach them does not, so the forwarding is written once, here. A backend sets
``_comments``, ``_authors``, ``_outbox``, ``_addresses``, ``_requests``, ``_vectors`` and
``_inbox`` and adds what only it has (``author_replies``, ``close`` …); the protocols in
store.base document every method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import date
from typing import Any

from comments_service.metrics_inputs import ListeningInputs
from comments_service.models import (
    Author,
    Comment,
    CommentState,
    IncomingMail,
    IncomingStatus,
    MailAddress,
    OutboxMessage,
    OutboxStatus,
    RequestGroup,
)
from comments_service.store.base import ReaderHistory, RequestTally, Store


class ComposedStore(Store):
    """Hands each protocol method to the part that keeps that kind of record."""

    # The parts: objects with the methods of their protocol (minus what a backend adds).
    _comments: Any
    _authors: Any
    _outbox: Any
    _addresses: Any
    _requests: Any
    _vectors: Any
    _inbox: Any

    # -- CommentStore -------------------------------------------------------------------------

    def add_comment(self, comment: Comment) -> Comment:
        return self._comments.add_comment(comment)

    def get_comment(self, comment_id: str) -> Comment | None:
        return self._comments.get_comment(comment_id)

    def get_comments(self, comment_ids: Iterable[str]) -> dict[str, Comment]:
        return self._comments.get_comments(comment_ids)

    def answer_counts(self) -> dict[tuple[str, str], int]:
        return self._comments.answer_counts()

    def answer_versions(self, questions: Iterable[tuple[str, str]], limit: int
                        ) -> dict[tuple[str, str], list[tuple[str, object]]]:
        return self._comments.answer_versions(questions, limit)

    def queue_neighbours(
        self, comment: Comment, *, thread: str | None = None, question: str | None = None
    ) -> tuple[str | None, str | None]:
        return self._comments.queue_neighbours(comment, thread=thread, question=question)

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

    def reader_history(self, reader_key: str, *, limit: int = 5) -> ReaderHistory:
        return self._comments.reader_history(reader_key, limit=limit)

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
        count_up_to: int | None = None,
    ) -> tuple[list[Comment], int]:
        return self._comments.find_comments(text=text, state=state, thread=thread, limit=limit,
                                            offset=offset, count_up_to=count_up_to)

    def listening_inputs(
        self, *, since: str, due_from: str | None, weeks_from: date | None
    ) -> ListeningInputs:
        return self._comments.listening_inputs(since=since, due_from=due_from,
                                               weeks_from=weeks_from)

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

    # -- RequestStore (grouped_comments: Store's default, unless a backend indexes it) --------

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

    # -- VectorStore --------------------------------------------------------------------------

    def text_vectors(self, model: str, digests: Iterable[str]) -> dict[str, bytes]:
        return self._vectors.text_vectors(model, digests)

    def add_text_vectors(self, model: str, vectors: Mapping[str, bytes]) -> None:
        self._vectors.add_text_vectors(model, vectors)

    # -- InboxStore ---------------------------------------------------------------------------

    def add_incoming_mail(self, mail: IncomingMail) -> IncomingMail:
        return self._inbox.add_incoming_mail(mail)

    def get_incoming_mail(self, key: str) -> IncomingMail | None:
        return self._inbox.get_incoming_mail(key)

    def update_incoming_mail(
        self, key: str, change: Callable[[IncomingMail], IncomingMail]
    ) -> IncomingMail:
        return self._inbox.update_incoming_mail(key, change)

    def list_incoming_mail(
        self, statuses: Iterable[IncomingStatus] | None = None, *, limit: int = 50,
    ) -> list[IncomingMail]:
        return self._inbox.list_incoming_mail(statuses, limit=limit)

    def incoming_mail_counts(self) -> dict[IncomingStatus, int]:
        return self._inbox.incoming_mail_counts()
