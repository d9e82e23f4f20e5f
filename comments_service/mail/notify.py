"""Email follow-up: what the service mails, to whom and when.

Every message is written to the store's outbox before anyone tries to send it; sending is the
outbox's (outbox/sender.py: the sender thread and ``flask send-mail``, over outbox/smtp.py).

    queue_message(store, to=…, subject=…, text=…)   the public way to queue any message
    reply_posted(store, comment, reply)            on signals.reply_stored: tell the reader
    comment_posted(store, comment)                 on signals.comment_stored: tell the author(s)
    confirm_on_posting(store, comment)             on signals.comment_stored: confirm the address
    queue_due_digests(store, now)                  the author's daily digest (each pass)
    queue_digest(store, start, end)                a digest of any window (the demo's)
    unsubscribe_address / confirm_address          used by mail/pages.py
    (retry, discard and the other queue operations: outbox/queue.py)

Guards: an address that unsubscribed is never mailed again (checked when a message is queued
and again just before it is sent); with MAIL_DOUBLE_OPT_IN the first reply notification to an
address is held until the address confirms through a link mailed to it (mailed as soon as a
comment asking for replies is stored); at most
MAIL_PER_ADDRESS_PER_DAY messages are queued for one address in any 24 hours (more are stored
as failed, with the reason, for the author to retry by hand); every header value is one line.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import formataddr
from typing import Any

from flask import Flask, current_app, has_app_context, render_template
from markupsafe import Markup

from comments_service import signals
from comments_service.extensions import manifest_or_none
from comments_service.mail.addresses import from_address, is_mail_address, mask_address
from comments_service.mail.links import (
    MailSetupError,
    public_url,
    service_link,
    site_name,
    thread_link,
)
from comments_service.mail.reply_address import COMMENT, reply_address
from comments_service.mail.tokens import CONFIRM_LINK_DAYS, confirm_link, unsubscribe_link
from comments_service.models import (
    Author,
    Comment,
    CommentState,
    MailAddress,
    OutboxMessage,
    OutboxStatus,
)
from comments_service.outbox import sender
from comments_service.outbox.message import (
    header_text,
    iso,
    new_message_id,
    utc_moment,
)
from comments_service.outbox.queue import (
    discard_open_messages_to,
    release_held_messages_to,
    settle_message,
    wake_sender,
)
from comments_service.store import Store

logger = logging.getLogger(__name__)


CONFIRM_RESEND_DAYS = 7  # a new confirmation mail only when the last one is this old
DIGEST_PAGE = 100
NEW_COMMENT_KEY = "new_comment"  # dedupe keys of the author's notices: new_comment:<id>:<author>

DAILY_LIMIT_ERROR = (
    "Not sent: {limit} messages were queued for this address in the last 24 hours "
    "(MAIL_PER_ADDRESS_PER_DAY). Retry it by hand if it should go anyway."
)


# --- queuing -------------------------------------------------------------------------------------


def queue_message(
    store: Store, *, to: str, subject: str, text: str, html: str | None = None,
    kind: str = "message", dedupe_key: str | None = None, confirm_first: bool = False,
    postpone_over_limit: bool = False, exempt_from_limit: bool = False,
    reply_to: str | None = None,
) -> OutboxMessage | None:
    """Queue one email to one address; call it inside an app context (a request or a command).

    ``text`` is the plain-text body and ``html`` the HTML body's markup, used as it is (render
    it from an autoescaped template; without it the text is escaped into the HTML part). Both
    are put in the layout with the site's name and the unsubscribe link, and the message gets
    the List-Unsubscribe headers. ``dedupe_key``: queuing the same key again returns the first
    message and adds nothing. ``confirm_first``: with MAIL_DOUBLE_OPT_IN the message is held
    until the address is confirmed, and a confirmation mail is queued (once a week at most).
    ``reply_to``: the Reply-To address (a reply address of mail/reply_address.py).

    Returns the stored message (queued, held, or failed when the address is over its daily
    limit) or None when nothing was queued: the address is not one, or it unsubscribed, or it
    is over its daily limit and ``postpone_over_limit`` says the next digest carries it (the
    author's own notices). ``exempt_from_limit``: the digest itself, once a day by its key.
    Raises MailSetupError without PUBLIC_URL outside a request; the store's errors pass.
    """
    config = current_app.config
    address = (to or "").strip()
    if not is_mail_address(address):
        logger.warning("Not queuing a %s message: %r is not a mail address", kind, address[:80])
        return None
    record = store.get_mail_address(address)
    if record is not None and record.unsubscribed_at:
        logger.info("Not queuing a %s message to %s: unsubscribed", kind, mask_address(address))
        return None
    base = public_url(config)
    manifest = manifest_or_none()
    name = site_name(manifest)
    now = utc_moment()
    status, error = OutboxStatus.QUEUED, None
    if (confirm_first and config["MAIL_DOUBLE_OPT_IN"]
            and not (record is not None and record.confirmed_at)):
        status = OutboxStatus.HELD
    limit = config["MAIL_PER_ADDRESS_PER_DAY"]
    recent = [message for message in store.messages_to(address, since=iso(now - timedelta(days=1)))
              if message.status not in (OutboxStatus.FAILED, OutboxStatus.DISCARDED)]
    if len(recent) >= limit and not exempt_from_limit:
        if postpone_over_limit:
            logger.info("Postponing a %s message to %s into the next digest: over %s a day",
                        kind, mask_address(address), limit)
            return None
        status, error = OutboxStatus.FAILED, DAILY_LIMIT_ERROR.format(limit=limit)
    unsubscribe_url = unsubscribe_link(base, config["SECRET_KEY"], address)
    one_line_subject = header_text(subject)
    if html is not None:
        # The caller's markup, from an autoescaped template (see the docstring).
        body_html = Markup(html)  # noqa: S704
    else:
        body_html = Markup("").join(Markup("<p>{}</p>").format(part)
                                    for part in text.split("\n\n") if part.strip())
    context = {"site_name": name, "unsubscribe_url": unsubscribe_url, "subject": one_line_subject}
    message = OutboxMessage(
        id=new_message_id(now), kind=header_text(kind, 40), to=address,
        subject=one_line_subject,
        text=render_template("notify/email/layout.txt", body=text.rstrip(), **context),
        html=render_template("notify/email/layout.html", body=body_html, **context),
        created=iso(now), status=status,
        headers={
            "From": formataddr((name, from_address(config, base))),
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
            **({"Reply-To": header_text(reply_to, 254)} if reply_to else {}),
        },
        next_attempt_at=iso(now), last_error=error, dedupe_key=dedupe_key,
        errors=(f"{iso(now)} {error}",) if error else (),
    )
    stored = store.add_message(message)
    if stored is not message:
        return stored  # that dedupe key was queued before
    if error:
        logger.warning("Message %s to %s failed at once: %s", stored.id,
                       mask_address(address), error)
    elif status is OutboxStatus.HELD:
        latest = store.get_mail_address(address)
        if latest is not None and latest.confirmed_at and not latest.unsubscribed_at:
            # Confirmed while this message was being stored: its release may have missed it.
            settle_message(store, stored.id, (OutboxStatus.HELD,), OutboxStatus.QUEUED, None,
                           next_attempt_at=iso(utc_moment()))
            wake_sender()
            return store.get_message(stored.id) or stored
        _ask_for_confirmation(store, address, base, name)
    else:
        wake_sender()
    return stored


class _AskedRecently(Exception):
    pass


def _ask_for_confirmation(store: Store, address: str, base: str, name: str) -> None:
    """Queue the confirmation mail for an address, unless one went out in the last week."""
    now = utc_moment()
    cutoff = iso(now - timedelta(days=CONFIRM_RESEND_DAYS))

    def note_request(record: MailAddress) -> MailAddress:
        if record.confirmation_sent_at and record.confirmation_sent_at > cutoff:
            raise _AskedRecently
        return replace(record, confirmation_sent_at=iso(now))

    try:
        store.update_mail_address(address, note_request)
    except _AskedRecently:
        return
    link = confirm_link(base, current_app.config["SECRET_KEY"], address)
    context = {"site_name": name, "confirm_url": link, "days": CONFIRM_LINK_DAYS}
    queue_message(
        store, to=address, kind="confirm", subject=f"Confirm your email address for {name}",
        text=render_template("notify/email/confirm.txt", **context),
        html=render_template("notify/email/confirm.html", **context),
        dedupe_key=f"confirm:{address.casefold()}:{iso(now)}",
    )


# --- what the service mails ----------------------------------------------------------------------


def quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def reply_posted(store: Store, comment: Comment, reply: Comment) -> OutboxMessage | None:
    """Hook after the author's ``reply`` to a reader's ``comment`` is stored: the reader is
    told, when they asked to be (notify and an email), with the reply, their own comment quoted
    and a link to the reply in the thread. Never raises: the reply is stored whatever happens
    to its notification (a failure is logged)."""
    if not has_app_context() or not comment.notify or not comment.email or comment.is_author:
        return None
    try:
        manifest = manifest_or_none()
        article = manifest.article(comment.thread) if manifest is not None else None
        context = {
            "site_name": site_name(manifest), "comment": comment, "reply": reply,
            "quoted_comment": quoted(comment.body),
            "title": article.title if article is not None else comment.thread,
            "link": thread_link(manifest, comment.thread, reply.id),
        }
        return queue_message(
            store, to=comment.email, kind="reply", confirm_first=True,
            subject=f"{reply.name} replied to your comment on “{context['title']}”",
            text=render_template("notify/email/reply.txt", **context),
            html=render_template("notify/email/reply.html", **context),
            dedupe_key=f"reply:{reply.id}",
        )
    except MailSetupError as error:
        logger.error("No notification of reply %s: %s", reply.id, error)
    except Exception:
        logger.exception("Could not queue the notification of reply %s", reply.id)
    return None


def _queue_to_authors(
    store: Store, kind: str, subject: str, context: dict[str, Any], *, dedupe: str,
    authors: list[Author] | None = None, reply_to: str | None = None, **options: bool,
) -> list[OutboxMessage]:
    """One message of ``kind`` (templates notify/email/<kind>.txt/.html) to every author (or
    to ``authors``); ``options`` go to queue_message."""
    queued = []
    for author in store.list_authors() if authors is None else authors:
        message = queue_message(
            store, to=author.email, kind=kind, subject=subject,
            text=render_template(f"notify/email/{kind}.txt", **context),
            html=render_template(f"notify/email/{kind}.html", **context),
            dedupe_key=f"{dedupe}:{author.id}", reply_to=reply_to, **options,
        )
        if message is not None:
            queued.append(message)
    return queued


def comment_posted(store: Store, comment: Comment) -> list[OutboxMessage]:
    """Hook after a reader's comment is stored: with AUTHOR_NOTIFY = immediately each author
    gets a mail about it (not about spam). Never raises (failures are logged)."""
    if (not has_app_context() or current_app.config.get("AUTHOR_NOTIFY") != "immediately"
            or comment.is_author or comment.state is not CommentState.AWAITING_REPLY):
        return []
    queued = []
    try:
        base = public_url(current_app.config)
        manifest = manifest_or_none()
        article = manifest.article(comment.thread) if manifest is not None else None
        question = (article.question(comment.question)
                    if article is not None and comment.question else None)
        context = {
            "site_name": site_name(manifest), "comment": comment,
            "title": article.title if article is not None else comment.thread,
            "question": question.text if question is not None else None,
            "reply_url": service_link(base, "moderation.queue.show_comment", comment_id=comment.id),
            "link": thread_link(manifest, comment.thread, comment.id),
            # Replies by email (inbox/): answering this mail answers the comment.
            "reply_address": reply_address(current_app.config, COMMENT, comment.id),
        }
        # Over the author's daily limit the notice waits for the next digest (never failed).
        queued += _queue_to_authors(
            store, "new_comment", f"New comment from {comment.name} on “{context['title']}”",
            context, dedupe=f"{NEW_COMMENT_KEY}:{comment.id}", postpone_over_limit=True,
            reply_to=context["reply_address"],
        )
    except MailSetupError as error:
        logger.error("No notification of comment %s: %s", comment.id, error)
    except Exception:
        logger.exception("Could not queue the notification of comment %s", comment.id)
    return queued


def confirm_on_posting(store: Store, comment: Comment) -> None:
    """Hook after a reader's comment is stored: with MAIL_DOUBLE_OPT_IN, a reader who asked to
    hear of the reply is asked to confirm the address now, while the comment is on their mind,
    rather than days later when the reply waits (at most once a week, as for a held reply).
    Never raises (failures are logged)."""
    if (not has_app_context() or not current_app.config["MAIL_DOUBLE_OPT_IN"]
            or not comment.notify or not comment.email or comment.is_author
            or comment.state is not CommentState.AWAITING_REPLY):
        return
    try:
        record = store.get_mail_address(comment.email)
        if record is not None and (record.confirmed_at or record.unsubscribed_at):
            return
        _ask_for_confirmation(store, comment.email, public_url(current_app.config),
                              site_name(manifest_or_none()))
    except MailSetupError as error:
        # Stored outside a request without PUBLIC_URL (a command): the confirmation is asked
        # for with the first reply instead, as before double opt-in on posting existed.
        logger.info("No confirmation mail yet for comment %s: %s", comment.id, error)
    except Exception:
        logger.exception("Could not queue the confirmation mail for comment %s", comment.id)


# Per store object: the end of the last digest window this process has dealt with.
_digests_done: weakref.WeakKeyDictionary[Store, str] = weakref.WeakKeyDictionary()


def digest_window(now: datetime, hour: int) -> tuple[datetime, datetime]:
    """The 24 hours the latest due digest covers: up to today's digest hour once it has
    passed, else up to yesterday's."""
    end = now.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    if end > now:
        end -= timedelta(days=1)
    return end - timedelta(days=1), end


def queue_due_digests(store: Store, now: datetime | None = None) -> list[OutboxMessage]:
    """Once the digest hour has passed, queue each author a mail listing reader comments of
    the 24 hours before it (nothing when there were none): with AUTHOR_NOTIFY = digest all of
    them; with immediately only those whose own notice the daily limit postponed. The dedupe
    key (author, window) makes it once per window across processes; a digest is exempt from
    the daily limit (one a day), so nothing postponed into it is ever lost."""
    config = current_app.config
    if config["AUTHOR_NOTIFY"] == "off":
        return []
    start, end = digest_window(now or utc_moment(), config["AUTHOR_DIGEST_HOUR"])
    if _digests_done.get(store) == iso(end):
        return []
    comments = _comments_between(store, start, end)
    kept = [comment for comment in comments if comment.state is not CommentState.SPAM]
    queued: list[OutboxMessage] = []
    if kept:
        try:
            base = public_url(config)
        except MailSetupError as error:
            logger.error("No digest for %s: %s", iso(end), error)
            _digests_done[store] = iso(end)
            return []
        if config["AUTHOR_NOTIFY"] == "digest":
            queued += _queue_digest(store, base, kept, len(comments) - len(kept), start, end,
                                    store.list_authors())
        else:
            for author in store.list_authors():
                told = {message.dedupe_key for message in
                        store.messages_to(author.email, since=iso(start))}
                postponed = [comment for comment in kept
                             if f"{NEW_COMMENT_KEY}:{comment.id}:{author.id}" not in told]
                if postponed:
                    queued += _queue_digest(store, base, postponed, 0, start, end, [author])
    _digests_done[store] = iso(end)
    return queued


def queue_digest(store: Store, start: datetime, end: datetime) -> list[OutboxMessage]:
    """Queue each author a mail listing the reader comments written from ``start`` to ``end``
    (nothing when there were none; once per window, by its dedupe key): the demo shows one at
    once, without waiting for the digest hour."""
    comments = _comments_between(store, start, end)
    kept = [comment for comment in comments if comment.state is not CommentState.SPAM]
    if not kept:
        return []
    try:
        base = public_url(current_app.config)
    except MailSetupError as error:
        logger.error("No digest for %s: %s", iso(end), error)
        return []
    return _queue_digest(store, base, kept, len(comments) - len(kept), start, end,
                         store.list_authors())


def _comments_between(store: Store, start: datetime, end: datetime) -> list[Comment]:
    """Reader comments created in [start, end), oldest first."""
    comments: list[Comment] = []
    offset = 0
    while True:
        page, _total = store.find_comments(limit=DIGEST_PAGE, offset=offset)
        comments.extend(comment for comment in page
                        if iso(start) <= comment.created < iso(end) and not comment.is_author)
        if len(page) < DIGEST_PAGE or (page and page[-1].created < iso(start)):
            break
        offset += DIGEST_PAGE
    comments.sort(key=lambda comment: comment.created)
    return comments


def _queue_digest(store: Store, base: str, kept: list[Comment], spam: int, start: datetime,
                  end: datetime, authors: list[Author]) -> list[OutboxMessage]:
    manifest = manifest_or_none()
    items = []
    for comment in kept:
        article = manifest.article(comment.thread) if manifest is not None else None
        items.append({
            "comment": comment,
            "title": article.title if article is not None else comment.thread,
            "reply_url": service_link(base, "moderation.queue.show_comment",
                                      comment_id=comment.id),
            "reply_address": reply_address(current_app.config, COMMENT, comment.id),
        })
    context = {
        "site_name": site_name(manifest), "items": items, "start": start, "end": end,
        "spam": spam, "waiting": store.count_waiting(),
        "queue_url": service_link(base, "moderation.queue.index"),
    }
    count = len(kept)
    return _queue_to_authors(
        store, "digest",
        f"{count} new comment{'s' if count != 1 else ''} on {context['site_name']}",
        context, dedupe=f"digest:{iso(end)}", authors=authors, exempt_from_limit=True,
    )


def queue_digests_when_a_pass_starts(store: Store, *, now: datetime) -> None:
    """Receiver of outbox.sender.pass_starting: the digest goes out with the pass that finds
    it due. Never raises: a failed digest must not stop the mail behind it."""
    try:
        queue_due_digests(store, now)
    except Exception:
        logger.exception("Could not queue the digest")


# --- what readers do to their addresses ----------------------------------------------------------


def unsubscribe_address(store: Store, address: str) -> MailAddress:
    """The address gets no mail again: recorded (idempotent), and its waiting messages are
    discarded now (the sender also checks before sending each one)."""
    now = iso(utc_moment())
    record = store.update_mail_address(
        address, lambda current: current if current.unsubscribed_at
        else replace(current, unsubscribed_at=now))
    discard_open_messages_to(store, address)
    logger.info("%s unsubscribed", mask_address(address))
    return record


def confirm_address(store: Store, address: str) -> tuple[MailAddress, int]:
    """Record the address as confirmed and release its held messages; returns the record
    and how many were released. An unsubscribed address stays unsubscribed (0 released)."""
    now = iso(utc_moment())
    record = store.update_mail_address(
        address, lambda current: current if current.unsubscribed_at or current.confirmed_at
        else replace(current, confirmed_at=now))
    if record.unsubscribed_at:
        return record, 0
    released = release_held_messages_to(store, address, now)
    if released and has_app_context():
        wake_sender()
    return record, released


def init_app(app: Flask) -> None:
    """Mail about stored comments and replies, queue digests as the sender's passes start,
    and (with MAIL_SENDER_THREAD) run the sender thread."""
    signals.comment_stored.connect(comment_posted)
    signals.comment_stored.connect(confirm_on_posting)
    signals.reply_stored.connect(reply_posted)
    sender.pass_starting.connect(queue_digests_when_a_pass_starts)
    sender.init_app(app)
