"""Small pieces of English for counts and labels shown to people: "1 author", "2 authors";
a label shortened at a word boundary. Imports nothing of the service, so every layer (and
the templates, as the filters ``plural`` and ``shorten``) may use it."""

from __future__ import annotations

ELLIPSIS = "…"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``count`` and the noun that goes with it: "1 comment", "0 comments", "2 people"."""
    noun = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {noun}"


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at the last whole word within ``limit`` characters (an
    ellipsis included); a first word longer than that is cut, as nothing else fits."""
    words = " ".join(text.split())
    if len(words) <= limit:
        return words
    cut = words[: limit - len(ELLIPSIS) + 1]
    space = cut.rfind(" ")
    kept = cut[:space] if space > 0 else cut[: limit - len(ELLIPSIS)]
    return kept.rstrip(" ,;:.-\u2013\u2014") + ELLIPSIS
