"""How the TinyDB store reads and writes each of its TinyDB files, whatever they hold.

Unlike TinyDB's JSONStorage, :class:`TableFileStorage` never creates a file on open (reads
stay reads), never rewrites a file in place (every write is ``files.atomic_write``), and
refuses a file it cannot parse instead of starting afresh. Each kind of file (threads,
authors, outbox days, addresses, request groups) subclasses it with its table name and the
message that tells the reader how to recover that file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Protocol

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from comments_service.store import files
from comments_service.store.errors import StoreCorrupted

# <store>/locks/ holds one lock file per thread and one per other file (names start with "_").
LOCKS_FOLDER = "locks"
RESTORE_HINT = (
    "Restore it from a backup, or import an export with `flask --app comments_service import`."
)


class CorruptedMessage(Protocol):
    """Builds the StoreCorrupted for a file of one kind: which file, what is wrong with it."""

    def __call__(self, path: Path, problem: str) -> StoreCorrupted: ...


class TableFileStorage(Storage):
    """TinyDB storage for one file holding one table: parse on every read, atomic writes."""

    table_name: ClassVar[str]
    corrupted: ClassVar[CorruptedMessage]

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return self.parse(raw)

    def parse(self, raw: bytes) -> dict[str, Any]:
        """The file's data, checked to be a TinyDB file holding this storage's table."""
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise self.corrupted(self.path, f"not valid JSON ({error})") from error
        table = data.get(self.table_name, {}) if isinstance(data, dict) else None
        if not isinstance(table, dict) or not all(isinstance(doc, dict) for doc in table.values()):
            raise self.corrupted(self.path, f"not a TinyDB file with a {self.table_name!r} table")
        return data

    def write(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        files.atomic_write(self.path, payload)

    def close(self) -> None:
        """Nothing to release: every read and write opens and closes the file itself."""


@contextmanager
def open_table(path: Path, storage: type[TableFileStorage]) -> Iterator[Table]:
    """The file's TinyDB table, opened afresh and without a query cache: TinyDB caches the
    next document id and query results per instance, which another process's writes would
    make wrong."""
    database = TinyDB(str(path), storage=storage)
    try:
        yield database.table(storage.table_name, cache_size=0)
    finally:
        database.close()


def next_doc_id(documents: list[Document]) -> int:
    """The document id after the highest of ``documents`` (TinyDB would read the file again
    to find it)."""
    return max((document.doc_id for document in documents), default=0) + 1
