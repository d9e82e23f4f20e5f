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
    return threads


def bake(articles: list[Any], settings: dict[str, Any]) -> None:
    """Give each article ``comments_export``: its public thread, or None when there is none."""
    location = settings.get("COMMENTS_EXPORT")
    threads = None
    if location:
        timeout = float(settings.get("COMMENTS_EXPORT_TIMEOUT", DEFAULT_TIMEOUT_SECONDS))
        threads = read_public_export(str(location), timeout)
    for article in articles:
        payload = threads.get(article.comment_thread) if threads else None
        article.comments_export = payload if _looks_like_thread(payload) else None


def _looks_like_thread(payload: Any) -> bool:
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("comments"), list)
        and isinstance(payload.get("count"), int)
    )
