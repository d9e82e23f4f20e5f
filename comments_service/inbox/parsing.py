"""What a mail from the author says: who sent it, which comment it answers (its reply tokens),
and the new text only, with the filing directive taken out.

The body is the text/plain part, else the HTML part turned into text (quotes as "> " lines,
Outlook's rule as its line of underscores), so that one reply parser handles both. That parser
is mail-parser-reply's (``EmailMessage``, several languages): it cuts at "On … wrote:" lines
and header blocks (From:/Sent:/To:), drops signatures ("-- ", "Sent from my …", "Best
regards") and disclaimers; what it leaves of a quote at the end (Apple Mail's attribution sits
inside the quote) is cut here. ``keep_hyphen_lists``: a Markdown list is not a signature.

A line of its own ``#request <label>`` or ``#none`` files the comment (tally/filing.py); the
line is not part of the reply. Two directives: the last one counts.
"""

from __future__ import annotations

import email
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as DEFAULT_POLICY
from email.utils import parseaddr
from html.parser import HTMLParser
from typing import Any

from mailparser_reply import EmailMessage as ReplyText

from comments_service.mail.reply_address import tokens_addressed

# Languages whose "On … wrote:" lines and signatures the reply parser knows.
REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl")
# Where a reply address may show up: the address replied to, and what servers add.
ADDRESS_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
DIRECTIVE = re.compile(r"^[ \t]*#(request|none)\b[ \t]*(.*?)[ \t]*$", re.IGNORECASE | re.MULTILINE)
MAX_MESSAGE_ID = 500
OUTLOOK_RULE = re.compile(r"_{8,}")
FILING_NONE = "none"
FILING_NEW = "request"


@dataclass(frozen=True)
class AuthorMail:
    """One message as the reply worker needs it."""

    key: str  # digest of the Message-ID (of the whole message when it has none)
    message_id: str
    sender: str  # the From address, bare
    tokens: tuple[str, ...]  # reply tokens among its addresses
    automatic: bool  # an out-of-office answer, a bounce: never a reply
    text: str  # the new text, directive lines removed
    filing: str | None  # None, "none" or "request" (then ``label``)
    label: str | None


def message_key(message_id: str, raw: bytes) -> str:
    """The store's key for a message: 32 hex digits of a blake2b of its Message-ID."""
    basis = message_id.encode("utf-8", "replace") if message_id else b"raw:" + raw
    return hashlib.blake2b(basis, digest_size=16).hexdigest()


def header_message_id(raw: bytes) -> str:
    """The Message-ID of a raw message (or of its headers alone), "" when it has none."""
    parsed = email.message_from_bytes(raw, policy=DEFAULT_POLICY)
    return str(parsed.get("Message-ID", "") or "").strip()[:MAX_MESSAGE_ID]


def read_mail(raw: bytes, config: Mapping[str, Any]) -> AuthorMail:
    """Parse one raw message (bytes as IMAP hands them)."""
    message = email.message_from_bytes(raw, policy=DEFAULT_POLICY)
    assert isinstance(message, EmailMessage)
    message_id = str(message.get("Message-ID", "") or "").strip()[:MAX_MESSAGE_ID]
    addressed = [str(value) for name in ADDRESS_HEADERS for value in message.get_all(name, [])]
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    text, filing, label = take_directive(new_text(body_text(message)))
    return AuthorMail(
        key=message_key(message_id, raw), message_id=message_id,
        sender=parseaddr(str(message.get("From", "")))[1].strip(),
        tokens=tuple(tokens_addressed(config, addressed)),
        automatic=(auto not in ("", "no") or message.get_content_type() == "multipart/report"),
        text=text, filing=filing, label=label,
    )


def body_text(message: EmailMessage) -> str:
    """The plain text of a message: its text/plain part, else its HTML as text."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: read what can be read
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        return html_text(content)
    if part.get_param("format", "").lower() == "flowed":
        return unflow(content, part.get_param("delsp", "").lower() == "yes")
    return content


def unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space goes on in the next (Thunderbird and
    Apple Mail send their plain text so); the signature line "-- " stays one."""
    lines: list[str] = []
    joining = False
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if joining and lines:
            lines[-1] += line
        else:
            lines.append(line)
        joining = line.endswith(" ") and line != "-- "
        if joining and delsp:
            lines[-1] = lines[-1][:-1]
    return "\n".join(lines)


class _HtmlText(HTMLParser):
    """HTML to text as the reply parser reads mail: blocks on lines of their own, paragraphs
    apart, quotes as "> " lines, a rule as Outlook's separator, links as "text <URL>" (as
    plain-text mail shows them, and an autolink in the comments' Markdown)."""

    BLOCKS = frozenset({"div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                        "ul", "ol", "table", "pre"})
    SKIPPED = frozenset({"head", "style", "script", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.depth = 0  # blockquotes open
        self.skipping = 0
        self.links: list[str | None] = []
        self.link_start = 0

    def _newline(self) -> None:
        if self.lines[-1].strip("> "):
            self.lines.append("")
        self.lines[-1] = "> " * self.depth

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping += 1
        elif tag == "blockquote":
            self._newline()
            self.depth += 1
            self.lines[-1] = "> " * self.depth
        elif tag == "hr":
            self._newline()
            self.lines[-1] += "_" * 32
            self._newline()
        elif tag == "br":
            self.lines.append("> " * self.depth)
        elif tag in self.BLOCKS:
            self._newline()
        if tag == "a":
            href = dict(attrs).get("href")
            self.links.append(href if href and href.startswith(("http://", "https://"))
                              else None)
            self.link_start = len(self.lines[-1])
        if tag == "p":
            self._blank_line()
        if tag == "li":
            self.lines[-1] += "- "

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag == "blockquote":
            self.depth = max(0, self.depth - 1)
            self._newline()
        elif tag in self.BLOCKS and tag != "br":
            self._newline()
        if tag == "p":
            self._blank_line()
        if tag == "a" and self.links:
            href = self.links.pop()
            shown = self.lines[-1][self.link_start:].strip()
            if href and shown != href:
                self.lines[-1] = self.lines[-1].rstrip() + f" <{href}>"
            elif href:
                self.lines[-1] = self.lines[-1][:self.link_start] + f"<{href}>"

    def _blank_line(self) -> None:
        """A paragraph's end: an empty line after the text (quoted inside a quote)."""
        self._newline()
        if len(self.lines) > 1 and self.lines[-2].strip("> "):
            self.lines.append("> " * self.depth)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        words = " ".join(data.split())
        # Whitespace at either end separates this text from its neighbours ("the <b>queue").
        before = " " if data[:1].isspace() else ""
        after = " " if words and data[-1:].isspace() else ""
        line = self.lines[-1]
        if line.strip("> ") and not line.endswith(" ") and before:
            line += " "
        self.lines[-1] = line + words + after


def html_text(markup: str) -> str:
    """The text of an HTML mail body (see _HtmlText)."""
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    lines = [line.rstrip() for line in parser.lines]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def new_text(body: str) -> str:
    """The reply's own text: the quoted history, attribution lines and signature removed."""
    parsed = ReplyText(text=body, languages=list(REPLY_LANGUAGES),
                       keep_hyphen_lists=True).read()
    text = parsed.replies[0].body if parsed.replies else ""
    lines = text.split("\n")
    # A quote left at the end (no attribution line before it, or one inside the quote).
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith(">")
                     or OUTLOOK_RULE.fullmatch(lines[-1].strip())):
        lines.pop()
    return "\n".join(lines).strip()


def take_directive(text: str) -> tuple[str, str | None, str | None]:
    """(text without directive lines, filing, label): see the module docstring."""
    filing = label = None
    for match in DIRECTIVE.finditer(text):
        kind, rest = match.group(1).lower(), match.group(2)
        if kind == "none" and not rest:
            filing, label = FILING_NONE, None
        elif kind == "request" and rest:
            filing, label = FILING_NEW, " ".join(rest.split())
    kept = DIRECTIVE.sub(lambda match: "" if _is_directive(match) else match.group(0), text)
    return re.sub(r"\n{3,}", "\n\n", kept).strip(), filing, label


def _is_directive(match: re.Match[str]) -> bool:
    kind, rest = match.group(1).lower(), match.group(2)
    return (kind == "none" and not rest) or (kind == "request" and bool(rest))
