"""tellmemore's comment service: takes readers' comments and queues each for an individual reply.

`create_app` builds the app (for `flask --app comments_service …` and tests); the server's entry
point is `comments_service.wsgi:app`, which also refuses to serve a damaged store.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask

from comments_service import cli, daily_backup, errors, moderation, security
from comments_service.api import feeds, health
from comments_service.api import views as api
from comments_service.config import load_config, warn_about_temporary_key
from comments_service.damaged_store import DamagedStore
from comments_service.inbox import worker as reply_worker
from comments_service.mail import notify, webhook_events
from comments_service.mail import pages as unsubscribe
from comments_service.manifest import ManifestError, ManifestSource, is_url
from comments_service.moderation import auth
from comments_service.store import SchemaMismatch, StoreCorrupted, open_configured_store
from comments_service.tally import service as tally_service

logger = logging.getLogger(__name__)

# Routes that create comments: each counts against RATE_LIMIT per client.
RATE_LIMITED_ENDPOINTS = ["api.create_comment", "api.create_comment_from_form"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the service: settings, manifest, store, error handlers, blueprints, CLI commands."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        instance_path=os.environ.get("TELLMEMORE_INSTANCE_PATH") or None,
    )
    load_config(app, test_config)
    warn_about_temporary_key(app)
    app.json.sort_keys = False  # keep documented field order in responses

    manifest_source = ManifestSource(
        str(app.config["MANIFEST"]), float(app.config["MANIFEST_REFRESH_SECONDS"])
    )
    app.extensions["tellmemore.manifest"] = manifest_source
    if not is_url(manifest_source.location):
        # A local file costs nothing to check now, and a bad one is worth saying at start-up.
        try:
            manifest_source.get()
        except ManifestError as error:
            logger.error("%s; every request will get 503 until it is fixed", error)
    # TinyDB: every file of the store is read once, and a damaged one stops the start
    # (FAULTS.md). PostgreSQL: a schema other than the one this code knows stops it.
    # A damaged store is kept as a DamagedStore, so `check` and `restore` can still run;
    # wsgi.py refuses to serve it.
    try:
        app.extensions["tellmemore.store"] = open_configured_store(app.config, check=True)
    except (StoreCorrupted, SchemaMismatch) as error:
        app.extensions["tellmemore.store"] = DamagedStore(error)
    app.extensions["tellmemore.thread_cache"] = api.ThreadCache(app.config["THREAD_CACHE_SIZE"])

    errors.init_app(app)
    auth.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(moderation.bp)
    unsubscribe.init_app(app)
    notify.init_app(app)
    reply_worker.init_app(app)
    webhook_events.subscribe()
    tally_service.subscribe()
    app.register_blueprint(feeds.bp)
    security.init_app(app, RATE_LIMITED_ENDPOINTS)
    cli.init_app(app)
    daily_backup.init_app(app)
    return app
