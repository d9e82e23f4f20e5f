"""What each mail address has said about mail, in the TinyDB store (AddressStore).

<store>/mail_addresses.json     TinyDB file (table "addresses"): confirmations, unsubscribes
<store>/locks/_addresses.lock   flock over every read-modify-write of mail_addresses.json

The addresses lock is never held together with any other lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb.table import Document, Table

from comments_service.models import MailAddress
from comments_service.store import files
from comments_service.store.errors import StoreCorrupted
from comments_service.store.tinydb.storage import TableFileStorage, next_doc_id, open_table

ADDRESSES_FILE = "mail_addresses.json"
ADDRESSES_TABLE = "addresses"
ADDRESSES_LOCK = "_addresses.lock"


def corrupted_addresses(path: Path, problem: str) -> StoreCorrupted:
    """The error for a mail addresses file that cannot be read."""
    return StoreCorrupted(
        f"The mail addresses file {path} cannot be read: {problem}. Restore it from a backup "
        "(without it, unsubscribed readers could be mailed again)."
    )


class AddressesFileStorage(TableFileStorage):
    """mail_addresses.json: table "addresses"."""

    table_name = ADDRESSES_TABLE
    corrupted = staticmethod(corrupted_addresses)


def address_of(record: dict[str, Any], path: Path) -> MailAddress:
    """The address record a document of ``path`` holds (StoreCorrupted if it holds none)."""
    try:
        return MailAddress.from_record(record)
    except TypeError as error:
        raise corrupted_addresses(path, f"a document is not an address ({error})") from error


class TinyDBAddresses:
    """The mail address records of one store."""

    def __init__(self, store_path: Path, locks: Path) -> None:
        self.path = store_path / ADDRESSES_FILE
        self._locks = locks

    @contextmanager
    def _table(self) -> Iterator[Table]:
        with open_table(self.path, AddressesFileStorage) as table:
            yield table

    def get_mail_address(self, address: str) -> MailAddress | None:
        """The record of ``address`` (casefolded), or None."""
        wanted = address.casefold()
        with self._table() as table:
            for document in table.all():
                record = address_of(document, self.path)
                if record.address == wanted:
                    return record
        return None

    def all_mail_addresses(self) -> list[MailAddress]:
        """Every address record (for backups)."""
        with self._table() as table:
            return [address_of(document, self.path) for document in table.all()]

    def update_mail_address(
        self, address: str, change: Callable[[MailAddress], MailAddress]
    ) -> MailAddress:
        """Compare-and-set under the addresses lock; ``change`` must not call the store."""
        wanted = address.casefold()
        with files.exclusive_lock(self._locks / ADDRESSES_LOCK), self._table() as table:
            documents = table.all()
            found = next((document for document in documents
                          if document.get("address") == wanted), None)
            old = MailAddress(wanted) if found is None else address_of(found, self.path)
            new = change(old)
            if not isinstance(new, MailAddress):
                raise TypeError(f"change() returned {type(new).__name__}, not a MailAddress")
            if new.address != wanted:
                raise ValueError("change() must not change the address")
            if new != old and found is None:
                table.insert(Document(new.to_record(), doc_id=next_doc_id(documents)))
            elif new != old:
                table.update(new.to_record(), doc_ids=[found.doc_id])
        return new
