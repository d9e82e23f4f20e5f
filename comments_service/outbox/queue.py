"""Changes to stored messages that the outbox page, the mail policy and the sender share: retry
and discard, settle the open messages of one address, let held messages go once they have
waited too long, the back-off between attempts, and waking the sender thread.

Every change is a compare-and-set through ``store.update_message``: a message that moved on in
the meantime (sent, claimed, discarded by someone else) is left as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from flask import current_app, has_app_context

from comments_service.models import OutboxMessage, OutboxStatus
from comments_service.outbox.message import iso, utc_moment
from comments_service.store import AddressStore, MessageNotFound, OutboxStore

SENDER_EXTENSION = "tellmemore.mail_sender"
# A held message waits this long for its address to be confirmed, then it is discarded
# (mail/tokens.py makes a confirmation link work exactly as long).
HELD_DAYS = 30
MAX_RETRY_DELAY = timedelta(hours=6)

# What the outbox page may do to a message in each status.
RETRYABLE = (OutboxStatus.FAILED, OutboxStatus.QUEUED)
DISCARDABLE = (OutboxStatus.HELD, OutboxStatus.QUEUED, OutboxStatus.FAILED)
UNSUBSCRIBED_ERROR = "Not sent: the address unsubscribed."
DISCARDED_BY_AUTHOR = "Discarded on the outbox page."
NEVER_CONFIRMED = f"Not sent: the address was not confirmed within {HELD_DAYS} days."


class QueueStore(OutboxStore, AddressStore, Protocol):
    """What the delivery queue uses of a store: the outbox, and each address's consent."""


class OutboxActionRefused(Exception):
    """Retry or discard does not fit the message's status (the page says why)."""


class Wakeable(Protocol):
    """What queuing needs of the sender thread (outbox/sender.py's MailSender)."""

    def wake(self) -> None: ...


def wake_sender() -> None:
    """Have this app's sender thread, when it runs one, look at the queue now (inside an app
    context)."""
    sender: Wakeable | None = current_app.extensions.get(SENDER_EXTENSION)
    if sender is not None:
        sender.wake()


def settle_message(
    store: QueueStore, message_id: str, from_statuses: tuple[OutboxStatus, ...],
    status: OutboxStatus, error: str | None, **changes: Any,
) -> bool:
    """Move a message to ``status`` if it is still in one of ``from_statuses``; False (and
    nothing changed) when it is not, or is gone."""

    def apply(current: OutboxMessage) -> OutboxMessage:
        if current.status not in from_statuses:
            raise OutboxActionRefused(current.status)
        return replace(current, status=status, last_error=error or current.last_error,
                       **changes)

    try:
        store.update_message(message_id, apply)
    except (OutboxActionRefused, MessageNotFound):
        return False
    return True


def discard_open_messages_to(store: QueueStore, address: str) -> None:
    """Discard what still waits to go to an address that unsubscribed."""
    for message in store.messages_to(address, open_only=True):
        settle_message(store, message.id, (OutboxStatus.HELD, OutboxStatus.QUEUED),
                       OutboxStatus.DISCARDED, UNSUBSCRIBED_ERROR)


def release_held_messages_to(store: QueueStore, address: str, at: str) -> int:
    """Queue (due at ``at``) the held messages of an address that was confirmed; returns how
    many were released."""
    released = 0
    for message in store.messages_to(address, open_only=True):
        if settle_message(store, message.id, (OutboxStatus.HELD,), OutboxStatus.QUEUED, None,
                          next_attempt_at=at):
            released += 1
    return released


def expire_held(store: QueueStore, now: datetime) -> int:
    """Discard the messages held longer than HELD_DAYS (their address was never confirmed);
    returns how many."""
    cutoff = iso(now - timedelta(days=HELD_DAYS))
    expired = 0
    for message in store.list_messages([OutboxStatus.HELD], limit=10_000):
        if message.created < cutoff and settle_message(
                store, message.id, (OutboxStatus.HELD,), OutboxStatus.DISCARDED,
                NEVER_CONFIRMED):
            expired += 1
    return expired


def retry_message(store: QueueStore, message_id: str) -> OutboxMessage:
    """Send a failed message again (or a waiting one now), with a fresh count of attempts.
    Refused for an address that unsubscribed. Discarded is final: by the author, because the
    address unsubscribed, or because it was never confirmed."""
    message = store.get_message(message_id)
    if message is None:
        raise MessageNotFound(message_id)
    record = store.get_mail_address(message.to)
    if record is not None and record.unsubscribed_at:
        raise OutboxActionRefused("That address unsubscribed: it gets no more mail.")
    now = iso(utc_moment())

    def apply(current: OutboxMessage) -> OutboxMessage:
        if current.status not in RETRYABLE:
            raise OutboxActionRefused(f"A message that is {current.status.value} cannot be "
                                      "retried.")
        return replace(current, status=OutboxStatus.QUEUED, attempts=0, next_attempt_at=now,
                       claimed_by=None, claimed_until=None)

    retried = store.update_message(message_id, apply)
    if has_app_context():
        wake_sender()
    return retried


def discard_message(store: QueueStore, message_id: str) -> OutboxMessage:
    """Never send this message (it stays listed as discarded)."""

    def apply(current: OutboxMessage) -> OutboxMessage:
        if current.status not in DISCARDABLE:
            raise OutboxActionRefused(f"A message that is {current.status.value} cannot be "
                                      "discarded.")
        return replace(current, status=OutboxStatus.DISCARDED, last_error=DISCARDED_BY_AUTHOR)

    return store.update_message(message_id, apply)


def retry_delay(config: Mapping[str, Any], attempts: int,
                base: str = "SMTP_RETRY_BASE_SECONDS") -> timedelta:
    """SMTP_RETRY_BASE_SECONDS (or the setting ``base`` names) * 2 ** (attempts - 1), at most
    six hours."""
    seconds = config[base] * 2 ** max(attempts - 1, 0)
    return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)
