"""Find the reflection questions that close an article and give each a stable id.

An article ends in questions in one of two forms:

* a closing section under one of ``REFLECTION_HEADINGS`` (any heading level, case-insensitive)
  whose list items are the questions; the section is removed from ``article.content``;
* a ``Questions:`` metadata field, one question per line.

When both are present the closing section wins (it is what a reader of the source sees) and a
warning names the file. A question may carry an explicit id written as ``{#some-id}`` at the end
of its text; otherwise the id is derived from the text. The result is exposed to the theme as
``article.reflection_questions`` (a list of :class:`ReflectionQuestion`) and
``article.reflection_source`` (``"section"``, ``"metadata"``, ``"default"`` or ``None``).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import markdown
from pelican import signals
from pelican.contents import Article
from unidecode import unidecode

logger = logging.getLogger(__name__)

DEFAULT_HEADINGS = ("Questions for reflection", "Questions for Reflection and Comment")
REQUIRED_CHOICES = ("warn", "error", False)
MAX_DERIVED_ID_LENGTH = 40
# Words that make a derived id read badly when it is cut just after them.
TRAILING_FILLER_WORDS = frozenset({"a", "an", "and", "for", "in", "of", "or", "the", "to", "with"})

HEADING_RE = re.compile(r"<h([1-6])\b[^>]*>(.*?)</h\1\s*>", re.IGNORECASE | re.DOTALL)
TAG_RE = re.compile(r"<[^>]+>")
EXPLICIT_ID_RE = re.compile(r"\s*\{#([A-Za-z0-9][A-Za-z0-9_-]{0,63})\}\s*$")
# In rendered HTML the marker may be followed by the end tags of inline markup.
EXPLICIT_ID_IN_HTML_RE = re.compile(
    r"\s*\{#([A-Za-z0-9][A-Za-z0-9_-]{0,63})\}\s*((?:</[a-z0-9]+>\s*)*)$"
)
HEADING_TAG_RE = re.compile(r"^h[1-6]$")
APOSTROPHE_RE = re.compile("['\u2019]")
NOT_ID_CHARACTERS_RE = re.compile(r"[^a-z0-9]+")
LOOSE_ITEM_RE = re.compile(r"^<p>(.*)</p>$", re.DOTALL)
LIST_TAGS = frozenset({"ul", "ol"})
EMPTY_WRAPPER_RE = re.compile(r"<(div|section)\b[^>]*>\s*$", re.IGNORECASE)
VOID_ELEMENTS = frozenset(
    ("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr")
)


class ReflectionConfigError(Exception):
    """Raised when REFLECTION_REQUIRED is "error" and articles end without questions."""


@dataclass
class ReflectionQuestion:
    """One reflection question as the theme and the comments manifest see it."""

    id: str
    text: str
    source_html: str
    source_details_html: str = ""
    # The article that owns the question: its links ({filename}, {static}) are resolved the
    # way Pelican resolves the article body, at the moment a page is written.
    owner: Any = field(default=None, compare=False, repr=False)

    @property
    def html(self) -> str:
        """The question as inline HTML, with intra-site links resolved for the current page."""
        return self._resolve_links(self.source_html)

    @property
    def details_html(self) -> str:
        """A nested list of hints under the question, if the author wrote one."""
        return self._resolve_links(self.source_details_html)

    def _resolve_links(self, fragment: str) -> str:
        # Pelican's link pattern starts at a tag's "<": text without one has nothing to resolve
        # (most questions; this skips a pattern build and search for each on every page).
        if "<" not in fragment or self.owner is None:
            return fragment
        return self.owner._update_content(fragment, self.owner.get_siteurl())

    def as_manifest_entry(self) -> dict[str, str]:
        return {"id": self.id, "text": self.text}


@dataclass
class _RawQuestion:
    text: str
    source_html: str
    source_details_html: str = ""
    explicit_id: str | None = None


@dataclass
class ClosingSection:
    """What :func:`split_closing_section` found at the end of an article."""

    remaining_html: str
    questions: list[_RawQuestion]
    intro_html: str = ""


def normalise_heading(text: str) -> str:
    """Heading text as compared: tags and entities gone, spacing collapsed, case folded."""
    plain = html.unescape(TAG_RE.sub("", text))
    plain = plain.replace("\u00b6", "")  # the toc extension's permalink sign
    return " ".join(plain.split()).strip(" :.").casefold()


def split_closing_section(content_html: str, headings: Iterable[str]) -> ClosingSection | None:
    """Find the closing reflection section of ``content_html``; None when there is none.

    Only the last matching heading counts, and only when no heading of the same or a higher
    rank follows it: a heading with that title in the middle of an article is ordinary text.
    """
    wanted = {normalise_heading(heading) for heading in headings}
    all_headings = list(HEADING_RE.finditer(content_html))
    closing = None
    for index, match in enumerate(all_headings):
        if normalise_heading(match.group(2)) not in wanted:
            continue
        level = int(match.group(1))
        later = all_headings[index + 1 :]
        if not any(int(other.group(1)) <= level for other in later):
            closing = match
    if closing is None:
        return None

    tail = content_html[closing.start() :]
    reader = _SectionReader(tail)
    head = content_html[: closing.start()]
    closers = reader.unmatched_end_tags
    wrapper = EMPTY_WRAPPER_RE.search(head)
    if wrapper and closers and closers[0] == wrapper.group(1).lower():
        # reST wraps each section in a <div class="section">; drop the now-empty wrapper.
        head = head[: wrapper.start()]
        closers = closers[1:]
    remaining = head.rstrip() + "".join(f"</{name}>" for name in closers)
    return ClosingSection(remaining, reader.questions, reader.intro_html)


class _SectionReader:
    """One pass over the closing section's HTML, slicing the source so markup stays as written.

    Collects the items of the section's lists (the questions), the lists nested directly in an
    item (hints), other top-level elements (an introduction), and end tags that close elements
    opened before the section began. Only the tags' names and offsets are needed, so no tree is
    built: :func:`_plain_tags` reads the tags of ordinary markup (what Markdown and reST write)
    with one regular expression; anything else (comments, ``<br/>``, scripts, attributes on an
    item, a stray ``<``) goes through the standard library's ``HTMLParser``, which costs about
    five times as much (issue 19: this was most of the plugin's cost per article).
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._open: list[str] = []
        self.unmatched_end_tags: list[str] = []
        self.questions: list[_RawQuestion] = []
        self._intro: list[str] = []
        self._intro_start: int | None = None
        self._intro_has_questions = False
        self._item_depth: int | None = None
        self._item_start = 0
        self._item_id: str | None = None
        self._hints: list[tuple[int, int]] = []
        self._hint: tuple[int, int] | None = None  # (depth, start) of the hint list being read
        tags = _plain_tags(source)
        if tags is None:
            _ParserFeed(self)
        else:
            for closing, name, start, end in tags:
                if closing:
                    self.end_tag(name, start, end)
                else:
                    self.start_tag(name, start, end, None)
        if self._item_depth is not None:
            self._finish_item(len(source))

    @property
    def intro_html(self) -> str:
        return "".join(self._intro)

    def start_tag(self, tag: str, start: int, end: int, element_id: str | None) -> None:
        """A start tag ``tag`` (lower case) at ``source[start:end]``, with its id attribute."""
        depth = len(self._open)
        if depth == 0 and not HEADING_TAG_RE.match(tag) and tag not in LIST_TAGS:
            self._intro_start, self._intro_has_questions = start, False
        if (
            tag in LIST_TAGS and self._item_depth is not None and self._hint is None
            and depth == self._item_depth + 1
        ):
            self._hint = (depth, start)
        if tag == "li" and "li" not in self._open:
            if self._item_depth is not None:  # an <li> left open by the previous item
                self._finish_item(start)
            self._item_depth = depth
            self._item_start = end
            self._item_id = element_id
            self._hints = []
            self._intro_has_questions = True
        if tag not in VOID_ELEMENTS:
            self._open.append(tag)

    def end_tag(self, tag: str, start: int, end: int) -> None:
        """An end tag ``tag`` (lower case) at ``source[start:end]``."""
        if tag not in self._open:
            self.unmatched_end_tags.append(tag)
            return
        while self._open:
            closed = self._open.pop()
            depth = len(self._open)
            if self._hint is not None and depth == self._hint[0]:
                self._hints.append((self._hint[1], end))
                self._hint = None
            if self._item_depth is not None and depth == self._item_depth:
                self._finish_item(start)
            if depth == 0 and self._intro_start is not None:
                if not self._intro_has_questions:
                    self._intro.append(self.source[self._intro_start : end])
                self._intro_start = None
            if closed == tag:
                break

    def _finish_item(self, end: int) -> None:
        inner_parts, details, cursor = [], [], self._item_start
        for hint_start, hint_end in self._hints:
            inner_parts.append(self.source[cursor:hint_start])
            details.append(self.source[hint_start:hint_end])
            cursor = hint_end
        inner_parts.append(self.source[cursor:end])
        inner = "".join(inner_parts).strip()
        loose = LOOSE_ITEM_RE.match(inner)
        if loose and "<p" not in loose.group(1):
            # A "loose" Markdown list wraps each item in <p>; the question is inline text.
            inner = loose.group(1).strip()
        explicit_id = self._item_id
        marker = EXPLICIT_ID_IN_HTML_RE.search(inner)
        if marker:
            explicit_id = explicit_id or marker.group(1)
            inner = (inner[: marker.start()] + marker.group(2)).strip()
        text = _plain_text(inner)
        if text:
            self.questions.append(_RawQuestion(text, inner, "".join(details), explicit_id))
        self._item_depth = None


# A start or end tag as Markdown and reST write them: a name, then attributes whose values are
# quoted and hold no angle bracket. Group 1 is "/" for an end tag, group 3 the attributes.
PLAIN_TAG_RE = re.compile(
    r"""<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*"""
    r"""(?:\s*=\s*(?:"[^"<>]*"|'[^'<>]*'))?)*)\s*>"""
)
# Elements whose content HTMLParser reads as text (not tags), in any Python version.
RAW_TEXT_ELEMENTS = frozenset(
    ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
     "noscript", "plaintext")
)


def _plain_tags(source: str) -> list[tuple[bool, str, int, int]] | None:
    """Every tag of ``source`` as (is an end tag, lower-case name, start, end), when each ``<``
    opens a tag :data:`PLAIN_TAG_RE` reads exactly as HTMLParser would; else None."""
    tags = []
    for match in PLAIN_TAG_RE.finditer(source):
        closing, name, attributes = match.group(1, 2, 3)
        name = name.lower()
        if (closing and attributes) or name in RAW_TEXT_ELEMENTS or (
            name == "li" and attributes
        ):
            return None  # read by HTMLParser: its attribute and raw text rules apply
        tags.append((bool(closing), name, match.start(), match.end()))
    if len(tags) != source.count("<"):
        return None  # a comment, a declaration, a self-closing tag or a bare "<"
    return tags


class _ParserFeed(HTMLParser):
    """Feeds a :class:`_SectionReader` the tags of any markup, as HTMLParser reads them."""

    def __init__(self, reader: _SectionReader) -> None:
        super().__init__(convert_charrefs=False)
        self.reader = reader
        source = reader.source
        self._line_starts = [0, *(match.end() for match in re.finditer("\n", source))]
        self.feed(source)
        self.close()

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self._offset()
        end = start + len(self.get_starttag_text() or "")
        self.reader.start_tag(tag, start, end, dict(attrs).get("id"))

    def handle_endtag(self, tag: str) -> None:
        start = self._offset()
        end = self.reader.source.find(">", start) + 1 or len(self.reader.source)
        self.reader.end_tag(tag, start, end)


def _plain_text(fragment: str) -> str:
    return " ".join(html.unescape(TAG_RE.sub("", fragment)).split())


def questions_from_metadata(value: str | Sequence[str]) -> list[_RawQuestion]:
    """Questions from a ``Questions:`` metadata field: one per line, Markdown inline allowed."""
    lines = value.splitlines() if isinstance(value, str) else [
        line for entry in value for line in str(entry).splitlines()
    ]
    questions = []
    for line in lines:
        line = line.strip().removeprefix("- ").removeprefix("* ").strip()
        if not line:
            continue
        explicit_id = None
        marker = EXPLICIT_ID_RE.search(line)
        if marker:
            explicit_id = marker.group(1)
            line = line[: marker.start()]
        rendered = markdown.markdown(line, output_format="html").strip()
        if rendered.startswith("<p>") and rendered.endswith("</p>"):
            rendered = rendered[3:-4]
        questions.append(_RawQuestion(_plain_text(rendered), rendered, "", explicit_id))
    return questions


def derive_id(text: str) -> str:
    """A readable id from a question's text: ASCII, lowercase, hyphenated, at most 40 chars."""
    ascii_text = APOSTROPHE_RE.sub("", unidecode(text.replace("\u2019", "'")).lower())
    words = NOT_ID_CHARACTERS_RE.sub(" ", ascii_text).split()
    kept: list[str] = []
    length = -1  # of "-".join(kept), kept as words are added rather than joined for each
    for word in words:
        if length + 1 + len(word) > MAX_DERIVED_ID_LENGTH:
            while len(kept) > 1 and kept[-1] in TRAILING_FILLER_WORDS:
                kept.pop()
            break
        kept.append(word)
        length += 1 + len(word)
    if not kept and words:
        kept = [words[0][:MAX_DERIVED_ID_LENGTH]]
    return "-".join(kept) or "question"


def assign_ids(raw_questions: Sequence[_RawQuestion], where: str) -> list[ReflectionQuestion]:
    """Give every question a unique id: explicit ids first, derived ones around them.

    Duplicates get ``-2``, ``-3``… in document order, so ids stay the same from one build to the
    next as long as the questions do.
    """
    taken: set[str] = set()
    chosen: list[str | None] = []
    for raw in raw_questions:
        explicit = raw.explicit_id.lower() if raw.explicit_id else None
        if explicit and explicit in taken:
            logger.warning("reflection: %s: question id %r is used twice", where, explicit)
            explicit = None
        if explicit:
            taken.add(explicit)
        chosen.append(explicit)
    questions = []
    for raw, explicit in zip(raw_questions, chosen, strict=True):
        question_id = explicit
        if question_id is None:
            base = derive_id(raw.text)
            question_id, suffix = base, 2
            while question_id in taken:
                question_id, suffix = f"{base}-{suffix}", suffix + 1
            taken.add(question_id)
        questions.append(
            ReflectionQuestion(question_id, raw.text, raw.source_html, raw.source_details_html)
        )
    return questions


def _headings(settings: dict[str, Any]) -> Sequence[str]:
    configured = settings.get("REFLECTION_HEADINGS", DEFAULT_HEADINGS)
    if isinstance(configured, str):
        return (configured,)
    if not configured or not all(isinstance(item, str) for item in configured):
        logger.warning("reflection: REFLECTION_HEADINGS must be a list of strings; using default")
        return DEFAULT_HEADINGS
    return tuple(configured)


def _relative_source(content: Any) -> str:
    return str(
        getattr(content, "relative_source_path", None)
        or getattr(content, "source_path", None)
        or "<unknown source>"
    )


def attach_questions(content: Any) -> None:
    """content_object_init receiver: take the closing questions out of an article's body."""
    if not isinstance(content, Article):
        return
    where = _relative_source(content)
    section = split_closing_section(content._content or "", _headings(content.settings))
    metadata_value = content.metadata.get("questions")
    raw_questions: list[_RawQuestion] = []
    source = None
    if section is not None:
        content._content = section.remaining_html
        content.reflection_intro_html = section.intro_html
        raw_questions = section.questions
        source = "section" if raw_questions else None
        if not raw_questions:
            logger.warning("reflection: %s: the closing questions section is empty", where)
        if metadata_value:
            logger.warning(
                "reflection: %s: both a Questions: field and a closing section; using the section",
                where,
            )
    elif metadata_value:
        raw_questions = questions_from_metadata(metadata_value)
        source = "metadata" if raw_questions else None
    questions = assign_ids(raw_questions, where)
    for question in questions:
        question.owner = content
    content.reflection_questions = questions
    content.reflection_source = source
    if not hasattr(content, "reflection_intro_html"):
        content.reflection_intro_html = ""


def default_questions(settings: dict[str, Any]) -> list[_RawQuestion]:
    """REFLECTION_DEFAULT_QUESTIONS as raw questions (strings, may carry ``{#id}``)."""
    configured = settings.get("REFLECTION_DEFAULT_QUESTIONS") or []
    if isinstance(configured, str):
        configured = [configured]
    if not all(isinstance(item, str) for item in configured):
        logger.warning("reflection: REFLECTION_DEFAULT_QUESTIONS must be a list of strings")
        return []
    return questions_from_metadata(list(configured))


def apply_defaults_and_report(generator: Any) -> None:
    """article_generator_finalized receiver: defaults for articles without questions, then
    report (warn or fail) every article that still ends without any."""
    settings = generator.settings
    defaults = default_questions(settings)
    articles = [
        *generator.articles, *generator.translations,
        *getattr(generator, "hidden_articles", []), *getattr(generator, "hidden_translations", []),
        *generator.drafts, *generator.drafts_translations,
    ]
    missing: list[str] = []
    for article in articles:
        if not hasattr(article, "reflection_questions"):
            attach_questions(article)
        if not article.reflection_questions and defaults:
            questions = assign_ids(defaults, _relative_source(article))
            for question in questions:
                question.owner = article
            article.reflection_questions = questions
            article.reflection_source = "default"
        if not article.reflection_questions and article.status != "draft":
            missing.append(_relative_source(article))
    report_missing(sorted(set(missing)), settings.get("REFLECTION_REQUIRED", "warn"))


def report_missing(missing: Sequence[str], required: Any) -> None:
    """Warn about, or fail the build for, articles that end without reflection questions."""
    if required not in REQUIRED_CHOICES:
        logger.warning(
            "reflection: REFLECTION_REQUIRED must be 'warn', 'error' or False, not %r;"
            " using 'warn'",
            required,
        )
        required = "warn"
    if not missing or required is False:
        return
    listing = ", ".join(missing)
    if required == "error":
        raise ReflectionConfigError(
            f"reflection: {len(missing)} article(s) end without reflection questions: {listing}"
        )
    for source in missing:
        logger.warning("reflection: %s ends without reflection questions", source)


def register() -> None:
    """Pelican's plugin entry point."""
    signals.content_object_init.connect(attach_questions)
    signals.article_generator_finalized.connect(apply_defaults_and_report)
