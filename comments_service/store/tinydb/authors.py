"""The authors of the TinyDB store (AuthorStore): authors.json, replaced whole on each change.

<store>/authors.json          TinyDB file of the authors (table "authors")
<store>/locks/_authors.lock   flock held across every read-modify-write of authors.json

The authors lock is never held together with any other lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tinydb.table import Document, Table

from comments_service.models import Author
from comments_service.store import files
from comments_service.store.errors import AuthorNotFound, DuplicateAuthor, StoreCorrupted
from comments_service.store.tinydb.storage import TableFileStorage, next_doc_id, open_table

AUTHORS_FILE = "authors.json"
AUTHORS_TABLE = "authors"
AUTHORS_LOCK = "_authors.lock"


def corrupted_authors(path: Path, problem: str) -> StoreCorrupted:
    """The error for an authors file that cannot be read."""
    return StoreCorrupted(
        f"The authors file {path} cannot be read: {problem}. Restore it from a backup."
    )


class AuthorsFileStorage(TableFileStorage):
    """authors.json: table "authors"."""

    table_name = AUTHORS_TABLE
    corrupted = staticmethod(corrupted_authors)


def author_of(document: Document, path: Path) -> Author:
    """The author a document of ``path`` holds (StoreCorrupted if it holds none)."""
    try:
        author = Author.from_record(document)
    except TypeError as error:
        raise corrupted_authors(
            path, f"document {document.doc_id} is not an author ({error})"
        ) from error
    if not all(isinstance(getattr(author, name), str)
               for name in ("id", "name", "email", "password_hash", "created")):
        raise corrupted_authors(path, f"document {document.doc_id} has a field of the wrong type")
    return author


class TinyDBAuthors:
    """The authors of one store."""

    def __init__(self, store_path: Path, locks: Path) -> None:
        self.path = store_path / AUTHORS_FILE
        self._locks = locks

    def _lock(self) -> AbstractContextManager[bool]:
        return files.exclusive_lock(self._locks / AUTHORS_LOCK)

    @contextmanager
    def _table(self) -> Iterator[Table]:
        """The authors' TinyDB table, opened afresh (see storage.open_table)."""
        with open_table(self.path, AuthorsFileStorage) as table:
            yield table

    def _read(self) -> list[Author]:
        """Every author, oldest first; no lock needed (the file is only replaced whole)."""
        with self._table() as table:
            documents = sorted(table.all(), key=lambda document: (str(document.get("created")),
                                                                   document.doc_id))
            return [author_of(document, self.path) for document in documents]

    def add_author(self, author: Author) -> Author:
        """Store a new author durably; DuplicateAuthor when the email (casefolded) or the id
        is taken. Written under the authors lock, so of two adds with one email only one
        succeeds, across threads and processes."""
        if not isinstance(author, Author):
            raise TypeError(f"add_author() takes an Author, not {type(author).__name__}")
        with self._lock(), self._table() as table:
            documents = table.all()
            for document in documents:
                stored = author_of(document, self.path)
                if stored.email.casefold() == author.email.casefold():
                    raise DuplicateAuthor(f"An author with the email {author.email} exists")
                if stored.id == author.id:
                    raise DuplicateAuthor(f"An author with the id {author.id} exists")
            table.insert(Document(author.to_record(), doc_id=next_doc_id(documents)))
        return author

    def get_author(self, author_id: str) -> Author | None:
        """The author with that id, or None (reads authors.json, a small file)."""
        return next((author for author in self._read() if author.id == author_id), None)

    def author_by_email(self, email: str) -> Author | None:
        """The author with that email, compared casefolded, or None."""
        wanted = email.casefold()
        return next((author for author in self._read()
                     if author.email.casefold() == wanted), None)

    def list_authors(self) -> list[Author]:
        """Every author, oldest first (by created; ties in the order added)."""
        return self._read()

    def update_author(self, author_id: str, change: Callable[[Author], Author]) -> Author:
        """Compare-and-set under the authors lock; see :meth:`Store.update_author`.

        ``change`` may raise to abort (nothing is written); it must not call the store. The id
        must not change (ValueError); a new email taken by another author raises
        DuplicateAuthor."""
        with self._lock(), self._table() as table:
            documents = table.all()
            authors = [(document.doc_id, author_of(document, self.path))
                       for document in documents]
            found = next(((doc_id, author) for doc_id, author in authors
                          if author.id == author_id), None)
            if found is None:
                raise AuthorNotFound(f"No author {author_id}")
            doc_id, old = found
            new = change(old)
            if not isinstance(new, Author):
                raise TypeError(f"change() returned {type(new).__name__}, not an Author")
            if new.id != old.id:
                raise ValueError("change() must not change an author's id")
            if any(other.id != author_id and other.email.casefold() == new.email.casefold()
                   for _doc_id, other in authors):
                raise DuplicateAuthor(f"An author with the email {new.email} exists")
            if new != old:
                table.update(new.to_record(), doc_ids=[doc_id])
        return new
