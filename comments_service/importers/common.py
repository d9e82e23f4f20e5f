"""What every import shares: thread matching, the plan (ids, parents, states), the summary and
the all-or-nothing write.

Rules (the same for Isso, Disqus and WordPress):

* **Threads** are matched to the manifest's articles by URL path: compared without a trailing
  slash or ``index.html``, with or without the origin (an old domain still matches by path; a
  path that two origins share goes to the one with the site's own origin). When no path
  matches, the last part of the path (or WordPress's ``post_name``) may name an article whose
  thread key or last path part is the same, when exactly one article does. Threads that match
  nothing are listed in the summary and their comments are not imported.
* **Ids** are ``<source>-`` and a hash of (source, thread URL, source id): the same comment
  gets the same id on every run, so importing twice adds nothing new (the store skips ids it
  has), and two different sources cannot collide.
* **Bodies** become Markdown source (HTML sources are converted by :func:`html_to_markdown`)
  and are rendered by ``render.render_comment``: imported HTML is never stored as it came.
* **States**: deleted, trashed and spam comments are not imported (counted). The author's own
  comments (``--author-email`` / ``--author-name``) are ``posted``. A reader's comment is
  ``replied`` when a later comment by the author hangs below it (``replied_at`` = the first
  such reply's time), else ``awaiting_reply``: public when the source showed it, not public
  when it was pending there. ``--answered-before`` marks reader comments still unanswered and
  written before that moment as ``replied`` with ``replied_at`` null and
  ``marked_answered`` true: out of the queue without a made-up reply time (the metrics count a
  replied comment without ``replied_at`` as answered in time, and add no reply time for it).
* A reply whose parent is not imported (deleted, spam) hangs under the nearest imported
  ancestor, or at the top of the thread.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from comments_service.comments.render import render_comment
from comments_service.comments.validation import MAX_BODY
from comments_service.importers.matching import ThreadMatcher
from comments_service.importers.source import (
    ImportRefused,
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
    "plan_import",
    "write_plan",
]

# Why a comment is not imported, by its status at the source.
NOT_IMPORTED = {"deleted": "deleted", "spam": "spam", "pingback": "pingbacks or trackbacks"}


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
class ImportPlan:
    """Everything an import would write, and what it would say about it."""

    data: SourceData
    comments: list[Comment] = field(default_factory=list)  # all of them, present or not
    new: list[Comment] = field(default_factory=list)  # those not stored yet
    skipped: Counter[str] = field(default_factory=Counter)  # reason → count
    unmatched: dict[str, tuple[SourceThread, int]] = field(default_factory=dict)
    matched_threads: dict[str, str] = field(default_factory=dict)  # source key → thread
    marked_replied: int = 0  # of the new: a later reply by the author below them
    marked_answered: int = 0  # of the new: --answered-before

    @property
    def entering_queue(self) -> int:
        return sum(1 for comment in self.new if comment.state is CommentState.AWAITING_REPLY)

    def summary(self, options: ImportOptions) -> list[str]:
        data = self.data
        new = self.new
        lines = [
            f"{data.label} {data.location}: {len(data.comments)} comments in "
            f"{len(data.threads)} threads ({len(self.matched_threads)} matched to articles)",
            f"  to import: {len(new)} new ({len(self.comments) - len(new)} already present)",
            f"    public: {sum(1 for c in new if c.public)}, "
            f"not public (pending at the source): {sum(1 for c in new if not c.public)}",
            f"    the author's own: {sum(1 for c in new if c.is_author)}",
            f"    marked replied (a later reply by the author below them): {self.marked_replied}",
        ]
        if options.answered_before is not None:
            lines.append(f"    marked answered (written before "
                         f"{options.answered_before.isoformat()}): {self.marked_answered}")
        lines.append(f"    entering the reply queue: {self.entering_queue}")
        if self.skipped:
            lines.append("  not imported: " + ", ".join(
                f"{count} {reason}" for reason, count in sorted(self.skipped.items())))
        if self.unmatched:
            lines.append(f"  threads not on this site ({len(self.unmatched)}; their comments "
                         "are not imported):")
            for thread, count in sorted(self.unmatched.values(), key=lambda item: item[0].url):
                title = f" “{thread.title}”" if thread.title else ""
                lines.append(f"    {thread.url}{title}: {count} comment{'s' * (count != 1)}")
        return lines


# --- the plan -----------------------------------------------------------------------------------


def comment_id(source: str, thread_url: str, key: str) -> str:
    digest = hashlib.blake2b(f"{source}\n{thread_url}\n{key}".encode(), digest_size=9)
    return f"{source}-{digest.hexdigest()}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def plan_import(data: SourceData, manifest: Manifest, store: CommentStore,
                options: ImportOptions) -> ImportPlan:
    """Decide everything about the import without writing anything."""
    plan = ImportPlan(data)
    matcher = ThreadMatcher(manifest)
    for key, thread in data.threads.items():
        found = matcher.match(thread.url, thread.slug)
        if found is not None:
            plan.matched_threads[key] = found
    by_key = {comment.key: comment for comment in data.comments}
    kept: dict[str, SourceComment] = {}
    for comment in data.comments:
        thread_key = plan.matched_threads.get(comment.thread)
        if comment.status in NOT_IMPORTED:
            plan.skipped[NOT_IMPORTED[comment.status]] += 1
        elif not comment.body.strip():
            plan.skipped["empty"] += 1
        elif thread_key is None:
            thread = data.threads[comment.thread]
            _thread, count = plan.unmatched.get(comment.thread, (thread, 0))
            plan.unmatched[comment.thread] = (thread, count + 1)
        else:
            kept[comment.key] = comment

    def is_author(comment: SourceComment) -> bool:
        return bool((comment.email and comment.email.casefold() in options.author_emails)
                    or comment.name.casefold() in options.author_names)

    def imported_parent(comment: SourceComment) -> str | None:
        seen: set[str] = set()
        parent = comment.parent
        while parent is not None and parent not in seen:
            seen.add(parent)
            if parent in kept and kept[parent].thread == comment.thread:
                return parent
            above = by_key.get(parent)
            parent = above.parent if above is not None else None
        return None

    parents = {key: imported_parent(comment) for key, comment in kept.items()}
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
    for key, comment in kept.items():
        public = comment.status == "public"
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
        plan.comments.append(Comment(
            id=ids[key], thread=plan.matched_threads[comment.thread], name=comment.name,
            body=body, html=render_comment(body), created=_iso(comment.created), state=state,
            public=public, parent=ids[parent] if parent is not None else None,
            email=comment.email, website=comment.website, is_author=key in authors,
            replied_at=replied_at,
            edited_at=_iso(comment.edited) if comment.edited is not None else None,
            source=f"{data.source}:{comment.key}", marked_answered=marked,
        ))
    plan.comments.sort(key=lambda c: (c.thread, c.created, c.id))
    plan.new = [comment for comment in plan.comments if store.get_comment(comment.id) is None]
    new_ids = {comment.id for comment in plan.new}
    plan.marked_replied = sum(1 for key in first_reply if ids[key] in new_ids)
    plan.marked_answered = sum(1 for c in plan.new if c.marked_answered)
    return plan


def write_plan(store: CommentStore, plan: ImportPlan,
               progress: Callable[[int], None] = lambda _count: None) -> int:
    """Store the plan's new comments, one write per thread; returns how many were added."""
    by_thread: dict[str, list[Comment]] = {}
    for comment in plan.new:
        by_thread.setdefault(comment.thread, []).append(comment)
    added = 0
    for _thread, comments in sorted(by_thread.items()):
        added += store.import_comments(comments)
        progress(len(comments))
    return added
