"""Ranking the requests a reader's comment may belong to: the machine ranks, the author judges.

A comment is compared with every request the author has filed comments under, through the
members the author filed there (its nearest member: one close paraphrase is evidence enough,
where a centroid would blur a request asked for in several ways). The five best come first,
each with its label, the distinct people filed under it and the score.

One suggestion is preselected only when its score passes this site's own threshold, fitted to
the author's filings so far: each filed comment, in the order it came, is ranked against the
requests filed before it, and the threshold is the lowest score above which the first
suggestion was the author's choice at least TARGET_PRECISION of the time (filings as "not a
request" count as wrong preselections). With fewer than MIN_EXAMPLES such comments nothing is
preselected: no manual tuning, and no guessing on a new site.

When no request is preselected and the request detector (grouper.request_sentences) finds
nothing asked for in the comment, "not a request" is preselected instead, once this site's
filings show the detector can be trusted here: of at least MIN_EXAMPLES filed comments it found
no request in, the author filed at least TARGET_PRECISION as not a request. Most comments ask
for nothing (thanks, stories, answers to the article's questions), so this is where most of the
author's keystrokes go (docs/TALLY.md, the triage benchmark).

Vectors come from the configured embedder (embedders.py), each text's encoded once and kept in
the store (vectors.py). The replay behind the threshold is cached, filing by filing: a
filing's outcome depends only on it and the filings before it, so a new filing costs one more
ranking, not a replay of them all (which made ranking the n-th comment O(n²), and a site's
whole history O(n³)).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from comments_service.models import Comment, RequestGroup
from comments_service.tally.embedders import configured_embedder, embedder_named
from comments_service.tally.grouper import request_topic
from comments_service.tally.groups import (
    MOVED_OUT,
    TallyStore,
    merged_ids,
    resolve,
)
from comments_service.tally.vectors import stored
from comments_service.tally.views import suggested_label

NOT_A_REQUEST = "none"  # the filing choice (filing.NONE), when it is preselected
MAX_SUGGESTIONS = 5
TARGET_PRECISION = 0.95
MIN_EXAMPLES = 8  # comments that joined an earlier request, before anything is preselected
TEXT_CACHE_SIZE = 20_000  # texts whose compared part and digest are kept
REPLAY_CACHE_SIZE = 100_000  # filings' outcomes kept (a few hundred bytes each)
# What a ranking reads stays the same whatever the store's size (issue 19): the newest filed
# comments of each request it compares with, and the latest filings the threshold is fitted
# on, moved on in steps. Both are above what the labelled data needs (docs/TALLY.md).
RANKED_MEMBERS = 30
REPLAYED_FILINGS = 600
REPLAY_STEP = 100
SITES_KEPT = 4  # sites' (stores') members and thresholds kept per process


@dataclass(frozen=True)
class Suggestion:
    """A request a comment may belong to."""

    id: str
    label: str
    people: int
    score: float


@dataclass(frozen=True)
class Ranking:
    """The best requests for one comment, and what to preselect: a request id, NOT_A_REQUEST,
    or None (the author chooses)."""

    suggestions: list[Suggestion]
    preselected: str | None
    threshold: float | None


Outcome = tuple[float, bool] | tuple[()]  # (best score, right?); () when nothing to rank


class _Recent:
    """Results by key, the least recently used dropped beyond ``size``. Thread-safe."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The kept result, or None."""
        with self._lock:
            outcome = self._cache.get(key)
            if outcome is not None:
                self._cache.move_to_end(key)
            return outcome

    def put(self, key: Hashable, outcome: Any) -> None:
        with self._lock:
            self._cache[key] = outcome
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)


# The replay's outcome of each filing, by embedder and a digest of the filings up to it (ids,
# the requests they were filed under, the compared texts).
_outcomes = _Recent(REPLAY_CACHE_SIZE)
# What every page of the queue shares, kept while what it is made of is the same (keyed by
# the very texts and requests, so a change of any is a new key): the filed members encoded
# for comparing, and the threshold with the detector's trust fitted on the latest filings.
# Between two filings, a page then costs what it shows, whatever the store's size.
_members_made = _Recent(SITES_KEPT)
_fitted = _Recent(SITES_KEPT)
# Each store's SiteRequests, with the key it was read under (site_requests).
_sites: weakref.WeakKeyDictionary[Any, tuple[Hashable, SiteRequests]] = \
    weakref.WeakKeyDictionary()
_sites_lock = threading.Lock()
# What rank_many works out of a SiteRequests, by embedder and groups (_worked_out).
_derived: weakref.WeakKeyDictionary[SiteRequests, dict[Hashable, Any]] = \
    weakref.WeakKeyDictionary()


@lru_cache(maxsize=TEXT_CACHE_SIZE)
def _compared(body: str, question: str | None) -> tuple[str, str, bool]:
    """What is compared of a comment: the part that asks for something (without the
    politeness), else all of it; its digest; and whether the detector found a request in it.
    Worked out once per text."""
    topic = request_topic(body, question)
    text = topic or body
    return text, _digest(text), topic is not None


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def similarity(first: Any, second: Any) -> float:
    """Cosine of two unit vectors: sparse (lexical: dicts) or dense (the model: sequences)."""
    if isinstance(first, dict):
        if len(first) > len(second):
            first, second = second, first
        return sum(value * second.get(key, 0.0) for key, value in first.items())
    return float(np.dot(np.asarray(first, dtype=np.float32),
                        np.asarray(second, dtype=np.float32)))


@dataclass(frozen=True, eq=False)
class SiteRequests:
    """What ranking reads of the site's requests, bounded whatever the store's size: each
    request's newest RANKED_MEMBERS filed comments (compared with), its first one (for the
    suggested label) and its count of people; and the window of the author's latest filings
    the threshold is fitted on (REPLAYED_FILINGS, moved on REPLAY_STEP at a time so that the
    cached outcomes stay valid between steps)."""

    members: dict[str, list[Comment]]
    labels: dict[str, str]
    people: dict[str, int]
    filings: list[Comment]


def site_requests(store: TallyStore, groups: Mapping[str, RequestGroup]) -> SiteRequests:
    """The site's requests as ranking needs them, from the store's summaries of them and its
    latest filings, reading only those comments' text; kept per store while its
    requests_version and the groups' records stay the same."""
    key = (store.requests_version(), tuple(sorted(groups.items())))
    with _sites_lock:
        kept = _sites.get(store)
    if kept is not None and kept[0] == key:
        return kept[1]
    site = _read_site_requests(store, groups)
    with _sites_lock:
        _sites[store] = (key, site)
    return site


def _read_site_requests(store: TallyStore, groups: Mapping[str, RequestGroup]
                        ) -> SiteRequests:
    summaries = store.request_summaries(merged_ids(groups), newest=RANKED_MEMBERS, firsts=1,
                                        places=0)
    window = store.learned_filings(REPLAYED_FILINGS, REPLAY_STEP)
    read = store.get_comments([filing.id for summary in summaries.values()
                               for filing in (*summary.newest, summary.first)]
                              + [filing.id for filing in window])
    members = {request_id: listed for request_id, summary in summaries.items()
               if (listed := [read[filing.id] for filing in summary.newest
                              if filing.id in read])}
    labels = {request_id: (groups[request_id].label if request_id in groups
                           and groups[request_id].label
                           else suggested_label([read[summary.first.id]]
                                                if summary.first.id in read
                                                else members.get(request_id, [])))
              for request_id, summary in summaries.items()}
    return SiteRequests(members, labels,
                        {request_id: summary.people for request_id, summary in summaries.items()},
                        [read[filing.id] for filing in window if filing.id in read])


class _Members:
    """Filed comments encoded once (and, for the model's vectors, stacked into one matrix),
    for comparing many comments with the same members: a page of the queue."""

    def __init__(self, embedder: Any, requests: Mapping[str, Sequence[Comment]]) -> None:
        pairs = [(request_id, member) for request_id, filed in requests.items()
                 for member in filed]
        self.requests = [request_id for request_id, _member in pairs]
        self.ids = [member.id for _request_id, member in pairs]
        vectors = embedder.encode([_compared(member.body, member.question)[0]
                                   for _request_id, member in pairs]) if pairs else []
        dense = bool(vectors) and not isinstance(vectors[0], dict)
        self.vectors: Any = np.stack(vectors) if dense else vectors
        # Where each request's members start (for the model's vectors), in request order.
        self.order = list(dict.fromkeys(self.requests))
        self.starts = [self.requests.index(request_id) for request_id in self.order]
        self.places: dict[str, list[int]] = {}  # member id → its rows (one per request)
        for number, member_id in enumerate(self.ids):
            self.places.setdefault(member_id, []).append(number)

    @classmethod
    def of(cls, embedder: Any, requests: Mapping[str, Sequence[Comment]]) -> _Members:
        """The members of ``requests`` encoded, made once while they stay the same."""
        key = (embedder.name, tuple((request_id, member.id, member.body, member.question)
                                    for request_id, filed in requests.items()
                                    for member in filed))
        made = _members_made.get(key)
        if made is None:
            made = cls(embedder, requests)
            _members_made.put(key, made)
        return made

    def scores(self, embedder: Any, comment: Comment) -> dict[str, float]:
        """Request id → the similarity of ``comment`` to its nearest filed member (itself
        left out)."""
        return self.scores_many(embedder, [comment])[0]

    def scores_many(self, embedder: Any, comments: Sequence[Comment]
                    ) -> list[dict[str, float]]:
        """:meth:`scores` of each of ``comments`` (a page of the queue: encoded together)."""
        if not self.ids or not comments:
            return [{} for _comment in comments]
        vectors = embedder.encode([_compared(comment.body, comment.question)[0]
                                   for comment in comments])
        if isinstance(vectors[0], dict):
            return [self._sparse_scores(vector, comment)
                    for vector, comment in zip(vectors, comments, strict=True)]
        # The model's vectors: one product of every member with every comment, then each
        # request's best, the members of a request being next to each other. BLAS on one
        # thread: threaded, a product this small costs ~15x more on a busy machine.
        from comments_service.tally.encoder import one_blas_thread

        with one_blas_thread:
            products = np.matmul(self.vectors, np.stack(vectors).astype(np.float32).T)
        found = []
        for column, comment in enumerate(comments):
            similarities = products[:, column]
            similarities[self.places.get(comment.id, [])] = -np.inf
            best = np.maximum.reduceat(similarities, self.starts)
            found.append({request_id: float(score) for request_id, score
                          in zip(self.order, best.tolist(), strict=True) if score != -np.inf})
        return found

    def _sparse_scores(self, vector: dict[str, float], comment: Comment) -> dict[str, float]:
        scores: dict[str, float] = {}
        for request_id, member_id, other in zip(self.requests, self.ids, self.vectors,
                                                strict=True):
            if member_id != comment.id:
                score = similarity(vector, other)
                scores[request_id] = max(score, scores.get(request_id, -1.0))
        return scores


def _scores(embedder: Any, comment: Comment, requests: Mapping[str, Sequence[Comment]]
            ) -> dict[str, float]:
    """Request id → the similarity of ``comment`` to its nearest filed member."""
    return _Members(embedder, requests).scores(embedder, comment)


def rank(store: TallyStore, comment: Comment, embedder: Any = None) -> Ranking:
    """The requests ``comment`` may belong to, best first (at most MAX_SUGGESTIONS)."""
    return rank_many(store, [comment], embedder)[0]


def rank_many(store: TallyStore, comments: Sequence[Comment], embedder: Any = None,
              site: SiteRequests | None = None,
              groups: Mapping[str, RequestGroup] | None = None) -> list[Ranking]:
    """:func:`rank` for several comments (a page of the queue): what they share (the site's
    requests, filings and threshold) is worked out once (``site`` and ``groups``: by the
    caller, who read them for the same page)."""
    embedder = stored(embedder or embedder_named(configured_embedder()), store)
    groups = store.request_groups() if groups is None else groups
    site = site_requests(store, groups) if site is None else site
    threshold, trusted, members = _worked_out(embedder, site, groups)
    rankings = []
    for comment, scored in zip(comments, members.scores_many(embedder, comments), strict=True):
        rejected = {resolve(groups, request_id) for request_id in comment.rejected_requests}
        scores = {request_id: score for request_id, score in scored.items()
                  if request_id not in rejected}
        best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:MAX_SUGGESTIONS]
        suggestions = [Suggestion(id=request_id, label=site.labels[request_id],
                                  people=site.people[request_id], score=round(score, 4))
                       for request_id, score in best]
        preselected = (suggestions[0].id if suggestions and threshold is not None
                       and suggestions[0].score >= threshold else None)
        if preselected is None and trusted and not asks_for_something(comment):
            preselected = NOT_A_REQUEST
        rankings.append(Ranking(suggestions, preselected, threshold))
    return rankings


def _worked_out(embedder: Any, site: SiteRequests, groups: Mapping[str, RequestGroup]
                ) -> tuple[float | None, bool, _Members]:
    """The threshold, the detector's trust and the encoded members of ``site``: kept with
    the site object itself, which site_requests hands out again while nothing changed (so
    that a page does not even build the keys of the memos below)."""
    key = (embedder.name, tuple(sorted(groups.items())))
    with _sites_lock:
        kept = _derived.setdefault(site, {}).get(key)
    if kept is None:
        kept = (*_fitted_on(embedder, site.filings, groups), _Members.of(embedder, site.members))
        with _sites_lock:
            _derived[site][key] = kept
    return kept


def _fitted_on(embedder: Any, filings: Sequence[Comment], groups: Mapping[str, RequestGroup]
               ) -> tuple[float | None, bool]:
    """The threshold and whether the detector is trusted, on ``filings``: worked out once
    while the filings (their texts, and the requests they are in now) stay the same."""
    key = (embedder.name, tuple(
        (filing.id, filing.body, filing.question,
         None if filing.request == MOVED_OUT else resolve(groups, filing.request or ""))
        for filing in filings))
    fitted = _fitted.get(key)
    if fitted is None:
        fitted = (threshold_for(_replay(embedder, filings, groups)), detector_trusted(filings))
        _fitted.put(key, fitted)
    return fitted


def asks_for_something(comment: Comment) -> bool:
    """Whether the request detector finds a request in the comment."""
    return _compared(comment.body, comment.question)[2]


def detector_trusted(filings: Sequence[Comment], precision: float = TARGET_PRECISION,
                     minimum: int = MIN_EXAMPLES) -> bool:
    """Whether, on this site's ``filings``, the comments the detector found no request in were
    filed as not a request at least ``precision`` of the time, over at least ``minimum``."""
    unasked = [filing.request == MOVED_OUT for filing in filings if not asks_for_something(filing)]
    return len(unasked) >= minimum and sum(unasked) / len(unasked) >= precision


def _replay(embedder: Any, filings: Sequence[Comment], groups: Mapping[str, RequestGroup]
            ) -> list[tuple[float, bool]]:
    """(best score, was it the author's choice) for each filing that had requests before it.

    A filing's outcome is looked up by a digest of it and every filing before it, so only the
    filings after the first change (a new one, a refiling, an edit, a merge) are ranked again."""
    earlier: dict[str, list[Comment]] = {}
    outcomes = []
    chain = ""
    for filing in filings:
        chosen = (None if filing.request == MOVED_OUT
                  else resolve(groups, filing.request or ""))
        step = f"{chain} {filing.id}:{chosen}:{_compared(filing.body, filing.question)[1]}"
        chain = _digest(step)
        key = (embedder.name, chain)
        outcome = _outcomes.get(key)
        if outcome is None:
            scores = _scores(embedder, filing, earlier)
            outcome = ()
            if scores:
                best_id, best = max(scores.items(), key=lambda item: (item[1], item[0]))
                outcome = (best, best_id == chosen)
            _outcomes.put(key, outcome)
        if outcome:
            outcomes.append(outcome)
        if chosen is not None:
            earlier.setdefault(chosen, []).append(filing)
    return outcomes


def threshold_for(outcomes: Sequence[tuple[float, bool]],
                  precision: float = TARGET_PRECISION,
                  minimum: int = MIN_EXAMPLES) -> float | None:
    """The lowest score above which (inclusive) the best suggestion was right at least
    ``precision`` of the time, over at least ``minimum`` outcomes; None when no score does."""
    ranked = sorted(outcomes, key=lambda outcome: -outcome[0])
    right = 0
    threshold = None
    for count, (score, correct) in enumerate(ranked, start=1):
        right += correct
        if count >= minimum and right / count >= precision:
            threshold = score
    return threshold
