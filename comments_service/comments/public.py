"""What the public may see of a thread: an allow-list of fields, arranged as a tree.

Emails, reader keys, spam reasons, states of other people's comments and Markdown sources never
appear here. A reply whose parent is not public (withdrawn, say) hangs under a placeholder so
the conversation keeps its shape without showing what was taken back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from comments_service.listening import (
    article_listening,
    site_listening,
    site_listening_of,
    window_start,
)
from comments_service.manifest import ArticleEntry, Manifest
from comments_service.models import Comment, utc_now
from comments_service.store import CommentStore

PUBLIC_EXPORT_SCHEMA_VERSION = 1


def public_comment(comment: Comment) -> dict[str, Any]:
    """The public fields of one comment (no replies)."""
    return {
        "id": comment.id,
        "parent": comment.parent,
        "question": comment.question,
        "name": comment.name,
        "website": comment.website,
        "html": comment.html,
        "created": comment.created,
        "edited": comment.edited_at,
        "is_author": comment.is_author,
    }


def own_comment(comment: Comment) -> dict[str, Any]:
    """What the writer of a comment gets back: the public fields plus where it stands."""
    return {**public_comment(comment), "state": str(comment.state), "public": comment.public}


def _placeholder(comment_id: str) -> dict[str, Any]:
    return {
        "id": comment_id, "parent": None, "question": None, "name": None, "website": None,
        "html": "", "created": None, "edited": None, "is_author": False, "removed": True,
    }


def comment_tree(comments: list[Comment]) -> list[dict[str, Any]]:
    """Public comments as a tree, oldest first at every level."""
    by_id = {comment.id: comment for comment in comments}
    nodes: dict[str, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []

    def node_for(comment_id: str) -> dict[str, Any]:
        if comment_id not in nodes:
            comment = by_id.get(comment_id)
            visible = comment is not None and comment.public
            nodes[comment_id] = {
                **(public_comment(comment) if visible else _placeholder(comment_id)),
                "replies": [],
            }
            if not visible:
                # Only needed as a parent: attach it where its own parent belongs.
                attach(nodes[comment_id], comment.parent if comment else None)
        return nodes[comment_id]

    def attach(node: dict[str, Any], parent_id: str | None) -> None:
        if parent_id is None or parent_id not in by_id:
            roots.append(node)
        else:
            node_for(parent_id)["replies"].append(node)

    for comment in comments:
        if comment.public:
            attach(node_for(comment.id), comment.parent)

    def in_time_order(level: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Placeholders join their level when first needed; put every level back in time order.
        level.sort(key=lambda node: by_id[node["id"]].created if node["id"] in by_id else "")
        for node in level:
            in_time_order(node["replies"])
        return level

    return in_time_order(roots)


def thread_payload(article: ArticleEntry, comments: list[Comment], listening: bool = True,
                   site: dict[str, int] | None = None) -> dict[str, Any]:
    """The body of GET /api/threads/<thread> (``listening``: with the public listening
    figure, listening.py). ``site`` (listening.footer_fields) joins the article's figure in
    ``listening``: the widget copies every key of it into the page's ``[data-l=key]`` spans,
    so the footer's site figure is refreshed by the same loop as the article's line. The
    export leaves it out: it carries the site's figures once, at its top."""
    public = [comment for comment in comments if comment.public]
    figures: dict[str, int] | None = article_listening(comments) if listening else None
    if site:
        figures = {**(figures or {}), **site}
    return {
        "thread": article.thread,
        "title": article.title,
        "url": article.url,
        "questions": [{"id": q.id, "text": q.text} for q in article.questions],
        "count": len(public),
        # How many comments wait for the author's reply: a number only, never their text.
        "waiting": sum(1 for comment in comments if comment.in_queue),
        "comments": comment_tree(comments),
        "listening": figures,
    }


def public_export_document(manifest: Manifest, store: CommentStore,
                           listening: bool = True) -> dict[str, Any]:
    """Every article's public thread, keyed by thread, for baking into the built pages, and
    the site's listening figures (None when off or too few comments: listening.py)."""
    comments = {thread: store.thread_comments(thread) for thread in sorted(manifest.articles)}
    return {
        "schema_version": PUBLIC_EXPORT_SCHEMA_VERSION,
        "generated": utc_now(),
        "threads": {
            thread: thread_payload(manifest.articles[thread], comments[thread], listening)
            for thread in comments
        },
        "listening": _site_figures(comments) if listening else None,
    }


def site_listening_figures(manifest: Manifest, store: CommentStore) -> dict[str, Any] | None:
    """The site's listening figures over every article's comments (listening.py), from the
    store's running aggregates: only the window's reader comments are listed, none read."""
    since = window_start(datetime.now(UTC))
    inputs = store.listening_inputs(since=since, due_from=None, weeks_from=None)
    return site_listening_of(inputs.recent, manifest.articles.keys())


def _site_figures(comments: dict[str, list[Comment]]) -> dict[str, Any] | None:
    return site_listening((comment for thread in comments.values() for comment in thread),
                          datetime.now(UTC))
