"""The running app's store and manifest, for views and hooks: one place that knows where
create_app keeps them."""

from __future__ import annotations

from flask import current_app

from comments_service.manifest import Manifest
from comments_service.store import Store

STORE_EXTENSION = "tellmemore.store"
MANIFEST_EXTENSION = "tellmemore.manifest"


def store() -> Store:
    """The app's store."""
    return current_app.extensions[STORE_EXTENSION]


def manifest() -> Manifest:
    """The site's manifest; raises ManifestError while it is missing or invalid."""
    return current_app.extensions[MANIFEST_EXTENSION].get()
