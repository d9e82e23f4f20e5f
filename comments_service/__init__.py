"""tellmemore's comment service: takes readers' comments and queues each for an individual reply.

`create_app` is the WSGI entry point: `gunicorn 'comments_service:create_app()'`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask

from . import cli, errors, health
from .config import load_config
from .manifest import ManifestError, ManifestSource, is_url

logger = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the service: settings, manifest, error handlers, blueprints and CLI commands."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        instance_path=os.environ.get("TELLMEMORE_INSTANCE_PATH") or None,
    )
    load_config(app, test_config)
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

    errors.init_app(app)
    app.register_blueprint(health.bp)
    cli.init_app(app)
    return app
