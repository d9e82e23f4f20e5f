"""Themes in the readers' answers to each reflection question, for the author's brainstorming:
the answers to one question clustered by the words they share (/moderate/requests/themes).

Unlike request groups these are never stored: each process works a question's themes out
when it first shows them and keeps them while the answers they came from stay unchanged
(:class:`KeptThemes`), so a page shown again costs what it shows, not a clustering.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from comments_service.comments.render import plain_text
from comments_service.manifest import Manifest
from comments_service.models import Comment
from comments_service.store import CommentStore
from comments_service.tally.grouper import (
    LEXICAL_CACHE_SIZE,
    MAX_CHARS,
    LexicalEmbedder,
    content_words,
)
from comments_service.tally.groups import is_reader_request_candidate
from comments_service.tally.views import count_people
from comments_service.wording import shorten

THEME_THRESHOLD = 0.3  # lexical cosine for an answer to join a theme (answers share words)
THEME_ANSWERS_LIMIT = 300  # newest answers per question clustered on the themes page
QUESTIONS_PER_PAGE = 5
# Answers whose questions' themes a process keeps (KeptThemes), about 50 questions' worth at
# the most answers a question's themes are worked out from; the comments themselves are
# mostly the ones store/kept.py keeps anyway.
KEPT_ANSWERS = 15_000


@dataclass
class Theme:
    """Answers that share words, under the words they share."""

    label: str  # the words the answers share
    answers: list[Comment]

    @property
    def people(self) -> int:
        return count_people(self.answers)


@dataclass
class QuestionThemes:
    """One question's answers, in themes."""

    thread: str
    article_title: str
    question: str  # the question's text
    question_id: str
    answers: int
    themes: list[Theme]


def cluster_answers(answers: Sequence[Comment], threshold: float = THEME_THRESHOLD
                    ) -> list[Theme]:
    """Answers grouped by the words they share (grouper.py's lexical vectors, each answer to the
    most similar theme centroid at or above ``threshold``, else a theme of its own): for
    brainstorming, largest themes first.

    The scores come from numpy, one product an answer (:class:`_Scores`); where two themes'
    scores, or the best and the threshold, are too close for numpy's rounding to decide, they
    are summed again in Python as they always were, so the themes are the same to the last
    bit as when every score was a Python sum (tests/test_themes_kept.py)."""
    vectors = LexicalEmbedder().encode([answer.body for answer in answers])
    scores = _Scores(vectors)
    members: list[list[Comment]] = []
    for answer, vector in zip(answers, vectors, strict=True):
        best, best_score = scores.best(vector, threshold)
        if best is None or best_score < threshold or not vector:
            members.append([])
            best = len(members) - 1
        scores.add(best, vector)
        members[best].append(answer)
    themes = [Theme(_theme_label(group), group) for group in members]
    themes.sort(key=lambda theme: (len(theme.answers), theme.people), reverse=True)
    return themes


# Scores closer than this to each other or to the threshold are summed again in Python: numpy
# sums in another order, which moves a score by about 1e-16, never by this much.
_TOO_CLOSE = 1e-9


class _Scores:
    """Every theme's sum over the features found in two answers or more (the only ones two
    answers can share) as rows of a matrix, with each sum's squared norm, so that an answer
    is scored against every theme at once."""

    def __init__(self, vectors: Sequence[dict[str, float]]) -> None:
        seen = Counter(key for vector in vectors for key in vector)
        shared = [key for key, count in seen.items() if count > 1]
        self._columns = {key: number for number, key in enumerate(shared)}
        self._sums = np.zeros((min(16, len(vectors)), len(shared)))
        self._squares = np.zeros(len(self._sums))
        self._themes = 0
        self._joined: list[list[dict[str, float]]] = []  # each theme's answers' vectors
        self._exact: dict[int, dict[str, float]] = {}  # Python sums of themes, until changed
        self._last: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None

    def _features(self, vector: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        columns = self._columns
        kept = [key for key in vector if key in columns]
        return (np.fromiter((columns[key] for key in kept), dtype=np.intp, count=len(kept)),
                np.fromiter((vector[key] for key in kept), dtype=np.float64, count=len(kept)))

    def best(self, vector: dict[str, float], threshold: float) -> tuple[int | None, float]:
        """The theme whose sum is most like ``vector`` (the first of equals) and its score,
        as Python sums give them; (None, 0.0) when none shares a feature."""
        places, weights = self._features(vector)
        count = self._themes
        if not count or not len(places):
            self._last = (count, places, weights, np.zeros(count))
            return None, 0.0
        dots = np.einsum("ij,j->i", self._sums[:count, places], weights)
        self._last = (count, places, weights, dots)
        norms = np.sqrt(self._squares[:count])
        scores = dots / np.where(norms > 0, norms, 1.0)
        top = float(scores.max())
        near = np.flatnonzero(scores >= top - _TOO_CLOSE)
        if top > _TOO_CLOSE and len(near) == 1 and abs(top - threshold) > _TOO_CLOSE:
            return int(near[0]), top
        # Too close to call: those themes scored as Python sums, in theme order.
        best, best_score = None, 0.0
        for number in (near if top > _TOO_CLOSE else np.flatnonzero(scores > 0)):
            total = self._exact_sum(int(number))
            norm = sum(value * value for value in total.values()) ** 0.5 or 1.0
            score = sum(value * total.get(key, 0.0) for key, value in vector.items()) / norm
            if score > best_score:
                best, best_score = int(number), score
        return best, best_score

    def _exact_sum(self, theme: int) -> dict[str, float]:
        """The theme's sum as a dict, added up in the order its answers joined (the same
        floats, in the same key order, as a sum kept up to date answer by answer)."""
        total = self._exact.get(theme)
        if total is None:
            total = self._exact[theme] = {}
            for vector in self._joined[theme]:
                for key, value in vector.items():
                    total[key] = total.get(key, 0.0) + value
        return total

    def add(self, theme: int, vector: dict[str, float]) -> None:
        """``vector`` joins ``theme`` (a new one when it is the next number): after best()."""
        assert self._last is not None and self._last[0] == self._themes
        _count, places, weights, dots = self._last
        if theme == self._themes:
            self._themes += 1
            self._joined.append([])
            if self._themes > len(self._sums):
                grown = np.zeros((2 * len(self._sums), self._sums.shape[1]))
                grown[:len(self._sums)] = self._sums
                squares = np.zeros(len(grown))
                squares[:len(self._squares)] = self._squares
                self._sums, self._squares = grown, squares
            before = 0.0
        else:
            before = float(dots[theme])
        # |s + v|² = |s|² + 2 s·v + |v|²; the features of v no other answer has add to |v|²
        # only (no theme held them before).
        self._squares[theme] += 2 * before + sum(value * value for value in vector.values())
        self._sums[theme, places] += weights
        self._joined[theme].append(vector)
        self._exact.pop(theme, None)
        self._last = None


@lru_cache(maxsize=LEXICAL_CACHE_SIZE)
def _label_words(text: str) -> tuple[tuple[str, str], ...]:
    """(stem, word as written, lowercased) of each content word of ``text`` a label may use:
    kept per text, as the lexical vectors are, since the same answers are labelled again
    whenever their question's themes are worked out again."""
    found = []
    for word in re.findall(r"[A-Za-z][A-Za-z'-]+", text[:MAX_CHARS]):
        stem = next(iter(content_words(word)), None)
        if stem and len(stem) > 2:
            found.append((stem, word.lower()))
    return tuple(found)


def _theme_label(answers: Sequence[Comment]) -> str:
    """The content words most of the answers use (as written), else the first answer's start."""
    stems: Counter[str] = Counter()
    spelled: dict[str, Counter[str]] = {}
    for answer in answers:
        seen = set()
        for stem, word in _label_words(answer.body):
            words = spelled.get(stem)
            if words is None:
                words = spelled[stem] = Counter()
            words[word] += 1
            seen.add(stem)
        stems.update(seen)
    shared = [stem for stem, count in stems.most_common(3)
              if count >= max(2, (len(answers) + 1) // 2)]
    if shared:
        return ", ".join(spelled[stem].most_common(1)[0][0] for stem in shared)
    # The first answer's opening as readers see it (no Markdown marks), cut between words.
    return shorten(plain_text(answers[0].html) or answers[0].body, 60)


@dataclass
class ThemesPage:
    """One page of the themes: every question with answers (counted, not read), and the
    themes of the QUESTIONS_PER_PAGE of them this page shows."""

    questions: list[QuestionThemes]  # this page's, with their themes
    answered: int  # questions with answers, on every page
    page: int
    pages: int


def question_themes(store: CommentStore, manifest: Manifest | None, page: int = 1
                    ) -> ThemesPage:
    """The questions with answers, by article and question id; for those on ``page``, their
    newest THEME_ANSWERS_LIMIT answers grouped into themes. What a page reads is bounded by
    what it shows, whatever the store's size (issue 19): the questions are counted, not read,
    and a question whose newest answers have not changed since this process last worked out
    their themes costs a look at their ids and versions (:class:`KeptThemes`)."""
    counts = sorted(store.answer_counts().items())
    pages = max(1, -(-len(counts) // QUESTIONS_PER_PAGE))
    shown = [key for key, _count in
             counts[(page - 1) * QUESTIONS_PER_PAGE:page * QUESTIONS_PER_PAGE]]
    versions = store.answer_versions(shown, THEME_ANSWERS_LIMIT) if shown else {}
    kept = kept_themes(store)
    found = []
    for thread, question_id in shown:
        listed = versions.get((thread, question_id), [])
        worked = kept.get((thread, question_id), listed)
        if worked is None:
            # Versions first, comments after: what is read is at least as new as the versions
            # it is kept under, so a change in between costs a second working out, never a
            # stale page.
            read = store.get_comments([comment_id for comment_id, _version in listed])
            comments = [read[comment_id] for comment_id, _version in listed
                        if comment_id in read and is_reader_request_candidate(read[comment_id])]
            worked = cluster_answers(comments) if comments else []
            if len(read) == len(listed):  # else one is gone or not written yet: ask again
                kept.put((thread, question_id), listed, worked)
        if not worked:
            continue
        article = manifest.article(thread) if manifest is not None else None
        question = article.question(question_id) if article else None
        found.append(QuestionThemes(
            thread=thread, article_title=article.title if article else thread,
            question=question.text if question else question_id, question_id=question_id,
            answers=sum(len(theme.answers) for theme in worked), themes=worked,
        ))
    return ThemesPage(found, len(counts), page, pages)


def newest_answers(store: CommentStore, thread: str, question: str,
                   limit: int = THEME_ANSWERS_LIMIT) -> list[Comment]:
    """The newest ``limit`` readers' answers to one question (waiting or replied), oldest
    first."""
    listed = store.answer_versions([(thread, question)], limit).get((thread, question), [])
    read = store.get_comments([comment_id for comment_id, _version in listed])
    return [read[comment_id] for comment_id, _version in listed if comment_id in read]


class KeptThemes:
    """One process's themes of the questions it showed, each kept with the ids and versions
    of the answers it was worked out from (CommentStore.answer_versions: a version stays
    equal only while its comment is unchanged, whichever process changed it), so it is used
    only while the question's newest answers are exactly those, unchanged. Questions least
    recently shown are dropped past ``size`` answers kept in all. Thread-safe."""

    def __init__(self, size: int = KEPT_ANSWERS) -> None:
        self._size = size
        self._held = 0
        self._kept: OrderedDict[tuple[str, str],
                                tuple[list[tuple[str, object]], list[Theme]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, question: tuple[str, str], listed: list[tuple[str, object]]
            ) -> list[Theme] | None:
        """The question's kept themes, if worked out from exactly ``listed``."""
        with self._lock:
            kept = self._kept.get(question)
            if kept is None or kept[0] != listed:
                return None
            self._kept.move_to_end(question)
            return kept[1]

    def put(self, question: tuple[str, str], listed: list[tuple[str, object]],
            themes: list[Theme]) -> None:
        """Keep ``themes``, worked out from the answers ``listed`` (ids and versions)."""
        with self._lock:
            old = self._kept.pop(question, None)
            if old is not None:
                self._held -= len(old[0])
            self._kept[question] = (list(listed), themes)
            self._held += len(listed)
            while self._held > self._size and len(self._kept) > 1:
                _question, (dropped, _themes) = self._kept.popitem(last=False)
                self._held -= len(dropped)


# Each store's kept themes, for as long as the store object lives: the versions of one store
# say nothing about another's comments (two test stores may hold the same ids and entries).
_KEPT_BY_STORE: weakref.WeakKeyDictionary[CommentStore, KeptThemes] = (
    weakref.WeakKeyDictionary())
_KEPT_LOCK = threading.Lock()


def kept_themes(store: CommentStore) -> KeptThemes:
    """This process's kept themes of ``store``."""
    with _KEPT_LOCK:
        kept = _KEPT_BY_STORE.get(store)
        if kept is None:
            kept = _KEPT_BY_STORE[store] = KeptThemes()
        return kept
