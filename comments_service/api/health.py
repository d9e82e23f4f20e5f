"""Liveness and readiness: GET /healthz says whether the service can take comments."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from comments_service.manifest import ManifestError, public_message

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 with the manifest summary when ready, 503 with the reason when not; neither says
    where the service's files lie on its disk (the log and `flask … check` do)."""
    source = current_app.extensions["tellmemore.manifest"]
    try:
        manifest = source.get()
    except ManifestError as error:
        return jsonify(status="unavailable", error="manifest_unavailable",
                       message=public_message(error, source.location)), 503
    return jsonify(status="ok", manifest={"articles": len(manifest.articles)})
