"""The author's own replies of the TinyDB store (author_replies), cached per process.

The nudge compares every new reply with the author's earlier ones, so this must be cheap on
every call: the index lists the author's comments with a digest of each one's fields, and a
process keeps every author comment it has read with the index entry it was read at, reading a
thread file again only when an entry changed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from comments_service.models import Comment, CommentState
from comments_service.store.tinydb.index import IndexEntry
from comments_service.store.tinydb.index_file import CommentIndex
from comments_service.store.tinydb.threads import ThreadFiles


class AuthorReplies:
    """The author's replies of one store and this process's cache of them."""

    def __init__(self, threads: ThreadFiles, index: CommentIndex) -> None:
        self._threads, self._index = threads, index
        # id → (the index entry it was read at, the comment): the author's comments read so
        # far, reused while the index still holds that entry.
        self._cache: dict[str, tuple[IndexEntry, Comment]] = {}
        self._cache_lock = threading.Lock()

    def newest(self, limit: int | None = None) -> list[Comment]:
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
        self._index.refresh_with_every_field()
        read: set[str] = set()
        # As in TinyDBComments._verified_page: the page's worth of candidates plus a few, more
        # if needed.
        window = None if limit is None else limit + 16
        while True:
            with self._index.viewing() as view:
                candidates = view.author_ids(window)
            replies: list[Comment] = []
            for comment_id, entry in candidates:
                comment = self._cached_or_read(comment_id, entry, read)
                if comment is None:
                    # The index and the file disagree: settle it, then trust the file.
                    comment = self._index.settle(entry.thread, [comment_id])[comment_id]
                    if comment is not None:
                        self._remember([comment])
                if (comment is not None and comment.is_author
                        and comment.state is not CommentState.WITHDRAWN):
                    replies.append(comment)
                    if len(replies) == limit:
                        break
            if window is None or len(replies) == limit or len(candidates) < window:
                break
            window *= 4
        self._forget_unlisted()
        return replies

    def these(self, listed: list[tuple[str, IndexEntry]]) -> list[Comment]:
        """The author's comments listed (id, index entry), in that order: from this process's
        cache, reading each thread of those not cached (or changed) once."""
        read: set[str] = set()
        found = [self._cached_or_read(comment_id, entry, read) for comment_id, entry in listed]
        return [comment for comment in found if comment is not None]

    def _cached_or_read(self, comment_id: str, entry: IndexEntry, read: set[str]
                        ) -> Comment | None:
        """The comment from the cache, else from its thread file read now (each thread at most
        once per call: ``read`` holds those read already); None if neither has it as indexed."""
        comment = self._cached(comment_id, entry)
        if comment is None and entry.thread not in read:
            read.add(entry.thread)
            self._remember(self._threads.read(entry.thread))
            comment = self._cached(comment_id, entry)
        return comment

    def _cached(self, comment_id: str, entry: IndexEntry) -> Comment | None:
        with self._cache_lock:
            cached = self._cache.get(comment_id)
        return cached[1] if cached is not None and cached[0] == entry else None

    def _remember(self, comments: Iterable[Comment]) -> None:
        read = {comment.id: (IndexEntry.of(comment), comment)
                for comment in comments if comment.is_author}
        with self._cache_lock:
            self._cache.update(read)

    def _forget_unlisted(self) -> None:
        """Drop the comments the index no longer lists as the author's, once they could be a
        sizeable part of the cache."""
        with self._index.viewing() as view:
            listed = len(view.authored)
        with self._cache_lock:
            if len(self._cache) <= 2 * listed + 100:
                return
        with self._index.viewing() as view:
            kept = {comment_id for _created, comment_id in view.authored}
        with self._cache_lock:
            self._cache = {comment_id: cached for comment_id, cached
                           in self._cache.items() if comment_id in kept}
