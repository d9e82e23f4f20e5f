"""What every import shares: the plan (where each comment goes, its id, parent and state), what
was skipped and why, and the write.

Rules (the same for Isso, Disqus and WordPress):

* **Threads** go to the article ``matching.ThreadMatcher`` finds: by the author's map, by
  address (path and the query that names a page), then by WordPress's ``post_name`` or the
  last part of the path when exactly one article fits. A thread that matches no article, or
  several, is listed with its comment count; its comments are not imported.
* **Skipped, never refused**: a comment that cannot be placed (its thread has no link, is not
  in the file, or matches no article; it has no id, or one seen before) is skipped and counted
  by :class:`source.Skip`, with its source id. Deleted, trashed and spam comments, pingbacks
  and trackbacks and empty comments are not imported either (counted the same way).
* **Parents**: a reply whose parent is not imported (deleted, spam) hangs under the nearest
  imported comment above it on the same article, or at the top of the thread; one whose parent
  is not in the file, or on another page, goes to the top; a loop of parents is cut. Each is
  counted.
* **Ids** are ``<source>-`` and a hash of (source, thread URL, source id): the same comment
  gets the same id on every run, so importing twice adds nothing new (the store skips ids it
  has), and two different sources cannot collide. A second database of the same source whose
  row ids overlap an earlier import's (the stored comment there has another time) gets ids
  that also hash the comment's time, so it is imported rather than taken for "present".
* **Bodies** become Markdown source (HTML sources are converted by ``markdown.py``) and are
  rendered by ``render.render_comment``: imported HTML is never stored as it came.
* **States**: the author's own comments (``--author-email`` / ``--author-name``) are
  ``posted``. A reader's comment is ``replied`` when a later comment by the author hangs below
  it (``replied_at`` = the first such reply's time), else ``awaiting_reply``: public when the
  source showed it, not public when it was pending there. ``--answered-before`` marks reader
  comments still unanswered and written before that moment as ``replied`` with ``replied_at``
  null and ``marked_answered`` true: out of the queue without a made-up reply time (the metrics
  count a replied comment without ``replied_at`` as answered in time, and add no reply time).
* **The write** comes after everything is read, checked and planned: a broken file stops the
  import before anything is stored. Comments are written one thread at a time; when the store
  fails part way, the threads written stay whole and running the same command again adds the
  rest (``WriteStopped`` says which).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from comments_service.comments.render import render_comment
from comments_service.comments.validation import MAX_BODY
from comments_service.importers.matching import Match, ThreadMatcher
from comments_service.importers.source import (
    STATUS_SKIPS,
    ImportRefused,
    Skip,
    SourceComment,
    SourceData,
    SourceThread,
)
from comments_service.manifest import Manifest
from comments_service.models import Comment, CommentState
from comments_service.store import CommentStore

__all__ = [
    "ImportOptions",
    "ImportPlan",
    "ImportRefused",
    "Unmatched",
    "WriteStopped",
    "plan_import",
    "render_plan",
    "write_plan",
]


@dataclass(frozen=True)
class ImportOptions:
    author_emails: frozenset[str] = frozenset()  # casefolded
    author_names: frozenset[str] = frozenset()  # casefolded
    answered_before: datetime | None = None  # aware

    @classmethod
    def of(cls, emails: Iterable[str] = (), names: Iterable[str] = (),
           answered_before: datetime | None = None) -> ImportOptions:
        if answered_before is not None and answered_before.tzinfo is None:
            answered_before = answered_before.replace(tzinfo=UTC)
        return cls(frozenset(e.strip().casefold() for e in emails if e.strip()),
                   frozenset(n.strip().casefold() for n in names if n.strip()),
                   answered_before)


@dataclass
class Unmatched:
    """A thread whose comments are not imported because no single article fits its URL."""

    thread: SourceThread
    comments: int = 0
    candidates: tuple[str, ...] = ()  # the articles that fit equally, when several do


@dataclass
class ImportPlan:
    """Everything an import would write, and what it would say about it."""

    data: SourceData
    new: list[Comment] = field(default_factory=list)  # to store: placed and not stored yet
    present: int = 0  # placed, and stored already (by an earlier run)
    present_elsewhere: list[str] = field(default_factory=list)  # of those: source ids stored
    # under another article than this run's (an earlier run, another map)
    rendered: bool = False  # render_plan has filled the new comments' html
    skipped: dict[Skip, list[str]] = field(default_factory=dict)  # why → source ids
    unmatched: dict[str, Unmatched] = field(default_factory=dict)  # by source thread key
    matched_threads: dict[str, str] = field(default_factory=dict)  # source key → thread
    matched_how: Counter[str] = field(default_factory=Counter)  # matching.BY_* → threads
    marked_replied: int = 0  # of the new: a later reply by the author below them
    marked_answered: int = 0  # of the new: --answered-before

    @property
    def entering_queue(self) -> int:
        return sum(1 for comment in self.new if comment.state is CommentState.AWAITING_REPLY)

    @property
    def threads_without_place(self) -> int:
        """Threads of the file that no comment can reach: no link, no id, or a clash."""
        return sum(1 for thread in self.data.threads.values() if thread.cannot_place)

    def skip(self, why: Skip, source_id: str) -> None:
        self.skipped.setdefault(why, []).append(source_id)


class WriteStopped(Exception):
    """The store failed part way through the write; ``added`` comments (whole threads) were
    stored before it did."""

    def __init__(self, error: Exception, added: int, threads_done: list[str]) -> None:
        super().__init__(str(error))
        self.error, self.added, self.threads_done = error, added, threads_done


# --- the plan -----------------------------------------------------------------------------------


def comment_id(source: str, thread_url: str, key: str) -> str:
    digest = hashlib.blake2b(f"{source}\n{thread_url}\n{key}".encode(), digest_size=9)
    return f"{source}-{digest.hexdigest()}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _placeable(plan: ImportPlan, matches: dict[str, Match]) -> dict[str, SourceComment]:
    """The comments that can be imported, by key; every other one is counted as skipped.
    What the source itself dropped (deleted, spam…) counts before where it would have gone."""
    data = plan.data
    for why, source_id in data.skipped:
        plan.skip(why, source_id)
    kept: dict[str, SourceComment] = {}
    for comment in data.comments:
        thread = data.threads.get(comment.thread)
        why = STATUS_SKIPS.get(comment.status) or (None if comment.body.strip() else Skip.EMPTY)
        if why is None:
            why = Skip.NO_THREAD if thread is None else thread.cannot_place
        if why is None and thread is not None and comment.thread not in plan.matched_threads:
            match = matches[comment.thread]
            why = Skip.AMBIGUOUS if match.candidates else Skip.UNMATCHED
            plan.unmatched.setdefault(comment.thread,
                                      Unmatched(thread, 0, match.candidates)).comments += 1
        if why is None:
            kept[comment.key] = comment
        else:
            plan.skip(why, comment.key)
    return kept


def _parents(plan: ImportPlan, kept: dict[str, SourceComment]) -> dict[str, str | None]:
    """Each kept comment's imported parent (see the module docstring), the moves counted."""
    by_key = {comment.key: comment for comment in plan.data.comments}
    articles = plan.matched_threads
    parents: dict[str, str | None] = {}
    for key, comment in kept.items():
        article = articles[comment.thread]
        parent, why, moved = None, None, False
        above, seen = comment.parent, {key}
        while above is not None:
            source_parent = by_key.get(above)
            if above in seen:
                why = Skip.PARENT_LOOP
            elif source_parent is None:
                why = Skip.PARENT_MISSING
            elif articles.get(source_parent.thread) != article:
                why = Skip.PARENT_ELSEWHERE
            elif above in kept:
                parent = above
            else:  # deleted, spam, empty: look further up
                seen.add(above)
                above, moved = source_parent.parent, True
                continue
            break
        if moved:  # the parent itself is in the file but not imported
            why = Skip.PARENT_SKIPPED
        parents[key] = parent
        if why is not None:
            plan.skip(why, key)
    # Kept comments whose parents point at each other: the oldest of each loop goes on top.
    for key in sorted(parents, key=lambda k: kept[k].created):
        seen = {key}
        above = parents[key]
        while above is not None and above not in seen:
            seen.add(above)
            above = parents[above]
        if above == key:
            parents[key] = None
            plan.skip(Skip.PARENT_LOOP, key)
    return parents


def _avoid_collisions(store: CommentStore, data: SourceData, kept: dict[str, SourceComment],
                      ids: dict[str, str], articles: dict[str, str]) -> None:
    """Give a comment whose id an earlier import already used for a *different* comment
    (another database of the same source whose row ids overlap: Isso counts from 1 in each)
    an id of its own, made from its time as well; the same comment imported again keeps its
    id (same source row, same time), so a second run still adds nothing. Done before parents
    take their children's ids, so replies follow their parent's new id."""
    stored_by_id: dict[str, Comment] = {}
    for article in set(articles.values()):
        stored_by_id.update((comment.id, comment) for comment in store.thread_comments(article))
    for key, comment in kept.items():
        stored = stored_by_id.get(ids[key]) or store.get_comment(ids[key])
        if stored is None:
            continue
        if stored.source == f"{data.source}:{key}" and stored.created == _iso(comment.created):
            continue  # this very comment, imported before
        url = data.threads[comment.thread].url
        ids[key] = comment_id(data.source, url, f"{key}\n{_iso(comment.created)}")


def _sort_stored(plan: ImportPlan, store: CommentStore, placed: list[Comment]) -> None:
    """Split the placed comments into new ones and those stored already (by id), noting
    those an earlier run stored under another article. One read per article, not one look-up
    per comment: 20 000 look-ups re-read a thread file each (more than ten minutes); only an
    id its article lacks is looked up alone."""
    in_threads = {stored.id for thread in {comment.thread for comment in placed}
                  for stored in store.thread_comments(thread)}
    for comment in placed:
        if comment.id in in_threads:
            plan.present += 1
            continue
        stored = store.get_comment(comment.id)
        if stored is None:
            plan.new.append(comment)
        else:
            plan.present += 1
            plan.present_elsewhere.append((comment.source or "").partition(":")[2])


def plan_import(data: SourceData, manifest: Manifest, store: CommentStore,
                options: ImportOptions, matcher: ThreadMatcher | None = None) -> ImportPlan:
    """Decide everything about the import without writing anything."""
    plan = ImportPlan(data)
    matcher = matcher or ThreadMatcher(manifest)
    matches: dict[str, Match] = {}
    for key, thread in data.threads.items():
        if thread.cannot_place is None:
            matches[key] = match = matcher.match(thread.url, thread.slug)
            if match.thread is not None:
                plan.matched_threads[key] = match.thread
                plan.matched_how[match.how] += 1
    kept = _placeable(plan, matches)
    parents = _parents(plan, kept)

    def is_author(comment: SourceComment) -> bool:
        return bool((comment.email and comment.email.casefold() in options.author_emails)
                    or comment.name.casefold() in options.author_names)

    authors = {key for key, comment in kept.items() if is_author(comment)}
    # The first later author comment below each comment (any depth).
    first_reply: dict[str, datetime] = {}
    for key in authors:
        reply = kept[key]
        above = parents[key]
        while above is not None:
            if above not in authors and kept[above].created < reply.created:
                current = first_reply.get(above)
                if current is None or reply.created < current:
                    first_reply[above] = reply.created
            above = parents[above]
    ids = {key: comment_id(data.source, data.threads[comment.thread].url, key)
           for key, comment in kept.items()}
    _avoid_collisions(store, data, kept, ids, plan.matched_threads)
    placed: list[Comment] = []  # html empty: render_plan fills it for the new ones
    for key, comment in kept.items():
        replied_at = None
        marked = False
        if key in authors:
            state = CommentState.POSTED
        elif key in first_reply:
            state, replied_at = CommentState.REPLIED, _iso(first_reply[key])
        elif options.answered_before is not None and comment.created < options.answered_before:
            state, marked = CommentState.REPLIED, True
        else:
            state = CommentState.AWAITING_REPLY
        body = comment.body[:MAX_BODY]
        parent = parents[key]
        placed.append(Comment(
            id=ids[key], thread=plan.matched_threads[comment.thread], name=comment.name,
            body=body, html="", created=_iso(comment.created), state=state,
            public=comment.status == "public",
            parent=ids[parent] if parent is not None else None,
            email=comment.email, website=comment.website, is_author=key in authors,
            replied_at=replied_at,
            edited_at=_iso(comment.edited) if comment.edited is not None else None,
            source=f"{data.source}:{comment.key}", marked_answered=marked,
        ))
    placed.sort(key=lambda c: (c.thread, c.created, c.id))
    _sort_stored(plan, store, placed)
    new_ids = {comment.id for comment in plan.new}
    plan.marked_replied = sum(1 for key in first_reply if ids[key] in new_ids)
    plan.marked_answered = sum(1 for c in plan.new if c.marked_answered)
    return plan


def render_plan(plan: ImportPlan, progress: Callable[[int], None] = lambda _count: None) -> None:
    """Render the new comments' bodies: apart from the plan because it is most of its time
    (20 000 comments, measured: a dry run took 9 s rendering, 3 s without) and the dry run
    needs no HTML; the import shows a bar for it."""
    rendered = []
    for comment in plan.new:
        rendered.append(replace(comment, html=render_comment(comment.body)))
        progress(1)
    plan.new, plan.rendered = rendered, True


def write_plan(store: CommentStore, plan: ImportPlan,
               progress: Callable[[int], None] = lambda _count: None) -> int:
    """Store the plan's new comments, one write per thread; returns how many were added.
    WriteStopped when the store fails part way (the threads written before stay whole)."""
    if not plan.rendered:
        render_plan(plan)
    by_thread: dict[str, list[Comment]] = {}
    for comment in plan.new:
        by_thread.setdefault(comment.thread, []).append(comment)
    added = 0
    done: list[str] = []
    for thread, comments in sorted(by_thread.items()):
        try:
            added += store.import_comments(comments)
        except Exception as error:
            raise WriteStopped(error, added, done) from error
        done.append(thread)
        progress(len(comments))
    return added
