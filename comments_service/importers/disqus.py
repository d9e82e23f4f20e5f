"""Read a Disqus XML export into SourceData.

The export (Disqus admin → Export) is one ``<disqus>`` document in the ``http://disqus.com``
namespace, with ids in ``dsq:id`` attributes (``http://disqus.com/disqus-internals``):
``<thread dsq:id>`` carries ``<link>`` and ``<title>``; ``<post dsq:id>`` carries ``<message>``
(HTML, usually in CDATA), ``<createdAt>`` (ISO 8601, UTC), ``<author>`` (``<name>``, ``<email>``,
``<isAnonymous>``), ``<thread dsq:id>``, an optional ``<parent dsq:id>``, ``<isDeleted>`` and
``<isSpam>``. Messages are converted to Markdown (markdown.html_to_markdown) and rendered by
our own renderer. Parsing uses defusedxml: no entity expansion, no external entities.

Real exports carry what cannot be placed, and it is handed on, not refused (source.py): threads
Disqus saw without a ``<link>`` (or without a ``dsq:id``), the same thread id twice (kept once
when the links agree, unplaceable when they differ), posts on threads the file does not have,
posts without a ``dsq:id`` or with one seen before, replies whose parent is missing. The file
is refused whole only when it is not a Disqus export, not well formed, or has a post whose
``<createdAt>``, ``<isDeleted>`` or ``<isSpam>`` cannot be read.
"""

from __future__ import annotations

from dataclasses import replace
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import parse

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
    parse_utc,
)

NS = "{http://disqus.com}"
DSQ_ID = "{http://disqus.com/disqus-internals}id"
TRUE = "true"


def _text(element: Element, name: str) -> str:
    child = element.find(NS + name)
    return (child.text or "").strip() if child is not None else ""


def _flag(element: Element, name: str, where: str) -> bool:
    value = _text(element, name).lower()
    if value not in ("", "true", "false"):
        raise ImportRefused(f"{where}: <{name}> is {value!r}, not true or false")
    return value == TRUE


def load_xml(path: str, label: str) -> Element:
    """The document's root; ImportRefused naming the line and column of a syntax error."""
    try:
        return parse(path).getroot()
    except ParseError as error:
        raise ImportRefused(f"{path}: not well-formed XML ({error})") from error
    except DefusedXmlException as error:
        raise ImportRefused(f"{path}: refused ({error}); a {label} export has no "
                            "entities or DTDs") from error
    except OSError as error:
        raise ImportRefused(f"{path}: cannot read it ({error})") from error


def _threads(root: Element) -> dict[str, SourceThread]:
    threads: dict[str, SourceThread] = {}
    for number, element in enumerate(root.findall(NS + "thread"), start=1):
        key = element.get(DSQ_ID)
        if not key:  # no post can name it; kept so the summary counts it
            threads[f"<thread> #{number}"] = SourceThread(f"<thread> #{number}", "",
                                                          problem=Skip.NO_ID)
            continue
        thread = SourceThread(key, _text(element, "link"), _text(element, "title"))
        earlier = threads.setdefault(key, thread)
        if earlier.problem or not thread.url or earlier.url == thread.url:
            continue
        if not earlier.url:
            threads[key] = thread
        elif address_of(earlier.url) != address_of(thread.url):
            # Which of the two pages its posts were on cannot be told.
            threads[key] = replace(earlier, problem=Skip.THREAD_TWICE)
    return threads


def read_disqus(path: str) -> SourceData:
    root = load_xml(path, "Disqus")
    if root.tag != NS + "disqus":
        raise ImportRefused(f"{path}: the root element is <{root.tag}>, not a Disqus export's "
                            "<disqus xmlns=\"http://disqus.com\">")
    threads = _threads(root)
    comments: list[SourceComment] = []
    skipped: list[tuple[Skip, str]] = []
    seen: set[str] = set()
    for number, element in enumerate(root.findall(NS + "post"), start=1):
        key = element.get(DSQ_ID)
        if not key:
            skipped.append((Skip.NO_ID, f"<post> #{number}"))
            continue
        if key in seen:
            skipped.append((Skip.DUPLICATE, key))
            continue
        seen.add(key)
        where = f"{path}: <post dsq:id=\"{key}\">"
        thread = element.find(NS + "thread")
        thread_key = (thread.get(DSQ_ID) or "") if thread is not None else ""
        created = _text(element, "createdAt")
        if not created:
            raise ImportRefused(f"{where}: <createdAt> is missing")
        parent = element.find(NS + "parent")
        author = element.find(NS + "author")
        name = email = None
        if author is not None:
            name, email = _text(author, "name"), _text(author, "email")
            if _flag(author, "isAnonymous", where) and not name:
                name = None
        message = element.find(NS + "message")
        deleted = _flag(element, "isDeleted", where)
        spam = _flag(element, "isSpam", where)
        comments.append(SourceComment(
            key=key, thread=thread_key,
            parent=(parent.get(DSQ_ID) or None) if parent is not None else None,
            name=clean_name(name), email=clean_email(email), website=None,
            created=parse_utc(created, where, "<createdAt>"),
            body=html_to_markdown(message.text or "") if message is not None else "",
            status="deleted" if deleted else "spam" if spam else "public",
        ))
    return SourceData("disqus", "Disqus", path, threads, comments, skipped)
