"""Messages read from the author's mailbox (replies by email), in the TinyDB store (InboxStore).

<store>/incoming_mail.json      TinyDB file (table "incoming"): one record per Message-ID
<store>/locks/_incoming.lock    flock over every read-modify-write of incoming_mail.json

The file is replaced whole on each write (files.atomic_write, fsynced), so a record exists
durably once add_incoming_mail returns: the reply worker relies on that to process each
message once. The incoming lock is never held together with any other lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb.table import Document, Table

from comments_service.models import IncomingMail, IncomingStatus
from comments_service.store import files
from comments_service.store.base import check_incoming_key
from comments_service.store.errors import IncomingMailNotFound, StoreCorrupted
from comments_service.store.tinydb.storage import TableFileStorage, next_doc_id, open_table

INCOMING_FILE = "incoming_mail.json"
INCOMING_TABLE = "incoming"
INCOMING_LOCK = "_incoming.lock"


def corrupted_incoming(path: Path, problem: str) -> StoreCorrupted:
    """The error for an incoming mail file that cannot be read."""
    return StoreCorrupted(
        f"The incoming mail file {path} cannot be read: {problem}. Restore it from a backup "
        "(without it, replies by email already posted would be unknown; messages already "
        "marked seen in the mailbox are not read again)."
    )


class IncomingFileStorage(TableFileStorage):
    """incoming_mail.json: table "incoming"."""

    table_name = INCOMING_TABLE
    corrupted = staticmethod(corrupted_incoming)


def incoming_of(record: dict[str, Any], path: Path) -> IncomingMail:
    """The record a document of ``path`` holds (StoreCorrupted if it holds none)."""
    try:
        return IncomingMail.from_record(record)
    except (TypeError, ValueError) as error:
        raise corrupted_incoming(path, f"a document is not an incoming message ({error})"
                                 ) from error


class TinyDBInbox:
    """The incoming mail records of one store."""

    def __init__(self, store_path: Path, locks: Path) -> None:
        self.path = store_path / INCOMING_FILE
        self._locks = locks

    @contextmanager
    def _table(self) -> Iterator[Table]:
        with open_table(self.path, IncomingFileStorage) as table:
            yield table

    def _all(self) -> list[IncomingMail]:
        with self._table() as table:
            return [incoming_of(document, self.path) for document in table.all()]

    def add_incoming_mail(self, mail: IncomingMail) -> IncomingMail:
        check_incoming_key(mail.key)
        with files.exclusive_lock(self._locks / INCOMING_LOCK), self._table() as table:
            documents = table.all()
            for document in documents:
                if document.get("key") == mail.key:
                    return incoming_of(document, self.path)
            table.insert(Document(mail.to_record(), doc_id=next_doc_id(documents)))
        return mail

    def get_incoming_mail(self, key: str) -> IncomingMail | None:
        check_incoming_key(key)
        return next((mail for mail in self._all() if mail.key == key), None)

    def update_incoming_mail(
        self, key: str, change: Callable[[IncomingMail], IncomingMail]
    ) -> IncomingMail:
        check_incoming_key(key)
        with files.exclusive_lock(self._locks / INCOMING_LOCK), self._table() as table:
            found = next((document for document in table.all()
                          if document.get("key") == key), None)
            if found is None:
                raise IncomingMailNotFound(key)
            old = incoming_of(found, self.path)
            new = change(old)
            if not isinstance(new, IncomingMail):
                raise TypeError(f"change() returned {type(new).__name__}, not an IncomingMail")
            if new.key != key:
                raise ValueError("change() must not change the key")
            if new != old:
                table.update(new.to_record(), doc_ids=[found.doc_id])
        return new

    def list_incoming_mail(
        self, statuses: Iterable[IncomingStatus] | None = None, *, limit: int = 50,
    ) -> list[IncomingMail]:
        wanted = None if statuses is None else set(statuses)
        found = [mail for mail in self._all() if wanted is None or mail.status in wanted]
        found.sort(key=lambda mail: (mail.received, mail.key), reverse=True)
        return found[:limit]

    def incoming_mail_counts(self) -> dict[IncomingStatus, int]:
        counts = dict.fromkeys(IncomingStatus, 0)
        for mail in self._all():
            counts[mail.status] += 1
        return counts
