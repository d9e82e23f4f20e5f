"""Read a WordPress export (WXR: RSS 2.0 with the ``wp:`` namespace) into SourceData.

Tools → Export in WordPress writes ``<rss><channel><item>…`` with one ``<item>`` per post
(``<link>``, ``<title>``, ``<wp:post_id>``, ``<wp:post_name>``) and its ``<wp:comment>``
elements: ``wp:comment_id``, ``wp:comment_author``, ``wp:comment_author_email``,
``wp:comment_author_url``, ``wp:comment_date_gmt`` (``YYYY-MM-DD HH:MM:SS``, UTC; when it is
``0000-00-00 00:00:00``, ``wp:comment_date``, the site's local time, is taken as UTC),
``wp:comment_content`` (HTML where a newline is a line break), ``wp:comment_approved`` (``1``
public, ``0`` pending, ``spam``, ``trash``/``post-trashed`` deleted), ``wp:comment_parent``
(``0`` for none) and ``wp:comment_type`` (empty or ``comment`` for a reader's comment;
pingbacks, trackbacks and other types are not imported). The ``wp`` namespace is
``http://wordpress.org/export/1.0/`` to ``…/1.2/`` depending on the version.

Handed on, not refused (source.py): an item with comments but no ``<link>``; an item without
``wp:post_id`` (keyed by its link, as the default ``?p=N`` permalinks make unique); the same
post in two items (merged when the links agree, unplaceable when they differ); a comment
without an id or with one seen before on the post; a parent that is not in the file. Refused
whole: not a WXR file, or a comment whose status or date cannot be read.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from xml.etree.ElementTree import Element

from comments_service.importers.disqus import load_xml
from comments_service.importers.markdown import html_to_markdown
from comments_service.importers.matching import address_of
from comments_service.importers.source import (
    ImportRefused,
    Skip,
    SourceComment,
    SourceData,
    SourceThread,
    clean_email,
    clean_name,
    clean_website,
    parse_utc,
)

WP_NAMESPACE = re.compile(r"\{http://wordpress\.org/export/[0-9]+\.[0-9]+/\}")
APPROVED = {"1": "public", "approve": "public", "0": "pending", "hold": "pending",
            "spam": "spam", "trash": "deleted", "post-trashed": "deleted"}
COMMENT_TYPES = ("", "comment")
PINGBACK_TYPES = ("pingback", "trackback")
ZERO_DATE = "0000-00-00 00:00:00"


def _wp(element: Element, name: str, namespace: str) -> str:
    child = element.find(namespace + name)
    return (child.text or "").strip() if child is not None else ""


def read_wordpress(path: str) -> SourceData:
    root = load_xml(path, "WordPress")
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise ImportRefused(f"{path}: the root element is <{root.tag}>, not a WordPress "
                            "export's <rss> with a <channel>")
    namespaces = {match.group(0) for element in channel.iter()
                  if (match := WP_NAMESPACE.match(element.tag)) is not None}
    if len(namespaces) > 1:
        raise ImportRefused(f"{path}: mixes WordPress namespaces {sorted(namespaces)}")
    if not namespaces:
        raise ImportRefused(f"{path}: no wp: elements; is this a WordPress (WXR) export?")
    ns = namespaces.pop()
    threads: dict[str, SourceThread] = {}
    comments: list[SourceComment] = []
    skipped: list[tuple[Skip, str]] = []
    seen: set[str] = set()  # "post:comment" keys
    for number, item in enumerate(channel.findall("item"), start=1):
        post_id = _wp(item, "post_id", ns)
        where = f"{path}: <item> #{number}" + (f" (wp:post_id {post_id})" if post_id else "")
        elements = item.findall(ns + "comment")
        if not elements:
            continue  # attachments, pages without comments
        link = (item.findtext("link") or "").strip()
        key = post_id or link or f"<item> #{number}"
        thread = SourceThread(key, link, html.unescape((item.findtext("title") or "").strip()),
                              _wp(item, "post_name", ns) or None)
        earlier = threads.setdefault(key, thread)
        if earlier.url and thread.url and address_of(earlier.url) != address_of(thread.url):
            threads[key] = replace(earlier, problem=Skip.THREAD_TWICE)
        elif not earlier.url:
            threads[key] = thread
        for position, element in enumerate(elements, start=1):
            comment_key = _wp(element, "comment_id", ns)
            if not comment_key:
                skipped.append((Skip.NO_ID, f"{key}:#{position}"))
                continue
            at = f"{where}: <wp:comment> wp:comment_id {comment_key}"
            if f"{key}:{comment_key}" in seen:
                skipped.append((Skip.DUPLICATE, f"{key}:{comment_key}"))
                continue
            seen.add(f"{key}:{comment_key}")
            comments.append(_comment(element, ns, key, comment_key, at))
    return SourceData("wordpress", "WordPress", path, threads, comments, skipped)


def _comment(element: Element, ns: str, key: str, comment_key: str, at: str) -> SourceComment:
    comment_type = _wp(element, "comment_type", ns)
    approved = _wp(element, "comment_approved", ns)
    if approved not in APPROVED:
        raise ImportRefused(f"{at}: <wp:comment_approved> is {approved!r}, not one of "
                            f"{', '.join(sorted(APPROVED))}")
    date = _wp(element, "comment_date_gmt", ns)
    if not date or date == ZERO_DATE:
        date = _wp(element, "comment_date", ns)
    if not date or date == ZERO_DATE:
        raise ImportRefused(f"{at}: <wp:comment_date_gmt> is missing")
    parent = _wp(element, "comment_parent", ns)
    status = APPROVED[approved]
    if comment_type in PINGBACK_TYPES:
        status = "pingback"
    elif comment_type not in COMMENT_TYPES:
        status = "other"  # a review, an order note, a webmention…: not a reader's comment
    return SourceComment(
        key=f"{key}:{comment_key}", thread=key,
        parent=f"{key}:{parent}" if parent not in ("", "0") else None,
        name=clean_name(_wp(element, "comment_author", ns)),
        email=clean_email(_wp(element, "comment_author_email", ns)),
        website=clean_website(_wp(element, "comment_author_url", ns)),
        created=parse_utc(date, at, "<wp:comment_date_gmt>"),
        body=html_to_markdown(_wp(element, "comment_content", ns), newlines_are_breaks=True),
        status=status,  # type: ignore[arg-type]
    )
