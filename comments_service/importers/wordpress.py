"""Read a WordPress export (WXR: RSS 2.0 with the ``wp:`` namespace) into SourceData.

Tools → Export in WordPress writes ``<rss><channel><item>…`` with one ``<item>`` per post
(``<link>``, ``<title>``, ``<wp:post_id>``, ``<wp:post_name>``) and its ``<wp:comment>``
elements: ``wp:comment_id``, ``wp:comment_author``, ``wp:comment_author_email``,
``wp:comment_author_url``, ``wp:comment_date_gmt`` (``YYYY-MM-DD HH:MM:SS``, UTC; when it is
``0000-00-00 00:00:00``, ``wp:comment_date``, the site's local time, is taken as UTC),
``wp:comment_content`` (HTML where a newline is a line break), ``wp:comment_approved`` (``1``
public, ``0`` pending, ``spam``, ``trash``/``post-trashed`` deleted), ``wp:comment_parent``
(``0`` for none) and ``wp:comment_type`` (pingbacks and trackbacks are not imported). The
``wp`` namespace is ``http://wordpress.org/export/1.0/`` to ``…/1.2/`` depending on the version.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from comments_service.importers.disqus import load_xml
from comments_service.importers.markdown import html_to_markdown
from comments_service.importers.source import (
    ImportRefused,
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
    for number, item in enumerate(channel.findall("item"), start=1):
        post_id = _wp(item, "post_id", ns)
        where = f"{path}: <item> #{number}" + (f" (wp:post_id {post_id})" if post_id else "")
        elements = item.findall(ns + "comment")
        if not elements:
            continue  # attachments, pages without comments
        link = (item.findtext("link") or "").strip()
        if not link:
            raise ImportRefused(f"{where}: <link> is missing or empty")
        key = post_id or link
        if key in threads:
            raise ImportRefused(f"{where}: a second <item> with the same post")
        threads[key] = SourceThread(key, link, (item.findtext("title") or "").strip(),
                                    _wp(item, "post_name", ns) or None)
        seen: set[str] = set()
        for position, element in enumerate(elements, start=1):
            comment_key = _wp(element, "comment_id", ns)
            at = f"{where}: <wp:comment> #{position}"
            if not comment_key:
                raise ImportRefused(f"{at}: <wp:comment_id> is missing")
            at = f"{where}: <wp:comment> wp:comment_id {comment_key}"
            if comment_key in seen:
                raise ImportRefused(f"{at}: the same comment id appears twice")
            seen.add(comment_key)
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
            if comment_type not in COMMENT_TYPES:
                status = "pingback"  # or a trackback: not a reader's comment
            comments.append(SourceComment(
                key=f"{key}:{comment_key}", thread=key,
                parent=f"{key}:{parent}" if parent not in ("", "0") else None,
                name=clean_name(_wp(element, "comment_author", ns)),
                email=clean_email(_wp(element, "comment_author_email", ns)),
                website=clean_website(_wp(element, "comment_author_url", ns)),
                created=parse_utc(date, at, "<wp:comment_date_gmt>"),
                body=html_to_markdown(_wp(element, "comment_content", ns),
                                      newlines_are_breaks=True),
                status=status,  # type: ignore[arg-type]
            ))
    return SourceData("wordpress", "WordPress", path, threads, comments)
