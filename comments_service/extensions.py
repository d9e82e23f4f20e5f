"""The running app's store and manifest, for views and hooks (one place that knows where
create_app keeps them), and the Flask extension objects blueprints need before an app exists."""

from __future__ import annotations

import logging

from flask import current_app
from flask_wtf.csrf import CSRFProtect

from comments_service.manifest import Manifest, ManifestError
from comments_service.store import Store

STORE_EXTENSION = "tellmemore.store"
MANIFEST_EXTENSION = "tellmemore.manifest"

logger = logging.getLogger(__name__)

# CSRF tokens on every form; the public API and the mail pages exempt their blueprints.
csrf = CSRFProtect()


def store() -> Store:
    """The app's store."""
    return current_app.extensions[STORE_EXTENSION]


def manifest() -> Manifest:
    """The site's manifest; raises ManifestError while it is missing or invalid."""
    return current_app.extensions[MANIFEST_EXTENSION].get()


def manifest_or_none() -> Manifest | None:
    """The site's manifest, or None (logged) while it is missing or invalid: for mail and
    webhooks, which go out without the site's name and article links rather than not at all."""
    try:
        return manifest()
    except ManifestError as error:
        logger.warning("Mail without the manifest (%s): no site name or article links", error)
        return None
