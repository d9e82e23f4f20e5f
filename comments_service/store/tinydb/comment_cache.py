"""Comments this process has read, kept while their index entry stays the same.

A page that shows a few comments from all over the store (the requests pages, the ranking of
a comment against the requests filed so far) would otherwise parse a whole thread file for
each of them: on a big store, the threads they sit in are most of the store. An index entry
that is ``complete`` (index.py) changes with every change of its comment that a page can
see, and every process tails the index, so a comment read while its entry was E is current
for as long as the entry is still E, whichever process writes next. The least recently used
are dropped past CACHED.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from comments_service.models import Comment
from comments_service.store.tinydb.index import IndexEntry

CACHED = 10_000  # comments (about 1 KB each)


class KeptComments:
    """Comments by id, each with the index entry it was read under. Thread-safe."""

    def __init__(self, size: int = CACHED) -> None:
        self._size = size
        self._kept: OrderedDict[str, tuple[IndexEntry, Comment]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, comment_id: str, entry: IndexEntry) -> Comment | None:
        """The kept comment, if it was read under this very entry."""
        with self._lock:
            kept = self._kept.get(comment_id)
            if kept is None or kept[0] != entry:
                return None
            self._kept.move_to_end(comment_id)
            return kept[1]

    def put(self, comment: Comment, entry: IndexEntry) -> None:
        """Keep ``comment``, read from its thread while the index said ``entry`` (and agreeing
        with it); entries that do not change with every change of the comment are not kept."""
        if not entry.complete:
            return
        with self._lock:
            self._kept[comment.id] = (entry, comment)
            self._kept.move_to_end(comment.id)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)

    def forget(self) -> None:
        with self._lock:
            self._kept.clear()
