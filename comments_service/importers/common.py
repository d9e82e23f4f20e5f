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
import html
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import unquote, urljoin, urlsplit

from comments_service.comments.render import is_safe_href, render_comment
from comments_service.comments.validation import EMAIL_RE, MAX_BODY, MAX_NAME, MAX_WEBSITE
from comments_service.manifest import Manifest
from comments_service.models import Comment, CommentState
from comments_service.store import CommentStore
from comments_service.store.transfer import ImportRefused

__all__ = [
    "ImportOptions",
    "ImportPlan",
    "ImportRefused",
    "SourceComment",
    "SourceData",
    "SourceThread",
    "ThreadMatcher",
    "html_to_markdown",
    "plan_import",
    "write_plan",
]

Status = Literal["public", "pending", "deleted", "spam", "pingback"]
# Why a comment is not imported, by its status at the source.
NOT_IMPORTED = {"deleted": "deleted", "spam": "spam", "pingback": "pingbacks or trackbacks"}
ANONYMOUS = "Anonymous"
INDEX_PAGES = ("index.html", "index.htm", "index.php")


@dataclass(frozen=True)
class SourceThread:
    """One page with comments, as the source knows it."""

    key: str  # the source's own id for the thread (Isso's tid, Disqus's dsq:id, WP's post_id)
    url: str  # a URL or a site-relative path
    title: str = ""
    slug: str | None = None  # WordPress's post_name


@dataclass(frozen=True)
class SourceComment:
    """One comment as the source has it, already checked by the reader module."""

    key: str  # the source's id of the comment
    thread: str  # SourceThread.key
    parent: str | None
    name: str
    email: str | None
    website: str | None
    created: datetime  # aware
    body: str  # Markdown source (HTML sources are converted before this)
    status: Status
    edited: datetime | None = None


@dataclass(frozen=True)
class SourceData:
    source: str  # "isso", "disqus", "wordpress": the id prefix
    label: str  # "Isso", for messages
    location: str  # the file read
    threads: dict[str, SourceThread]
    comments: list[SourceComment]


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


# --- matching threads to articles ---------------------------------------------------------------


def _normal_path(path: str) -> str:
    path = unquote(path or "/")
    for page in INDEX_PAGES:
        if path.endswith("/" + page) or path == page:
            path = path[: -len(page)]
    return "/" + path.strip("/")


def _last_part(path: str) -> str:
    part = path.rstrip("/").rpartition("/")[2]
    return re.sub(r"\.html?$", "", part)


class ThreadMatcher:
    """Finds the article of a source thread from its URL (see the module docstring)."""

    def __init__(self, manifest: Manifest) -> None:
        base = manifest.site_url.rstrip("/") + "/" if manifest.site_url else ""
        self.site_host = urlsplit(base).netloc.lower()
        self.by_path: dict[str, list[tuple[str, str]]] = {}  # path → [(host, thread)]
        self.by_slug: dict[str, set[str]] = {}
        for thread, article in manifest.articles.items():
            parts = urlsplit(urljoin(base, article.url) if base else article.url)
            path = _normal_path(parts.path)
            self.by_path.setdefault(path, []).append((parts.netloc.lower(), thread))
            for slug in {thread.casefold(), _last_part(path).casefold()}:
                if slug:
                    self.by_slug.setdefault(slug, set()).add(thread)

    def match(self, url: str, slug: str | None = None) -> str | None:
        parts = urlsplit(url.strip())
        candidates = self.by_path.get(_normal_path(parts.path), [])
        if candidates:
            host = parts.netloc.lower()
            for wanted in (host, self.site_host):
                for candidate_host, thread in candidates:
                    if wanted and candidate_host == wanted:
                        return thread
            return candidates[0][1]
        for name in (slug, _last_part(_normal_path(parts.path))):
            found = self.by_slug.get((name or "").casefold(), set())
            if len(found) == 1:
                return next(iter(found))
        return None


# --- HTML bodies to Markdown --------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]])")
_BLOCK_TAGS = frozenset({"p", "div", "blockquote", "ul", "ol", "li", "pre", "h1", "h2", "h3",
                         "h4", "h5", "h6", "table", "tr", "section", "article", "hr"})


class _MarkdownWriter(HTMLParser):
    """A forgiving HTML → Markdown converter for comment bodies: paragraphs, line breaks,
    emphasis, links (http, https and mailto only), code, lists and quotes; every other tag is
    dropped with its text kept, and script/style with their content."""

    def __init__(self, newlines_are_breaks: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.newlines_are_breaks = newlines_are_breaks
        self.blocks: list[tuple[str, bool]] = []  # finished paragraphs, and "a list item"
        self.item = False  # the paragraph being written is a list item
        self.line: list[str] = []  # the paragraph being written
        self.links: list[str | None] = []
        self.lists: list[list[int | None]] = []  # per open list: [counter or None]
        self.quote = 0
        self.pre = 0
        self.code = 0
        self.skip = 0

    def _flush(self) -> None:
        text = "".join(self.line)
        self.line = []
        item, self.item = self.item, False
        lines = [line.rstrip() for line in text.split("\n")]
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            return
        block = "\n".join(lines)
        if self.quote:
            block = "\n".join(("> " * self.quote + line).rstrip() for line in block.split("\n"))
        self.blocks.append((block, item))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self.skip += 1
            return
        if self.skip:
            return
        if tag == "br":
            self.line.append("\n")
        elif tag in ("em", "i"):
            self.line.append("*")
        elif tag in ("strong", "b"):
            self.line.append("**")
        elif tag == "code" and not self.pre:
            self.code += 1
            self.line.append("`")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            safe = href if is_safe_href(href) else None
            self.links.append(safe)
            if safe:
                self.line.append("[")
        elif tag == "pre":
            self._flush()
            self.pre += 1
            self.line.append("```\n")
        elif tag in ("ul", "ol"):
            self._flush()
            self.lists.append([1 if tag == "ol" else None])
        elif tag == "li":
            self._flush()
            marker = "- "
            if self.lists and self.lists[-1][0] is not None:
                number = self.lists[-1][0]
                marker = f"{number}. "
                self.lists[-1][0] = number + 1
            self.line.append("    " * max(len(self.lists) - 1, 0) + marker)
            self.item = True
        elif tag == "blockquote":
            self._flush()
            self.quote += 1
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template"):
            self.skip = max(self.skip - 1, 0)
            return
        if self.skip:
            return
        if tag in ("em", "i"):
            self.line.append("*")
        elif tag in ("strong", "b"):
            self.line.append("**")
        elif tag == "code" and not self.pre:
            self.code = max(self.code - 1, 0)
            self.line.append("`")
        elif tag == "a":
            href = self.links.pop() if self.links else None
            if href:
                self.line.append(f"]({href})")
        elif tag == "pre":
            self.line.append("\n```")
            self.pre = max(self.pre - 1, 0)
            self._flush()
        elif tag in ("ul", "ol"):
            self._flush()
            if self.lists:
                self.lists.pop()
        elif tag == "blockquote":
            self._flush()
            self.quote = max(self.quote - 1, 0)
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            self.line.append(data)
            return
        if self.code:  # inline code is literal: no escapes, one line
            self.line.append(" ".join(data.replace("`", "'").split()))
            return
        text = _MARKDOWN_SPECIAL.sub(r"\\\1", data)
        if self.newlines_are_breaks:
            paragraphs = re.split(r"\n[ \t]*\n", text)
            for number, paragraph in enumerate(paragraphs):
                if number:
                    self._flush()
                self.line.append(re.sub(r"[ \t\r\f\v]+", " ", paragraph))
        else:
            self.line.append(re.sub(r"\s+", " ", text))

    def result(self) -> str:
        self._flush()
        parts: list[str] = []
        previous_item = False
        for block, item in self.blocks:
            if parts:  # items of one list stay together (a tight list)
                parts.append("\n" if item and previous_item else "\n\n")
            parts.append(block)
            previous_item = item
        return "".join(parts)


def html_to_markdown(fragment: str, *, newlines_are_breaks: bool = False) -> str:
    """Markdown source for an HTML comment body. ``newlines_are_breaks``: the source treats a
    newline in text as a line break and a blank line as a new paragraph (WordPress does)."""
    writer = _MarkdownWriter(newlines_are_breaks)
    writer.feed(fragment)
    writer.close()
    return writer.result()


# --- small checks the readers share -------------------------------------------------------------


def clean_name(value: str | None) -> str:
    text = " ".join(html.unescape(value or "").split())
    return text[:MAX_NAME] if text else ANONYMOUS


def clean_email(value: str | None) -> str | None:
    text = (value or "").strip()
    return text if text and EMAIL_RE.match(text) else None


def clean_website(value: str | None) -> str | None:
    text = html.unescape((value or "").strip())
    if not text or len(text) > MAX_WEBSITE or urlsplit(text).scheme not in ("http", "https"):
        return None
    return text


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


def parse_utc(text: str, where: str, what: str = "date") -> datetime:
    """An ISO 8601 time (a trailing Z allowed; without a zone: UTC) or ImportRefused."""
    value = (text or "").strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError as error:
        raise ImportRefused(f"{where}: {what} {value!r} is not a date and time") from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
