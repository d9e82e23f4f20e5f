"""Which article a source thread belongs to, found from its URL.

Threads are matched to the manifest's articles by URL path: compared without a trailing slash
or ``index.html``, with or without the origin (an old domain still matches by path; a path that
two origins share goes to the one with the site's own origin). When no path matches, the last
part of the path (or WordPress's ``post_name``) may name an article whose thread key or last
path part is the same, when exactly one article does.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urljoin, urlsplit

from comments_service.manifest import Manifest

INDEX_PAGES = ("index.html", "index.htm", "index.php")


def _normal_path(path: str) -> str:
    path = unquote(path or "/")
    for page in INDEX_PAGES:
        if path.endswith("/" + page) or path == page:
            path = path[: -len(page)]
    return "/" + path.strip("/")


def _last_part(path: str) -> str:
    part = path.rstrip("/").rpartition("/")[2]
    return re.sub(r"\.html?$", "", part)


class ThreadMatcher:
    """Finds the article of a source thread from its URL (see the module docstring)."""

    def __init__(self, manifest: Manifest) -> None:
        base = manifest.site_url.rstrip("/") + "/" if manifest.site_url else ""
        self.site_host = urlsplit(base).netloc.lower()
        self.by_path: dict[str, list[tuple[str, str]]] = {}  # path → [(host, thread)]
        self.by_slug: dict[str, set[str]] = {}
        for thread, article in manifest.articles.items():
            parts = urlsplit(urljoin(base, article.url) if base else article.url)
            path = _normal_path(parts.path)
            self.by_path.setdefault(path, []).append((parts.netloc.lower(), thread))
            for slug in {thread.casefold(), _last_part(path).casefold()}:
                if slug:
                    self.by_slug.setdefault(slug, set()).add(thread)

    def match(self, url: str, slug: str | None = None) -> str | None:
        parts = urlsplit(url.strip())
        candidates = self.by_path.get(_normal_path(parts.path), [])
        if candidates:
            host = parts.netloc.lower()
            for wanted in (host, self.site_host):
                for candidate_host, thread in candidates:
                    if wanted and candidate_host == wanted:
                        return thread
            return candidates[0][1]
        for name in (slug, _last_part(_normal_path(parts.path))):
            found = self.by_slug.get((name or "").casefold(), set())
            if len(found) == 1:
                return next(iter(found))
        return None
