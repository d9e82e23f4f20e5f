"""Messages read from the author's mailbox (replies by email), in the PostgreSQL store
(InboxStore): the incoming_mail table (migrations/0004), keyed by the Message-ID's digest.
A record is inserted once (ON CONFLICT DO NOTHING: the first writer wins and the others read
its record); changes lock the row while ``change`` runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from comments_service.models import IncomingMail, IncomingStatus
from comments_service.store.base import check_incoming_key
from comments_service.store.errors import IncomingMailNotFound
from comments_service.store.postgres.connections import Connections
from comments_service.store.postgres.rows import checked_change, record_of
from comments_service.store.postgres.schema import json_text


class PostgresInbox:
    """The incoming_mail table of one database."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def add_incoming_mail(self, mail: IncomingMail) -> IncomingMail:
        check_incoming_key(mail.key)
        with self._connections.transaction() as cursor:
            cursor.execute(
                "INSERT INTO incoming_mail (key, status, received, record)"
                " VALUES (%s, %s, %s, %s::json) ON CONFLICT (key) DO NOTHING",
                (mail.key, str(mail.status), mail.received, json_text(mail.to_record())))
            if cursor.rowcount == 1:
                return mail
            row = cursor.execute("SELECT record FROM incoming_mail WHERE key = %s",
                                 (mail.key,)).fetchone()
        return record_of(IncomingMail, row[0], f"incoming mail {mail.key}")

    def get_incoming_mail(self, key: str) -> IncomingMail | None:
        check_incoming_key(key)
        with self._connections.transaction() as cursor:
            row = cursor.execute("SELECT record FROM incoming_mail WHERE key = %s",
                                 (key,)).fetchone()
        return None if row is None else record_of(IncomingMail, row[0], f"incoming mail {key}")

    def update_incoming_mail(
        self, key: str, change: Callable[[IncomingMail], IncomingMail]
    ) -> IncomingMail:
        check_incoming_key(key)
        with self._connections.transaction() as cursor:
            row = cursor.execute("SELECT record FROM incoming_mail WHERE key = %s FOR UPDATE",
                                 (key,)).fetchone()
            if row is None:
                raise IncomingMailNotFound(key)
            old = record_of(IncomingMail, row[0], f"incoming mail {key}")
            new = checked_change(IncomingMail, old, change, ("key",))
            if new != old:
                cursor.execute(
                    "UPDATE incoming_mail SET status = %s, received = %s, record = %s::json"
                    " WHERE key = %s",
                    (str(new.status), new.received, json_text(new.to_record()), key))
        return new

    def list_incoming_mail(
        self, statuses: Iterable[IncomingStatus] | None = None, *, limit: int = 50,
    ) -> list[IncomingMail]:
        with self._connections.transaction() as cursor:
            if statuses is None:
                rows = cursor.execute(
                    "SELECT key, record FROM incoming_mail ORDER BY received DESC, key DESC"
                    " LIMIT %s", (limit,)).fetchall()
            else:
                rows = cursor.execute(
                    "SELECT key, record FROM incoming_mail WHERE status = ANY(%s)"
                    " ORDER BY received DESC, key DESC LIMIT %s",
                    ([str(status) for status in statuses], limit)).fetchall()
        return [record_of(IncomingMail, record, f"incoming mail {key}") for key, record in rows]

    def incoming_mail_counts(self) -> dict[IncomingStatus, int]:
        counts = dict.fromkeys(IncomingStatus, 0)
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT status, count(*) FROM incoming_mail GROUP BY status").fetchall()
        for status, count in rows:
            counts[IncomingStatus(status)] = count
        return counts
