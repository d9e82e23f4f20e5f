"""The embedded store's running summary of the requests, kept in step with index.jsonl.

IndexView (index.py) hands every reader comment whose request is set to :class:`RequestIndex`
as it applies an index line, and takes it back when a later line changes or removes the
comment. For each request it keeps the counted comments sorted by (created, id), a count per
person and per place; and, sorted likewise, every filing the ranking learns from. A request's
summary then costs what it shows (its newest few, its first few people, its main places), and
the latest filings are the end of one sorted list, whatever the store's size (issue 19).
"""

from __future__ import annotations

import bisect
import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from comments_service.store.request_summaries import (
    Place,
    RequestFiling,
    RequestSummary,
    first_of_each,
    is_counted,
    is_learned,
    summarize,
    top_places,
    window_start,
)

Key = tuple[str, str]  # (created, id)


def _remove_sorted(ordered: list[Key], key: Key) -> None:
    position = bisect.bisect_left(ordered, key)
    if position < len(ordered) and ordered[position] == key:
        del ordered[position]


def _step(counts: Counter, key: object, step: int) -> None:
    counts[key] += step
    if counts[key] <= 0:
        del counts[key]


class RequestIndex:
    """Readers' comments whose request is set, and each request's running summary."""

    def __init__(self) -> None:
        self.filings: dict[str, RequestFiling] = {}  # every one, by comment id
        self.of_request: dict[str, set[str]] = {}  # comment ids by request, any state
        self.counted: dict[str, list[Key]] = {}  # request.is_counted ones, sorted
        self.people: dict[str, Counter[str]] = {}  # person → counted comments
        self.places: dict[str, Counter[Place]] = {}  # place → counted comments
        self.learned: list[Key] = []  # every request_summaries.is_learned filing, sorted
        # Each request's main places as last worked out, with its count of changes then:
        # ranking a request's places costs its places, so it is redone only after a change.
        self.changes: Counter[str] = Counter()
        # Writes of learned filings taken in or let go since this object was made: with the
        # object itself, the store's requests_version (a new object is a new count).
        self.learned_writes = 0
        self._main_places: dict[str, tuple[int, int, tuple[tuple[Place, int], ...]]] = {}

    def add(self, filing: RequestFiling, *, append: bool = False) -> None:
        """Take in a comment (``append``: at the ends of the sorted lists, sorted later)."""
        put: Callable[[list[Key], Key], None] = list.append if append else bisect.insort
        self.filings[filing.id] = filing
        self.of_request.setdefault(filing.request, set()).add(filing.id)
        if is_counted(filing):
            self.changes[filing.request] += 1
            put(self.counted.setdefault(filing.request, []), filing.order)
            self.people.setdefault(filing.request, Counter())[filing.person] += 1
            self.places.setdefault(filing.request, Counter())[
                filing.thread, filing.question] += 1
        if is_learned(filing):
            self.learned_writes += 1
            put(self.learned, filing.order)

    def remove(self, comment_id: str) -> None:
        """Let go of a comment taken in before (nothing when it was not)."""
        filing = self.filings.pop(comment_id, None)
        if filing is None:
            return
        ids = self.of_request.get(filing.request, set())
        ids.discard(comment_id)
        if not ids:
            self.of_request.pop(filing.request, None)
        if is_counted(filing):
            self.changes[filing.request] += 1
            counted = self.counted.get(filing.request, [])
            _remove_sorted(counted, filing.order)
            if not counted:
                for kept in (self.counted, self.people, self.places, self.changes,
                             self._main_places):
                    kept.pop(filing.request, None)
            else:
                _step(self.people[filing.request], filing.person, -1)
                _step(self.places[filing.request], (filing.thread, filing.question), -1)
        if is_learned(filing):
            self.learned_writes += 1
            _remove_sorted(self.learned, filing.order)

    def sort(self) -> None:
        """Sort what ``add(append=True)`` left unsorted."""
        for ordered in (*self.counted.values(), self.learned):
            ordered.sort()

    def listed(self, requests: Iterable[str] | None) -> list[RequestFiling]:
        if requests is None:
            return list(self.filings.values())
        return [self.filings[comment_id] for request in dict.fromkeys(requests)
                for comment_id in self.of_request.get(request, ())]

    def summaries(self, merged: Mapping[str, str], *, newest: int, firsts: int, places: int
                  ) -> dict[str, RequestSummary]:
        """CommentStore.request_summaries from the running counts: a request merged into
        another (rare) is summed up from its comments with the others of its target."""
        targets: dict[str, list[str]] = {}
        for request in self.counted:
            targets.setdefault(merged.get(request, request), []).append(request)
        found: dict[str, RequestSummary] = {}
        for target, requests in targets.items():
            if len(requests) > 1:
                every = heapq.merge(*(self.counted[request] for request in requests))
                found[target] = summarize([self.filings[key[1]] for key in every],
                                          newest=newest, firsts=firsts, places=places)
                continue
            [request] = requests
            ordered = self.counted[request]
            found[target] = RequestSummary(
                people=len(self.people[request]), filed=len(ordered),
                newest=tuple(self.filings[key[1]] for key in ordered[-newest:])
                if newest else (),
                firsts=first_of_each((self.filings[key[1]] for key in ordered), firsts),
                places=self._top_places(request, places),
                place_count=len(self.places[request]))
        return found

    def _top_places(self, request: str, count: int) -> tuple[tuple[Place, int], ...]:
        changes = self.changes[request]
        kept = self._main_places.get(request)
        if kept is None or kept[:2] != (changes, count):
            kept = (changes, count, top_places(self.places[request], count))
            self._main_places[request] = kept
        return kept[2]

    def version(self) -> tuple[object, int]:
        """CommentStore.requests_version: every write of a filed comment goes through
        :meth:`remove` and :meth:`add` (an index line each, whichever process wrote it)."""
        return (self, self.learned_writes)

    def latest_learned(self, newest: int, step: int) -> list[RequestFiling]:
        """CommentStore.learned_filings: the end of the sorted list."""
        start = window_start(len(self.learned), newest, step)
        return [self.filings[key[1]] for key in self.learned[start:]]
