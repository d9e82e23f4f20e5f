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
    brainstorming, largest themes first."""
    vectors = LexicalEmbedder().encode([answer.body for answer in answers])
    sums: list[dict[str, float]] = []
    norms: list[float] = []
    members: list[list[Comment]] = []
    # Which themes' sums hold each feature: a theme sharing none with an answer scores 0 and
    # can never be the best (features are never negative), so only the others are scored,
    # each exactly as before (same sum in the same order: the same themes, to the last bit).
    holding: dict[str, list[int]] = {}
    for answer, vector in zip(answers, vectors, strict=True):
        best, best_score = None, 0.0
        candidates = sorted({number for key in vector for number in holding.get(key, ())})
        for number in candidates:
            total = sums[number]
            score = sum(value * total.get(key, 0.0) for key, value in vector.items()
                        ) / norms[number]
            if score > best_score:
                best, best_score = number, score
        if best is None or best_score < threshold or not vector:
            sums.append({})
            norms.append(1.0)
            members.append([])
            best = len(sums) - 1
        total = sums[best]
        for key, value in vector.items():
            if key not in total:
                holding.setdefault(key, []).append(best)
            total[key] = total.get(key, 0.0) + value
        # Worked out once per change of the theme, not once per answer compared with it.
        norms[best] = sum(value * value for value in total.values()) ** 0.5 or 1.0
        members[best].append(answer)
    themes = [Theme(_theme_label(group), group) for group in members]
    themes.sort(key=lambda theme: (len(theme.answers), theme.people), reverse=True)
    return themes


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
            spelled.setdefault(stem, Counter())[word] += 1
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
