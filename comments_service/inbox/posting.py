"""Posting what the reply worker recorded: each pending record becomes the author's reply,
through the same path as the moderation page (comments/replying.reply: rendering, the queue,
reply_stored and so the reader's notification), filed under a request when it says so, or is
held when the nudge would flag it.

A pending record is claimed with a lease (REPLY_MAIL_LEASE_SECONDS, compare-and-set on the
record), so two workers never post it together; a worker that dies leaves a lease that runs
out, and the next poll finishes the record. The reply's id was chosen when the record was
made: finding that id stored means the post got that far, and only the steps after it run
again (replying.finish_reply, each idempotent). So a crash anywhere posts the reply once.

A held reply is mailed back to the author (notify/email/reply_held.*) with a reply address of
its own: "yes" sends it as it is; any other text replaces it (and meets the nudge again).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, render_template

from comments_service.comments import replying
from comments_service.comments.nudge import check_reply
from comments_service.comments.validation import ValidationFailed
from comments_service.extensions import manifest_or_none
from comments_service.inbox.parsing import FILING_NEW, FILING_NONE
from comments_service.mail.links import MailSetupError, public_url, service_link, site_name
from comments_service.mail.notify import queue_message, quoted
from comments_service.mail.reply_address import HELD, reply_address
from comments_service.models import Comment, CommentState, IncomingMail, IncomingStatus
from comments_service.outbox.message import iso, utc_moment
from comments_service.store import Store
from comments_service.tally import filing as tally_filing

logger = logging.getLogger(__name__)

PENDING_BATCH = 100
EARLIER_REPLIES = 2000  # as many of the author's replies as the page's nudge compares with
YES = re.compile(r"(yes|y|send( it)?( anyway)?)[.!]*", re.IGNORECASE)


class _NotClaimable(Exception):
    """The record is not pending, or another worker's lease on it still runs."""


def _claimer() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def post_pending(store: Store, config: Mapping[str, Any], *,
                 now: Callable[[], datetime] = utc_moment) -> dict[str, int]:
    """Claim and post every pending record (this poll's, and any a dead worker left);
    returns how many ended in each status. Inside an app context."""
    done: dict[str, int] = {}
    claimer = _claimer()
    lease = timedelta(seconds=config["REPLY_MAIL_LEASE_SECONDS"])
    # Again while a round claimed something: a "yes" makes its held reply pending anew.
    while True:
        claimed_any = False
        for record in reversed(store.list_incoming_mail([IncomingStatus.PENDING],
                                                        limit=PENDING_BATCH)):
            claimed = claim(store, record.key, claimer, now(), lease)
            if claimed is None:
                continue
            claimed_any = True
            try:
                finished = post_record(store, claimed)
            except Exception:
                # Left pending under its lease: tried again once the lease runs out.
                logger.exception("Could not post the reply by email %s", record.key)
                continue
            done[finished.status.value] = done.get(finished.status.value, 0) + 1
        if not claimed_any:
            return done


def claim(store: Store, key: str, claimer: str, moment: datetime,
          lease: timedelta) -> IncomingMail | None:
    """The record, now this worker's until the lease ends; None when it is not to be had."""

    def take(current: IncomingMail) -> IncomingMail:
        if current.status is not IncomingStatus.PENDING or (
                current.claimed_until and current.claimed_until > iso(moment)):
            raise _NotClaimable
        return replace(current, claimed_by=claimer, claimed_until=iso(moment + lease))

    try:
        return store.update_incoming_mail(key, take)
    except _NotClaimable:
        return None


def _settle(store: Store, record: IncomingMail, status: IncomingStatus,
            reason: str | None = None, **changes: Any) -> IncomingMail:
    """Record the outcome, if the record is still this worker's claim."""

    def apply(current: IncomingMail) -> IncomingMail:
        if current.claimed_by != record.claimed_by or current.status is not record.status:
            raise _NotClaimable
        return replace(current, status=status, reason=reason, claimed_by=None,
                       claimed_until=None, done_at=iso(utc_moment()), **changes)

    try:
        return store.update_incoming_mail(record.key, apply)
    except _NotClaimable:
        logger.warning("The reply by email %s was no longer this worker's", record.key)
        return store.get_incoming_mail(record.key) or record


def post_record(store: Store, record: IncomingMail) -> IncomingMail:
    """Post one claimed record: a "yes" to a held reply, or a reply (see the docstring)."""
    if record.held_key is not None:
        return _answer_to_held(store, record)
    author = store.author_by_email(record.sender)
    if author is None:
        return _settle(store, record, IncomingStatus.REFUSED, "The sender is no author now.")
    existing = store.get_comment(record.reply_id) if record.reply_id else None
    if existing is not None:  # stored before a crash: finish it
        replying.finish_reply(store, existing)
        return _settle(store, record, IncomingStatus.POSTED, _file(store, record))
    comment = store.get_comment(record.comment_id or "")
    if comment is None or comment.state is not CommentState.AWAITING_REPLY:
        return _settle(store, record, IncomingStatus.REFUSED,
                       "The comment no longer waits for a reply.")
    if not record.send_anyway:
        warnings = check_reply(record.body, comment,
                               store.author_replies(limit=EARLIER_REPLIES))
        if warnings:
            reason = " ".join(warning.message for warning in warnings)
            problem = _mail_hold(store, record, comment, reason)
            return _settle(store, record, IncomingStatus.HELD,
                           reason if problem is None else f"{reason} ({problem})")
    try:
        replying.reply(store, comment.id, author, record.body, reply_id=record.reply_id)
    except ValidationFailed as failure:
        return _settle(store, record, IncomingStatus.REFUSED, f"Not a valid reply: {failure}")
    except replying.ActionRefused as refused:
        return _settle(store, record, IncomingStatus.REFUSED, str(refused))
    return _settle(store, record, IncomingStatus.POSTED, _file(store, record))


def _answer_to_held(store: Store, record: IncomingMail) -> IncomingMail:
    """The author answered the mail about a held reply: "yes" sends it as it was; any other
    text is the new reply, which replaces the held one (and meets the nudge again)."""
    held_key = record.held_key or ""
    send_anyway = YES.fullmatch(record.body.strip()) is not None

    def release(current: IncomingMail) -> IncomingMail:
        if current.status is not IncomingStatus.HELD:
            raise _NotClaimable
        if send_anyway:
            return replace(current, status=IncomingStatus.PENDING, send_anyway=True,
                           claimed_by=None, claimed_until=None)
        return replace(current, status=IncomingStatus.REPLACED, done_at=iso(utc_moment()),
                       reason=f"Replaced by the answer {record.key}.")

    try:
        store.update_incoming_mail(held_key, release)
    except _NotClaimable:
        return _settle(store, record, IncomingStatus.REFUSED,
                       "The held reply was sent or replaced already.")
    if send_anyway:
        # The held record is pending again: this poll (or the next) posts it, nudge skipped.
        return _settle(store, record, IncomingStatus.POSTED, "Sent the held reply anyway.")
    # A new text: this record becomes an ordinary reply to the same comment.
    changed = store.update_incoming_mail(record.key, lambda current: replace(
        current, held_key=None))
    return post_record(store, changed)


def _file(store: Store, record: IncomingMail) -> str | None:
    """File the comment as ``#request <label>`` or ``#none`` said; a note when it could not
    be (the reply stands either way)."""
    if record.filing is None or record.comment_id is None:
        return None
    choice = tally_filing.NONE
    if record.filing == FILING_NEW:
        choice = matching_request(store, record.label or "") or tally_filing.NEW
    elif record.filing != FILING_NONE:
        return None
    try:
        tally_filing.file_comment(store, record.comment_id, choice, record.label)
    except tally_filing.FilingRefused as refused:
        return f"Posted, not filed: {refused}"
    return None


def matching_request(store: Store, label: str) -> str | None:
    """The id of the request whose label is ``label`` (case and spacing aside), or None."""
    wanted = " ".join(label.split()).casefold()
    for group_id, group in sorted(store.request_groups().items()):
        if group.merged_into is None and group.label and (
                " ".join(group.label.split()).casefold() == wanted):
            return group_id
    return None


def _mail_hold(store: Store, record: IncomingMail, comment: Comment,
               reason: str) -> str | None:
    """Mail the author the held reply (once per record: dedupe key); what went wrong, if
    anything (the reply stays held either way, and shows on the outbox page)."""
    config = current_app.config
    try:
        base = public_url(config)
    except MailSetupError as error:
        return str(error)
    manifest = manifest_or_none()
    article = manifest.article(comment.thread) if manifest is not None else None
    title = article.title if article is not None else comment.thread
    context = {
        "site_name": site_name(manifest), "comment": comment, "title": title,
        "reason": reason, "quoted_reply": quoted(record.body), "reply_body": record.body,
        "quoted_comment": quoted(comment.body),
        "page_url": service_link(base, "moderation.queue.show_comment", comment_id=comment.id),
    }
    queue_message(
        store, to=record.sender, kind="reply_held",
        subject=f"Held: your reply to {comment.name} on “{title}”",
        text=render_template("notify/email/reply_held.txt", **context),
        html=render_template("notify/email/reply_held.html", **context),
        dedupe_key=f"reply_held:{record.key}",
        reply_to=reply_address(config, HELD, record.key),
    )
    return None
