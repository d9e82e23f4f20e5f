"""The store-wide text search of the embedded store, from each comment's text kept in memory.

Without it a search parses every thread file (issue 19: 0.3 to 1.4 s at 20 000 comments). A
process keeps each comment's casefolded body and name, read once, with the index entry it was
read under; before each search it re-reads only the comments the index says changed since
(IndexView.changed: one id per index line applied), so the texts follow every process's
writes. The first search of a process reads every thread once. A search is then a scan of
the kept texts in memory, and only the page it shows is read from the threads (through the
comments the store keeps, store/kept.py). Memory: about the size of the comments' text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

from comments_service.models import Comment
from comments_service.store.tinydb.index import IndexEntry, IndexView

# What a search matches in: the comment's body and its writer's name, casefolded.
Text = tuple[IndexEntry, str, str]


class SearchTexts:
    """Each comment's casefolded body and name, by id, kept in step with the index."""

    def __init__(self) -> None:
        self._texts: dict[str, Text] = {}
        self._generation = 0
        self._position = 0
        self._lock = threading.Lock()

    def matching(
        self, viewing: Callable[[], AbstractContextManager[IndexView]],
        read: Callable[[list[tuple[str, IndexEntry]]], list[Comment]],
        needle: str, state: str | None,
    ) -> list[tuple[str, str]]:
        """(created, id) of every comment whose body or name holds ``needle`` (casefolded),
        of ``state`` when given, newest first. ``viewing()`` holds the index view; ``read``
        reads listed comments from their threads."""
        with self._lock:
            with viewing() as view:
                if view.generation != self._generation:
                    self._texts.clear()
                    self._generation, self._position = view.generation, 0
                    stale = list(view.entries)
                else:
                    stale = view.changed[self._position:]
                self._position = len(view.changed)
                wanted = []
                for comment_id in dict.fromkeys(stale):
                    entry = view.entries.get(comment_id)
                    if entry is None:
                        self._texts.pop(comment_id, None)
                    else:
                        wanted.append((comment_id, entry))
            entries = dict(wanted)
            for comment in read(sorted(wanted, key=lambda item: item[1].thread)):
                self._texts[comment.id] = (entries[comment.id], comment.body.casefold(),
                                           comment.name.casefold())
            found = [(entry.created, comment_id)
                     for comment_id, (entry, body, name) in self._texts.items()
                     if (state is None or entry.state == state)
                     and (needle in body or needle in name)]
        found.sort(reverse=True)
        return found
