"""Liveness and readiness: GET /healthz says whether the service can take comments."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from comments_service.manifest import ManifestError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 with the manifest summary when ready, 503 with the reason when not."""
    try:
        manifest = current_app.extensions["tellmemore.manifest"].get()
    except ManifestError as error:
        return jsonify(status="unavailable", error="manifest_unavailable", message=str(error)), 503
    return jsonify(
        status="ok",
        manifest={"location": manifest.location, "articles": len(manifest.articles)},
    )
