"""Which events other systems hear about, and what they learn: a new comment, a new reply (and
a request's status change, queued by tally/actions.py). The payload is a comment's public
fields and where it stands, with links into the site; outbox/webhooks.py stores one message
per WEBHOOK_URLS entry, strips private keys once more, signs and POSTs it."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, has_app_context

from comments_service import signals
from comments_service.comments.public import public_comment
from comments_service.extensions import manifest_or_none
from comments_service.mail.links import thread_link
from comments_service.models import Comment, CommentState, OutboxMessage
from comments_service.outbox.webhooks import queue_webhook
from comments_service.store import Store

logger = logging.getLogger(__name__)

# The X-Tellmemore-Event header and the body's "event".
COMMENT_CREATED = "comment.created"
REPLY_CREATED = "reply.created"
REQUEST_STATUS_CHANGED = "request.status_changed"


def comment_payload(comment: Comment) -> dict[str, Any]:
    """What a receiver learns about a comment: its public fields and where it stands."""
    manifest = manifest_or_none()
    article = manifest.article(comment.thread) if manifest is not None else None
    return {
        **public_comment(comment), "thread": comment.thread, "state": str(comment.state),
        "public": comment.public, "body": comment.body,
        "article": {"title": article.title, "url": article.url} if article is not None else None,
        "link": thread_link(manifest, comment.thread, comment.id),
    }


def comment_event(store: Store, event: str, comment: Comment,
                  parent: Comment | None = None) -> list[OutboxMessage]:
    """Hook after a comment or reply is stored: queue ``event`` (not for spam). Never raises."""
    if (not has_app_context() or not current_app.config.get("WEBHOOK_URLS")
            or comment.state in (CommentState.SPAM, CommentState.WITHDRAWN)):
        return []
    try:
        payload: dict[str, Any] = {"comment": comment_payload(comment)}
        if parent is not None:
            payload["in_reply_to"] = comment_payload(parent)
        return queue_webhook(event, payload, store=store, dedupe_key=f"{event}:{comment.id}")
    except Exception:
        logger.exception("Could not queue the %s webhook for comment %s", event, comment.id)
        return []


def comment_created(store: Store, comment: Comment) -> None:
    """Receiver of signals.comment_stored: a ``comment.created`` event."""
    comment_event(store, COMMENT_CREATED, comment)


def reply_created(store: Store, comment: Comment, reply: Comment) -> None:
    """Receiver of signals.reply_stored: a ``reply.created`` event, with the comment it
    answers."""
    comment_event(store, REPLY_CREATED, reply, parent=comment)


def subscribe() -> None:
    """Queue webhook events for stored comments and replies."""
    signals.comment_stored.connect(comment_created)
    signals.reply_stored.connect(reply_created)
