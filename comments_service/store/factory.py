"""Choosing and opening the store (STORE_URL; docs/ARCHITECTURE.md, "Stores").

The only module that knows both backends. The PostgreSQL one is imported when a STORE_URL
names it, so psycopg is loaded only where it is used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from comments_service.config import ConfigError
from comments_service.store.base import Store
from comments_service.store.errors import StoreDamaged
from comments_service.store.tinydb import TinyDBStore
from comments_service.store.tinydb.check import check_store_files

logger = logging.getLogger(__name__)

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(store_path: str | os.PathLike[str], *, check: bool = False) -> TinyDBStore:
    """The embedded store in ``store_path``, creating the folder on first use.

    With ``check`` (the service's start) every file is read first (check_store_files):
    StoreDamaged names the files that cannot be read or that lost comments, and comments the
    index lacks are indexed again."""
    if check:
        found = check_store_files(store_path)
        if found.problems:
            raise StoreDamaged(Path(store_path), found.problems)
        store = TinyDBStore(store_path)
        if found.unindexed:
            logger.warning("%d comments are missing from the index; rebuilding it",
                           len(found.unindexed))
            store.rebuild_index()
        return store
    return TinyDBStore(store_path)


def is_postgres_url(store_url: str | None) -> bool:
    """Whether STORE_URL names a PostgreSQL database (empty means the embedded store)."""
    return bool(store_url) and str(store_url).startswith(POSTGRES_SCHEMES)


def open_configured_store(config: Mapping[str, Any], *, check: bool = False) -> Store:
    """The store the settings choose: STORE_URL empty → the TinyDB store at STORE_PATH,
    ``postgresql://…`` (or ``postgres://…``) → the PostgreSQL store. ``check`` as open_store
    (TinyDB) or the schema check (PostgreSQL, which checks its schema version in any case)."""
    store_url = config.get("STORE_URL") or ""
    if not store_url:
        return open_store(config["STORE_PATH"], check=check)
    if is_postgres_url(store_url):
        # Imported here so that psycopg loads only when a PostgreSQL store is used.
        from comments_service.store.postgres import open_postgres_store

        return open_postgres_store(store_url, max_size=config.get("STORE_POOL_SIZE"),
                                   timeout=config.get("STORE_POOL_TIMEOUT_SECONDS"))
    raise ConfigError(
        "STORE_URL must be empty (the embedded store in STORE_PATH) or a PostgreSQL URL "
        f"(postgresql://user@host/database), not {store_url.split('://')[0]!r}…"
    )
