"""Where mail and webhooks point: the service's public base URL and absolute links to its
routes, the site's name, and links to a comment in its article."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from flask import current_app, has_request_context, request

from comments_service.manifest import Manifest
from comments_service.outbox.message import header_text


class MailSetupError(Exception):
    """Mail cannot be queued as configured (e.g. no PUBLIC_URL outside a request)."""


def public_url(config: Mapping[str, Any]) -> str:
    """The base URL of links in mail: PUBLIC_URL, else the current request's."""
    configured = str(config.get("PUBLIC_URL") or "").strip().rstrip("/")
    if configured:
        return configured
    if has_request_context():
        return request.url_root.rstrip("/")
    raise MailSetupError(
        "PUBLIC_URL is not set, and mail queued outside a request has no other way to know "
        "the service's address for its links. Set PUBLIC_URL (e.g. https://comments.example.org)."
    )


def service_link(base: str, endpoint: str, **values: Any) -> str:
    """An absolute link to one of the service's routes (no request needed)."""
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return base + path


def site_name(manifest: Manifest | None) -> str:
    """The site's name for a subject or a page: the manifest's, else its host, else ours."""
    if manifest is not None and manifest.site_name.strip():
        return header_text(manifest.site_name, 100)
    if manifest is not None and urlsplit(manifest.site_url).hostname:
        return str(urlsplit(manifest.site_url).hostname)
    return "tellmemore"


def thread_link(manifest: Manifest | None, thread: str, comment_id: str) -> str | None:
    """The article's absolute URL (site-relative ones joined to site_url) + #comment-<id>."""
    article = manifest.article(thread) if manifest is not None else None
    if article is None:
        return None
    url = urljoin(manifest.site_url.rstrip("/") + "/", article.url)  # type: ignore[union-attr]
    if urlsplit(url).scheme not in ("http", "https"):
        return None
    return f"{url}#comment-{comment_id}"
