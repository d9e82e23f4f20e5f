"""The running app's store and manifest, for views and hooks (one place that knows where
create_app keeps them), and the Flask extension objects blueprints need before an app exists."""

from __future__ import annotations

from flask import current_app
from flask_wtf.csrf import CSRFProtect

from comments_service.manifest import Manifest
from comments_service.store import Store

STORE_EXTENSION = "tellmemore.store"
MANIFEST_EXTENSION = "tellmemore.manifest"

# CSRF tokens on every form; the public API and the mail pages exempt their blueprints.
csrf = CSRFProtect()


def store() -> Store:
    """The app's store."""
    return current_app.extensions[STORE_EXTENSION]


def manifest() -> Manifest:
    """The site's manifest; raises ManifestError while it is missing or invalid."""
    return current_app.extensions[MANIFEST_EXTENSION].get()
