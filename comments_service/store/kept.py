"""Comments a process has read, kept while the store says they have not changed.

A page that shows a few comments from all over the store (the requests pages, the ranking of
a comment against the requests filed so far) reads them again on every view. Each backend has
a cheap token that changes with every change of a comment: the embedded store its index entry
(when ``complete``, index.py: every process tails the index, so an unchanged entry is an
unchanged comment, whichever process wrote last), PostgreSQL the row version's ``xmin`` (an
update writes a new row version; another transaction never sees one that is not committed).
A comment read under a token is current for as long as the token is. The least recently used
are dropped past CACHED.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable

from comments_service.models import Comment

CACHED = 10_000  # comments (about 1 KB each)


class KeptComments:
    """Comments by id, each with the token it was read under. Thread-safe."""

    def __init__(self, size: int = CACHED) -> None:
        self._size = size
        self._kept: OrderedDict[str, tuple[Hashable, Comment]] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, tokens: Iterable[tuple[str, Hashable]]) -> dict[str, Comment]:
        """The comments kept under those very tokens, by id, of many (id, token) pairs (one
        lock for all: a page asks for a few thousand)."""
        found: dict[str, Comment] = {}
        with self._lock:
            for comment_id, token in tokens:
                kept = self._kept.get(comment_id)
                # The same token object is the common case (an index entry that has not
                # changed), and cheaper to check than equal fields.
                if kept is not None and (kept[0] is token or kept[0] == token):
                    self._kept.move_to_end(comment_id)
                    found[comment_id] = kept[1]
        return found

    def put(self, comment: Comment, token: Hashable) -> None:
        """Keep ``comment``, read while the store said ``token`` for it."""
        with self._lock:
            self._kept[comment.id] = (token, comment)
            self._kept.move_to_end(comment.id)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)
