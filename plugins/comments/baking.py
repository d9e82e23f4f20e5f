"""Bake published comments into the built pages, so articles read well without scripts.

The comments come from the comment service's public export (``GET /api/public-export``, or a
file written by ``flask --app comments_service export-public``), named by ``COMMENTS_EXPORT``.
When it cannot be read the build goes on without them and says so: a site must never fail to
build because its comment service is away.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5


def read_public_export(location: str, timeout: float) -> dict[str, Any] | None:
    """The threads of a public export (thread key → thread payload), or None when unreadable."""
    document = read_export_document(location, timeout)
    return None if document is None else document["threads"]


def read_export_document(location: str, timeout: float) -> dict[str, Any] | None:
    """A whole public export (its threads and the site's listening figures), or None when
    unreadable."""
    # Imported here: urllib.request pulls in ssl and http.client, megabytes a build without a
    # URL export never needs.
    import urllib.error
    import urllib.request

    try:
        if location.startswith(("http://", "https://")):
            # The scheme is checked above: only http(s) reaches urlopen.
            with urllib.request.urlopen(location, timeout=timeout) as response:  # noqa: S310
                raw = response.read()
        else:
            raw = Path(location).read_bytes()
        document = json.loads(raw)
    except (OSError, ValueError) as error:  # URLError is an OSError
        logger.warning(
            "comments: could not read published comments from %s (%s); pages are built "
            "without them", location, error,
        )
        return None
    threads = document.get("threads") if isinstance(document, dict) else None
    if not isinstance(threads, dict):
        logger.warning("comments: %s is not a public export (no threads); ignored", location)
        return None
    return document


def bake(articles: list[Any], settings: dict[str, Any]) -> dict[str, Any] | None:
    """Give each article ``comments_export``: its public thread, or None when there is none.
    Returns the site's listening figures of the export (None when it has none)."""
    location = settings.get("COMMENTS_EXPORT")
    document = None
    if location:
        timeout = float(settings.get("COMMENTS_EXPORT_TIMEOUT", DEFAULT_TIMEOUT_SECONDS))
        document = read_export_document(str(location), timeout)
    threads = document["threads"] if document else None
    for article in articles:
        payload = threads.get(article.comment_thread) if threads else None
        article.comments_export = payload if _looks_like_thread(payload) else None
    listening = document.get("listening") if document else None
    return listening if _looks_like_listening(listening) else None


def _looks_like_listening(figures: Any) -> bool:
    return isinstance(figures, dict) and all(
        isinstance(figures.get(name), int | float)
        for name in ("window_days", "received", "answered", "answered_share"))


def _looks_like_thread(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("comments"), list)
        and isinstance(payload.get("count"), int)
    )
