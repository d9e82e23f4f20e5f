"""Errors as JSON ``{"error", "message", "fields"}`` with a 4xx/5xx status (DESIGN.md)."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from .manifest import ManifestError

# Endpoints that answer even while the manifest is missing or invalid.
ENDPOINTS_WITHOUT_MANIFEST = frozenset({"health.healthz", "static"})


def error_response(
    status: int, code: str, message: str, fields: dict[str, Any] | None = None
) -> tuple[Response, int]:
    return jsonify(error=code, message=message, fields=fields or {}), status


def _http_error(error: HTTPException) -> tuple[Response, int]:
    code = (error.name or "error").lower().replace(" ", "_")
    return error_response(error.code or 500, code, error.description or error.name)


def _refuse_without_manifest() -> tuple[Response, int] | None:
    """Refuse every request with a clear 503 while the manifest cannot be loaded."""
    if request.endpoint in ENDPOINTS_WITHOUT_MANIFEST:
        return None
    try:
        current_app.extensions["tellmemore.manifest"].get()
    except ManifestError as error:
        return error_response(503, "manifest_unavailable", str(error))
    return None


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.before_request(_refuse_without_manifest)
