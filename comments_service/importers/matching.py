"""Which article a source thread belongs to: found from its URL, or from the author's map.

Never misplace a comment: a thread goes to an article only when exactly one article fits.

* **A page's address** is its path, compared without a trailing slash or ``index.html``, and
  the part of its query string that names a page: ``?p=4``, ``?page_id=7`` (any parameter but
  the trackers and switches in ``NOISE_PARAMETERS``). ``/?p=4`` and ``/?p=6`` are two pages;
  ``/hello/?utm_source=feed`` is ``/hello``. The origin may differ (an old domain still matches
  by path); when articles on two origins share an address, the one with the thread's own
  origin, else the site's, is taken, else the thread is ambiguous.
* **The map** (``--map OLD=NEW``, ``--map-file``) comes first: OLD is an address as the export
  has it (with its origin, or just the path and query for any origin), NEW names an article by
  its thread key, URL or path.
* **Fallbacks**, when no address matches: WordPress's ``post_name``, then the last part of the
  path (not when the query names the page: ``/blog/?page_id=7`` is not "blog"), each naming an
  article whose thread key is that name, else whose own last path part is. Each fallback picks
  only when exactly one article fits; several make the thread ambiguous.

A thread that matches nothing, or several articles, is reported (with its comment count) and
its comments are not imported.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit

from comments_service.importers.source import ImportRefused
from comments_service.manifest import Manifest

__all__ = [
    "Address",
    "Match",
    "ThreadMap",
    "ThreadMatcher",
    "address_of",
    "load_map",
]

INDEX_PAGES = ("index.html", "index.htm", "index.php")
# Query parameters that never name a page: trackers, reply links, AMP and mobile switches.
NOISE_PARAMETERS = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid",
                              "replytocom", "amp", "noamp", "ref", "share"})
# How a thread was matched, as the summary says it.
BY_MAP, BY_ADDRESS, BY_POST_NAME, BY_LAST_PART = ("your map", "URL", "post_name",
                                                  "last part of the path")
MAP_HEADERS = {("old", "new"), ("from", "to"), ("old url", "article")}


@dataclass(frozen=True)
class Address:
    """The part of a URL that names a page (see the module docstring)."""

    host: str  # lowercase; "" for a path
    path: str  # "/2019/hello": unquoted, no trailing slash or index page
    query: str  # the parameters that name a page, sorted; "" when none

    @property
    def page(self) -> tuple[str, str]:
        return self.path, self.query


def address_of(url: str) -> Address:
    """The address of a URL or a site-relative path."""
    parts = urlsplit(url.strip())
    path = unquote(parts.path or "/")
    for page in INDEX_PAGES:
        if path.endswith("/" + page) or path == page:
            path = path[: -len(page)]
    parameters = sorted(
        (name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name.lower() not in NOISE_PARAMETERS and not name.lower().startswith("utm_"))
    return Address(parts.netloc.lower(), "/" + path.strip("/"), urlencode(parameters))


def _last_part(path: str) -> str:
    part = path.rstrip("/").rpartition("/")[2]
    return re.sub(r"\.(html?|php)$", "", part)


@dataclass(frozen=True)
class Match:
    """The article of a thread (``thread``), or why there is none."""

    thread: str | None
    how: str = ""  # one of BY_*, when matched
    candidates: tuple[str, ...] = ()  # when several articles fit


class ThreadMatcher:
    """Finds the article of a source thread from its URL (see the module docstring)."""

    def __init__(self, manifest: Manifest, thread_map: ThreadMap | None = None) -> None:
        base = manifest.site_url.rstrip("/") + "/" if manifest.site_url else ""
        self.site_host = urlsplit(base).netloc.lower()
        self.thread_map = thread_map or ThreadMap()
        self.threads = frozenset(manifest.articles)
        self.by_page: dict[tuple[str, str], list[tuple[str, str]]] = {}  # page → [(host, thread)]
        self.by_key: dict[str, set[str]] = {}  # casefolded thread key → threads
        self.by_last_part: dict[str, set[str]] = {}
        for thread, article in manifest.articles.items():
            address = address_of(urljoin(base, article.url) if base else article.url)
            self.by_page.setdefault(address.page, []).append((address.host, thread))
            self.by_key.setdefault(thread.casefold(), set()).add(thread)
            last = _last_part(address.path).casefold()
            if last:
                self.by_last_part.setdefault(last, set()).add(thread)

    def by_address(self, address: Address) -> Match:
        """The article at exactly this address (no fallbacks)."""
        candidates = self.by_page.get(address.page, [])
        for wanted in (address.host, self.site_host):
            chosen = {thread for host, thread in candidates if wanted and host == wanted}
            if len(chosen) == 1:
                return Match(chosen.pop(), BY_ADDRESS)
        threads = sorted({thread for _host, thread in candidates})
        if len(threads) == 1:
            return Match(threads[0], BY_ADDRESS)
        return Match(None, candidates=tuple(threads))

    def by_name(self, name: str, how: str) -> Match:
        """The one article whose thread key, else whose last path part, is ``name``."""
        for index in (self.by_key, self.by_last_part):
            found = sorted(index.get(name.casefold(), ()))
            if len(found) == 1:
                return Match(found[0], how)
            if found:
                return Match(None, candidates=tuple(found))
        return Match(None)

    def match(self, url: str, slug: str | None = None) -> Match:
        address = address_of(url)
        mapped = self.thread_map.find(address)
        if mapped is not None:
            return Match(mapped, BY_MAP)
        found = self.by_address(address)
        if found.thread is not None or found.candidates:
            return found
        names = [(slug, BY_POST_NAME)]
        if not address.query:  # a query that names the page makes the path say nothing
            names.append((_last_part(address.path), BY_LAST_PART))
        for name, how in names:
            if name:
                found = self.by_name(name, how)
                if found.thread is not None or found.candidates:
                    return found
        return Match(None)

    def article(self, name: str) -> str | None:
        """The article a map names: its thread key, URL or path (exactly one), else None."""
        if name in self.threads:
            return name
        found = self.by_address(address_of(name))
        return found.thread


# --- the author's map -----------------------------------------------------------------------------


@dataclass
class ThreadMap:
    """``--map OLD=NEW`` and ``--map-file`` entries: an old address → an article's thread."""

    # (origin or "" for any, path, query) → (thread, where the entry was given)
    entries: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)
    used: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, old: str, new: str, where: str, matcher: ThreadMatcher) -> None:
        old, new = old.strip(), new.strip()
        if not old or not new:
            raise ImportRefused(f"{where}: write OLD=NEW, an old URL or path and an article")
        thread = matcher.article(new)
        if thread is None:
            raise ImportRefused(
                f"{where}: {new!r} is not an article of this site; name it by its thread key "
                "(the slug, as in the manifest), its URL or its path")
        address = address_of(old)
        key = (address.host, *address.page)
        previous = self.entries.setdefault(key, (thread, where))
        if previous[0] != thread:
            raise ImportRefused(f"{where}: {old!r} is mapped twice, to {previous[0]!r} "
                                f"({previous[1]}) and to {thread!r}")

    def find(self, address: Address) -> str | None:
        for key in ((address.host, *address.page), ("", *address.page)):
            if key in self.entries:
                self.used.add(key)
                return self.entries[key][0]
        return None

    def unused(self) -> list[str]:
        """Where each entry that matched no thread of the file was given."""
        return [where for key, (_thread, where) in self.entries.items() if key not in self.used]


def load_map(matcher: ThreadMatcher, pairs: Iterable[str], files: Iterable[str]) -> ThreadMap:
    """The matcher's map from ``--map OLD=NEW`` texts and CSV files (ImportRefused naming the
    entry that names no article, has no "=" or two columns, or maps one address twice)."""
    thread_map = ThreadMap()
    for pair in pairs:
        old, equals, new = pair.rpartition("=")  # the article never holds "=", a URL may
        if not equals:
            raise ImportRefused(f"--map {pair!r}: write OLD=NEW, an old URL or path and an "
                                "article")
        try:
            thread_map.add(old, new, f"--map {pair!r}", matcher)
        except ImportRefused as error:
            raise ImportRefused(f"{error} (OLD=NEW is split at the last \"=\")") from error
    for name in files:
        for where, old, new in _map_rows(name):
            thread_map.add(old, new, where, matcher)
    matcher.thread_map = thread_map
    return thread_map


def _map_rows(name: str) -> Iterable[tuple[str, str, str]]:
    try:
        text = Path(name).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ImportRefused(f"--map-file {name}: cannot read it ({error})") from error
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and tuple(cell.casefold() for cell in cells) in MAP_HEADERS:
            continue
        if len(cells) != 2:
            raise ImportRefused(f"--map-file {name}, line {number}: {len(cells)} columns; "
                                "write two, the old URL or path and the article")
        yield f"--map-file {name}, line {number}", cells[0], cells[1]
