"""The store: everything the service keeps, behind narrow interfaces, on TinyDB or PostgreSQL.

The rest of the service talks to the protocols of :mod:`.base` (``Store`` is all of them) and
catches the errors of :mod:`.errors`; ``open_configured_store`` (:mod:`.factory`) picks the
backend from STORE_URL. The backends are :mod:`.tinydb` (the embedded default, files in one
folder, written through the crash-safe helpers of :mod:`.files`) and :mod:`.postgres` (for
several instances). Backups, copies and export live beside them (backup.py, copy.py,
transfer.py) and use only the public names below.

This module only re-exports those names, so callers import them from one place.
"""

from __future__ import annotations

from comments_service.store.base import (
    EMPTY_THREAD_VERSION,
    STORE_PROTOCOLS,
    AddressStore,
    AuthorStore,
    CommentStore,
    InboxStore,
    OutboxStore,
    ReaderHistory,
    RequestFiling,
    RequestStore,
    RequestTally,
    Store,
    VectorStore,
    check_thread_key,
    is_thread_key,
    message_day,
)
from comments_service.store.errors import (
    AuthorNotFound,
    CommentNotFound,
    DuplicateAuthor,
    DuplicateComment,
    DuplicateMessage,
    IncomingMailNotFound,
    MessageNotFound,
    SchemaMismatch,
    SchemaNotReady,
    SchemaTooNew,
    StoreCorrupted,
    StoreDamaged,
    StoreError,
    StoreUnavailable,
)
from comments_service.store.factory import is_postgres_url, open_configured_store, open_store
from comments_service.store.tinydb import TinyDBStore
from comments_service.store.tinydb.check import StoreCheck, check_store_files

__all__ = [
    "EMPTY_THREAD_VERSION",
    "STORE_PROTOCOLS",
    "AddressStore",
    "AuthorNotFound",
    "AuthorStore",
    "CommentNotFound",
    "CommentStore",
    "DuplicateAuthor",
    "DuplicateComment",
    "DuplicateMessage",
    "InboxStore",
    "IncomingMailNotFound",
    "MessageNotFound",
    "OutboxStore",
    "ReaderHistory",
    "RequestFiling",
    "RequestStore",
    "RequestTally",
    "SchemaMismatch",
    "SchemaNotReady",
    "SchemaTooNew",
    "Store",
    "StoreCheck",
    "StoreCorrupted",
    "StoreDamaged",
    "StoreError",
    "StoreUnavailable",
    "TinyDBStore",
    "VectorStore",
    "check_store_files",
    "check_thread_key",
    "is_postgres_url",
    "is_thread_key",
    "message_day",
    "open_configured_store",
    "open_store",
]
