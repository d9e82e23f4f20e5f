"""Safe rendering of reader-written text: a small Markdown subset turned into inert HTML.

Every comment body goes through two independent layers:

1. **Python-Markdown, stripped down.** The raw-HTML block preprocessor (``html_block``) and
   the raw-HTML inline pattern (``html``) are removed, so anything a reader types that looks
   like a tag stays *text* and is escaped by the serializer: typing ``<b>hi</b>`` shows
   ``<b>hi</b>`` literally. The image patterns are removed too, so ``![x](y)`` is never an
   ``<img>``: it stays literal text. A tree processor then unwraps every link whose URL is
   not an absolute ``http``/``https``/``mailto`` URL, keeping its text.
2. **nh3 (ammonia) with an explicit allow-list.** Whatever Markdown produced is parsed again
   by a real HTML5 parser and rebuilt from :data:`ALLOWED_TAGS` and
   :data:`ALLOWED_ATTRIBUTES` only, with :data:`ALLOWED_URL_SCHEMES`, relative URLs denied,
   comments stripped and ``rel="nofollow ugc noopener"`` forced onto every ``<a>``.

Supported Markdown: paragraphs, line breaks (a single newline is a ``<br>``, as readers
expect in a comment box), ``*emphasis*``/``**strong**``, inline links, reference links,
``<https://…>`` autolinks and ``<someone@example.org>`` mail autolinks, bulleted and
numbered lists, inline code, fenced and indented code blocks, and block quotes.

Decisions:

* **Headings are not rendered.** ``# Title`` and setext underlines stay literal text in a
  paragraph. Python-Markdown treats any line starting with ``#`` as a heading (even ``#1``),
  which is a common way to start a comment line, and a reader's headings would compete with
  the article's own outline. Horizontal rules (``---``) are left as text for the same reason.
* **Relative URLs are refused.** A comment may be shown in more than one place (its
  article, an e-mail, a moderation page), where a relative link would point somewhere
  different each time, and only absolute URLs can be checked by scheme. ``[x](/path)``,
  ``[x](#frag)`` and protocol-relative ``[x](//host)`` render as plain text ``x``.
* No ``target`` attribute is ever emitted: links open in the same tab, and ``noopener``
  covers the case where a reader opens one in a new tab themselves.

The module-level Markdown configuration is reused: each thread (gunicorn may run several in
one worker) lazily builds its own :class:`markdown.Markdown` instance, kept in a
:class:`threading.local`, and calls ``reset()`` around every conversion so that reference
definitions and stashed code blocks never leak from one comment into the next. The nh3
cleaner is immutable once built and shared by all threads. Link parsing is bounded (see
``_BoundedLinkScan``) so that no 10 000-character body takes more than a fraction of a
second.
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata
import xml.etree.ElementTree as etree
from html.parser import HTMLParser

import markdown
import nh3
from markdown import util as md_util
from markdown.inlinepatterns import (
    LINK_RE,
    REFERENCE_RE,
    LinkInlineProcessor,
    ReferenceInlineProcessor,
    ShortReferenceInlineProcessor,
)
from markdown.treeprocessors import Treeprocessor

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_TAGS",
    "ALLOWED_URL_SCHEMES",
    "LINK_REL",
    "is_safe_href",
    "plain_text",
    "render_comment",
    "render_inline",
]

#: Elements that may appear in rendered comments; everything else is removed (text kept).
ALLOWED_TAGS: frozenset[str] = frozenset(
    {"p", "br", "em", "strong", "a", "ul", "ol", "li", "code", "pre", "blockquote"}
)

#: Attributes kept per element. ``rel`` is not listed: nh3 sets it itself (see LINK_REL).
#: ``code[class]`` and ``ol[start]`` are further narrowed by ``_filter_attribute``.
ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "a": frozenset({"href", "title"}),
    "code": frozenset({"class"}),
    "ol": frozenset({"start"}),
}

#: The only URL schemes a link may use. Relative URLs are refused as well.
ALLOWED_URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})

#: Forced onto every link: no ranking credit for spam, marked as user-generated, no opener.
LINK_REL = "nofollow ugc noopener"

# A fenced block's language, as Python-Markdown's fenced_code writes it ("language-python").
_CODE_CLASS_RE = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")
_OL_START_RE = re.compile(r"[0-9]{1,9}")
# A URL scheme as browsers parse it: a letter, then letters, digits, "+", "-" or ".".
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# Characters a URL can only carry percent-encoded.
_NOT_IN_URL_RE = re.compile(r"[\"<>`\\]")
# C0/C1 controls other than tab, newline and carriage return: never meaningful in a comment,
# and STX/ETX are Python-Markdown's own placeholder delimiters.
_CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# How far a link may reach: its [text], and its (url "title") or [id] part.
_MAX_LINK_TEXT = 500
_MAX_LINK_TARGET = 1000


def is_safe_href(href: str) -> bool:
    """Whether ``href`` is an absolute ``http``, ``https`` or ``mailto`` URL.

    Harsher than a browser on purpose: character references are decoded and the ends
    trimmed; then any whitespace, control or invisible formatting character (zero-width
    space, bidi mark, soft hyphen…) left inside, and any double quote, backtick, backslash or
    angle bracket (a real URL carries them percent-encoded), refuses the value outright. So
    ``jav&#x61;script:``, ``java\\tscript:`` and `` JAVASCRIPT:`` never pass, and nh3 is never
    handed an href it would drop (leaving an empty ``<a>``). A value without a scheme (a
    relative URL) is refused too.
    """
    decoded = html.unescape(href.replace(md_util.AMP_SUBSTITUTE, "&")).strip()
    compact = "".join(
        char
        for char in decoded
        if not char.isspace() and unicodedata.category(char) not in {"Cc", "Cf", "Zs"}
    )
    if compact != decoded or _NOT_IN_URL_RE.search(decoded):
        return False
    match = _SCHEME_RE.match(decoded)
    return match is not None and match.group(1).lower() in ALLOWED_URL_SCHEMES


class _BoundedLinkScan:
    """Caps how far Python-Markdown's link parsers scan from each ``[``.

    Unbounded, every unmatched ``[`` scans to the end of its paragraph, so ten thousand of
    them take seconds (quadratic time). Here a link's text may span at most
    ``_MAX_LINK_TEXT`` characters and its ``(url "title")`` or ``[id]`` part at most
    ``_MAX_LINK_TARGET``; longer constructs simply stay text. Mixed in before the stock
    processor class, whose methods do the actual parsing on the shortened input.
    """

    def getText(self, data: str, index: int) -> tuple[str, int, bool]:
        end = index + _MAX_LINK_TEXT
        if data.find("]", index, end) == -1:  # cheap rejection, in C
            return "", index, False
        return super().getText(data[:end], index)

    def getLink(self, data: str, index: int) -> tuple[str, str | None, int, bool]:
        end = index + _MAX_LINK_TARGET
        if data.find(")", index, end) == -1:
            return "", None, index, False
        return super().getLink(data[:end], index)

    def evalId(self, data: str, index: int, text: str) -> tuple[str | None, int, bool]:
        return super().evalId(data[: index + _MAX_LINK_TARGET], index, text)


class _Link(_BoundedLinkScan, LinkInlineProcessor):
    """``[text](url "title")`` with bounded scanning."""


class _Reference(_BoundedLinkScan, ReferenceInlineProcessor):
    """``[text][id]`` with bounded scanning."""


class _ShortReference(_BoundedLinkScan, ShortReferenceInlineProcessor):
    """``[id]`` with bounded scanning."""


def _unwrap(parent: etree.Element, element: etree.Element) -> None:
    """Replace ``element`` in ``parent`` by its own text, children and tail."""
    index = list(parent).index(element)
    children = list(element)
    parent.remove(element)
    previous = parent[index - 1] if index > 0 else None

    def append_text(text: str | None) -> None:
        if not text:
            return
        if previous is None:
            parent.text = (parent.text or "") + text
        else:
            previous.tail = (previous.tail or "") + text

    append_text(element.text)
    for offset, child in enumerate(children):
        parent.insert(index + offset, child)
    if children:
        last = children[-1]
        last.tail = (last.tail or "") + (element.tail or "")
    else:
        append_text(element.tail)


class _LinkGuard(Treeprocessor):
    """Turns every link whose href fails :func:`is_safe_href` back into its plain text."""

    def run(self, root: etree.Element) -> None:
        parents = {child: parent for parent in root.iter() for child in parent}
        anchors = list(root.iter("a"))
        # Reverse document order handles a link nested in a link before its ancestor moves.
        for anchor in reversed(anchors):
            if not is_safe_href(anchor.get("href") or ""):
                _unwrap(parents[anchor], anchor)
                for child in anchor:
                    parents[child] = parents[anchor]


def _build_markdown() -> markdown.Markdown:
    """A Markdown converter for the comment subset (see the module docstring)."""
    md = markdown.Markdown(
        extensions=["fenced_code", "sane_lists", "nl2br"],
        output_format="html",
    )
    # Raw HTML stays text: the serializer then escapes it.
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    # No images, by inline syntax or by reference.
    for name in ("image_link", "image_reference", "short_image_ref"):
        md.inlinePatterns.deregister(name)
    # The same link syntaxes, parsed in bounded time (same names and priorities as stock).
    md.inlinePatterns.register(_Reference(REFERENCE_RE, md), "reference", 170)
    md.inlinePatterns.register(_Link(LINK_RE, md), "link", 160)
    md.inlinePatterns.register(_ShortReference(REFERENCE_RE, md), "short_reference", 130)
    # No headings or rules (decision in the module docstring).
    for name in ("hashheader", "setextheader", "hr"):
        md.parser.blockprocessors.deregister(name)
    # After "unescape" (priority 0), so hrefs are final when checked.
    md.treeprocessors.register(_LinkGuard(md), "comment_link_guard", -10)
    return md


_local = threading.local()


def _markdown() -> markdown.Markdown:
    """This thread's Markdown converter, built on first use."""
    md: markdown.Markdown | None = getattr(_local, "markdown", None)
    if md is None:
        md = _build_markdown()
        _local.markdown = md
    return md


def _filter_attribute(element: str, attribute: str, value: str) -> str | None:
    """Narrow the attributes nh3 already allows; must never raise (nh3 would report it)."""
    if element == "code" and attribute == "class":
        kept = [token for token in value.split() if _CODE_CLASS_RE.fullmatch(token)]
        return " ".join(kept[:1]) or None
    if element == "ol" and attribute == "start":
        return value if _OL_START_RE.fullmatch(value) else None
    return value


_cleaner = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    attribute_filter=_filter_attribute,
    strip_comments=True,
    link_rel=LINK_REL,
    url_schemes=set(ALLOWED_URL_SCHEMES),
    url_relative="deny",
)


def render_comment(body: str) -> str:
    """Render a comment body (Markdown subset) to sanitised HTML, safe to insert unescaped.

    Deterministic for a given body; returns ``""`` for an empty or blank body. Length limits
    are the caller's business (a 10 000-character body renders in well under a second).
    """
    text = _CONTROL_CHARS_RE.sub("", body)
    if not text.strip():
        return ""
    md = _markdown()
    md.reset()
    try:
        converted = md.convert(text)
    except BaseException as error:
        # A conversion cut short leaves parser state behind that reset() does not clear:
        # this thread builds a fresh converter next time.
        _local.markdown = None
        if not isinstance(error, RecursionError):
            raise
        # Only absurd nesting (lists hundreds of levels deep) gets here: show it as text.
        converted = _escaped_paragraphs(text)
    else:
        md.reset()
    return _cleaner.clean(converted).strip()


def _escaped_paragraphs(text: str) -> str:
    """The fallback rendering: blank-line separated paragraphs of escaped text."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in paragraph.splitlines()) + "</p>"
        for paragraph in paragraphs
    )


def render_inline(text: str) -> str:
    """Escape plain text (a reader's name, an article title) for HTML text or a quoted attribute.

    Jinja templates autoescape on their own; this is for HTML assembled in Python, such as
    e-mail bodies. No Markdown is interpreted.
    """
    return html.escape(_CONTROL_CHARS_RE.sub("", text), quote=True)


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML fragment, with a newline after each block."""

    _BLOCKS = frozenset({"p", "li", "pre", "blockquote", "ul", "ol", "div", "tr"})
    _SKIPPED = frozenset({"script", "style", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag == "br" or tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def plain_text(fragment: str) -> str:
    """The readable text of an HTML fragment: tags removed, character references decoded.

    Meant for ``text/plain`` uses such as e-mail excerpts. Paragraphs, list items and line
    breaks become single newlines; other whitespace inside a line is collapsed. The result is
    *text*, not HTML: escape it again (:func:`render_inline`) before putting it in a page.
    """
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)
