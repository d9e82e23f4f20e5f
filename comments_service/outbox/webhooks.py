"""Webhooks as an outbox transport: store an event for every receiver, then sign and POST it.

Which events there are and what they carry is mail/webhook_events.py's (and tally's, for a
request's status). Each event becomes one outbox message per URL in ``WEBHOOK_URLS`` (kind
``webhook``, ``to`` the URL, ``text`` the JSON body), stored before anything is sent, exactly
like mail: the sender (outbox/sender.py: the background thread or ``flask send-mail``) claims it
with a lease and POSTs it through :class:`WebhookTransport` (:func:`deliver`). A reader's POST
only writes the message, so a slow or dead receiver never slows it. A 2xx answer is delivery;
anything else (another status, a timeout, a refused connection) is retried after
``WEBHOOK_RETRY_BASE_SECONDS * 2 ** (n - 1)`` (at most 6 h) until ``WEBHOOK_MAX_ATTEMPTS``.
Delivery is at least once: ``X-Tellmemore-Delivery`` (the message id) stays the same on every
attempt, so a receiver can drop repeats.

Request headers::

    Content-Type: application/json
    X-Tellmemore-Event: comment.created | reply.created | request.status_changed | …
    X-Tellmemore-Delivery: <message id>
    X-Tellmemore-Timestamp: <Unix seconds of this attempt>
    X-Tellmemore-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with WEBHOOK_SECRET>

(no signature header when WEBHOOK_SECRET is empty). Verify: recompute the HMAC over the
timestamp header, a dot and the raw body; compare in constant time; refuse old timestamps.

Body: ``{"event": …, "created": <ISO time>, "data": {…}}``. Payloads never carry emails:
:func:`public_payload` drops the keys ``email``, ``reader_key``, ``spam_reasons`` and the like at
any depth, whatever a caller passes to :func:`queue_webhook`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from comments_service import extensions
from comments_service.models import OutboxMessage
from comments_service.outbox.message import iso, new_message_id, utc_moment
from comments_service.outbox.queue import wake_sender
from comments_service.outbox.transport import Failure
from comments_service.store import OutboxStore

KIND = "webhook"
EVENT_HEADER = "X-Tellmemore-Event"
DELIVERY_HEADER = "X-Tellmemore-Delivery"
TIMESTAMP_HEADER = "X-Tellmemore-Timestamp"
SIGNATURE_HEADER = "X-Tellmemore-Signature"
PRIVATE_KEYS = frozenset({"email", "emails", "reader_key", "spam_reasons", "remote_addr",
                          "ip", "ip_address", "password", "password_hash"})
ANSWER_PREVIEW = 300  # bytes of a receiver's error answer kept in the outbox

def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def public_payload(value: Any) -> Any:
    """The payload without private keys (emails and the like), at any depth."""
    if isinstance(value, Mapping):
        return {str(key): public_payload(item) for key, item in value.items()
                if str(key).lower() not in PRIVATE_KEYS}
    if isinstance(value, list | tuple):
        return [public_payload(item) for item in value]
    return value


def queue_webhook(event: str, payload: Mapping[str, Any], *, store: OutboxStore | None = None,
                  dedupe_key: str | None = None) -> list[OutboxMessage]:
    """Queue ``event`` with ``payload`` for every WEBHOOK_URLS entry (inside an app context).

    ``dedupe_key``: queuing the same key again adds nothing. Returns the stored messages (none
    when no URL is configured). The store's errors pass; mail/webhook_events.py's
    ``comment_event`` is the never-raising wrapper the posting hooks use."""
    config = current_app.config
    urls = config.get("WEBHOOK_URLS") or []
    if not urls:
        return []
    store = store or extensions.store()
    now = utc_moment()
    body = json.dumps({"event": event, "created": iso(now), "data": public_payload(payload)},
                      ensure_ascii=False)
    queued = []
    for url in urls:
        message = OutboxMessage(
            id=new_message_id(now), kind=KIND, to=url, subject=event[:200], text=body, html="",
            created=iso(now), headers={EVENT_HEADER: event[:200]}, next_attempt_at=iso(now),
            dedupe_key=f"webhook:{url}:{dedupe_key}" if dedupe_key else None,
        )
        queued.append(store.add_message(message))
    wake_sender()
    return queued


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer like any other non-2xx: retried, never followed (a POST turned
    into a GET somewhere else helps nobody)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def deliver(config: Mapping[str, Any], message: OutboxMessage) -> Failure | None:
    """POST one claimed webhook message: None when the receiver answered 2xx, else (what went
    wrong, False): every failure is worth retrying until WEBHOOK_MAX_ATTEMPTS."""
    body = message.text.encode("utf-8")
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json", "User-Agent": "tellmemore-webhook/1",
        EVENT_HEADER: message.headers.get(EVENT_HEADER, message.subject),
        DELIVERY_HEADER: message.id, TIMESTAMP_HEADER: timestamp,
    }
    secret = str(config.get("WEBHOOK_SECRET") or "")
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
    if urlsplit(message.to).scheme not in ("http", "https"):
        return f"Not an http(s) URL: {message.to!r}", True
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked just above
        message.to, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=float(config["WEBHOOK_TIMEOUT_SECONDS"])) as answer:
            answer.read(ANSWER_PREVIEW)
            status = answer.status
    except urllib.error.HTTPError as error:
        text = error.read(ANSWER_PREVIEW).decode("utf-8", "replace").strip()
        return f"HTTP {error.code}{': ' + text if text else ''}", False
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return f"Could not deliver: {type(reason).__name__}: {reason}", False
    if 200 <= status < 300:
        return None
    return f"HTTP {status}", False


class WebhookTransport:
    """POSTs webhook messages (:func:`deliver`); it keeps no connection between messages."""

    max_attempts_setting = "WEBHOOK_MAX_ATTEMPTS"
    retry_base_setting = "WEBHOOK_RETRY_BASE_SECONDS"
    refused_prefix = "Refused"
    honours_unsubscribe = False

    def deliver(self, config: Mapping[str, Any], message: OutboxMessage) -> Failure | None:
        return deliver(config, message)

    def close(self) -> None:
        """Nothing to let go of: every POST has a connection of its own."""

