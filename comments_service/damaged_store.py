"""What stands in for a store that is damaged, or whose database schema this code does not
know, so that `flask check`, `restore` and `init` still run; the server entry point
(wsgi.py) refuses to serve instead."""

from __future__ import annotations

import logging
from typing import NoReturn

import click
from flask import Flask

from comments_service.extensions import STORE_EXTENSION
from comments_service.store import SchemaMismatch, StoreCorrupted, StoreDamaged
from comments_service.store.backup import RECOVERY_HINT

logger = logging.getLogger(__name__)

# A gunicorn worker that exits with 3 makes the master stop ("Worker failed to boot") instead
# of starting a new worker that fails the same way, forever.
EXIT_STORE_DAMAGED = 3


class StoreRefused(StoreCorrupted, click.ClickException):
    """A damaged store used anyway: a 503 in a request, an `Error:` line in a command."""


class DamagedStore:
    """Stands in for the store in `flask` commands when the store is damaged, so that
    `check` and `restore` run; every other use raises StoreRefused."""

    def __init__(self, error: StoreCorrupted | SchemaMismatch) -> None:
        self.error = error

    def __getattr__(self, name: str) -> NoReturn:
        # A schema mismatch says itself what to do (init, or upgrade tellmemore).
        hint = "" if isinstance(self.error, SchemaMismatch) else f" — {RECOVERY_HINT}"
        raise StoreRefused(f"{self.error}{hint}")

    def close(self) -> None:
        """Nothing was opened."""


def refusal(error: StoreCorrupted | SchemaMismatch) -> str:
    """One line saying why the service will not start, and what to do."""
    if isinstance(error, SchemaMismatch):
        return f"tellmemore refuses to start: {error}"
    if isinstance(error, StoreDamaged):
        what = (f"the comment store {error.store_path} has damaged files: "
                + "; ".join(error.problems))
    else:
        what = str(error).replace("\n", " ")
    return f"tellmemore refuses to start: {what}. {RECOVERY_HINT}"


def refuse_to_serve_damaged(app: Flask) -> None:
    """Before serving: on a damaged store, say why in one critical log line and exit with
    status 3 (the factory itself never exits: `flask` commands must run to repair it)."""
    store = app.extensions[STORE_EXTENSION]
    if isinstance(store, DamagedStore):
        logger.critical("%s", refusal(store.error))
        raise SystemExit(EXIT_STORE_DAMAGED)
