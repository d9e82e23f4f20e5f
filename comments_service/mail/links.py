"""Where mail and webhooks point: the service's public base URL and absolute links to its
routes, the site's name, and links to a comment in its article."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from flask import Flask, current_app, has_app_context

from comments_service.manifest import Manifest, ManifestError, is_url
from comments_service.outbox.message import header_text

NO_PUBLIC_URL = (
    "PUBLIC_URL is not set and the manifest names no absolute http(s) service_url, so links "
    "in mail have no trustworthy address (never the request's Host header, which any client "
    "chooses). Set PUBLIC_URL (e.g. https://comments.example.org), or COMMENTS_SERVICE_URL in "
    "the site's settings and rebuild."
)


class MailSetupError(Exception):
    """Mail cannot be queued as configured (no address for its links)."""


def manifest_service_url(manifest: Manifest | None) -> str | None:
    """The manifest's service_url when it says the service's address unambiguously: an
    absolute http(s) URL with a host and nothing after the path (no query, no fragment)."""
    if manifest is None:
        return None
    url = manifest.service_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password:
        return None
    return url


def _current_manifest() -> Manifest | None:
    if not has_app_context():
        return None
    try:
        return current_app.extensions["tellmemore.manifest"].get()
    except (KeyError, ManifestError):
        return None


def public_url(config: Mapping[str, Any], manifest: Manifest | None = None) -> str:
    """The base URL of links in mail: PUBLIC_URL, else the manifest's service_url. Never the
    request's own address: its Host header is the client's to choose, so a forged one would
    put the attacker's host in a reader's confirm and unsubscribe links."""
    configured = str(config.get("PUBLIC_URL") or "").strip().rstrip("/")
    if configured:
        return configured
    derived = manifest_service_url(manifest or _current_manifest())
    if derived:
        return derived
    raise MailSetupError(NO_PUBLIC_URL)


def check_links_base(app: Flask) -> str:
    """At a server's start: the base of links in mail, from PUBLIC_URL or a local manifest
    file's service_url (a manifest URL is not fetched at start: set PUBLIC_URL then).
    MailSetupError when there is none: every service mails readers and authors."""
    manifest = None
    source = app.extensions.get("tellmemore.manifest")
    if source is not None and not is_url(str(app.config.get("MANIFEST", ""))):
        try:
            manifest = source.get()
        except ManifestError:
            manifest = None
    return public_url(app.config, manifest)


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
