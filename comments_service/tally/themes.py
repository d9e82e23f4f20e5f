"""Themes in the readers' answers to each reflection question, for the author's brainstorming:
the answers to one question clustered by the words they share (/moderate/requests/themes).

Unlike request groups these are worked out afresh for each page and never stored.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from comments_service.comments.render import plain_text
from comments_service.manifest import Manifest
from comments_service.models import Comment, CommentState
from comments_service.store import CommentStore
from comments_service.tally.grouper import MAX_CHARS, LexicalEmbedder, content_words
from comments_service.tally.groups import is_reader_request_candidate
from comments_service.tally.views import count_people
from comments_service.wording import shorten

THEME_THRESHOLD = 0.3  # lexical cosine for an answer to join a theme (answers share words)
THEME_ANSWERS_LIMIT = 300  # newest answers per question clustered on the themes page
QUESTIONS_PER_PAGE = 5


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
    members: list[list[Comment]] = []
    for answer, vector in zip(answers, vectors, strict=True):
        best, best_score = None, 0.0
        for number, total in enumerate(sums):
            norm = sum(value * value for value in total.values()) ** 0.5 or 1.0
            score = sum(value * total.get(key, 0.0) for key, value in vector.items()) / norm
            if score > best_score:
                best, best_score = number, score
        if best is None or best_score < threshold or not vector:
            sums.append({})
            members.append([])
            best = len(sums) - 1
        for key, value in vector.items():
            sums[best][key] = sums[best].get(key, 0.0) + value
        members[best].append(answer)
    themes = [Theme(_theme_label(group), group) for group in members]
    themes.sort(key=lambda theme: (len(theme.answers), theme.people), reverse=True)
    return themes


def _theme_label(answers: Sequence[Comment]) -> str:
    """The content words most of the answers use (as written), else the first answer's start."""
    stems: Counter[str] = Counter()
    spelled: dict[str, Counter[str]] = {}
    for answer in answers:
        seen = set()
        for word in re.findall(r"[A-Za-z][A-Za-z'-]+", answer.body[:MAX_CHARS]):
            stem = next(iter(content_words(word)), None)
            if stem and len(stem) > 2:
                spelled.setdefault(stem, Counter())[word.lower()] += 1
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
    what it shows, whatever the store's size (issue 19)."""
    counts = sorted(store.answer_counts().items())
    pages = max(1, -(-len(counts) // QUESTIONS_PER_PAGE))
    shown = counts[(page - 1) * QUESTIONS_PER_PAGE:page * QUESTIONS_PER_PAGE]
    found = []
    for (thread, question_id), _count in shown:
        comments = [comment for comment in newest_answers(store, thread, question_id)
                    if is_reader_request_candidate(comment)]
        if not comments:
            continue
        article = manifest.article(thread) if manifest is not None else None
        question = article.question(question_id) if article else None
        found.append(QuestionThemes(
            thread=thread, article_title=article.title if article else thread,
            question=question.text if question else question_id, question_id=question_id,
            answers=len(comments), themes=cluster_answers(comments),
        ))
    return ThemesPage(found, len(counts), page, pages)


def newest_answers(store: CommentStore, thread: str, question: str,
                   limit: int = THEME_ANSWERS_LIMIT) -> list[Comment]:
    """The newest ``limit`` readers' answers to one question (waiting or replied), oldest
    first."""
    answers: list[Comment] = []
    for state in (CommentState.AWAITING_REPLY, CommentState.REPLIED):
        total = store.count_in_state(state, thread=thread, question=question)
        answers += store.comments_in_state(state, thread=thread, question=question,
                                           limit=limit, offset=max(0, total - limit))
    answers.sort(key=lambda comment: (comment.created, comment.id))
    return answers[-limit:]
