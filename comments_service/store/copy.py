"""Copying everything from one store to another (issue 10): TinyDB → PostgreSQL when a site
outgrows one machine, PostgreSQL → TinyDB to come back, or any store to a fresh one.

    flask --app comments_service copy-store --from instance/store --to postgresql://…/blog

Only the public Store interface is used (store/inventory.py names every part of a store and
copies each), so any two stores work. The copy is a sync: a record
missing from the destination is added, one that differs is overwritten with the source's
version, one that is equal is left alone, so running it twice changes nothing and running it
again after the service wrote more (stop it first for the last run) brings the rest over.
Nothing is ever deleted from the destination. At the end the two stores are counted side by
side and any difference is an error.
"""

from __future__ import annotations

from pathlib import Path

from comments_service.store import Store, StoreError, is_postgres_url, open_store


class NotAStore(StoreError):
    """A copy's source that is neither a store folder nor a postgresql:// URL."""


def open_store_at(location: str, *, create: bool) -> Store:
    """The store at a folder (TinyDB) or a postgresql:// URL. A destination (``create``) is
    made ready first: its folder created, or its migrations applied; a source must exist."""
    if is_postgres_url(location):
        # psycopg is loaded only when a PostgreSQL store is used.
        from comments_service.store.postgres import open_postgres_store
        from comments_service.store.postgres.schema import migrate

        if create:
            migrate(location)
        return open_postgres_store(location)
    folder = Path(location)
    if not create and not folder.is_dir():
        raise NotAStore(f"{location} is not a store folder")
    return open_store(folder, check=True)
