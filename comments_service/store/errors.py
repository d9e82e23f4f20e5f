"""Every error a store raises, whatever the backend: callers catch these, never a backend's own.

The HTTP layer maps them to answers (errors.py): StoreUnavailable is a 503 the client may retry,
StoreCorrupted and SchemaMismatch stop the server at start-up
(damaged_store.refuse_to_serve_damaged).
"""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """Base of the store's errors."""


class CommentNotFound(StoreError):
    """No comment with that id."""


class DuplicateComment(StoreError):
    """A comment with that id is stored already."""


class DuplicateAuthor(StoreError):
    """An author with that email (compared case-insensitively) exists already."""


class AuthorNotFound(StoreError):
    """No author with that id."""


class MessageNotFound(StoreError):
    """No outbox message with that id."""


class IncomingMailNotFound(StoreError):
    """No incoming message recorded with that key."""


class DuplicateMessage(StoreError):
    """An outbox message with that id is stored already."""


class StoreUnavailable(StoreError):
    """The store cannot take writes now (e.g. no space left); nothing was changed."""


class StoreCorrupted(StoreError):
    """A store file cannot be read; the message names the file and how to recover."""


class StoreDamaged(StoreCorrupted):
    """Files of the store cannot be read; ``problems`` holds one "file: reason" per file."""

    def __init__(self, store_path: Path, problems: list[str]) -> None:
        super().__init__(f"The comment store {store_path} is damaged: " + "; ".join(problems))
        self.store_path, self.problems = store_path, problems


class SchemaMismatch(StoreError):
    """The database's schema is not the one this code knows; nothing was read or changed."""


class SchemaNotReady(SchemaMismatch):
    """The database holds no schema yet, or an older one: `flask … init` applies migrations."""


class SchemaTooNew(SchemaMismatch):
    """The database was migrated by a newer tellmemore than this one: upgrade tellmemore."""
