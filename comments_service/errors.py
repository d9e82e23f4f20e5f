"""Errors as JSON ``{"error", "message", "fields"}`` with a 4xx/5xx status (DESIGN.md).

Pages meant for people (the plain-form endpoint) get the same error as a small HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from comments_service.comments.posting import EditLocked, EditRefused
from comments_service.comments.validation import ValidationFailed
from comments_service.manifest import ManifestError, public_message
from comments_service.store import CommentNotFound, SchemaMismatch, StoreCorrupted, StoreUnavailable

logger = logging.getLogger(__name__)

# Endpoints that answer even while the manifest is missing or invalid.
ENDPOINTS_WITHOUT_MANIFEST = frozenset({
    "health.healthz", "static", "api.openapi",
    # A reader must be able to stop mail whatever state the site is in.
    "unsubscribe.unsubscribe_form", "unsubscribe.unsubscribe", "unsubscribe.confirm_form",
    "unsubscribe.confirm",
})


class ApiError(Exception):
    """An error with its HTTP status, a stable code and a message for people."""

    def __init__(
        self, status: int, code: str, message: str, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def wants_html() -> bool:
    """Plain-form posts and browsers outside /api/ get HTML errors; everything else JSON."""
    if request.path.startswith("/api/") or request.path == "/healthz":
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" or request.mimetype == "application/x-www-form-urlencoded"


def wants_json() -> bool:
    """The client asked for JSON by name (Accept: application/json), whatever it sent: for
    routes that answer a browser's form with a page and a script with JSON."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> tuple[Response, int]:
    if wants_html():
        page = render_template("error.html", status=status, message=message, fields=fields or {})
        return current_app.make_response((page, status)), status
    return jsonify(error=code, message=message, fields=fields or {}), status


def _from_api_error(error: ApiError) -> tuple[Response, int]:
    return error_response(error.status, error.code, error.message, error.fields)


def _from_http_error(error: HTTPException) -> tuple[Response, int]:
    code = (error.name or "error").lower().replace(" ", "_")
    response, status = error_response(error.code or 500, code, error.description or error.name)
    # Keep headers the exception carries (Retry-After on 429, Allow on 405).
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response, status


def _from_validation(error: ValidationFailed) -> tuple[Response, int]:
    return error_response(
        422, "invalid_comment", "Some fields need another look.", error.fields
    )


def _from_store_unavailable(error: StoreUnavailable) -> tuple[Response, int]:
    logger.error("store unavailable: %s", error)
    response, status = error_response(
        503, "store_unavailable", "The comment could not be saved just now; please try again."
    )
    response.headers["Retry-After"] = "60"
    return response, status


def _from_store_corrupted(error: StoreCorrupted | SchemaMismatch) -> tuple[Response, int]:
    logger.critical("%s", error)
    return error_response(503, "store_unavailable", "Comments are unavailable just now.")


def _refuse_without_manifest() -> tuple[Response, int] | None:
    """Refuse every request with a clear 503 while the manifest cannot be loaded."""
    if request.endpoint in ENDPOINTS_WITHOUT_MANIFEST:
        return None
    source = current_app.extensions["tellmemore.manifest"]
    try:
        source.get()
    except ManifestError as error:
        return error_response(503, "manifest_unavailable",
                              public_message(error, source.location))
    return None


def init_app(app: Flask) -> None:
    handlers: dict[Any, Any] = {
        ApiError: _from_api_error,
        HTTPException: _from_http_error,
        ValidationFailed: _from_validation,
        EditRefused: lambda error: error_response(403, "edit_refused", str(error)),
        EditLocked: lambda error: error_response(409, "edit_locked", str(error)),
        CommentNotFound: lambda error: error_response(404, "not_found", "No such comment."),
        StoreUnavailable: _from_store_unavailable,
        StoreCorrupted: _from_store_corrupted,
        # The database was migrated by a newer tellmemore after this one started.
        SchemaMismatch: _from_store_corrupted,
    }
    for exception, handler in handlers.items():
        app.register_error_handler(exception, handler)
    app.before_request(_refuse_without_manifest)
