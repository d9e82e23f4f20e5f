"""What the author does to comments, apart from HTTP: reply, approve, mark spam, edit and
delete replies. Each keeps the queue true: a comment leaves it only with an author reply."""

from __future__ import annotations

from dataclasses import replace

from comments_service import signals
from comments_service.comments.render import render_comment
from comments_service.comments.validation import check_edit
from comments_service.models import Author, Comment, CommentState, new_comment_id, utc_now
from comments_service.store import CommentNotFound, CommentStore


class ActionRefused(Exception):
    """The action does not fit the comment's state (HTTP 409 with the reason)."""


def _reader_comment(store: CommentStore, comment_id: str) -> Comment:
    comment = store.get_comment(comment_id)
    if comment is None:
        raise CommentNotFound(comment_id)
    if comment.is_author:
        raise ActionRefused("That is one of your own replies.")
    return comment


def _author_reply(store: CommentStore, reply_id: str) -> Comment:
    reply = store.get_comment(reply_id)
    if reply is None or not reply.is_author or reply.state is CommentState.WITHDRAWN:
        raise CommentNotFound(reply_id)
    return reply


def live_author_replies(store: CommentStore, comment: Comment) -> list[Comment]:
    """The author's replies that stand under ``comment`` (directly), oldest first."""
    return [
        other for other in store.thread_comments(comment.thread)
        if other.parent == comment.id and other.is_author
        and other.state is CommentState.POSTED
    ]


def reply(store: CommentStore, comment_id: str, author: Author, body: str,
          nudge_warnings: tuple[str, ...] = (), *, reply_id: str | None = None) -> Comment:
    """Store the author's reply under a reader comment; the comment becomes replied and public.

    ``nudge_warnings``: the kinds of the nudge's warnings the author sent this text over, kept
    on the reply so the metrics leave a stock reply out of the individual reply rate.

    The reply is stored first: if the second write failed, the comment would still wait in the
    queue with the reply visible under it, rather than leave the queue with no reply.
    ``reply_id``: the reply's id, chosen beforehand by a caller that must be able to tell,
    after a crash, whether the reply was stored (replies by email; see finish_reply).
    """
    body = check_edit({"body": body})
    target = _reader_comment(store, comment_id)
    if target.state not in (CommentState.AWAITING_REPLY, CommentState.REPLIED):
        raise ActionRefused(f"This comment is {target.state.value.replace('_', ' ')}; "
                            "restore it before replying.")
    answer = store.add_comment(Comment(
        id=reply_id or new_comment_id(), thread=target.thread, name=author.name, body=body,
        html=render_comment(body), created=utc_now(), state=CommentState.POSTED, public=True,
        parent=target.id, is_author=True, nudge_warnings=tuple(nudge_warnings),
    ))
    return finish_reply(store, answer)


def finish_reply(store: CommentStore, answer: Comment) -> Comment:
    """The steps after a reply is stored: its comment becomes replied and public, and
    reply_stored is announced. Also run again for a reply whose process died between the
    steps: each is idempotent (the first replied_at is kept; the reader's mail and the
    webhook are queued once per reply by their dedupe keys)."""
    if answer.parent is None:
        raise ActionRefused("That reply answers no comment.")
    target = _reader_comment(store, answer.parent)

    def mark_replied(current: Comment) -> Comment:
        return replace(current, state=CommentState.REPLIED, public=True,
                       replied_at=current.replied_at or answer.created)

    store.update_comment(target.id, mark_replied)
    signals.announce(signals.reply_stored, store, comment=target, reply=answer)
    return answer


def approve(store: CommentStore, comment_id: str) -> Comment:
    """Make a comment public without replying; it keeps waiting for a reply."""
    _reader_comment(store, comment_id)

    def publish(current: Comment) -> Comment:
        if current.state in (CommentState.SPAM, CommentState.WITHDRAWN):
            raise ActionRefused(f"A comment that is {current.state.value} cannot be published.")
        return replace(current, public=True)

    return store.update_comment(comment_id, publish)


def mark_spam(store: CommentStore, comment_id: str) -> Comment:
    """Out of the queue and out of public view; kept, restorable."""
    _reader_comment(store, comment_id)

    def to_spam(current: Comment) -> Comment:
        if current.state is CommentState.WITHDRAWN:
            raise ActionRefused("This comment was withdrawn by its writer.")
        return replace(current, state=CommentState.SPAM, public=False)

    return store.update_comment(comment_id, to_spam)


def restore(store: CommentStore, comment_id: str, publish_immediately: bool) -> Comment:
    """Not spam after all: back to the queue (or to replied, if a reply already stands)."""
    comment = _reader_comment(store, comment_id)
    answered = bool(live_author_replies(store, comment))

    def from_spam(current: Comment) -> Comment:
        if current.state is not CommentState.SPAM:
            raise ActionRefused("This comment is not marked as spam.")
        return replace(
            current, state=CommentState.REPLIED if answered else CommentState.AWAITING_REPLY,
            public=answered or publish_immediately, spam_reasons=(),
        )

    return store.update_comment(comment_id, from_spam)


def edit_reply(store: CommentStore, reply_id: str, body: str,
               nudge_warnings: tuple[str, ...] | None = None) -> Comment:
    """Change the text of one of the author's replies; ``nudge_warnings``, when given, replace
    the reply's (what the nudge says of the new text)."""
    body = check_edit({"body": body})
    _author_reply(store, reply_id)

    def apply(current: Comment) -> Comment:
        warnings = current.nudge_warnings if nudge_warnings is None else tuple(nudge_warnings)
        return replace(current, body=body, html=render_comment(body), edited_at=utc_now(),
                       nudge_warnings=warnings)

    return store.update_comment(reply_id, apply)


def delete_reply(store: CommentStore, reply_id: str) -> Comment | None:
    """Take back one of the author's replies; if it was the only one, the comment it answered
    goes back to the queue. Returns that comment when it did."""
    reply_comment = _author_reply(store, reply_id)
    store.update_comment(
        reply_id, lambda current: replace(current, state=CommentState.WITHDRAWN, public=False)
    )
    parent = store.get_comment(reply_comment.parent) if reply_comment.parent else None
    if parent is None or parent.is_author or live_author_replies(store, parent):
        return None

    def back_to_queue(current: Comment) -> Comment:
        if current.state is not CommentState.REPLIED:
            return current
        return replace(current, state=CommentState.AWAITING_REPLY, replied_at=None)

    return store.update_comment(parent.id, back_to_queue)
