"""The site's own layout for the service's pages for readers (the plain comment form): the
built site writes ``comments-layout.html`` beside the manifest (theme template
``comments_layout.html``), a page of the site with two markers where the title and the content
go. The service cuts it there, so its pages wear the site's header, footer and styles.

Without that file (an older build, a manifest fetched by URL) the service's own plain layout is
used. The file is the author's own build output, so it is trusted like the manifest.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from comments_service.manifest import is_url

LAYOUT_NAME = "comments-layout.html"
TITLE_MARK = "<!--tellmemore:title-->"
CONTENT_MARK = "<!--tellmemore:content-->"


@dataclass(frozen=True)
class SiteLayout:
    """A page of the site cut at its markers: before the title, up to the content, the rest."""

    head: Markup
    middle: Markup
    tail: Markup


def parse_layout(text: str) -> SiteLayout | None:
    """The layout cut at its markers; None unless each appears once, title first."""
    if text.count(TITLE_MARK) != 1 or text.count(CONTENT_MARK) != 1:
        return None
    head, rest = text.split(TITLE_MARK)
    if CONTENT_MARK not in rest:
        return None
    middle, tail = rest.split(CONTENT_MARK)
    return SiteLayout(Markup(head), Markup(middle), Markup(tail))  # noqa: S704 - the site's build


_cache: dict[str, tuple[object, SiteLayout | None]] = {}
_cache_lock = threading.Lock()


def site_layout(manifest_location: str) -> SiteLayout | None:
    """The layout beside the manifest, read again only when the file changes."""
    if is_url(manifest_location):
        return None
    path = Path(manifest_location).parent / LAYOUT_NAME
    try:
        status = path.stat()
    except OSError:
        return None
    stamp = (status.st_mtime_ns, status.st_size, status.st_ino)
    with _cache_lock:
        cached = _cache.get(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
    try:
        layout = parse_layout(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        layout = None
    with _cache_lock:
        _cache[str(path)] = (stamp, layout)
    return layout
