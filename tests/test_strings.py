"""Interface strings: every English text of the theme and the widget goes through the catalogue,
the French catalogue covers all of them, and a French build speaks French.

Strings are found in the sources the way a translator's tool would: `_("…")` (and the two
literals of `_("…" if n == 1 else "…")`, `tm.plural(n, "…", "…")`) in templates, `t('…')` (and
`t(n === 1 ? '…' : '…')`) in the widget's scripts. A template may hold no English outside them:
`test_templates_hold_no_bare_text` strips the Jinja expressions and fails on any word left.
"""

from __future__ import annotations

import json
import re
import string
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tests.conftest import ROOT

THEME = ROOT / "theme"
TEMPLATES = sorted((THEME / "templates").rglob("*.html"))
SCRIPTS = sorted((THEME / "static" / "js").glob("*.js"))
FRENCH = json.loads((THEME / "translations" / "fr.json").read_text(encoding="utf-8"))

TEMPLATE_CALL = re.compile(r'_\(\s*"([^"]*)"(?:\s+if\s+[^"]*?\s+else\s+"([^"]*)")?')
TEMPLATE_PLURAL = re.compile(r'tm\.plural\([^,]+,\s*"([^"]*)",\s*"([^"]*)"\)')
MONTHS = re.compile(r"set months = \[(.*?)\]", re.S)
SCRIPT_CALL = re.compile(r"\bt\(\s*(?:\w+ === 1 \? )?(['\"])(.*?)\1(?: : (['\"])(.*?)\3)?")


def template_strings() -> set[str]:
    found: set[str] = set()
    for path in TEMPLATES:
        source = path.read_text(encoding="utf-8")
        for match in (*TEMPLATE_CALL.finditer(source), *TEMPLATE_PLURAL.finditer(source)):
            found.update(group for group in match.groups() if group)
        for months in MONTHS.findall(source):
            found.update(re.findall(r'"([^"]+)"', months))
    return found


def script_strings() -> set[str]:
    found: set[str] = set()
    for path in SCRIPTS:
        for match in SCRIPT_CALL.finditer(path.read_text(encoding="utf-8")):
            found.update(group for group in (match.group(2), match.group(4)) if group)
    return found


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_extraction_finds_the_strings_it_should() -> None:
    assert {"Send comment", "Answer this", "{count} articles", "December"} <= template_strings()
    assert {"Reply", "{count} comments", "Waiting for the author's reply"} <= script_strings()


def test_french_catalogue_covers_every_template_and_widget_string() -> None:
    assert FRENCH["lang"] == "fr"
    missing = sorted((template_strings() | script_strings()) - FRENCH["strings"].keys())
    assert not missing, f"fr.json lacks: {missing}"


def test_french_catalogue_holds_nothing_unused() -> None:
    # Besides the theme's and the widget's own strings, the widget shows the comment service's
    # field messages through the catalogue, and the menu shows the labels of MENUITEMS.
    service = "\n".join(p.read_text("utf-8") for p in (ROOT / "comments_service").rglob("*.py"))
    settings = (ROOT / "pelicanconf.py").read_text("utf-8")
    known = template_strings() | script_strings()
    unused = [
        key for key in FRENCH["strings"]
        if key not in known and f'"{key}"' not in service and f'"{key}"' not in settings
    ]
    assert not unused, f"fr.json keys used nowhere: {unused}"


def test_translations_keep_their_fields() -> None:
    for english, french in FRENCH["strings"].items():
        assert french.strip(), f"empty translation of {english!r}"
        assert fields(english) == fields(french), f"{english!r} → {french!r}"


class BareText(HTMLParser):
    """Collects words left in a template once every Jinja construct is taken out."""

    TEXT_ATTRIBUTES = ("title", "aria-label", "alt", "placeholder", "label")
    SKIPPED = ("script", "style", "svg")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping.append(tag)
        for name, value in attrs:
            if name in self.TEXT_ATTRIBUTES and value and re.search(r"[A-Za-z]", value):
                self.found.append(f'{tag} {name}="{value}"')

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping and re.search(r"[A-Za-z]", data):
            self.found.append(data.strip())


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.relative_to(THEME).as_posix())
def test_templates_hold_no_bare_text(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    source = re.sub(r"\{#.*?#\}", "", source, flags=re.S)
    source = re.sub(r"\{\{.*?\}\}", "§", source, flags=re.S)
    source = re.sub(r"\{%.*?%\}", "", source, flags=re.S)
    parser = BareText()
    parser.feed(source)
    assert not parser.found, f"English outside _(): {parser.found}"


# --- a French build ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def french_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample site with DEFAULT_LANG = "fr" (one `-e`: Pelican keeps only the last one)."""
    output = tmp_path_factory.mktemp("fr") / "output"
    subprocess.run(
        [sys.executable, "-m", "pelican", str(ROOT / "content"), "-s", str(ROOT / "pelicanconf.py"),
         "-o", str(output), "--fatal", "errors", "-e", "COMMENTS_EXPORT=null", 'DEFAULT_LANG="fr"'],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=120,
    )
    return output


def visible_text(path: Path) -> str:
    soup = BeautifulSoup(path.read_text("utf-8"), "html.parser")
    for tag in soup(["script", "style", "svg"]):
        tag.decompose()
    return " ".join(soup.get_text(" ").split())


def test_a_french_build_speaks_french(french_site: Path) -> None:
    article = next(french_site.glob("2026/*/index.html"))
    soup = BeautifulSoup(article.read_text("utf-8"), "html.parser")
    assert soup.html["lang"] == "fr"
    words = visible_text(article)
    for french in ("Ajouter un commentaire", "Envoyer le commentaire", "Questions pour réfléchir",
                   "Y répondre", "Aller au contenu", "Propulsé par"):
        assert french in words, french
    for english in ("Add a comment", "Send comment", "Answer this", "Skip to content"):
        assert english not in words, english
    catalogue = json.loads(soup.find("script", id="tellmemore-strings").string)
    assert catalogue["lang"] == "fr"
    assert catalogue["strings"]["Reply"] == "Répondre"

    index = visible_text(french_site / "index.html")
    assert "Derniers articles" in index and "Lire la suite" in index
    assert "Commentaires" in index  # the neutral count link, before counts.js fills it
    archives = visible_text(french_site / "archives/index.html")
    assert "du plus récent au plus ancien" in archives


def test_an_english_build_carries_an_empty_catalogue(site_output: Path) -> None:
    article = next(site_output.glob("2026/*/index.html"))
    soup = BeautifulSoup(article.read_text("utf-8"), "html.parser")
    assert json.loads(soup.find("script", id="tellmemore-strings").string) == {
        "lang": "en", "strings": {},
    }


def test_literal_only_calls_are_translated_when_the_template_is_compiled() -> None:
    """``_("…")`` with nothing but a literal becomes text at compile time (the build's cost per
    page, issue 19); a call with fields stays a call; escapes in the literal are read as Jinja
    reads them."""
    from jinja2 import Environment

    sys.path.insert(0, str(ROOT / "plugins"))
    from strings.strings import FixedStrings, translator

    catalogue = {"Send comment": "Envoyer le commentaire", "Say “hi”": "Dites « salut »",
                 "{count} comments": "{count} commentaires"}
    environment = Environment(extensions=[FixedStrings], autoescape=True)
    environment.extensions[FixedStrings.identifier].catalogue = catalogue
    calls: list[str] = []

    def counting(text: str, /, **fields: object) -> str:
        calls.append(text)
        return translator(catalogue)(text, **fields)

    environment.globals["_"] = counting
    template = environment.from_string(
        """<b>{{ _("Send comment") }}</b> {{ _( 'Say \\u201chi\\u201d' )|e }} """
        """{{ _("{count} comments", count=3) }} {{ _("Missing & <here>") }}""")
    assert template.render() == ("<b>Envoyer le commentaire</b> Dites « salut » "
                                 "3 commentaires Missing &amp; &lt;here&gt;")
    assert calls == ["{count} comments"]  # only the call with fields


def test_a_once_fragment_is_rendered_once_per_key_and_environment() -> None:
    """``{% once key %}`` renders its body the first time for each key (and place), then
    reuses the text (issue 19); a new environment, as for each build, starts afresh."""
    from jinja2 import Environment

    sys.path.insert(0, str(ROOT / "plugins"))
    from strings.once import Once

    calls: list[str] = []

    def costly(text: str) -> str:
        calls.append(text)
        return text.upper()

    source = ("[{% once SITEURL %}{{ SITEURL }}/{{ costly(SITENAME) }}{% endonce %}]"
              "({% once %}{{ costly('x') }}{% endonce %}){{ page }}")
    environment = Environment(extensions=[Once], autoescape=True)
    environment.globals["costly"] = costly
    template = environment.from_string(source)
    pages = [template.render(SITEURL=url, SITENAME="site", page=page)
             for page, url in ((1, ".."), (2, ".."), (3, "."), (4, ".."))]
    assert pages == ["[../SITE](X)1", "[../SITE](X)2", "[./SITE](X)3", "[../SITE](X)4"]
    assert calls == ["site", "x", "site"]
    fresh = Environment(extensions=[Once], autoescape=True)
    fresh.globals["costly"] = costly
    assert fresh.from_string(source).render(SITEURL="..", SITENAME="new", page=5) == (
        "[../NEW](X)5")
