"""Load and validate comments-manifest.json, the list of threads and questions the site has.

The manifest is written by the Pelican `comments` plugin on every build. The service reads it
from a file (re-read when the file changes, so a rebuild needs no restart) or from a URL
(re-fetched after MANIFEST_REFRESH_SECONDS).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORTED_SCHEMA_VERSION = 1
THREAD_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
QUESTION_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
URL_FETCH_TIMEOUT_SECONDS = 10


class ManifestError(Exception):
    """The manifest is missing, unreadable or not what the comments plugin writes."""


def public_message(error: ManifestError, location: str) -> str:
    """The error as the public may read it (/healthz, the 503 of every request): the manifest
    named by its file name, not by where it lies on the server's disk. The log and `flask …
    check` keep the whole path."""
    if is_url(location) or not location:
        return str(error)
    return str(error).replace(location, Path(location).name)


@dataclass(frozen=True)
class Question:
    id: str
    text: str


@dataclass(frozen=True)
class ArticleEntry:
    thread: str
    title: str
    url: str
    date: str
    questions: tuple[Question, ...]

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)


@dataclass(frozen=True)
class Manifest:
    site_name: str
    site_url: str
    articles: dict[str, ArticleEntry]
    location: str
    # The comment service's own address as the site build knows it (COMMENTS_SERVICE_URL):
    # links in mail may be derived from it when PUBLIC_URL is not set (mail/links.py).
    service_url: str = ""

    def article(self, thread: str) -> ArticleEntry | None:
        return self.articles.get(thread)


def _require(condition: bool, location: str, problem: str) -> None:
    if not condition:
        raise ManifestError(f"manifest {location}: {problem}")


def _parse_question(raw: Any, location: str, where: str) -> Question:
    _require(isinstance(raw, dict), location, f"{where} is not an object")
    question_id, text = raw.get("id"), raw.get("text")
    _require(
        isinstance(question_id, str) and bool(QUESTION_ID_RE.match(question_id)),
        location, f"{where} has an invalid id {question_id!r}",
    )
    _require(isinstance(text, str) and bool(text.strip()), location, f"{where} has no text")
    return Question(question_id, text)


def _parse_article(raw: Any, location: str, index: int) -> ArticleEntry:
    where = f"articles[{index}]"
    _require(isinstance(raw, dict), location, f"{where} is not an object")
    thread = raw.get("thread")
    _require(
        isinstance(thread, str) and bool(THREAD_KEY_RE.match(thread)),
        location, f"{where} has an invalid thread key {thread!r}",
    )
    for name in ("title", "url", "date"):
        _require(isinstance(raw.get(name), str), location, f"{where} ({thread}) has no {name}")
    raw_questions = raw.get("questions", [])
    _require(isinstance(raw_questions, list), location, f"{where} ({thread}) questions not a list")
    questions = tuple(
        _parse_question(question, location, f"{where}.questions[{number}]")
        for number, question in enumerate(raw_questions)
    )
    ids = [question.id for question in questions]
    _require(len(ids) == len(set(ids)), location, f"{where} ({thread}) repeats a question id")
    return ArticleEntry(thread, raw["title"], raw["url"], raw["date"], questions)


def parse_manifest(text: str | bytes, location: str) -> Manifest:
    """Validate manifest JSON; raises ManifestError naming the first problem found."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ManifestError(f"manifest {location}: not valid JSON ({error})") from error
    _require(isinstance(data, dict), location, "the top level is not an object")
    version = data.get("schema_version")
    _require(isinstance(version, int), location, "schema_version is missing")
    _require(
        version <= SUPPORTED_SCHEMA_VERSION, location,
        f"schema_version {version} is newer than this service understands "
        f"({SUPPORTED_SCHEMA_VERSION}); upgrade tellmemore",
    )
    raw_articles = data.get("articles")
    _require(isinstance(raw_articles, list), location, "articles is missing or not a list")
    articles: dict[str, ArticleEntry] = {}
    for index, raw in enumerate(raw_articles):
        article = _parse_article(raw, location, index)
        _require(article.thread not in articles, location, f"thread {article.thread!r} repeats")
        articles[article.thread] = article
    service_url = data.get("service_url", "")
    _require(isinstance(service_url, str), location, "service_url is not text")
    return Manifest(
        str(data.get("site_name", "")), str(data.get("site_url", "")), articles, location,
        service_url,
    )


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def read_manifest(location: str) -> Manifest:
    """Read and validate the manifest at a file path or an http(s) URL."""
    if is_url(location):
        try:
            with urllib.request.urlopen(location, timeout=URL_FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310 - scheme checked above
                return parse_manifest(response.read(), location)
        except (urllib.error.URLError, OSError) as error:
            raise ManifestError(f"manifest {location}: cannot fetch it ({error})") from error
    path = Path(location)
    try:
        return parse_manifest(path.read_bytes(), location)
    except FileNotFoundError as error:
        raise ManifestError(
            f"manifest {location}: no such file; build the site first (`invoke build`) "
            "or set TELLMEMORE_MANIFEST"
        ) from error
    except OSError as error:
        raise ManifestError(f"manifest {location}: cannot read it ({error})") from error


class ManifestSource:
    """The current manifest of a running service, reloaded when its source changes."""

    def __init__(self, location: str, refresh_seconds: float = 60.0) -> None:
        self.location = location
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._manifest: Manifest | None = None
        self._error: ManifestError | None = None
        self._stamp: object = None
        self._checked_at = 0.0

    def _current_stamp(self) -> object:
        if is_url(self.location):
            return None
        try:
            status = Path(self.location).stat()
        except OSError:
            return "missing"
        return (status.st_mtime_ns, status.st_size, status.st_ino)

    def _stale(self) -> bool:
        if self._manifest is None and self._error is None:
            return True
        if is_url(self.location):
            return time.monotonic() - self._checked_at >= self.refresh_seconds
        return self._current_stamp() != self._stamp

    def get(self) -> Manifest:
        """The manifest; raises ManifestError while it is missing or invalid."""
        with self._lock:
            if self._stale():
                self._reload()
            if self._error is not None:
                raise self._error
            assert self._manifest is not None
            return self._manifest

    def _reload(self) -> None:
        stamp = self._current_stamp()
        self._checked_at = time.monotonic()
        try:
            manifest = read_manifest(self.location)
        except ManifestError as error:
            if is_url(self.location) and self._manifest is not None:
                # Keep serving the last good copy while the site is briefly unreachable.
                return
            self._manifest, self._error = None, error
        else:
            self._manifest, self._error = manifest, None
        self._stamp = stamp
