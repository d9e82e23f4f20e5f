"""What the requests pages show of a request: the comments the author filed there and the
distinct people behind them (the only count), the comments the machine thinks belong but the
author has not filed ("maybe also", never counted), a suggested label, where the comments came
from; and the overview of every request, most people first.

Read-only: the author's changes are actions.py, the pages themselves moderation/requests.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from comments_service.manifest import Manifest
from comments_service.models import Comment, RequestGroup
from comments_service.store import CommentStore, RequestFiling
from comments_service.store.request_summaries import RequestSummary, summarize
from comments_service.tally.grouper import request_topic
from comments_service.tally.groups import TallyStore, group_members, merged_ids, resolve

MIN_PEOPLE = 2  # the requests page lists groups asked for by at least this many people
SUGGESTED_LABEL_LIMIT = 80
SAMPLES = 3
TOP_SOURCES = 5  # places a request's comments came from, on the overview


def count_people(comments: Iterable[Comment | RequestFiling]) -> int:
    """Distinct readers: distinct reader_keys, plus one per comment without a key."""
    keys: set[str] = set()
    anonymous = 0
    for comment in comments:
        key = comment.reader_key if isinstance(comment, Comment) else comment.reader
        if key:
            keys.add(key)
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


class RequestView:
    """One group as the requests pages show it, from the store's summary of it (its people,
    first and newest comments, main places; request_summaries.py) and, on its own page, where
    each of its comments stands. The comments themselves are read when first asked for, the
    samples and the suggested label reading only the few they need, so the overview costs what
    it shows."""

    def __init__(self, group_id: str, record: RequestGroup, summary: RequestSummary | None,
                 store: CommentStore, manifest: Manifest | None = None,
                 filings: Sequence[RequestFiling] | None = None) -> None:
        self.id, self.record, self._store = group_id, record, store
        self.summary = summary  # None: nobody filed under it (only the machine's guesses)
        self.people = summary.people if summary else 0
        self.count = summary.filed if summary else 0  # comments the author filed here
        self._manifest = manifest
        if filings is not None:
            self.__dict__["members"] = list(filings)

    @cached_property
    def members(self) -> list[RequestFiling]:
        """Where each of its comments stands, oldest first: read when first asked for (its
        own page), as the overview needs only the summary."""
        return group_members(self._store, self._store.request_groups(), self.id)

    @cached_property
    def filed(self) -> list[RequestFiling]:
        """The comments the author filed here: the count, oldest first."""
        return [filing for filing in self.members if filing.filed]

    @cached_property
    def guessed(self) -> list[RequestFiling]:
        """The machine's guesses: not counted."""
        return [filing for filing in self.members if not filing.filed]

    def __repr__(self) -> str:
        return f"RequestView({self.id!r}, people={self.people}, filed={self.count})"

    def _read(self, filings: Sequence[RequestFiling]) -> list[Comment]:
        found = self._store.get_comments(filing.id for filing in filings)
        return [found[filing.id] for filing in filings if filing.id in found]

    @cached_property
    def comments(self) -> list[Comment]:
        """The comments the author filed here, oldest first (its own page)."""
        return self._read(self.filed)

    @cached_property
    def maybe(self) -> list[Comment]:
        """The machine's guesses, oldest first: never counted (its own page)."""
        return self._read(self.guessed)

    @cached_property
    def sources(self) -> list[Source]:
        """Every article and question its comments came from, most comments first (its own
        page)."""
        places = Counter((filing.thread, filing.question) for filing in self.filed)
        return _sources(places.most_common(), self._manifest)

    @property
    def top_sources(self) -> list[Source]:
        """The TOP_SOURCES places most of its comments came from (the overview shows these:
        a request asked for all over the site would list every article)."""
        places = self.summary.places[:TOP_SOURCES] if self.summary else ()
        return _sources(places, self._manifest)

    @property
    def more_sources(self) -> int:
        """How many places the overview leaves out."""
        return max(0, self.summary.place_count - TOP_SOURCES) if self.summary else 0

    def _first(self) -> list[RequestFiling]:
        """The comment its suggested label comes from: the first filed, else the first guess."""
        return [self.summary.first] if self.summary else self.guessed[:1]

    @cached_property
    def suggested(self) -> str:
        return suggested_label(self._read(self._first()))

    @property
    def label(self) -> str:
        return self.record.label or self.suggested

    @property
    def first_seen(self) -> str:
        return self.summary.first.created if self.summary else self.guessed[0].created

    @property
    def last_seen(self) -> str:
        return self.summary.last.created if self.summary else self.guessed[-1].created

    @cached_property
    def samples(self) -> list[Comment]:
        """Up to SAMPLES comments, one per person first."""
        return self._read(self._sample_filings())

    def _sample_filings(self) -> list[RequestFiling]:
        return list(self.summary.firsts[:SAMPLES]) if self.summary else []


def read_shown(store: CommentStore, views: Sequence[RequestView]) -> None:
    """Read the comments a list of requests shows (each one's samples and the comment its
    suggested label comes from) in one call to the store, not two per request."""
    wanted = {view.id: (view._sample_filings(), view._first()) for view in views}
    read = store.get_comments(dict.fromkeys(filing.id for samples, first in wanted.values()
                                            for filing in (*samples, *first)))
    for view in views:
        samples, first = wanted[view.id]
        # What the cached properties would have read, one by one.
        view.__dict__["samples"] = [read[f.id] for f in samples if f.id in read]
        view.__dict__["suggested"] = suggested_label([read[f.id] for f in first if f.id in read])


def _sources(places: Sequence[tuple[tuple[str, str | None], int]],
             manifest: Manifest | None) -> list[Source]:
    """Sources from ((thread, question id), comments) pairs, in that order."""
    sources = []
    for (thread, question_id), count in places:
        article = manifest.article(thread) if manifest is not None else None
        question = article.question(question_id) if article and question_id else None
        sources.append(Source(
            thread=thread, title=article.title if article else thread,
            url=article.url if article else None,
            question=(question.text if question else question_id) if question_id else None,
            count=count,
        ))
    return sources


def overview(store: TallyStore, manifest: Manifest | None = None,
             min_people: int = MIN_PEOPLE) -> list[RequestView]:
    """Requests the author filed ``min_people`` or more people under (at least one), most
    people first, then most recent: from the store's summaries, one per request."""
    groups = store.request_groups()
    summaries = store.request_summaries(merged_ids(groups), newest=1, firsts=SAMPLES,
                                        places=TOP_SOURCES)
    views = [RequestView(group_id, groups.get(group_id, RequestGroup(group_id)), summary,
                         store, manifest)
             for group_id, summary in summaries.items() if summary.people >= min_people]
    views.sort(key=lambda view: (view.people, view.last_seen), reverse=True)
    return views


def request_view(store: TallyStore, group_id: str, manifest: Manifest | None = None
                 ) -> RequestView | None:
    """One request (merges followed), or None when it has no comments and no record: reads
    where its own comments stand, not every request's."""
    groups = store.request_groups()
    group_id = resolve(groups, group_id)
    members = group_members(store, groups, group_id)
    if not members and group_id not in groups:
        return None
    filed = [filing for filing in members if filing.filed]
    summary = summarize(filed, newest=1, firsts=SAMPLES, places=TOP_SOURCES) if filed else None
    return RequestView(group_id, groups.get(group_id, RequestGroup(group_id)), summary, store,
                       manifest, members)
