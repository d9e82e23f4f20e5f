"""What happens when a reader posts, edits or withdraws a comment, apart from HTTP.

The JSON API and the plain form both call these functions, so queue state, publishing policy,
spam handling and edit tokens behave the same through either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from comments_service import signals
from comments_service.comments.render import render_comment
from comments_service.comments.spam import spam_reasons
from comments_service.comments.validation import check_comment, check_edit
from comments_service.manifest import ArticleEntry
from comments_service.models import Comment, CommentState, new_comment_id, parse_time, utc_now
from comments_service.store import CommentStore

EDIT_TOKEN_SALT = "tellmemore.edit-token"
# Said with the window's own length when EDIT_WINDOW_MINUTES is not 15 (the widget's
# translations know this sentence).
EDIT_WINDOW_PASSED = "The 15 minutes to edit or withdraw this comment have passed."


# Said by the API (409) and shown by the widget, which translates them.
LOCKED_BY_REPLY = "The author has replied to this comment, so it can no longer be changed."
LOCKED_BY_APPROVAL = "The author has published this comment, so it can no longer be changed."


class EditRefused(Exception):
    """The edit token is wrong or its window has passed (HTTP 403)."""


class EditLocked(Exception):
    """The author has answered or published the comment: its writer may no longer change or
    withdraw it (HTTP 409), so no reply ever stands under words it did not answer."""


def lock_reason(comment: Comment, config: Mapping[str, Any]) -> str | None:
    """Why the writer may no longer change ``comment``; None while they may.

    Replied (or marked answered by an import), or published by the author's approval while
    PUBLISH_POLICY waits for a reply: under "immediately" every comment is public at once, so
    there public means nothing about the author.
    """
    if comment.state is CommentState.REPLIED or comment.replied_at or comment.marked_answered:
        return LOCKED_BY_REPLY
    if (comment.public and comment.state is CommentState.AWAITING_REPLY
            and config["PUBLISH_POLICY"] != "immediately"):
        return LOCKED_BY_APPROVAL
    return None


def _refuse_if_locked(comment: Comment, config: Mapping[str, Any]) -> None:
    reason = lock_reason(comment, config)
    if reason:
        raise EditLocked(reason)


@dataclass(frozen=True)
class PostedComment:
    comment: Comment
    edit_token: str
    editable_until: str


def reader_key(secret_key: str, email: str | None, reader_token: str | None) -> str | None:
    """A salted hash that tells readers apart without keeping who they are in the clear."""
    if email:
        source = "email:" + email.strip().lower()
    elif reader_token:
        source = "browser:" + reader_token
    else:
        return None
    return hmac.new(secret_key.encode(), source.encode(), hashlib.sha256).hexdigest()[:32]


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=EDIT_TOKEN_SALT)


def issue_edit_token(secret_key: str, comment_id: str) -> str:
    return _serializer(secret_key).dumps({"id": comment_id})


def edit_window(config: Mapping[str, Any]) -> timedelta:
    """How long a reader may change their own comment (EDIT_WINDOW_MINUTES)."""
    return timedelta(minutes=config["EDIT_WINDOW_MINUTES"])


def check_edit_token(config: Mapping[str, Any], comment_id: str, token: str | None) -> None:
    """Raise EditRefused unless ``token`` was issued for this comment within the edit window."""
    if not token:
        raise EditRefused("An edit token is needed to change this comment.")
    window = edit_window(config)
    try:
        claims = _serializer(config["SECRET_KEY"]).loads(
            token, max_age=int(window.total_seconds()))
    except SignatureExpired as error:
        minutes = f"{window.total_seconds() / 60:g}"
        raise EditRefused(EDIT_WINDOW_PASSED.replace("15", minutes, 1)) from error
    except BadSignature as error:
        raise EditRefused("This edit token is not valid for this comment.") from error
    if not isinstance(claims, dict) or claims.get("id") != comment_id:
        raise EditRefused("This edit token is not valid for this comment.")


def post_reader_comment(
    store: CommentStore,
    article: ArticleEntry,
    raw: Mapping[str, Any],
    config: Mapping[str, Any],
) -> PostedComment:
    """Check, render and store a reader's comment; it always enters the queue (or spam)."""
    checked = check_comment(raw, article, store.get_comment)
    secret_key = config["SECRET_KEY"]
    reasons = (spam_reasons(raw, checked.body, secret_key, config["SPAM_MIN_SECONDS"])
               if config["SPAM_CHECKS"] == "on" else ())
    state = CommentState.SPAM if reasons else CommentState.AWAITING_REPLY
    created = utc_now()
    comment = Comment(
        id=new_comment_id(),
        thread=article.thread,
        name=checked.name,
        body=checked.body,
        html=render_comment(checked.body),
        created=created,
        state=state,
        public=not reasons and config["PUBLISH_POLICY"] == "immediately",
        parent=checked.parent,
        question=checked.question,
        email=checked.email,
        website=checked.website,
        notify=checked.notify,
        reader_key=reader_key(secret_key, checked.email, checked.reader_token),
        spam_reasons=reasons,
    )
    stored = store.add_comment(comment)
    signals.announce(signals.comment_stored, store, comment=stored)
    editable_until = (parse_time(created) + edit_window(config)).isoformat(timespec="seconds")
    return PostedComment(stored, issue_edit_token(secret_key, stored.id), editable_until)


def edit_reader_comment(
    store: CommentStore, comment_id: str, token: str | None, raw: Mapping[str, Any],
    config: Mapping[str, Any],
) -> Comment:
    """Change the body of one's own comment within the edit window, until the author answers
    or publishes it. The new text goes through every spam check a new comment does (a link
    count swapped in after posting would otherwise pass): any reason turns it into spam,
    out of public view."""
    check_edit_token(config, comment_id, token)
    body = check_edit(raw)
    reasons = (spam_reasons(raw, body, config["SECRET_KEY"], config["SPAM_MIN_SECONDS"])
               if config["SPAM_CHECKS"] == "on" else ())

    def apply(current: Comment) -> Comment:
        if current.state is CommentState.WITHDRAWN:
            raise EditRefused("This comment was withdrawn.")
        _refuse_if_locked(current, config)
        edited = replace(current, body=body, html=render_comment(body), edited_at=utc_now())
        if reasons:
            merged = tuple(dict.fromkeys((*current.spam_reasons, *reasons)))
            return replace(edited, state=CommentState.SPAM, public=False, spam_reasons=merged)
        return edited

    return store.update_comment(comment_id, apply)


def withdraw_reader_comment(
    store: CommentStore, comment_id: str, token: str | None, config: Mapping[str, Any]
) -> Comment:
    """Take one's own comment back within the edit window, until the author answers or
    publishes it: kept, never public, not queued."""
    check_edit_token(config, comment_id, token)

    def apply(current: Comment) -> Comment:
        _refuse_if_locked(current, config)
        return replace(current, state=CommentState.WITHDRAWN, public=False)

    return store.update_comment(comment_id, apply)
