"""Checking the TinyDB store's files without changing them (start-up and `flask … check`).

Every file is read as the store would read it; each one that cannot be read is one problem
("file: reason"). Comments a thread file holds that the index lacks are only reported (a
rebuild of the index puts them back; docs/FAULTS.md).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydb.table import Document

from comments_service.store.base import is_thread_key
from comments_service.store.errors import StoreCorrupted
from comments_service.store.tinydb.addresses import (
    ADDRESSES_FILE,
    AddressesFileStorage,
    address_of,
)
from comments_service.store.tinydb.authors import AUTHORS_FILE, AuthorsFileStorage, author_of
from comments_service.store.tinydb.index import IndexEntry, parse_index_line
from comments_service.store.tinydb.index_file import INDEX_FILE
from comments_service.store.tinydb.outbox import (
    OUTBOX_DAY,
    OUTBOX_FOLDER,
    OUTBOX_OPEN_FOLDER,
    OutboxDayStorage,
    message_of,
)
from comments_service.store.tinydb.storage import TableFileStorage
from comments_service.store.tinydb.threads import THREADS_FOLDER, comments_of_bytes


@dataclass
class StoreCheck:
    """What a check of the store's files found: the damaged files, and what was read."""

    problems: list[str] = dataclasses.field(default_factory=list)
    threads: int = 0
    comments: int = 0
    authors: int = 0
    messages: int = 0
    # Comments in thread files that the index does not list (a rebuild puts them back).
    unindexed: set[str] = dataclasses.field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (self.threads or self.authors or self.messages)


def short_reason(error: StoreCorrupted) -> str:
    """"not valid JSON (…)" out of "The … file X cannot be read: not valid JSON (…). Hint"."""
    return str(error).partition("cannot be read: ")[2].split(". ", 1)[0] or str(error)


def check_store_files(store_path: str | os.PathLike[str], *, full: bool = False) -> StoreCheck:
    """Read every file of the store without changing anything: thread files (each comment),
    the index (each complete line), authors, mail addresses and the outbox days still open;
    with ``full`` every outbox day. Each file that cannot be read is one problem."""
    root = Path(store_path)
    check = StoreCheck()

    def read(path: Path, parse: Callable[[Path, bytes], int]) -> int:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as error:
            check.problems.append(f"{path.relative_to(root)}: cannot be read ({error.strerror})")
            return 0
        try:
            return parse(path, raw)
        except StoreCorrupted as error:
            check.problems.append(f"{path.relative_to(root)}: {short_reason(error)}")
            return 0

    stored: set[str] = set()

    def thread(path: Path, raw: bytes) -> int:
        comments = comments_of_bytes(path, raw)
        stored.update(comment.id for comment in comments)
        return len(comments)

    for path in sorted((root / THREADS_FOLDER).glob("*.json")):
        if is_thread_key(path.stem):
            check.threads += 1
            check.comments += read(path, thread)

    indexed: dict[str, IndexEntry | None] = {}

    def index(path: Path, raw: bytes) -> int:
        for number, line in enumerate(raw[: raw.rfind(b"\n") + 1].splitlines(), start=1):
            if line.strip():
                try:
                    comment_id, entry = parse_index_line(line)
                except (ValueError, KeyError, TypeError) as error:
                    raise StoreCorrupted(
                        f"The index cannot be read: line {number} is not an index record "
                        f"({error}). Move it aside"
                    ) from error
                indexed[comment_id] = entry
        return 1

    if read(root / INDEX_FILE, index):
        check.unindexed = {comment_id for comment_id in stored if indexed.get(comment_id) is None}

    def records(kind: type[TableFileStorage], of: Callable[[Any, Path], Any]) -> Callable:
        def parse(path: Path, raw: bytes) -> int:
            table = kind(str(path)).parse(raw).get(kind.table_name, {})
            for doc_id, record in table.items():
                of(Document(record, doc_id=int(doc_id) if doc_id.isdigit() else 0), path)
            return len(table)
        return parse

    check.authors = read(root / AUTHORS_FILE, records(AuthorsFileStorage, author_of))
    read(root / ADDRESSES_FILE, records(AddressesFileStorage, address_of))
    outbox = root / OUTBOX_FOLDER
    days = ({path.stem for path in outbox.glob("*.json")} if full
            else {path.name for path in (outbox / OUTBOX_OPEN_FOLDER).glob("*")})
    for day in sorted(day for day in days if OUTBOX_DAY.fullmatch(day)):
        check.messages += read(outbox / f"{day}.json", records(OutboxDayStorage, message_of))
    return check
