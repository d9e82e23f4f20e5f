"""The author's view of the outbox under /moderate/outbox: what is waiting to be sent, what
was sent, what failed and why; retry or discard a message. Signed-in authors only (the
``login_required`` decorator, and auth.py's guard of every /moderate path); every change is a
POST with a CSRF token.

    GET  /moderate/outbox/                      messages, newest first (?show=…, ?page=…)
    POST /moderate/outbox/<id>/retry            failed (or waiting) → queued, sent soon
    POST /moderate/outbox/<id>/discard          held/queued/failed → discarded, never sent

With replies by email on, the page also counts what the reply worker read from the mailbox:
posted, held, refused, and left unread (not the author's, or no genuine reply address).
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from comments_service.extensions import store
from comments_service.models import IncomingStatus, OutboxStatus
from comments_service.moderation.auth import login_required
from comments_service.moderation.queue import MAX_PAGE
from comments_service.outbox.queue import (
    DISCARDABLE,
    RETRYABLE,
    OutboxActionRefused,
    discard_message,
    retry_message,
)
from comments_service.store import MessageNotFound

bp = Blueprint("outbox", __name__, url_prefix="/outbox")

PER_PAGE = 50
# The page's tabs: (key, label, statuses listed; None = all).
VIEWS: tuple[tuple[str, str, tuple[OutboxStatus, ...] | None], ...] = (
    ("waiting", "Waiting", (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.HELD)),
    ("failed", "Failed", (OutboxStatus.FAILED,)),
    ("sent", "Sent", (OutboxStatus.SENT,)),
    ("discarded", "Discarded", (OutboxStatus.DISCARDED,)),
    ("all", "All", None),
)
STATUS_LABELS = {
    OutboxStatus.HELD: "held until the reader confirms the address",
    OutboxStatus.QUEUED: "queued",
    OutboxStatus.SENDING: "being sent",
    OutboxStatus.SENT: "sent",
    OutboxStatus.FAILED: "failed",
    OutboxStatus.DISCARDED: "discarded",
}


def _page_number() -> int:
    # As queue.page_number: a huge page number would reach the store's slices (a 500).
    value = request.args.get("page", "1").strip()
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        abort(400, f"page must be a whole number from 1 to {MAX_PAGE:,}")
    return int(value)


@bp.get("/")
@login_required
def index():
    """The outbox, newest first, one tab at a time."""
    show = request.args.get("show", "waiting")
    view = next((item for item in VIEWS if item[0] == show), None)
    if view is None:
        abort(400, f"Unknown view {show!r}.")
    page = _page_number()
    found = store().list_messages(view[2], limit=PER_PAGE + 1, offset=(page - 1) * PER_PAGE)
    return render_template(
        "moderation/outbox.html", messages=found[:PER_PAGE], more=len(found) > PER_PAGE,
        page=page, show=show, views=VIEWS, status_labels=STATUS_LABELS,
        retryable=RETRYABLE, discardable=DISCARDABLE, replies_by_mail=_replies_by_mail(),
    )


def _replies_by_mail() -> dict[str, Any] | None:
    """What the reply worker did with the mailbox (inbox/): counts by status, and the latest
    messages not posted (left unread, held, refused) with the reason. None when it is off."""
    if not current_app.config["REPLY_MAIL_IMAP_URL"]:
        return None
    counts = {status.value: count for status, count in store().incoming_mail_counts().items()}
    recent = store().list_incoming_mail(
        (IncomingStatus.IGNORED, IncomingStatus.HELD, IncomingStatus.REFUSED), limit=10)
    return {"counts": counts, "recent": recent}


def _back():
    show = request.form.get("show")
    known = {item[0] for item in VIEWS}
    return redirect(url_for(".index", show=show if show in known else None), code=303)


def _act_on(message_id: str, action, done: str):
    """Apply an outbox action and go back to the list with what happened."""
    try:
        message = action(store(), message_id)
    except MessageNotFound:
        abort(404, "No such message.")
    except OutboxActionRefused as refused:
        flash(str(refused), "error")
        return _back()
    flash(done.format(to=message.to), "success")
    return _back()


@bp.post("/<message_id>/retry")
@login_required
def retry(message_id: str):
    """Queue the message again with a fresh count of attempts."""
    return _act_on(message_id, retry_message,
                   "The message to {to} will be sent again shortly.")


@bp.post("/<message_id>/discard")
@login_required
def discard(message_id: str):
    """Never send the message."""
    return _act_on(message_id, discard_message, "The message to {to} was discarded.")
