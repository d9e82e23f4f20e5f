"""Webhooks: tell other systems about new comments, replies and request status changes.

Each event becomes one outbox message per URL in ``WEBHOOK_URLS`` (kind ``webhook``, ``to`` the
URL, ``text`` the JSON body), stored before anything is sent, exactly like mail: the sender
(notify.send_due, the background thread or ``flask send-mail``) claims it with a lease and
POSTs it here (:func:`deliver`). A reader's POST only writes the message, so a slow or dead
receiver never slows it. A 2xx answer is delivery; anything else (another status, a timeout,
a refused connection) is retried after ``WEBHOOK_RETRY_BASE_SECONDS * 2 ** (n - 1)`` (at most 6 h)
until ``WEBHOOK_MAX_ATTEMPTS``. Delivery is at least once: ``X-Tellmemore-Delivery`` (the
message id) stays the same on every attempt, so a receiver can drop repeats.

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
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, has_app_context

from comments_service.config import ConfigError
from comments_service.models import Comment, CommentState, OutboxMessage
from comments_service.outbox.message import new_message_id
from comments_service.outbox.queue import wake_sender
from comments_service.outbox.transport import Failure
from comments_service.store import Store

logger = logging.getLogger(__name__)

KIND = "webhook"
EVENT_HEADER = "X-Tellmemore-Event"
DELIVERY_HEADER = "X-Tellmemore-Delivery"
TIMESTAMP_HEADER = "X-Tellmemore-Timestamp"
SIGNATURE_HEADER = "X-Tellmemore-Signature"
COMMENT_CREATED = "comment.created"
REPLY_CREATED = "reply.created"
REQUEST_STATUS_CHANGED = "request.status_changed"
PRIVATE_KEYS = frozenset({"email", "emails", "reader_key", "spam_reasons", "remote_addr",
                          "ip", "ip_address", "password", "password_hash"})
ANSWER_PREVIEW = 300  # bytes of a receiver's error answer kept in the outbox

CONFIG_DEFAULTS: dict[str, Any] = {
    # Where to POST events: a list, or one string of comma-separated URLs. Empty: no webhooks.
    "WEBHOOK_URLS": [],
    # Signs every body (HMAC-SHA256); empty: unsigned.
    "WEBHOOK_SECRET": "",
    "WEBHOOK_TIMEOUT_SECONDS": 5,
    "WEBHOOK_MAX_ATTEMPTS": 8,
    # Seconds before the first retry; doubled for each later one (at most 6 hours).
    "WEBHOOK_RETRY_BASE_SECONDS": 30,
}


def check_config(config: dict[str, Any]) -> None:
    """Fill in the defaults; WEBHOOK_URLS becomes a list of http(s) URLs (ConfigError else)."""
    for name, value in CONFIG_DEFAULTS.items():
        config.setdefault(name, value)
    raw = config["WEBHOOK_URLS"]
    urls = [part.strip() for part in (raw.split(",") if isinstance(raw, str) else raw or [])]
    urls = [url for url in urls if url]
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"WEBHOOK_URLS: {url!r} is not an http(s) URL")
    config["WEBHOOK_URLS"] = urls
    config["WEBHOOK_SECRET"] = str(config["WEBHOOK_SECRET"] or "")
    for name, minimum in (("WEBHOOK_TIMEOUT_SECONDS", 0.1), ("WEBHOOK_RETRY_BASE_SECONDS", 0),
                          ("WEBHOOK_MAX_ATTEMPTS", 1)):
        try:
            value = float(config[name])
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{name} must be a number, not {config[name]!r}") from error
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum:g}")
        config[name] = int(value) if name == "WEBHOOK_MAX_ATTEMPTS" else value
    lease = float(config.get("MAIL_LEASE_SECONDS", 300))
    if lease < 4 * config["WEBHOOK_TIMEOUT_SECONDS"]:
        raise ConfigError("MAIL_LEASE_SECONDS must be at least 4 times WEBHOOK_TIMEOUT_SECONDS")


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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def queue_webhook(event: str, payload: Mapping[str, Any], *, store: Store | None = None,
                  dedupe_key: str | None = None) -> list[OutboxMessage]:
    """Queue ``event`` with ``payload`` for every WEBHOOK_URLS entry (inside an app context).

    ``dedupe_key``: queuing the same key again adds nothing. Returns the stored messages (none
    when no URL is configured). The store's errors pass; :func:`comment_event` is the
    never-raising wrapper the posting hooks use."""
    config = current_app.config
    urls = config.get("WEBHOOK_URLS") or []
    if not urls:
        return []
    store = store or current_app.extensions["tellmemore.store"]
    now = datetime.now(UTC)
    body = json.dumps({"event": event, "created": _iso(now), "data": public_payload(payload)},
                      ensure_ascii=False)
    queued = []
    for url in urls:
        message = OutboxMessage(
            id=new_message_id(now), kind=KIND, to=url, subject=event[:200], text=body, html="",
            created=_iso(now), headers={EVENT_HEADER: event[:200]}, next_attempt_at=_iso(now),
            dedupe_key=f"webhook:{url}:{dedupe_key}" if dedupe_key else None,
        )
        queued.append(store.add_message(message))
    wake_sender()
    return queued


def comment_payload(comment: Comment) -> dict[str, Any]:
    """What a receiver learns about a comment: its public fields and where it stands."""
    from comments_service.comments.public import public_comment
    from comments_service.mail.notify import _manifest, thread_link

    manifest = _manifest()
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
        pass


def init_app(app: Flask) -> None:
    check_config(app.config)
