"""What the requests pages show of a group: its comments, distinct people, a suggested label,
where the comments came from; and the overview of every group, most people first.

Read-only: the author's changes are actions.py, the pages themselves moderation/requests.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from comments_service.manifest import Manifest
from comments_service.models import Comment, RequestGroup
from comments_service.store import RequestStore
from comments_service.tally.grouper import request_topic
from comments_service.tally.groups import group_members, resolve

MIN_PEOPLE = 2  # the requests page lists groups asked for by at least this many people
SUGGESTED_LABEL_LIMIT = 80
SAMPLES = 3


def count_people(comments: Iterable[Comment]) -> int:
    """Distinct readers: distinct reader_keys, plus one per comment without a key."""
    keys: set[str] = set()
    anonymous = 0
    for comment in comments:
        if comment.reader_key:
            keys.add(comment.reader_key)
        else:
            anonymous += 1
    return len(keys) + anonymous


def suggested_label(comments: Sequence[Comment]) -> str:
    """A short phrase: the first comment's request topic (grouper.py), else its first words."""
    if not comments:
        return "(empty)"
    first = comments[0]
    text = request_topic(first.body, first.question) or first.body
    text = " ".join(text.split()).strip(" ?!.,;:-") or " ".join(first.body.split())
    if len(text) > SUGGESTED_LABEL_LIMIT:
        text = text[:SUGGESTED_LABEL_LIMIT].rsplit(" ", 1)[0] + "…"
    return text[:1].upper() + text[1:] if text else "(empty)"


@dataclass(frozen=True)
class Source:
    """Where a group's comments came from: an article, or one of its questions."""

    thread: str
    title: str
    url: str | None
    question: str | None  # the question's text
    count: int


@dataclass
class RequestView:
    """One group as the requests pages show it."""

    id: str
    record: RequestGroup
    comments: list[Comment]  # oldest first
    people: int
    suggested: str
    sources: list[Source] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.record.label or self.suggested

    @property
    def first_seen(self) -> str:
        return self.comments[0].created

    @property
    def last_seen(self) -> str:
        return self.comments[-1].created

    @property
    def samples(self) -> list[Comment]:
        """Up to SAMPLES comments, one per person first."""
        picked, seen = [], set()
        for comment in self.comments:
            key = comment.reader_key or comment.id
            if key not in seen:
                seen.add(key)
                picked.append(comment)
            if len(picked) == SAMPLES:
                break
        return picked


def _sources(comments: Sequence[Comment], manifest: Manifest | None) -> list[Source]:
    counted = Counter((comment.thread, comment.question) for comment in comments)
    sources = []
    for (thread, question_id), count in counted.most_common():
        article = manifest.article(thread) if manifest is not None else None
        question = article.question(question_id) if article and question_id else None
        sources.append(Source(
            thread=thread, title=article.title if article else thread,
            url=article.url if article else None,
            question=(question.text if question else question_id) if question_id else None,
            count=count,
        ))
    return sources


def overview(store: RequestStore, manifest: Manifest | None = None,
             min_people: int = MIN_PEOPLE) -> list[RequestView]:
    """Groups asked for by ``min_people`` or more, most people first, then most recent."""
    groups = store.request_groups()
    views = []
    for group_id, comments in group_members(store, groups).items():
        people = count_people(comments)
        if people >= min_people:
            views.append(RequestView(
                id=group_id, record=groups.get(group_id, RequestGroup(group_id)),
                comments=comments, people=people, suggested=suggested_label(comments),
                sources=_sources(comments, manifest),
            ))
    views.sort(key=lambda view: (view.people, view.last_seen), reverse=True)
    return views


def request_view(store: RequestStore, group_id: str, manifest: Manifest | None = None
                 ) -> RequestView | None:
    """One group (merges followed), or None when it has no comments and no record."""
    groups = store.request_groups()
    group_id = resolve(groups, group_id)
    comments = group_members(store, groups).get(group_id, [])
    if not comments and group_id not in groups:
        return None
    return RequestView(
        id=group_id, record=groups.get(group_id, RequestGroup(group_id)), comments=comments,
        people=count_people(comments), suggested=suggested_label(comments),
        sources=_sources(comments, manifest),
    )

