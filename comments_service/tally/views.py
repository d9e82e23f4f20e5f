"""What the requests pages show of a request: the comments the author filed there and the
distinct people behind them (the only count), the comments the machine thinks belong but the
author has not filed ("maybe also", never counted), a suggested label, where the comments came
from; and the overview of every request, most people first.

Read-only: the author's changes are actions.py, the pages themselves moderation/requests.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
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
    comments: list[Comment]  # filed by the author, oldest first: the count
    people: int
    suggested: str
    sources: list[Source] = field(default_factory=list)
    maybe: list[Comment] = field(default_factory=list)  # the machine's guesses, not counted

    @property
    def label(self) -> str:
        return self.record.label or self.suggested

    @property
    def first_seen(self) -> str:
        return (self.comments or self.maybe)[0].created

    @property
    def last_seen(self) -> str:
        return (self.comments or self.maybe)[-1].created

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


def _view(group_id: str, groups: Mapping[str, RequestGroup], members: Sequence[Comment],
          manifest: Manifest | None) -> RequestView:
    filed = [comment for comment in members if comment.request_filed]
    maybe = [comment for comment in members if not comment.request_filed]
    return RequestView(
        id=group_id, record=groups.get(group_id, RequestGroup(group_id)), comments=filed,
        people=count_people(filed), suggested=suggested_label(filed or maybe),
        sources=_sources(filed, manifest), maybe=maybe,
    )


def overview(store: RequestStore, manifest: Manifest | None = None,
             min_people: int = MIN_PEOPLE) -> list[RequestView]:
    """Requests the author filed ``min_people`` or more people under (at least one), most
    people first, then most recent."""
    groups = store.request_groups()
    views = [_view(group_id, groups, members, manifest)
             for group_id, members in group_members(store, groups).items()]
    views = [view for view in views if view.people >= max(min_people, 1)]
    views.sort(key=lambda view: (view.people, view.last_seen), reverse=True)
    return views


def request_view(store: RequestStore, group_id: str, manifest: Manifest | None = None
                 ) -> RequestView | None:
    """One request (merges followed), or None when it has no comments and no record."""
    groups = store.request_groups()
    group_id = resolve(groups, group_id)
    members = group_members(store, groups).get(group_id, [])
    if not members and group_id not in groups:
        return None
    return _view(group_id, groups, members, manifest)

