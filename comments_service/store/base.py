"""What the service may ask of storage, cut by concern into narrow protocols.

Code asks for the protocol it uses (the mail sender an :class:`OutboxStore`, the sign-in an
:class:`AuthorStore`…); :class:`Store` is all of them at once, what a backend implements and
what ``open_configured_store`` returns. Both backends (``store.tinydb``, ``store.postgres``)
subclass :class:`Store` explicitly, so a method a backend lacks fails at construction, and
the protocols are ``runtime_checkable`` so tests can check any object against one.

Also here, because both backends must agree on them: what a thread key is, the version token of
a thread without comments, and the day an outbox message id names.

Every method is safe across threads and processes. ``change`` callbacks of the compare-and-set
methods run while the record is locked: they may raise to abort (nothing is written then) and
must not call the store.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, runtime_checkable

from comments_service.metrics_inputs import ListeningInputs
from comments_service.models import (
    LIVE_STATES,
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
from comments_service.store.request_summaries import (
    FIRST_PEOPLE,
    NEWEST_MEMBERS,
    TOP_PLACES,
    RequestFiling,
    RequestSummary,
    learned_window,
    summaries_of,
)

THREAD_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
# The thread_version of a thread that holds no comment, on every backend.
EMPTY_THREAD_VERSION = "empty"
# A message id starts with the UTC day it was made on (YYYYMMDD-…): the TinyDB store files a
# message by it, and both stores list newest days first by it.
MESSAGE_ID = re.compile(r"(\d{4})(\d{2})(\d{2})-[A-Za-z0-9_-]{1,64}")


def is_thread_key(thread: str) -> bool:
    """Whether ``thread`` is a valid thread key (and so a safe file name under threads/)."""
    return isinstance(thread, str) and THREAD_KEY.fullmatch(thread) is not None


def check_thread_key(thread: str) -> None:
    """Refuse (ValueError) a thread key no store may hold."""
    if not is_thread_key(thread):
        raise ValueError(f"Invalid thread key {thread!r}")


def message_day(message_id: str) -> str | None:
    """The UTC day (YYYY-MM-DD) a message id was made on, or None for a malformed id."""
    match = MESSAGE_ID.fullmatch(message_id) if isinstance(message_id, str) else None
    return None if match is None else "-".join(match.groups())


@dataclass(frozen=True)
class ReaderHistory:
    """What one reader (a reader_key) wrote before: CommentStore.reader_history."""

    comments: list[Comment] = field(default_factory=list)  # newest first, at most the limit
    # The author's replies to any of the reader's comments (not only those listed), by the
    # comment they answer, oldest first: the panel shows some, the nudge compares with all.
    replies: dict[str, list[Comment]] = field(default_factory=dict)
    total: int = 0  # every comment the reader wrote
    first: str | None = None  # when the first of them was written (UTC ISO)


@runtime_checkable
class CommentStore(Protocol):
    """The comments: threads, the reply queue, counts, search, export and import."""

    @abstractmethod
    def add_comment(self, comment: Comment) -> Comment:
        """Store a new comment durably; when this returns, a crash cannot lose it.
        Raises DuplicateComment if the id exists, StoreUnavailable if it cannot be written."""

    @abstractmethod
    def get_comment(self, comment_id: str) -> Comment | None:
        """The comment with that id, or None."""

    def get_comments(self, comment_ids: Iterable[str]) -> dict[str, Comment]:
        """The comments with those ids (unknown ids left out), each thread read once: for a
        page that shows a few comments from anywhere in the store."""
        found = {}
        for comment_id in dict.fromkeys(comment_ids):
            comment = self.get_comment(comment_id)
            if comment is not None:
                found[comment_id] = comment
        return found

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
    def reader_history(self, reader_key: str, *, limit: int = 5) -> ReaderHistory:
        """A reader's own comments (any state, not the author's), newest first, at most
        ``limit``; the author's replies (not withdrawn, oldest first) to each comment the
        reader ever wrote; how many the reader wrote in all and when the first. Indexed: its
        cost does not grow with the store."""

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

    def author_replies_to(self, comment_ids: Iterable[str]) -> dict[str, list[Comment]]:
        """The author's replies (not withdrawn) to each of these comments, oldest first, by
        the comment they answer (those without replies left out): a page shows them under
        its comments. This default reads the comments' threads; the stores use an index."""
        replies: dict[str, list[Comment]] = {}
        wanted = set(comment_ids)
        for thread in {comment.thread for comment in self.get_comments(wanted).values()}:
            for comment in self.thread_comments(thread):
                if (comment.is_author and comment.parent in wanted
                        and comment.state is not CommentState.WITHDRAWN):
                    replies.setdefault(comment.parent, []).append(comment)
        return replies

    def queue_neighbours(
        self, comment: Comment, *, thread: str | None = None, question: str | None = None
    ) -> tuple[str | None, str | None]:
        """The ids of the waiting comments just before and just after ``comment`` in queue
        order (oldest first; of one thread and/or question when given), the comment itself
        left out: the comment page's previous and next. This default walks the queue; the
        stores look it up in their indexes."""
        previous, offset = None, 0
        while True:
            chunk = self.comments_in_state(CommentState.AWAITING_REPLY, thread=thread,
                                           question=question, limit=200, offset=offset)
            for other in chunk:
                if other.id == comment.id:
                    continue
                if (other.created, other.id) < (comment.created, comment.id):
                    previous = other.id
                else:
                    return previous, other.id
            if len(chunk) < 200:
                return previous, None
            offset += 200

    def answer_counts(self) -> dict[tuple[str, str], int]:
        """How many readers' comments (waiting or replied) answer each (thread, question),
        for the questions that have any, in (thread, question) order: the themes page lists
        them. This default reads every comment; the stores count from their indexes."""
        counts: dict[tuple[str, str], int] = {}
        for comment in self.all_comments():
            if comment.question and not comment.is_author and comment.state in LIVE_STATES:
                key = (comment.thread, comment.question)
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def answer_versions(self, questions: Iterable[tuple[str, str]], limit: int
                        ) -> dict[tuple[str, str], list[tuple[str, object]]]:
        """For each (thread, question), the ids of its ``limit`` newest comments waiting or
        replied that answer it, oldest first (by created, then id), each with a version: a
        value that is equal (``==``) only while the comment has not changed. The themes page
        keeps what it worked out from some answers for as long as their versions stay equal.
        This default reads the comments (the comment is its own version); the stores answer
        from their indexes without reading one."""
        found: dict[tuple[str, str], list[tuple[str, object]]] = {}
        for thread, question in questions:
            answers: list[Comment] = []
            for state in LIVE_STATES:
                total = self.count_in_state(state, thread=thread, question=question)
                answers += self.comments_in_state(state, thread=thread, question=question,
                                                  limit=limit, offset=max(0, total - limit))
            answers.sort(key=lambda comment: (comment.created, comment.id))
            found[thread, question] = [(comment.id, comment)
                                       for comment in answers[-limit:]] if limit > 0 else []
        return found

    @abstractmethod
    def find_comments(
        self, *, text: str | None = None, state: CommentState | None = None,
        thread: str | None = None, limit: int = 50, offset: int = 0,
        count_up_to: int | None = None,
    ) -> tuple[list[Comment], int]:
        """Comments whose body or name contains ``text`` (case-insensitive), newest first,
        optionally of one state/thread; returns (one page, total matching). With ``text`` and
        ``count_up_to``, the total is counted only so far: a total above ``count_up_to`` (it
        is then ``count_up_to`` + 1) means "more than count_up_to", which lets a search of a
        common word stop once its page and that many are found."""

    @abstractmethod
    def listening_inputs(
        self, *, since: str, due_from: str | None, weeks_from: date | None
    ) -> ListeningInputs:
        """What the listening figures need (metrics_inputs.py), kept up to date on write and
        read without parsing any comment: tallies overall, per thread and per (thread,
        question) as metrics.py defines them; the ISO weeks from the one starting on
        ``weeks_from``; the reader comments written at ``since`` or later (stored times),
        oldest first; and how many waiting reader comments were written at ``due_from`` or
        earlier (None: no weeks, or 0 due, when only the window is wanted). Its cost grows
        with the comments since ``since``, the threads and the weeks, not with the store."""

    @abstractmethod
    def author_replies(self, limit: int | None = None) -> list[Comment]:
        """The author's own comments (is_author), newest first; cheap to call on every reply
        (the nudge compares a new reply with these)."""


@runtime_checkable
class AuthorStore(Protocol):
    """The authors who sign in to the moderation pages."""

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


@runtime_checkable
class OutboxStore(Protocol):
    """The outbox: every message (mail, webhook) stored before anyone tries to send it."""

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


@runtime_checkable
class AddressStore(Protocol):
    """What each mail address has said about mail: confirmations and unsubscribes."""

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


@runtime_checkable
class RequestTally(Protocol):
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
    def replace(self, snapshot: dict[str, Any] | None) -> None:
        """Make ``snapshot`` the new starting point with an empty log (new ``log_id``); None
        starts from an empty grouper (a copy of a tally that was never folded)."""


@runtime_checkable
class RequestStore(Protocol):
    """Tallied reader requests: the grouper's saved state, the author's records of groups,
    and which group each reader comment is in."""

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

    @abstractmethod
    def grouped_comments(self) -> Iterator[Comment]:
        """Every comment whose ``request`` field is set, any state, in no set order (the
        requests page)."""

    def request_filings(self, requests: Iterable[str] | None = None) -> list[RequestFiling]:
        """Every reader comment whose ``request`` field is set (to one of ``requests``, when
        given), as a RequestFiling, in no set order: the requests pages count from these and
        read the text of only what they show. This default reads the comments; the stores
        answer from their indexes."""
        wanted = None if requests is None else set(requests)
        return [RequestFiling(comment.id, comment.request or "", comment.request_filed,
                              comment.reader_key, comment.thread, comment.question,
                              comment.created, comment.state)
                for comment in self.grouped_comments() if not comment.is_author
                and (wanted is None or comment.request in wanted)]

    def request_summaries(
        self, merged: Mapping[str, str] | None = None, *, newest: int = NEWEST_MEMBERS,
        firsts: int = FIRST_PEOPLE, places: int = TOP_PLACES,
    ) -> dict[str, RequestSummary]:
        """Each request the author filed a live reader comment under, summed up by id
        (request_summaries.py): its people, its ``newest`` comments, the first comment of its
        first ``firsts`` people, its ``places`` main places. A merged request's comments count
        under the id ``merged`` maps it to (merges followed by the caller). The stores answer
        from what they keep up to date on write, at a cost that follows the requests, not the
        comments; this default works it out from every filing."""
        return summaries_of(self.request_filings(), merged or {}, newest=newest,
                            firsts=firsts, places=places)

    def requests_version(self) -> Hashable:
        """A token that changes with every write that may change request_summaries or
        learned_filings, or the text of a comment they list: while one store gives the same
        token, they give the same answers (a process keeps what it worked out of them). This
        default never gives the same token twice."""
        return object()

    def learned_filings(self, newest: int, step: int = 1) -> list[RequestFiling]:
        """The author's latest filings the ranking learns from (request_summaries.is_learned),
        oldest first: the newest ``newest`` and up to ``step`` - 1 more, the list starting at a
        multiple of ``step`` counted from the first filing ever, so that it moves on ``step``
        filings at a time."""
        return learned_window(self.request_filings(), newest, step)

    @abstractmethod
    def set_comment_requests(self, requests: Mapping[str, str | None]) -> int:
        """Set the ``request`` field of many reader comments (id → group id or None); unknown
        ids are skipped. Returns how many comments changed."""


# What a model's name may be, as a vector store keys it (a file name on the embedded store).
VECTOR_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# What a text's digest looks like (tally/vectors.py: blake2b, 16 bytes, in hex).
VECTOR_DIGEST = re.compile(r"[0-9a-f]{32}")


def check_vector_key(model: str, digest: str | None = None) -> None:
    """Refuse (ValueError) a model name or text digest no vector store may hold."""
    if not isinstance(model, str) or not VECTOR_MODEL.fullmatch(model):
        raise ValueError(f"Invalid model name {model!r}")
    if digest is not None and (not isinstance(digest, str)
                               or not VECTOR_DIGEST.fullmatch(digest)):
        raise ValueError(f"Invalid text digest {digest!r}")


@runtime_checkable
class VectorStore(Protocol):
    """Sentence vectors of texts, by model and text digest: each text is encoded once, and
    every process and restart after that reads the vector back. Vectors are derived data
    (the texts are in the comments), so backups and copies leave them out; a lost vector is
    encoded again."""

    @abstractmethod
    def text_vectors(self, model: str, digests: Iterable[str]) -> dict[str, bytes]:
        """The vectors kept for ``digests`` (digest → the vector's bytes); unknown digests
        are left out."""

    @abstractmethod
    def add_text_vectors(self, model: str, vectors: Mapping[str, bytes]) -> None:
        """Keep ``vectors`` (digest → bytes); a digest already kept keeps its first vector."""


# What an incoming message's key looks like (inbox/: a blake2b digest of its Message-ID, hex).
INCOMING_KEY = re.compile(r"[0-9a-f]{32}")


def check_incoming_key(key: str) -> None:
    """Refuse (ValueError) a key no store may hold for an incoming message."""
    if not isinstance(key, str) or not INCOMING_KEY.fullmatch(key):
        raise ValueError(f"Invalid incoming message key {key!r}")


@runtime_checkable
class InboxStore(Protocol):
    """Messages the reply worker read from the author's mailbox (replies by email), one
    record per Message-ID: recorded before anything is posted, so each is processed once."""

    @abstractmethod
    def add_incoming_mail(self, mail: IncomingMail) -> IncomingMail:
        """Record ``mail`` durably unless its key is recorded already; returns the record
        stored under the key (``mail`` itself when it was new, else the earlier one)."""

    @abstractmethod
    def get_incoming_mail(self, key: str) -> IncomingMail | None:
        """The record with that key, or None."""

    @abstractmethod
    def update_incoming_mail(
        self, key: str, change: Callable[[IncomingMail], IncomingMail]
    ) -> IncomingMail:
        """Compare-and-set as update_comment; IncomingMailNotFound; the key never changes."""

    @abstractmethod
    def list_incoming_mail(
        self, statuses: Iterable[IncomingStatus] | None = None, *, limit: int = 50,
    ) -> list[IncomingMail]:
        """Records in those statuses (None: all), newest first."""

    @abstractmethod
    def incoming_mail_counts(self) -> dict[IncomingStatus, int]:
        """How many records are in each status (every status present, 0 when none)."""


@runtime_checkable
class Store(CommentStore, AuthorStore, OutboxStore, AddressStore, RequestStore, VectorStore,
            InboxStore, Protocol):
    """Everything the service keeps: what each backend implements in full."""

    def grouped_comments(self) -> Iterator[Comment]:
        """Every comment whose ``request`` field is set, any state, in no set order (the
        requests page). This default reads every comment; a store that indexes the field
        answers from the index."""
        return (comment for comment in self.all_comments() if comment.request)

    def close(self) -> None:
        """Release what the store holds open (most stores hold nothing open)."""


# Every protocol a backend implements, for the contract tests and for readers.
STORE_PROTOCOLS: tuple[type, ...] = (
    CommentStore, AuthorStore, OutboxStore, AddressStore, RequestStore, VectorStore, InboxStore,
)
