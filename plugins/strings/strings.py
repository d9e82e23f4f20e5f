"""Translated interface strings for the theme and the comment widget.

(This plugin also gives the theme's templates the ``{% once %}`` tag: see once.py.)

Templates write English and wrap it: ``{{ _("Send comment") }}``, with named fields for the
parts that vary: ``{{ _("{count} comments", count=3) }}``. The catalogue for the site's
language is ``<theme>/translations/<lang>.json``: ``{"lang": "fr", "strings": {English:
translation}}``. A string missing from it stays English. ``strings_catalogue`` holds the whole
catalogue, for the widget to read from the page, and ``strings_catalogue_json`` the same as
``strings_catalogue|tojson`` would write it, made once per build rather than once per page.

Settings: ``STRINGS_LANG`` (default: ``DEFAULT_LANG``), ``STRINGS_PATH`` (default: the theme's
``translations`` folder).

A call with nothing but a literal, ``_("Send comment")``, is translated once, when the template
is compiled (:class:`FixedStrings`): Jinja then writes the text as it writes the markup around
it, where a call would cost a function call on every page built (issue 19: the theme's
templates were the build's overhead over vanilla Pelican). Calls with fields stay calls.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2.ext import Extension
from jinja2.utils import htmlsafe_json_dumps
from pelican import signals

from .once import Once

logger = logging.getLogger(__name__)


def load_catalogue(folder: Path, lang: str) -> dict[str, str]:
    """The strings of ``lang`` (English → translation); empty for English or a missing file."""
    path = folder / f"{lang}.json"
    if lang == "en" or not path.is_file():
        if lang != "en":
            logger.warning("strings: no catalogue %s; the interface stays in English", path)
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        strings = document["strings"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("strings: %s cannot be read (%s); the interface stays in English",
                       path, error)
        return {}
    if not isinstance(strings, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in strings.items()
    ):
        logger.warning("strings: %s must map text to text; the interface stays in English", path)
        return {}
    return strings


def translator(catalogue: dict[str, str]) -> Callable[..., str]:
    """``_`` for templates: the translation of ``text`` with ``{name}`` fields filled in."""

    def translate(text: str, /, **fields: Any) -> str:
        translated = catalogue.get(text, text)
        if not fields:
            return translated
        try:
            return translated.format(**fields)
        except (KeyError, IndexError, ValueError):
            logger.warning("strings: the translation of %r does not fit its fields", text)
            return text.format(**fields)

    return translate


# _("…") or _('…') with nothing else inside the parentheses: a Jinja string literal.
LITERAL_CALL = re.compile(r"""\b_\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*\)""")


def jinja_literal(text: str) -> str:
    """``text`` as a Jinja string literal (Jinja reads Python's escapes, \\uXXXX included)."""
    return json.dumps(text, ensure_ascii=True)


class FixedStrings(Extension):
    """Translates literal-only ``_()`` calls when a template is compiled (module docstring).

    The catalogue is this extension's ``catalogue`` (set by :func:`install` before any template
    is loaded). A literal is read with Python's rules for string escapes, which are Jinja's."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.catalogue: dict[str, str] = {}

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        def fixed(match: re.Match[str]) -> str:
            english = ast.literal_eval(match.group(1))
            return jinja_literal(self.catalogue.get(english, english))

        return LITERAL_CALL.sub(fixed, source)


def install(generator: Any) -> None:
    """generator_init receiver: put ``_`` and the catalogue into the generator's templates."""
    settings = generator.settings
    lang = str(settings.get("STRINGS_LANG") or settings.get("DEFAULT_LANG") or "en")
    folder = Path(settings.get("STRINGS_PATH") or Path(settings["THEME"]) / "translations")
    catalogue = load_catalogue(folder, lang)
    generator.env.globals["_"] = translator(catalogue)
    strings = {"lang": lang, "strings": catalogue}
    generator.env.globals["strings_catalogue"] = strings
    # What `strings_catalogue|tojson` writes, with the environment's own JSON policies.
    policies = generator.env.policies
    generator.env.globals["strings_catalogue_json"] = htmlsafe_json_dumps(
        strings, dumps=policies["json.dumps_function"], **policies["json.dumps_kwargs"])
    # A build reads each template once: without this, every {% include %}, {% import %} and
    # {% extends %} of every page stats the template's file to see whether it changed.
    # (`pelican --autoreload` makes new generators, so a new environment, for each rebuild.)
    generator.env.auto_reload = False
    if FixedStrings.identifier not in generator.env.extensions:
        generator.env.add_extension(FixedStrings)
    if Once.identifier not in generator.env.extensions:
        generator.env.add_extension(Once)
    generator.env.extensions[FixedStrings.identifier].catalogue = catalogue


def register() -> None:
    """Pelican's plugin entry point."""
    signals.generator_init.connect(install)
