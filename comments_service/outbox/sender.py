"""Sending what the outbox holds: one pass through the due messages (:func:`send_due`, also run
by ``flask send-mail``) and the background thread that runs passes in each service process.

A pass claims due messages with a lease (store.claim_messages: flock + compare-and-set), hands
each to the transport of its kind (webhook messages to outbox/webhooks.py, every other kind is
mail for outbox/smtp.py), and records the outcome: sent, rescheduled with exponential back-off,
or failed. Only the sender that still holds a message's claim may record its outcome, so two
senders (threads, processes, machines) never both send one message within a lease.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from blinker import Namespace
from flask import Flask, has_app_context

from comments_service import extensions
from comments_service.background import PollingThread
from comments_service.models import OutboxMessage, OutboxStatus
from comments_service.outbox import smtp, webhooks
from comments_service.outbox.message import iso, utc_moment
from comments_service.outbox.queue import (
    SENDER_EXTENSION,
    UNSUBSCRIBED_ERROR,
    QueueStore,
    expire_held,
    retry_delay,
)
from comments_service.outbox.transport import Transport
from comments_service.store import MessageNotFound

logger = logging.getLogger(__name__)

CLAIM_BATCH = 10
MAX_ERRORS_KEPT = 20

# The transport of each message kind; any other kind is mail to a person.
TRANSPORTS: dict[str, Callable[[], Transport]] = {webhooks.KIND: webhooks.WebhookTransport}
MAIL_TRANSPORT: Callable[[], Transport] = smtp.SmtpTransport

_signals = Namespace()
# Sent inside an app context as each pass begins, with the store as sender and the pass's time
# as ``now``: mail/notify.py queues the author's due digest then, so it goes in the same pass.
pass_starting = _signals.signal("outbox-pass-starting")


class _LeaseLost(Exception):
    """The message is no longer this sender's (its lease ran out and another took it)."""


@dataclass
class SendReport:
    """What one pass through the queue did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    discarded: int = 0
    released: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.failed + self.discarded

    def __str__(self) -> str:
        return (f"{self.sent} sent, {self.retried} to retry, {self.failed} failed, "
                f"{self.discarded} discarded")


class _PassTransports:
    """The transports of one pass: each made when a message of its kind first comes up, all
    closed when the pass ends."""

    def __init__(self) -> None:
        self._made: dict[Callable[[], Transport], Transport] = {}

    def for_kind(self, kind: str) -> Transport:
        factory = TRANSPORTS.get(kind, MAIL_TRANSPORT)
        if factory not in self._made:
            self._made[factory] = factory()
        return self._made[factory]

    def close(self) -> None:
        for transport in self._made.values():
            transport.close()


def _claimer() -> str:
    """Unique per pass: host, process, thread and a random part."""
    return (f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:"
            f"{secrets.token_hex(4)}")


def send_due(
    store: QueueStore, config: Mapping[str, Any], *, now: Callable[[], datetime] = utc_moment,
    should_stop: Callable[[], bool] = lambda: False, limit: int | None = None,
) -> SendReport:
    """One pass: tell ``pass_starting`` (inside an app context: due digests are queued), let
    held messages of addresses never confirmed go, then claim and send every message that was
    due when the pass began. A message is tried at most once per pass; after a connection
    failure the rest of the pass's mail is rescheduled with that error instead of trying
    again."""
    report = SendReport()
    started = now()
    if has_app_context():
        try:
            pass_starting.send(store, now=started)
        except Exception:
            logger.exception("A receiver of the sender's pass_starting signal failed")
    report.released = expire_held(store, started)
    claimer = _claimer()
    lease = timedelta(seconds=config["MAIL_LEASE_SECONDS"])
    margin = timedelta(seconds=3 * config["SMTP_TIMEOUT_SECONDS"])
    transports = _PassTransports()
    try:
        while not should_stop() and (limit is None or report.total < limit):
            batch_size = CLAIM_BATCH if limit is None else min(CLAIM_BATCH, limit - report.total)
            batch = store.claim_messages(claimer, iso(started), iso(now() + lease), batch_size)
            if not batch:
                break
            for message in batch:
                if should_stop() or message.claimed_until is None or (
                        now() + margin > datetime.fromisoformat(message.claimed_until)):
                    _release(store, message, claimer)  # not enough lease left to send safely
                    continue
                _deliver(store, config, transports.for_kind(message.kind), message, claimer,
                         report, now)
    finally:
        transports.close()
    if report.total:
        logger.info("Mail: %s", report)
    return report


def _finish(store: QueueStore, message: OutboxMessage, claimer: str,
            change: Callable[[OutboxMessage], OutboxMessage]) -> OutboxMessage | None:
    """Apply ``change`` only if the message is still this sender's claim (compare-and-set)."""

    def apply(current: OutboxMessage) -> OutboxMessage:
        if current.status is not OutboxStatus.SENDING or current.claimed_by != claimer:
            raise _LeaseLost
        return replace(change(current), claimed_by=None, claimed_until=None)

    try:
        return store.update_message(message.id, apply)
    except (_LeaseLost, MessageNotFound):
        logger.warning("Message %s was no longer this sender's to finish", message.id)
        return None


def _release(store: QueueStore, message: OutboxMessage, claimer: str) -> None:
    _finish(store, message, claimer, lambda current: replace(
        current, status=OutboxStatus.QUEUED, attempts=max(current.attempts - 1, 0)))


def _deliver(
    store: QueueStore, config: Mapping[str, Any], transport: Transport, message: OutboxMessage,
    claimer: str, report: SendReport, now: Callable[[], datetime],
) -> None:
    """Send one claimed message through its transport and record the outcome."""
    record = store.get_mail_address(message.to) if transport.honours_unsubscribe else None
    if record is not None and record.unsubscribed_at:
        _finish(store, message, claimer, lambda current: replace(
            current, status=OutboxStatus.DISCARDED, last_error=UNSUBSCRIBED_ERROR))
        report.discarded += 1
        return
    outcome = transport.deliver(config, message)
    if outcome is None:
        sent_at = iso(now())
        if _finish(store, message, claimer, lambda current: replace(
                current, status=OutboxStatus.SENT, sent_at=sent_at)) is not None:
            report.sent += 1
        return
    description, permanent = outcome
    moment = now()
    max_attempts = config[transport.max_attempts_setting]

    def failed_attempt(current: OutboxMessage) -> OutboxMessage:
        errors = (*current.errors, f"{iso(moment)} attempt {current.attempts}: {description}")
        errors = errors[-MAX_ERRORS_KEPT:]
        if permanent or current.attempts >= max_attempts:
            reason = (f"{transport.refused_prefix}: {description}" if permanent
                      else f"Gave up after {current.attempts} attempts: {description}")
            return replace(current, status=OutboxStatus.FAILED, last_error=reason, errors=errors)
        delay = retry_delay(config, current.attempts, transport.retry_base_setting)
        return replace(current, status=OutboxStatus.QUEUED, last_error=description,
                       errors=errors, next_attempt_at=iso(moment + delay))

    finished = _finish(store, message, claimer, failed_attempt)
    # One line per attempt in the log, whatever the server answered (SMTP replies and
    # exceptions can run over several lines).
    if finished is not None and finished.status is OutboxStatus.FAILED:
        report.failed += 1
        logger.error("Message %s failed: %s", message.id, one_line(finished.last_error or ""))
    elif finished is not None:
        report.retried += 1
        logger.warning("Message %s not sent (attempt %d), retrying at %s UTC: %s", message.id,
                       finished.attempts, finished.next_attempt_at[:19], one_line(description))


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, line breaks included, as one space."""
    return " ".join(text.split())


# --- the background sender -----------------------------------------------------------------------


class MailSender(PollingThread):
    """The sender thread of one app in one process (background.py says when it starts and
    stops). A process killed mid-send leaves a lease that expires, and the message is sent
    again then."""

    thread_name = "tellmemore-mail-sender"
    poll_setting = "MAIL_POLL_SECONDS"
    what = "The mail sender"

    def pass_once(self) -> None:
        send_due(extensions.store(), self.app.config, should_stop=lambda: self.stopping)


def init_app(app: Flask) -> None:
    """With MAIL_SENDER_THREAD, give the app a sender thread that starts with its first
    request (the settings are checked at start: config.py)."""
    if app.config["MAIL_SENDER_THREAD"]:
        sender = MailSender(app)
        app.extensions[SENDER_EXTENSION] = sender
        app.before_request(sender.ensure_started)
