"""The comments of the TinyDB store (CommentStore): adding, reading, the queue, search, import.

Every write holds the thread's lock and appends to the thread's log (the commit point: one
line per comment, threads.py) and to the index, in the order that keeps the queue crash-safe;
every listing picks candidates from the index and checks each in its thread's files, settling
any disagreement it meets (index_file.py).
The author's replies, cached per process, are author_replies.py's.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from datetime import date

from comments_service.metrics_inputs import ListeningInputs
from comments_service.models import Comment, CommentState
from comments_service.store.base import (
    ReaderHistory,
    RequestFiling,
    check_thread_key,
    is_thread_key,
)
from comments_service.store.errors import CommentNotFound, DuplicateComment, StoreUnavailable
from comments_service.store.kept import KeptComments
from comments_service.store.request_summaries import RequestSummary
from comments_service.store.tinydb.index import IndexEntry, IndexView
from comments_service.store.tinydb.index_file import CommentIndex
from comments_service.store.tinydb.search_texts import SearchTexts
from comments_service.store.tinydb.threads import ThreadFiles

logger = logging.getLogger(__name__)



def newest_first(comment: Comment) -> tuple[str, str]:
    """Sort key of comments newest first (ties by id)."""
    return comment.created, comment.id


class TinyDBComments:
    """The comments of one store, over its thread files and its index."""

    def __init__(self, threads: ThreadFiles, index: CommentIndex) -> None:
        self._threads, self._index = threads, index
        self._kept = KeptComments()
        self._search = SearchTexts()

    def add_comment(self, comment: Comment) -> Comment:
        """Store a new comment durably (index line first, then one line of the thread's log)."""
        check_thread_key(comment.thread)
        with self._threads.lock(comment.thread):
            # The thread as this process last read it plus the lines appended since: no parse
            # of the whole thread, whatever its size.
            state = self._threads.state(comment.thread, locked=True)
            if comment.id in state.comments:
                raise DuplicateComment(f"Comment {comment.id} is stored already")
            # The index line goes first: a crash before the log line is written leaves a line
            # that readers check against the thread and drop, never a comment the queue cannot
            # see.
            if self._index.set_entries(comment.thread, {comment.id: IndexEntry.of(comment)},
                                       adding=True):
                raise DuplicateComment(f"Comment {comment.id} is stored already in another thread")
            try:
                self._threads.write(comment.thread, [comment], state)
            except BaseException:
                self._index.take_back(comment.thread, {comment.id: None})
                raise
        return comment

    def get_comment(self, comment_id: str) -> Comment | None:
        """The comment with that id: found through the index, read from its thread file."""
        entry = self._index.entry(comment_id)
        if entry is None:
            return None
        found = self._threads.state(entry.thread).comments.get(comment_id)
        comment = None if found is None else found[1]
        if comment is None or not entry.agrees_with(comment):
            comment = self._index.settle(entry.thread, [comment_id])[comment_id]
        return comment

    def get_comments(self, comment_ids: Iterable[str]) -> dict[str, Comment]:
        """The comments with those ids, through the index: those read before under the same
        index entry from this process's copies (store/kept.py), the others from their
        threads, each thread read once."""
        self._index.refresh()
        with self._index.viewing() as view:
            wanted = [(comment_id, view.entries[comment_id])
                      for comment_id in dict.fromkeys(comment_ids) if comment_id in view.entries]
        return {comment.id: comment for comment in self._checked(wanted)}

    def _checked(self, wanted: list[tuple[str, IndexEntry]]) -> list[Comment]:
        """The comments the index lists as ``wanted``, in that order, each kept or read from
        its thread (each thread once) and settled where the two disagree; gone ones left out."""
        read: dict[str, dict[str, Comment]] = {}
        found = []
        already = self._kept.get_many(wanted)
        for comment_id, entry in wanted:
            kept = already.get(comment_id)
            if kept is not None:
                found.append(kept)
                continue
            if entry.thread not in read:
                read[entry.thread] = {item.id: item for item in self._threads.read(entry.thread)}
            comment = read[entry.thread].get(comment_id)
            if comment is not None and entry.agrees_with(comment):
                if entry.complete:  # else the entry may stay the same through a change
                    self._kept.put(comment, entry)
            else:
                comment = self._index.settle(entry.thread, [comment_id])[comment_id]
            if comment is not None:
                found.append(comment)
        return found

    def request_filings(self, requests: Iterable[str] | None = None) -> list[RequestFiling]:
        """From the index alone (rebuilt first, once, if it has lines from before the request
        field)."""
        self._index.refresh_with_every_field()
        with self._index.viewing() as view:
            return view.requests.listed(requests)

    def request_summaries(self, merged: Mapping[str, str] | None = None, *, newest: int,
                          firsts: int, places: int) -> dict[str, RequestSummary]:
        """From the index's running summary of the requests (request_index.py)."""
        self._index.refresh_with_every_field()
        with self._index.viewing() as view:
            return view.requests.summaries(merged or {}, newest=newest, firsts=firsts,
                                           places=places)

    def requests_version(self) -> Hashable:
        """From the index's running summary (request_index.py)."""
        self._index.refresh_with_every_field()
        with self._index.viewing() as view:
            return view.requests.version()

    def learned_filings(self, newest: int, step: int = 1) -> list[RequestFiling]:
        """The end of the index's sorted list of them."""
        self._index.refresh_with_every_field()
        with self._index.viewing() as view:
            return view.requests.latest_learned(newest, step)

    def queue_neighbours(
        self, comment: Comment, *, thread: str | None = None, question: str | None = None
    ) -> tuple[str | None, str | None]:
        """From the index's sorted queue, without reading a thread."""
        self._index.refresh()
        with self._index.viewing() as view:
            return view.neighbours(CommentState.AWAITING_REPLY, thread, question,
                                   comment.created, comment.id)

    def grouped_comments(self) -> Iterator[Comment]:
        """The comments the index lists with a request, read from their threads."""
        self._index.refresh_with_every_field()
        with self._index.viewing() as view:
            listed = view.request_ids()
        return iter(self._checked(sorted(listed, key=lambda item: item[1].thread)))

    def thread_comments(self, thread: str) -> list[Comment]:
        """Every comment of a thread, any state, oldest first (an unknown thread has none)."""
        return self._threads.read(thread)

    def reader_history(self, reader_key: str, *, limit: int = 5) -> ReaderHistory:
        """The index lists each reader's comments; only the ``limit`` newest are read (kept
        ones from memory, the others from their threads, each thread once). The replies are
        left to the store (tinydb/__init__.py), which takes them from the author's replies
        it keeps. An index with lines from before the reader field is rebuilt first (once)."""
        self._index.refresh_with_every_field()
        with self._index.viewing() as view:
            listed = view.reader_ids(reader_key)
        wanted = [comment_id for comment_id, _entry in listed[:max(limit, 0)]]
        found = {comment_id: comment for comment_id, comment in self.get_comments(wanted).items()
                 if comment.reader_key == reader_key}
        return ReaderHistory(
            comments=[found[comment_id] for comment_id in wanted if comment_id in found],
            total=len(listed), first=listed[-1][1].created if listed else None)

    def replies_to(self, comment_ids: Iterable[str]) -> list[tuple[str, IndexEntry]]:
        """(id, entry) of the author's replies (not withdrawn) to these comments, from the
        index alone, oldest first within each."""
        self._index.refresh_with_every_field()
        with self._index.viewing() as view:
            return view.reply_ids(list(dict.fromkeys(comment_ids)))

    def replies_to_reader(self, reader_key: str) -> list[tuple[str, IndexEntry]]:
        """(id, entry) of the author's replies to every comment ``reader_key`` wrote, from
        the index alone."""
        self._index.refresh()
        with self._index.viewing() as view:
            return view.reply_ids([comment_id for comment_id, _ in view.reader_ids(reader_key)])

    def update_comment(self, comment_id: str, change: Callable[[Comment], Comment]) -> Comment:
        """Compare-and-set under the thread lock; see :meth:`Store.update_comment`.

        ``change`` runs while the thread's lock is held, so it must not call the store."""
        entry = self._index.entry(comment_id)
        if entry is None:
            raise CommentNotFound(f"No comment {comment_id}")
        thread = entry.thread
        with self._threads.lock(thread):
            state = self._threads.state(thread, locked=True)
            found = state.comments.get(comment_id)
            if found is None:
                # An index line whose add never reached the thread file: drop it.
                self._index.take_back(thread, {comment_id: None})
                raise CommentNotFound(f"No comment {comment_id}")
            old = found[1]
            new = change(old)
            if not isinstance(new, Comment):
                raise TypeError(f"change() returned {type(new).__name__}, not a Comment")
            if new.id != old.id or new.thread != old.thread:
                raise ValueError("change() must not change a comment's id or thread")
            new_entry = IndexEntry.of(new)
            # Order the two writes so that a crash between them can only leave the index
            # listing *more* waiting comments than there are (readers check and drop those),
            # never fewer: a comment entering the queue is indexed first, one leaving it is
            # written first.
            index_first = new_entry.waiting
            if index_first:
                self._index.set_entries(thread, {comment_id: new_entry})
            if new != old:
                try:
                    self._threads.write(thread, [new], state)
                except BaseException:
                    if index_first:
                        self._index.take_back(thread, {comment_id: IndexEntry.of(old)})
                    raise
            if not index_first:
                try:
                    self._index.set_entries(thread, {comment_id: new_entry})
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
        self, pick: Callable[[IndexView, int], list[tuple[str, IndexEntry]]],
        accept: Callable[[Comment], bool], limit: int, offset: int,
    ) -> list[Comment]:
        """A page of the comments that ``pick(view, n)`` (called under the view lock) lists
        first in the index, each checked in its thread file and kept if ``accept`` takes it."""
        # Take only as many candidates as the page needs, plus a few to replace any that the
        # thread files reject; more only in the rare case that this was not enough.
        window = offset + limit + 16
        while True:
            with self._index.viewing() as view:
                candidates = pick(view, window)
            # Each checked against its thread (kept copies count: their entry is unchanged),
            # settled where the index and the file disagree (a crash between the two writes).
            page = [comment for comment in self._checked(candidates[offset:]) if accept(comment)]
            if len(page) >= limit or len(candidates) < window:
                return page[:limit]
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
        self._index.refresh()

        def accept(comment: Comment) -> bool:
            return comment.state is state and (question is None or comment.question == question)

        return self._verified_page(
            lambda view, stop: view.ids_in_state(state, thread, question, stop),
            accept, limit, max(offset, 0),
        )

    def count_in_state(
        self, state: CommentState, *, thread: str | None = None, question: str | None = None
    ) -> int:
        """How many comments the index lists in ``state`` (same filters as comments_in_state)."""
        self._index.refresh()
        with self._index.viewing() as view:
            return view.count_in_state(str(state), thread, question)

    def answer_counts(self) -> dict[tuple[str, str], int]:
        """From the index's running count per answered question, kept in order."""
        self._index.refresh()
        with self._index.viewing() as view:
            return {question: view.answered[question] for question in view.answered_sorted}

    def answer_versions(self, questions: Iterable[tuple[str, str]], limit: int
                        ) -> dict[tuple[str, str], list[tuple[str, object]]]:
        """From the index alone (rebuilt first, once, if it has lines from before a field):
        each answer's version is its index entry, which every process tails (store/kept.py);
        an entry that may stay the same through a change (not ``complete``) gets a version
        that equals no other."""
        self._index.refresh_with_every_field()
        with self._index.viewing() as view:
            return {(thread, question): [
                (comment_id, entry if entry.complete else object())
                for comment_id, entry in view.newest_answer_ids(thread, question, limit)]
                for thread, question in questions}

    def state_counts(self) -> dict[CommentState, int]:
        """Comments per state, from the index; every state is a key."""
        self._index.refresh()
        with self._index.viewing() as view:
            return {state: view.count_in_state(state, None, None) for state in CommentState}

    def find_comments(
        self, *, text: str | None = None, state: CommentState | None = None,
        thread: str | None = None, limit: int = 50, offset: int = 0,
        count_up_to: int | None = None,
    ) -> tuple[list[Comment], int]:
        """Comments whose body or name contains ``text`` (casefolded substring), newest first
        (ties by id), optionally of one state and/or thread; returns (page, total matching),
        the total of a text search counted only up to ``count_up_to`` + 1 when given.

        Cost: with ``thread``, one read of that thread file. With neither ``text`` nor
        ``thread``, the page comes from the index like comments_in_state (each comment checked
        in its file) and the total is the index's count. With ``text`` and no ``thread``, the
        texts this process keeps and their trigram lists (search_texts.py: the first search of
        a process reads every thread once, later ones only the comments changed since), then
        the page shown read from the threads.
        """
        state = None if state is None else CommentState(state)
        offset = max(offset, 0)
        count_up_to = None if count_up_to is None else max(count_up_to, 0)
        if thread is None and not text:
            return self._find_in_index(state, limit, offset)
        needle = text.casefold() if text else None
        if thread is None and needle is not None:
            return self._find_in_texts(needle, state, max(limit, 0), offset, count_up_to)
        matching = [comment for comment in self._threads.read(thread) if (
            (state is None or comment.state is state) and (
                needle is None or needle in comment.body.casefold()
                or needle in comment.name.casefold()))] if is_thread_key(thread) else []
        total = len(matching) if count_up_to is None or needle is None else min(
            len(matching), count_up_to + 1)
        if limit <= 0:
            return [], total
        page = heapq.nlargest(offset + limit, matching, key=newest_first)[offset:]
        return page, total

    def _find_in_texts(self, needle: str, state: CommentState | None, limit: int,
                       offset: int, count_up_to: int | None) -> tuple[list[Comment], int]:
        """A store-wide text search over the texts this process keeps (search_texts.py); only
        the page shown is read, and checked again, from the threads."""
        self._index.refresh()
        found, total = self._search.matching(
            self._index.viewing, self._checked, needle, None if state is None else str(state),
            offset + limit, count_up_to)
        if limit <= 0:
            return [], total
        listed = [comment_id for _created, comment_id in found[offset:offset + limit]]
        read = self.get_comments(listed)
        page = [read[comment_id] for comment_id in listed if comment_id in read and (
            state is None or read[comment_id].state is state)]
        return page, total

    def _find_in_index(
        self, state: CommentState | None, limit: int, offset: int
    ) -> tuple[list[Comment], int]:
        """find_comments without text or thread: newest first from the index."""
        self._index.refresh()
        with self._index.viewing() as view:
            total = len(view.entries) if state is None else view.count_in_state(
                state, None, None)
        if limit <= 0:
            return [], total
        page = self._verified_page(
            lambda view, stop: view.newest_ids(state, stop),
            lambda comment: state is None or comment.state is state, limit, offset,
        )
        return page, total

    def public_counts(self, threads: Iterable[str]) -> dict[str, int]:
        """Public comments per thread, from the index."""
        self._index.refresh()
        with self._index.viewing() as view:
            return {thread: view.public_by_thread.get(thread, 0) for thread in threads}

    def thread_version(self, thread: str) -> str:
        """A token that changes with every write of the thread (threads.ThreadFiles.version),
        or "empty" when the thread has no file."""
        return self._threads.version(thread)

    def all_comments(self) -> Iterator[Comment]:
        """Every comment, threads in name order, oldest first within each thread."""
        for thread in self._threads.names():
            yield from self._threads.read(thread)

    def import_comments(self, comments: Iterable[Comment]) -> int:
        """Add the comments whose ids are not stored yet, one write per thread."""
        by_thread: dict[str, list[Comment]] = {}
        seen: set[str] = set()
        for comment in comments:
            check_thread_key(comment.thread)  # all checked before anything is written
            if comment.id not in seen:
                seen.add(comment.id)
                by_thread.setdefault(comment.thread, []).append(comment)
        added = 0
        for thread, candidates in sorted(by_thread.items()):
            with self._threads.lock(thread):
                state = self._threads.state(thread, locked=True)
                new = [comment for comment in candidates if comment.id not in state.comments]
                if not new:
                    continue
                refused = self._index.set_entries(
                    thread, {comment.id: IndexEntry.of(comment) for comment in new}, adding=True
                )
                new = [comment for comment in new if comment.id not in refused]
                if not new:
                    continue
                try:
                    self._threads.write(thread, new, state)
                except BaseException:
                    self._index.take_back(
                        thread, dict.fromkeys((comment.id for comment in new), None)
                    )
                    raise
                added += len(new)
        return added

    def count_comments(self) -> int:
        """How many comments the index lists, all states."""
        self._index.refresh()
        with self._index.viewing() as view:
            return len(view.entries)

    def listening_inputs(
        self, *, since: str, due_from: str | None, weeks_from: date | None
    ) -> ListeningInputs:
        """From the index's running aggregates (metrics_index.py), not the thread files; an
        index with lines from before the listening fields is rebuilt first (once)."""
        self._index.refresh_with_every_field()
        with self._index.viewing() as view:
            return view.listening_index().inputs(since, due_from, weeks_from)
