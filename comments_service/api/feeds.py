"""Atom feeds, so readers can follow conversations without an account or an email address.

    GET /feeds/threads/<thread>.atom   an article's public comments and replies, newest first
    GET /feeds/replies.atom            the author's public replies on the whole site

Only what the public thread shows goes in (names, websites, the sanitised HTML, times): never
an email. Entries link to the comment in its article (``…#comment-<id>``); an entry's id is that
link's comment id as a ``tag:`` URI, so it never changes when the site moves. Both answer with
an ETag (a hash of the body) and Last-Modified (the newest entry), and 304 to a reader that has
the current copy. Article pages link the thread's feed with ``<link rel="alternate">`` (theme).
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from flask import Blueprint, Response, request, url_for

from comments_service.errors import ApiError
from comments_service.extensions import manifest as _manifest
from comments_service.extensions import store as _store
from comments_service.manifest import ArticleEntry, Manifest
from comments_service.models import Comment, parse_time

bp = Blueprint("feeds", __name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
THREAD_FEED_LIMIT = 100
REPLIES_FEED_LIMIT = 50
EPOCH = "1970-01-01T00:00:00+00:00"
XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _article_url(manifest: Manifest, article: ArticleEntry) -> str:
    base = manifest.site_url.rstrip("/") + "/" if manifest.site_url else ""
    return urljoin(base, article.url) if base else article.url


def _tag_authority(manifest: Manifest) -> str:
    host = urlsplit(manifest.site_url).hostname or "tellmemore.invalid"
    return f"tag:{host},2026:"


def _rfc3339(value: str) -> str:
    return parse_time(value).astimezone(UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def xml_text(value: str) -> str:
    """``value`` without the characters XML 1.0 forbids: ElementTree writes them as they are,
    and one stored before input dropped them (or imported) would break the whole feed."""
    return XML_FORBIDDEN.sub("", value)


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}",
                            {name: xml_text(value) for name, value in attributes.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _entry(feed: ET.Element, manifest: Manifest, comment: Comment, title: str,
           articles: dict[str, ArticleEntry]) -> None:
    entry = _add(feed, "entry")
    _add(entry, "id", f"{_tag_authority(manifest)}comment:{comment.id}")
    _add(entry, "title", title)
    article = articles.get(comment.thread)
    if article is not None:
        _add(entry, "link", rel="alternate", type="text/html",
             href=f"{_article_url(manifest, article)}#comment-{comment.id}")
    _add(entry, "published", _rfc3339(comment.created))
    _add(entry, "updated", _rfc3339(comment.edited_at or comment.created))
    author = _add(entry, "author")
    _add(author, "name", comment.name)
    if comment.website:
        _add(author, "uri", comment.website)
    _add(entry, "content", comment.html, type="html")


def _feed(manifest: Manifest, *, feed_id: str, title: str, alternate: str | None,
          entries: list[tuple[Comment, str]], fallback_updated: str) -> Response:
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    _add(feed, "id", feed_id)
    _add(feed, "title", title)
    newest = max((comment.edited_at or comment.created for comment, _ in entries),
                 default=fallback_updated, key=lambda value: parse_time(value))
    _add(feed, "updated", _rfc3339(newest))
    _add(feed, "link", rel="self", type="application/atom+xml", href=request.url)
    if alternate:
        _add(feed, "link", rel="alternate", type="text/html", href=alternate)
    _add(feed, "generator", "tellmemore")
    if entries:
        # Feed-level author, so that every entry has one even where a name is missing.
        _add(_add(feed, "author"), "name", manifest.site_name or "tellmemore")
    for comment, entry_title in entries:
        _entry(feed, manifest, comment, entry_title, manifest.articles)
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    response = Response(body, content_type=ATOM_TYPE)
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    response.last_modified = parse_time(newest).astimezone(UTC).replace(microsecond=0)
    response.headers["Cache-Control"] = "no-cache"
    return response.make_conditional(request)


@bp.get("/feeds/threads/<thread>.atom")
def thread_feed(thread: str) -> Response:
    """An article's public comments and replies, newest first (at most 100)."""
    manifest = _manifest()
    article = manifest.article(thread)
    if article is None:
        raise ApiError(404, "unknown_thread", f"There is no article {thread!r} on this site.")
    comments = [comment for comment in _store().thread_comments(thread) if comment.public]
    comments.sort(key=lambda comment: (comment.created, comment.id), reverse=True)
    by_id = {comment.id: comment for comment in comments}
    entries = []
    for comment in comments[:THREAD_FEED_LIMIT]:
        parent = by_id.get(comment.parent) if comment.parent else None
        title = (f"{comment.name} replied to {parent.name}" if parent is not None
                 else f"{comment.name} commented")
        entries.append((comment, f"{title} on “{article.title}”"))
    return _feed(
        manifest, feed_id=f"{_tag_authority(manifest)}thread:{thread}",
        title=f"Comments on “{article.title}”", alternate=_article_url(manifest, article),
        entries=entries, fallback_updated=_article_date(article),
    )


def _article_date(article: ArticleEntry) -> str:
    try:
        moment = datetime.fromisoformat(article.date)
    except ValueError:
        return EPOCH
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@bp.get("/feeds/replies.atom")
def replies_feed() -> Response:
    """The author's public replies on every article, newest first (at most 50)."""
    manifest = _manifest()
    replies = [reply for reply in _store().author_replies()
               if reply.public and reply.thread in manifest.articles][:REPLIES_FEED_LIMIT]
    entries = [(reply, f"{reply.name} replied on “{manifest.articles[reply.thread].title}”")
               for reply in replies]
    name = manifest.site_name or "tellmemore"
    return _feed(
        manifest, feed_id=f"{_tag_authority(manifest)}replies",
        title=f"{name}: the author's replies", alternate=manifest.site_url or None,
        entries=entries, fallback_updated=EPOCH,
    )


def feed_url(thread: str) -> str:
    """The thread feed's path (for links the service itself makes)."""
    return url_for("feeds.thread_feed", thread=thread)
