"""Comment bodies written in HTML (Disqus, WordPress) turned into the Markdown subset we render.

The converter is forgiving: it keeps paragraphs, line breaks, emphasis, links (http, https and
mailto only), code, lists and quotes; every other tag is dropped with its text kept, and
script/style with their content. What it writes is rendered by ``render.render_comment`` like
any reader's comment, so imported HTML is never stored as it came.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from comments_service.comments.render import is_safe_href

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]])")
_BLOCK_TAGS = frozenset({"p", "div", "blockquote", "ul", "ol", "li", "pre", "h1", "h2", "h3",
                         "h4", "h5", "h6", "table", "tr", "section", "article", "hr"})


class _MarkdownWriter(HTMLParser):
    """A forgiving HTML → Markdown converter for comment bodies: paragraphs, line breaks,
    emphasis, links (http, https and mailto only), code, lists and quotes; every other tag is
    dropped with its text kept, and script/style with their content."""

    def __init__(self, newlines_are_breaks: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.newlines_are_breaks = newlines_are_breaks
        self.blocks: list[tuple[str, bool]] = []  # finished paragraphs, and "a list item"
        self.item = False  # the paragraph being written is a list item
        self.line: list[str] = []  # the paragraph being written
        self.links: list[str | None] = []
        self.lists: list[list[int | None]] = []  # per open list: [counter or None]
        self.quote = 0
        self.pre = 0
        self.code = 0
        self.skip = 0

    def _flush(self) -> None:
        text = "".join(self.line)
        self.line = []
        item, self.item = self.item, False
        lines = [line.rstrip() for line in text.split("\n")]
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            return
        block = "\n".join(lines)
        if self.quote:
            block = "\n".join(("> " * self.quote + line).rstrip() for line in block.split("\n"))
        self.blocks.append((block, item))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self.skip += 1
            return
        if self.skip:
            return
        if tag == "br":
            self.line.append("\n")
        elif tag in ("em", "i"):
            self.line.append("*")
        elif tag in ("strong", "b"):
            self.line.append("**")
        elif tag == "code" and not self.pre:
            self.code += 1
            self.line.append("`")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            safe = href if is_safe_href(href) else None
            self.links.append(safe)
            if safe:
                self.line.append("[")
        elif tag == "pre":
            self._flush()
            self.pre += 1
            self.line.append("```\n")
        elif tag in ("ul", "ol"):
            self._flush()
            self.lists.append([1 if tag == "ol" else None])
        elif tag == "li":
            self._flush()
            marker = "- "
            if self.lists and self.lists[-1][0] is not None:
                number = self.lists[-1][0]
                marker = f"{number}. "
                self.lists[-1][0] = number + 1
            self.line.append("    " * max(len(self.lists) - 1, 0) + marker)
            self.item = True
        elif tag == "blockquote":
            self._flush()
            self.quote += 1
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template"):
            self.skip = max(self.skip - 1, 0)
            return
        if self.skip:
            return
        if tag in ("em", "i"):
            self.line.append("*")
        elif tag in ("strong", "b"):
            self.line.append("**")
        elif tag == "code" and not self.pre:
            self.code = max(self.code - 1, 0)
            self.line.append("`")
        elif tag == "a":
            href = self.links.pop() if self.links else None
            if href:
                self.line.append(f"]({href})")
        elif tag == "pre":
            self.line.append("\n```")
            self.pre = max(self.pre - 1, 0)
            self._flush()
        elif tag in ("ul", "ol"):
            self._flush()
            if self.lists:
                self.lists.pop()
        elif tag == "blockquote":
            self._flush()
            self.quote = max(self.quote - 1, 0)
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            self.line.append(data)
            return
        if self.code:  # inline code is literal: no escapes, one line
            self.line.append(" ".join(data.replace("`", "'").split()))
            return
        text = _MARKDOWN_SPECIAL.sub(r"\\\1", data)
        if self.newlines_are_breaks:
            paragraphs = re.split(r"\n[ \t]*\n", text)
            for number, paragraph in enumerate(paragraphs):
                if number:
                    self._flush()
                self.line.append(re.sub(r"[ \t\r\f\v]+", " ", paragraph))
        else:
            self.line.append(re.sub(r"\s+", " ", text))

    def result(self) -> str:
        self._flush()
        parts: list[str] = []
        previous_item = False
        for block, item in self.blocks:
            if parts:  # items of one list stay together (a tight list)
                parts.append("\n" if item and previous_item else "\n\n")
            parts.append(block)
            previous_item = item
        return "".join(parts)


def html_to_markdown(fragment: str, *, newlines_are_breaks: bool = False) -> str:
    """Markdown source for an HTML comment body. ``newlines_are_breaks``: the source treats a
    newline in text as a line break and a blank line as a new paragraph (WordPress does)."""
    writer = _MarkdownWriter(newlines_are_breaks)
    writer.feed(fragment)
    writer.close()
    return writer.result()
