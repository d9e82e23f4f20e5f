"""The thread files of the TinyDB store: one TinyDB file per comment thread, the source of truth.

<store>/threads/<thread>.json   the thread's comments (table "comments")
<store>/locks/<thread>.lock     flock held across every read-modify-write of that thread

A thread file is only ever replaced whole by a rename, so a reader needs no lock: it sees the
old file or the new one. Every write of a thread holds its lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tinydb.table import Document, Table

from comments_service.models import Comment
from comments_service.store import files
from comments_service.store.base import EMPTY_THREAD_VERSION, is_thread_key
from comments_service.store.errors import StoreCorrupted
from comments_service.store.tinydb.storage import RESTORE_HINT, TableFileStorage, open_table

THREADS_FOLDER = "threads"
COMMENTS_TABLE = "comments"


def corrupted_thread(path: Path, problem: str) -> StoreCorrupted:
    """The error for a thread file that cannot be read."""
    return StoreCorrupted(
        f"The comment thread file {path} cannot be read: {problem}. {RESTORE_HINT}"
    )


class ThreadFileStorage(TableFileStorage):
    """A thread file: table "comments"."""

    table_name = COMMENTS_TABLE
    corrupted = staticmethod(corrupted_thread)


def comment_of(document: Document, path: Path) -> Comment:
    """The comment a document of the thread file ``path`` holds (StoreCorrupted if none)."""
    try:
        return Comment.from_record(document)
    except (KeyError, TypeError, ValueError) as error:
        raise corrupted_thread(
            path, f"document {document.doc_id} is not a comment ({error!r})"
        ) from error


def sorted_comments(documents: Iterable[Document], path: Path) -> list[Comment]:
    """The comments of these documents, oldest first (ties: in the order stored)."""
    ordered = sorted(documents, key=lambda document: (str(document.get("created")),
                                                      document.doc_id))
    return [comment_of(document, path) for document in ordered]


def comments_of_bytes(path: Path, raw: bytes) -> list[Comment]:
    """The comments of a thread file's bytes, read as ThreadFiles.table would, oldest first."""
    data = ThreadFileStorage(str(path)).parse(raw)
    try:
        documents = [Document(document, doc_id=int(doc_id))
                     for doc_id, document in data.get(COMMENTS_TABLE, {}).items()]
    except ValueError as error:
        raise corrupted_thread(path, f"a document id is not a number ({error})") from error
    return sorted_comments(documents, path)


class ThreadFiles:
    """The threads/ folder of one store: paths, locks, and reading a thread's comments."""

    def __init__(self, folder: Path, locks: Path) -> None:
        self.folder, self.locks = folder, locks

    def path(self, thread: str) -> Path:
        return self.folder / f"{thread}.json"

    def lock(self, thread: str, *, wait: bool = True) -> AbstractContextManager[bool]:
        """The thread's write lock (see files.exclusive_lock)."""
        return files.exclusive_lock(self.locks / f"{thread}.lock", wait=wait)

    @contextmanager
    def table(self, thread: str) -> Iterator[Table]:
        """The thread's TinyDB table, opened afresh (see storage.open_table)."""
        with open_table(self.path(thread), ThreadFileStorage) as table:
            yield table

    def read(self, thread: str) -> list[Comment]:
        """The thread's comments, oldest first (none for an invalid key or a missing file).
        Needs no lock: files are only ever replaced whole by a rename."""
        if not is_thread_key(thread):
            return []
        with self.table(thread) as table:
            return sorted_comments(table.all(), self.path(thread))

    def names(self) -> list[str]:
        """The threads that have a file, in name order."""
        return sorted(path.stem for path in self.folder.glob("*.json")
                      if is_thread_key(path.stem))

    def version(self, thread: str) -> str:
        """A hash of the thread file's bytes, or EMPTY_THREAD_VERSION when there is no file.

        Reading and hashing a thread of ~100 comments takes under 0.1 ms. os.stat would not
        do: each write renames a new inode into place and frees the old one for reuse, and
        mtime moves in clock ticks, so two quick writes of the same size could repeat it.
        """
        if not is_thread_key(thread):
            return EMPTY_THREAD_VERSION
        try:
            raw = self.path(thread).read_bytes()
        except FileNotFoundError:
            return EMPTY_THREAD_VERSION
        return hashlib.blake2b(raw, digest_size=12).hexdigest()
