"""The reply worker: reads the author's mailbox and records each reply by email, then posts it
(posting.py). One pass is :func:`poll_once` (also `flask … poll-replies` for cron); the
:class:`ReplyWorker` thread runs passes every REPLY_MAIL_POLL_SECONDS in each service process.

Exactly once, whatever crashes: for each unread message, in this order,

1. the store records it (keyed by its Message-ID; a pending record holds the new text, the
   comment and the id the reply will get) — a message already recorded is not read again;
2. the message is marked seen in the mailbox;
3. posting.post_pending posts every pending record under a lease.

A crash before 1 leaves the message unread: the next pass reads it. Between 1 and 2: the next
pass finds it recorded and only marks it seen. Between 2 and 3, or during 3: the record is
pending, and the next pass (once the lease runs out) posts it; a reply already stored under its
id is finished, not posted again.

A message is accepted only from an author's address, with a genuine reply token for a comment
that still waits (or for a held reply); anything else is recorded as ignored, so that it is
counted once on the outbox page, and left unread in the mailbox for the author to see.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Flask

from comments_service import extensions
from comments_service.background import PollingThread
from comments_service.inbox.imap import Mailbox, MailboxError
from comments_service.inbox.parsing import AuthorMail, header_message_id, message_key, read_mail
from comments_service.inbox.posting import post_pending
from comments_service.mail.addresses import mask_address
from comments_service.mail.reply_address import COMMENT, HELD, read_reply_token
from comments_service.models import CommentState, IncomingMail, IncomingStatus, new_comment_id
from comments_service.outbox.message import iso, utc_moment
from comments_service.store import Store

logger = logging.getLogger(__name__)

WORKER_EXTENSION = "tellmemore.reply_worker"


@dataclass
class PollReport:
    """What one pass did."""

    read: int = 0  # messages taken from the mailbox and recorded
    ignored: int = 0  # of those, left unread
    posted: dict[str, int] = field(default_factory=dict)  # records finished, by status
    error: str | None = None  # the mailbox could not be read

    def __str__(self) -> str:
        done = ", ".join(f"{count} {status}" for status, count in sorted(self.posted.items()))
        text = f"{self.read} read, {self.ignored} ignored; {done or 'nothing posted'}"
        return f"{text}; mailbox: {self.error}" if self.error else text


def poll_once(store: Store, config: Mapping[str, Any]) -> PollReport:
    """One pass: record the mailbox's new messages, then post what is pending. Inside an app
    context (posting renders and announces). The mailbox failing still posts what is
    pending."""
    report = PollReport()
    try:
        read_mailbox(store, config, report)
    except MailboxError as error:
        report.error = str(error)
        logger.error("Replies by email: %s", error)
    report.posted = post_pending(store, config)
    if report.read or report.posted or report.error:
        logger.info("Replies by email: %s", report)
    return report


def read_mailbox(store: Store, config: Mapping[str, Any], report: PollReport) -> None:
    """Steps 1 and 2 of the module docstring for every unread message."""
    with Mailbox(config) as mailbox:
        uids = mailbox.unseen()
        headers = mailbox.headers(uids)
        for uid in uids:
            message_id = header_message_id(headers.get(uid, b""))
            known = (store.get_incoming_mail(message_key(message_id, b""))
                     if message_id else None)
            if known is None:
                raw = mailbox.fetch(uid)
                try:
                    mail: AuthorMail | None = read_mail(raw, config)
                except Exception:
                    # A message the parser chokes on must not stop the ones behind it.
                    logger.exception("Replies by email: message %s cannot be read", uid)
                    mail = None
                key = mail.key if mail is not None else message_key(message_id, raw)
                known = store.get_incoming_mail(key)
                if known is None:  # new to the store (not one without a Message-ID seen before)
                    known = store.add_incoming_mail(
                        accept(store, config, mail) if mail is not None else IncomingMail(
                            key=key, message_id=message_id, received=iso(utc_moment()),
                            status=IncomingStatus.IGNORED, reason="It cannot be read."))
                    report.read += 1
                    report.ignored += known.status is IncomingStatus.IGNORED
            if known.status is not IncomingStatus.IGNORED:
                mailbox.mark_seen(uid)


def accept(store: Store, config: Mapping[str, Any], mail: AuthorMail) -> IncomingMail:
    """The record to keep for ``mail``: pending when it is a reply to post, else ignored with
    the reason (see the module docstring)."""
    now = iso(utc_moment())
    ignored = IncomingMail(key=mail.key, message_id=mail.message_id, received=now,
                           status=IncomingStatus.IGNORED, sender=mask_address(mail.sender))
    author = store.author_by_email(mail.sender) if mail.sender else None
    if author is None:
        return replace(ignored, reason="Not from an author's address.")
    if mail.automatic:
        return replace(ignored, reason="An automatic message (out of office, bounce).")
    readings = [read_reply_token(str(config["SECRET_KEY"]), token) for token in mail.tokens]
    genuine = [reading for reading in readings if reading is not None]
    if not genuine:
        return replace(ignored, reason="No genuine reply address: not an answer to a "
                              "notification, or a token that was changed." if mail.tokens
                              else "Not sent to a reply address.")
    kind, value = genuine[0]
    pending = IncomingMail(key=mail.key, message_id=mail.message_id, received=now,
                           sender=author.email, body=mail.text, filing=mail.filing,
                           label=mail.label, reply_id=new_comment_id())
    if kind == COMMENT:
        comment = store.get_comment(value)
        if comment is None or comment.is_author or comment.state is not (
                CommentState.AWAITING_REPLY):
            return replace(ignored, reason="The comment no longer waits for a reply.")
        if not mail.text:
            return replace(ignored, reason="No text above the quote.")
        return replace(pending, comment_id=comment.id)
    if kind == HELD:
        held = store.get_incoming_mail(value)
        if held is None or held.status is not IncomingStatus.HELD:
            return replace(ignored, reason="The held reply was sent or replaced already.")
        if not mail.text:  # neither "yes" nor a new text: the held reply stays held
            return replace(ignored, reason="No text above the quote.")
        return replace(pending, comment_id=held.comment_id, held_key=held.key,
                       filing=mail.filing or held.filing,
                       label=mail.label if mail.filing else held.label)
    return replace(ignored, reason="An unknown kind of reply address.")


# --- the background worker -----------------------------------------------------------------------


class ReplyWorker(PollingThread):
    """The reply worker thread of one app in one process, started and stopped as the mail
    sender is (background.py)."""

    thread_name = "tellmemore-reply-worker"
    poll_setting = "REPLY_MAIL_POLL_SECONDS"
    what = "The reply worker"

    def pass_once(self) -> None:
        poll_once(extensions.store(), self.app.config)


def init_app(app: Flask) -> None:
    """With REPLY_MAIL_IMAP_URL and REPLY_MAIL_THREAD, give the app a reply worker that starts
    with its first request."""
    if app.config["REPLY_MAIL_IMAP_URL"] and app.config["REPLY_MAIL_THREAD"]:
        worker = ReplyWorker(app)
        app.extensions[WORKER_EXTENSION] = worker
        app.before_request(worker.ensure_started)
