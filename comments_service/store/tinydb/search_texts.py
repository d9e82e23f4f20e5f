"""The store-wide text search of the embedded store, from each comment's text kept in memory
and a trigram index over it, so a search costs what it finds, not what is stored (issue 19).

Without it a search parses every thread file (0.3 to 1.4 s at 20 000 comments), and a scan of
every kept text still grows with the store (35 to 100 ms at 100 000). A process keeps each
comment's casefolded body and name, read once, with the index entry it was read under; before
each search it re-reads only the comments the index says changed since (IndexView.changed:
one id per index line applied), so the texts follow every process's writes. The first search
of a process reads every thread once.

Each kept text also gets a document number, listed under every trigram (three characters) of
its body and name. A needle of three characters or more can only be in a text listed under all
of its trigrams, so the shortest of those lists holds every match: a rare needle is checked on
that list alone. A common needle (a long shortest list), and one too short for a trigram, is
checked instead on the comments newest first, stopping once the page and the count the caller
asked for are found; when that walk finds too few within WALK_LIMIT comments it falls back to
the list, or for a short needle to every text (as rare short needles must). Every candidate is
checked against its text, so the lists only ever need to hold too much: a changed or removed
comment's old document number is left in them, marked dead, until dead ones outnumber the
living and the lists are built again from the texts.

Memory: the texts, and about four bytes per distinct trigram of each comment.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial

from comments_service.models import Comment
from comments_service.store.tinydb.index import IndexEntry, IndexView

# What a search matches in: the comment's body and its writer's name, casefolded.
Text = tuple[IndexEntry, str, str]
# A shortest trigram list up to this long is checked whole: about 0.3 µs an entry.
SHORT_LIST = 4000
# Comments looked at newest first before a search gives up hoping to stop early (about 1 µs
# each) and checks every candidate instead.
WALK_LIMIT = 16384
# Dead document numbers tolerated before the lists are built again (and at least as many as
# living ones, so rebuilding stays a small share of the writes).
DEAD_ALLOWED = 5000


def trigrams(text: str) -> set[str]:
    """Every run of three characters of ``text``."""
    return {text[start:start + 3] for start in range(len(text) - 2)}


class SearchTexts:
    """Each comment's casefolded body and name, by id, kept in step with the index, and the
    trigram lists over them."""

    def __init__(self) -> None:
        self._texts: dict[str, Text] = {}
        self._generation = 0
        self._position = 0
        self._lock = threading.Lock()
        self._number: dict[str, int] = {}  # comment id → its text's document number
        self._documents: list[str | None] = []  # document number → comment id (None: dead)
        # trigram → document numbers, ascending
        self._lists: defaultdict[str, array[int]] = defaultdict(partial(array, "i"))
        self._sorted: list[tuple[str, str]] = []  # (created, id) of every kept text, sorted

    def matching(
        self, viewing: Callable[[], AbstractContextManager[IndexView]],
        read: Callable[[list[tuple[str, IndexEntry]]], list[Comment]],
        needle: str, state: str | None, wanted: int, count_up_to: int | None,
    ) -> tuple[list[tuple[str, str]], int]:
        """(created, id) of the ``wanted`` newest comments whose body or name holds
        ``needle`` (casefolded), of ``state`` when given; and how many match, counted up to
        ``count_up_to`` + 1 (None: all). ``viewing()`` holds the index view; ``read`` reads
        listed comments from their threads."""
        with self._lock:
            self._catch_up(viewing, read)
            enough = None if count_up_to is None else max(wanted, count_up_to + 1)
            shortest = self._shortest_list(needle)
            found: list[tuple[str, str]] | None = None
            if shortest is not None and not shortest:
                found = []
            elif enough is not None and (shortest is None or (
                    len(shortest) > SHORT_LIST
                    and enough * len(self._texts) < len(shortest) ** 2)):
                # A short or common needle: the newest first, until enough are found; given
                # up, for a scan, when that finds too few within the budget. At most one text
                # in (texts / list) holds the needle, so a walk is taken only when even that
                # many texts per match, times those wanted, is fewer than the list holds.
                budget = WALK_LIMIT if shortest is None else min(len(shortest), WALK_LIMIT)
                if state is None:
                    found = self._walk(self._sorted, needle, state, enough, budget)
                else:
                    with viewing() as view:
                        found = self._walk(view.in_state.get(state, []), needle, state,
                                           enough, budget)
            if found is None:
                texts, documents = self._texts, self._documents
                # The candidates in the order they were kept, which is about the order of
                # their texts in memory: much quicker to check than newest first.
                candidates = texts if shortest is None else (
                    comment_id for comment_id in map(documents.__getitem__, shortest)
                    if comment_id is not None)
                found = [(kept[0].created, comment_id) for comment_id in candidates
                         if (kept := texts[comment_id])
                         and (state is None or kept[0].state == state)
                         and (needle in kept[1] or needle in kept[2])]
                found.sort(reverse=True)
        total = len(found) if count_up_to is None else min(len(found), count_up_to + 1)
        return found[:wanted], total

    def _walk(self, ordered: list[tuple[str, str]], needle: str, state: str | None,
              enough: int | None, budget: int | None) -> list[tuple[str, str]] | None:
        """The first ``enough`` (None: all) matches of ``ordered`` ((created, id), sorted)
        from its end; None when ``budget`` comments were looked at without finding enough."""
        texts = self._texts
        found: list[tuple[str, str]] = []
        end = len(ordered)
        last = 0 if budget is None else max(0, end - budget)
        size = 256  # doubled each step: a few slices checked in one comprehension each
        while end > last:
            start = max(last, end - size)
            hits = [key for key in ordered[start:end]
                    if (kept := texts.get(key[1])) is not None
                    and (state is None or kept[0].state == state)
                    and (needle in kept[1] or needle in kept[2])]
            hits.reverse()
            found += hits
            if enough is not None and len(found) >= enough:
                return found[:enough]
            end, size = start, size * 2
        return found if last == 0 else None

    def _shortest_list(self, needle: str) -> array[int] | None:
        """The shortest trigram list of ``needle`` (empty: no text holds one of them); None
        for a needle too short to have a trigram."""
        grams = trigrams(needle)
        if not grams:
            return None
        empty: array[int] = array("i")
        lists = self._lists
        return min((lists.get(gram, empty) for gram in grams), key=len)

    def _catch_up(self, viewing: Callable[[], AbstractContextManager[IndexView]],
                  read: Callable[[list[tuple[str, IndexEntry]]], list[Comment]]) -> None:
        """Read the texts of the comments changed since the last search (all of them when the
        index was read afresh) and list them under their trigrams."""
        with viewing() as view:
            if view.generation != self._generation:
                self._texts.clear()
                self._sorted.clear()
                self._number.clear()
                self._documents.clear()
                self._lists.clear()
                self._generation, self._position = view.generation, 0
                stale = list(view.entries)
            else:
                stale = view.changed[self._position:]
            self._position = len(view.changed)
            wanted = []
            for comment_id in dict.fromkeys(stale):
                entry = view.entries.get(comment_id)
                if entry is None:
                    self._forget(comment_id)
                else:
                    wanted.append((comment_id, entry))
        entries = dict(wanted)
        # Read afresh, the texts are sorted once; afterwards each new one is put in its place.
        bulk = not self._texts
        for comment in read(sorted(wanted, key=lambda item: item[1].thread)):
            body, name = comment.body.casefold(), comment.name.casefold()
            entry = entries[comment.id]
            kept = self._texts.get(comment.id)
            self._texts[comment.id] = (entry, body, name)
            if kept is None or kept[0].created != entry.created:
                if kept is not None:
                    self._unsort(kept[0].created, comment.id)
                if bulk:
                    self._sorted.append((entry.created, comment.id))
                else:
                    bisect.insort(self._sorted, (entry.created, comment.id))
            if kept is None or kept[1] != body or kept[2] != name:
                self._forget_number(comment.id)
                self._list(comment.id, body, name)
        if bulk:
            self._sorted.sort()
        dead = len(self._documents) - len(self._number)
        if dead > max(DEAD_ALLOWED, len(self._number)):
            self._rebuild()

    def _forget(self, comment_id: str) -> None:
        kept = self._texts.pop(comment_id, None)
        if kept is not None:
            self._unsort(kept[0].created, comment_id)
        self._forget_number(comment_id)

    def _unsort(self, created: str, comment_id: str) -> None:
        at = bisect.bisect_left(self._sorted, (created, comment_id))
        if at < len(self._sorted) and self._sorted[at] == (created, comment_id):
            del self._sorted[at]

    def _forget_number(self, comment_id: str) -> None:
        number = self._number.pop(comment_id, None)
        if number is not None:
            self._documents[number] = None

    def _list(self, comment_id: str, body: str, name: str) -> None:
        number = len(self._documents)
        self._documents.append(comment_id)
        self._number[comment_id] = number
        lists = self._lists
        # One text for both: a trigram across the two only adds a candidate, checked away.
        for gram in trigrams(f"{body}\n{name}"):
            lists[gram].append(number)

    def _rebuild(self) -> None:
        """The lists again from the kept texts, without the dead document numbers."""
        self._number.clear()
        self._documents.clear()
        self._lists.clear()
        for comment_id, (_entry, body, name) in self._texts.items():
            self._list(comment_id, body, name)
