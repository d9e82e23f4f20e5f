"""The outbox of the PostgreSQL store (OutboxStore): the outbox_messages table.

A dedupe key is a unique column, so the same notification queued twice is one row; claims
lock the due rows no other sender holds (``FOR UPDATE SKIP LOCKED``), so no message is handed
to two senders.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from comments_service.models import OPEN_STATUSES, OutboxMessage, OutboxStatus
from comments_service.store.base import message_day
from comments_service.store.errors import DuplicateMessage, MessageNotFound
from comments_service.store.postgres.connections import Connections
from comments_service.store.postgres.rows import Cursor, locked_change, record_of
from comments_service.store.postgres.schema import json_text

INSERT_MESSAGE = (
    "INSERT INTO outbox_messages (id, status, created, next_attempt_at, claimed_until, address,"
    " dedupe_key, record) VALUES (%(id)s, %(status)s, %(created)s, %(next_attempt_at)s,"
    " %(claimed_until)s, %(address)s, %(dedupe_key)s, %(record)s::json) ON CONFLICT DO NOTHING"
)


def message_row(message: OutboxMessage) -> dict[str, Any]:
    """The parameters of INSERT_MESSAGE (and of an update of the row)."""
    return {
        "id": message.id, "status": str(message.status), "created": message.created,
        "next_attempt_at": message.next_attempt_at, "claimed_until": message.claimed_until,
        "address": message.to.casefold(), "dedupe_key": message.dedupe_key,
        "record": json_text(message.to_record()),
    }


class PostgresOutbox:
    """The outbox_messages table of one database."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def add_message(self, message: OutboxMessage) -> OutboxMessage:
        """One INSERT that gives way on a taken id or dedupe key: a racing add with the same
        key waits for the first to commit, then finds its message."""
        if not isinstance(message, OutboxMessage):
            raise TypeError(f"add_message() takes an OutboxMessage, not {type(message).__name__}")
        if message_day(message.id) is None:
            raise ValueError(f"Invalid message id {message.id!r}")
        with self._connections.transaction() as cursor:
            cursor.execute(INSERT_MESSAGE, message_row(message))
            if cursor.rowcount == 1:
                return message
            if message.dedupe_key is not None:
                row = cursor.execute(
                    "SELECT id, record FROM outbox_messages WHERE dedupe_key = %s",
                    (message.dedupe_key,),
                ).fetchone()
                if row is not None:
                    return record_of(OutboxMessage, row[1], f"message {row[0]}")
        raise DuplicateMessage(f"Message {message.id} is stored already")

    def get_message(self, message_id: str) -> OutboxMessage | None:
        if message_day(message_id) is None:
            return None
        with self._connections.transaction() as cursor:
            row = cursor.execute("SELECT record FROM outbox_messages WHERE id = %s",
                                 (message_id,)).fetchone()
        return None if row is None else record_of(OutboxMessage, row[0], f"message {message_id}")

    def update_message(
        self, message_id: str, change: Callable[[OutboxMessage], OutboxMessage]
    ) -> OutboxMessage:
        with self._connections.transaction() as cursor:
            old, new = locked_change(cursor, "outbox_messages", message_id, OutboxMessage,
                                     change, MessageNotFound(f"No message {message_id}"))
            if new != old:
                self._write_message(cursor, new)
        return new

    @staticmethod
    def _write_message(cursor: Cursor, message: OutboxMessage) -> None:
        """Store ``message`` over the row of its id."""
        cursor.execute(
            "UPDATE outbox_messages SET (status, created, next_attempt_at, claimed_until,"
            " address, dedupe_key, record) = (%(status)s, %(created)s, %(next_attempt_at)s,"
            " %(claimed_until)s, %(address)s, %(dedupe_key)s, %(record)s::json)"
            " WHERE id = %(id)s", message_row(message),
        )

    def claim_messages(
        self, claimer: str, now: str, lease_until: str, limit: int
    ) -> list[OutboxMessage]:
        """One transaction: lock up to ``limit`` due rows no other claimer holds (SKIP LOCKED),
        mark them, commit. A row another claimer committed meanwhile is checked again against
        the condition, so it is not due any more: no message goes to two claimers."""
        if limit <= 0:
            return []
        claimed: list[OutboxMessage] = []
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM outbox_messages"
                " WHERE status IN ('queued', 'sending') AND ("
                "  (status = 'queued' AND next_attempt_at <= %(now)s)"
                "  OR (status = 'sending' AND coalesce(claimed_until, '') <= %(now)s))"
                " ORDER BY next_attempt_at, created, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
                {"now": now, "limit": limit},
            ).fetchall()
            for message_id, record in rows:
                old = record_of(OutboxMessage, record, f"message {message_id}")
                new = dataclasses.replace(
                    old, status=OutboxStatus.SENDING, claimed_by=claimer,
                    claimed_until=lease_until, attempts=old.attempts + 1,
                )
                self._write_message(cursor, new)
                claimed.append(new)
        return claimed

    def list_messages(
        self, statuses: Iterable[OutboxStatus] | None = None, *, limit: int = 50,
        offset: int = 0,
    ) -> list[OutboxMessage]:
        """Newest first: by the day in the id, then created (the TinyDB store's order)."""
        if limit <= 0:
            return []
        wanted = None if statuses is None else sorted(str(OutboxStatus(s)) for s in statuses)
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM outbox_messages"
                " WHERE %(all)s OR status = ANY(%(wanted)s)"
                " ORDER BY left(id, 8) DESC, created DESC, id DESC"
                " LIMIT %(limit)s OFFSET %(offset)s",
                {"all": wanted is None, "wanted": wanted or [], "limit": limit,
                 "offset": max(offset, 0)},
            ).fetchall()
        return [record_of(OutboxMessage, record, f"message {message_id}")
                for message_id, record in rows]

    def messages_to(
        self, address: str, *, since: str | None = None, open_only: bool = False
    ) -> list[OutboxMessage]:
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT id, record FROM outbox_messages WHERE address = %(address)s"
                " AND (%(since)s::text IS NULL OR created >= %(since)s)"
                " AND (NOT %(open_only)s OR status = ANY(%(open)s))"
                " ORDER BY created, id",
                {"address": address.casefold(), "since": since, "open_only": open_only,
                 "open": sorted(str(status) for status in OPEN_STATUSES)},
            ).fetchall()
        return [record_of(OutboxMessage, record, f"message {message_id}")
                for message_id, record in rows]
