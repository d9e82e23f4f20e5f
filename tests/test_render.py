"""The comment renderer: every injection payload comes out inert, and the Markdown subset works.

The safety checks read the output as a browser would (an HTML parser, then the attribute
values it decodes) and hold it to an allow-list written out here, not imported from the
module, so that loosening the renderer's allow-list fails these tests.
"""

from __future__ import annotations

import html
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor

import pytest
from bs4 import BeautifulSoup, Tag

from comments_service.comments.render import is_safe_href, plain_text, render_comment, render_inline
from tests.injection_corpus import PAYLOADS

# What rendered comments may contain at most.
EXPECTED_TAGS = {"p", "br", "em", "strong", "a", "ul", "ol", "li", "code", "pre", "blockquote"}
EXPECTED_ATTRIBUTES = {"a": {"href", "title", "rel"}, "code": {"class"}, "ol": {"start"}}
FORBIDDEN_TAGS = {
    "script", "iframe", "svg", "math", "img", "style", "form", "meta", "base", "object", "embed",
}  # fmt: skip
SAFE_SCHEMES = {"http", "https", "mailto"}
REQUIRED_REL = {"nofollow", "ugc", "noopener"}


def parse(fragment: str) -> BeautifulSoup:
    return BeautifulSoup(fragment, "html.parser")


def tags(soup: BeautifulSoup) -> list[Tag]:
    return soup.find_all(True)


def href_scheme(href: str) -> str | None:
    """The scheme a browser would see, judged harshly: entities decoded again (on top of the
    parser's decoding), every whitespace, control and invisible character removed, lowercased.
    ``None`` for a relative URL."""
    value = html.unescape(href)
    value = "".join(
        char
        for char in value
        if not char.isspace() and unicodedata.category(char) not in {"Cc", "Cf", "Zs"}
    )
    match = re.match(r"([a-z][a-z0-9+.-]*):", value, re.IGNORECASE)
    return match.group(1).lower() if match else None


def assert_inert(fragment: str) -> None:
    """The checks every rendered comment must pass, whatever its source."""
    soup = parse(fragment)
    for element in tags(soup):
        assert element.name not in FORBIDDEN_TAGS, fragment
        assert element.name in EXPECTED_TAGS, fragment
        for name in element.attrs:
            assert not name.lower().startswith("on"), fragment
            assert name.lower() != "style", fragment
            assert name in EXPECTED_ATTRIBUTES.get(element.name, set()), fragment
    for link in soup.find_all("a"):
        # Decision: relative URLs are refused, so every href must carry an allowed scheme.
        href = link.get("href")
        if href is not None:
            assert href_scheme(href) in SAFE_SCHEMES, fragment
        assert set(link.get("rel") or []) >= REQUIRED_REL, fragment
        assert "target" not in link.attrs


# --- Injection corpus --------------------------------------------------------------------


def test_corpus_is_large_and_distinct() -> None:
    assert len(PAYLOADS) >= 40
    assert len(set(PAYLOADS)) == len(PAYLOADS)
    assert all(isinstance(payload, str) and payload for payload in PAYLOADS)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_renders_inert(payload: str) -> None:
    assert_inert(render_comment(payload))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_stays_inert_inside_markdown_structures(payload: str) -> None:
    for wrapped in (
        f"> {payload}",
        f"- {payload}",
        f"1. {payload}",
        f"**{payload}**",
        f"[{payload}](https://example.org)",
        f"text\n\n{payload}\n\nmore text",
    ):
        assert_inert(render_comment(wrapped))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_renders_inert_via_render_inline(payload: str) -> None:
    assert tags(parse(render_inline(payload))) == []


def test_raw_script_is_visible_text() -> None:
    out = render_comment("<script>alert(1)</script>")
    assert parse(out).get_text() == "<script>alert(1)</script>"


@pytest.mark.parametrize(
    "body",
    [
        "[x](javascript:alert(1))",
        "[x](jav&#x61;script:alert(1))",
        "[x](java\tscript:alert(1))",
        "[x](   JAVASCRIPT:alert(1))",
        "[x](data:text/html,hi)",
        "[x](vbscript:msgbox(1))",
        "[x][r]\n\n[r]: javascript:alert(1)",
    ],
)
def test_dangerous_link_keeps_only_its_text(body: str) -> None:
    out = render_comment(body)
    assert out == "<p>x</p>"


def test_autolink_with_dangerous_scheme_is_text() -> None:
    soup = parse(render_comment("<javascript:alert(1)>"))
    assert soup.find("a") is None
    assert "javascript:alert(1)" in soup.get_text()


def test_quotes_in_link_title_stay_inside_the_attribute() -> None:
    soup = parse(render_comment('[x](https://example.org "a\\" onmouseover=\\"alert(1)")'))
    link = soup.find("a")
    assert link is not None
    assert set(link.attrs) == {"href", "title", "rel"}
    assert link["href"] == "https://example.org"


# --- Relative URLs (decision: refused) ---------------------------------------------------


@pytest.mark.parametrize("href", ["/path", "page.html", "#frag", "//evil.example/x", "?q=1"])
def test_relative_links_become_text(href: str) -> None:
    out = render_comment(f"[x]({href})")
    assert out == "<p>x</p>"


@pytest.mark.parametrize(
    ("href", "safe"),
    [
        ("https://example.org/a?b=1&c=2", True),
        ("HTTP://EXAMPLE.ORG", True),
        ("mailto:someone@example.org", True),
        ("  https://example.org  ", True),
        ("https://example.org/O'Brien", True),
        ("javascript:alert(1)", False),
        ("jav&#x61;script:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("java\u200bscript:alert(1)", False),
        ("https://exa\u200bmple.org", False),
        ('https://example.org" onclick="x', False),
        ("https://example.org\\@evil", False),
        ("ftp://example.org", False),
        ("/relative", False),
        ("", False),
    ],
)
def test_is_safe_href(href: str, safe: bool) -> None:
    assert is_safe_href(href) is safe


# --- The Markdown subset -----------------------------------------------------------------


def test_emphasis_and_strong() -> None:
    soup = parse(render_comment("*one* _two_ **three** __four__"))
    assert [em.get_text() for em in soup.find_all("em")] == ["one", "two"]
    assert [strong.get_text() for strong in soup.find_all("strong")] == ["three", "four"]


def test_inline_link_with_title() -> None:
    out = render_comment('See [the docs](https://example.org/docs "Docs") please.')
    link = parse(out).find("a")
    assert link is not None
    assert link["href"] == "https://example.org/docs"
    assert link["title"] == "Docs"
    assert link.get_text() == "the docs"
    assert set(link["rel"]) == REQUIRED_REL
    assert_inert(out)


def test_autolinks_and_mail_links() -> None:
    out = render_comment("<https://example.org/a?b=1&c=2> and <someone@example.org>")
    links = parse(out).find_all("a")
    assert [link["href"] for link in links] == [
        "https://example.org/a?b=1&c=2",
        "mailto:someone@example.org",
    ]
    assert_inert(out)


def test_reference_links() -> None:
    out = render_comment("Read [this][1].\n\n[1]: https://example.org/ref")
    link = parse(out).find("a")
    assert link is not None
    assert link["href"] == "https://example.org/ref"


def test_lists() -> None:
    soup = parse(render_comment("- apples\n- pears\n\n1. first\n2. second"))
    assert [li.get_text() for li in soup.select("ul > li")] == ["apples", "pears"]
    assert [li.get_text() for li in soup.select("ol > li")] == ["first", "second"]


def test_ordered_list_keeps_its_start_number() -> None:
    ol = parse(render_comment("3. third\n4. fourth")).find("ol")
    assert ol is not None
    assert ol["start"] == "3"


def test_inline_code_shows_html_escaped() -> None:
    out = render_comment("Use `<b>bold</b>` for bold.")
    assert "<code>&lt;b&gt;bold&lt;/b&gt;</code>" in out
    assert parse(out).find("b") is None


def test_fenced_code_block_with_language() -> None:
    out = render_comment('```html\n<script>alert("x")</script>\n```')
    code = parse(out).select_one("pre > code")
    assert code is not None
    assert code["class"] == ["language-html"]
    assert code.get_text() == '<script>alert("x")</script>\n'
    assert parse(out).find("script") is None


def test_fenced_code_block_drops_other_attributes() -> None:
    code = parse(render_comment('```{ #id .python onclick="x" data-x=1 }\nprint(1)\n```')).find(
        "code"
    )
    assert code is not None
    assert set(code.attrs) <= {"class"}
    assert code.get("class") in (None, ["language-python"])


def test_indented_code_block() -> None:
    code = parse(render_comment("Example:\n\n    <i>x</i>\n    y = 1")).select_one("pre > code")
    assert code is not None
    assert code.get_text() == "<i>x</i>\ny = 1\n"


def test_block_quote() -> None:
    quote = parse(render_comment("> You said *this*.\n\nAnd I reply.")).find("blockquote")
    assert quote is not None
    assert quote.get_text().strip() == "You said this."
    assert quote.find("em") is not None


def test_single_newline_is_a_line_break() -> None:
    out = render_comment("first line\nsecond line\n\nnew paragraph")
    soup = parse(out)
    paragraphs = soup.find_all("p")
    assert len(paragraphs) == 2
    assert paragraphs[0].find("br") is not None


def test_non_ascii_text() -> None:
    body = "Grüße aus Köln — 日本語、русский, emoji 🎉 and العربية"
    assert parse(render_comment(body)).get_text() == body


def test_raw_html_is_shown_literally() -> None:
    out = render_comment("<b>hi</b>")
    soup = parse(out)
    assert soup.find("b") is None
    assert soup.get_text() == "<b>hi</b>"


def test_entities_are_text() -> None:
    assert parse(render_comment("AT&T &amp; &lt;b&gt;")).get_text() == "AT&T & <b>"


@pytest.mark.parametrize(
    "body",
    [
        "![alt](https://example.org/a.png)",
        '![alt](https://example.org/a.png "title")',
        "![alt][pic]\n\n[pic]: https://example.org/a.png",
        "![pic]\n\n[pic]: https://example.org/a.png",
    ],
)
def test_image_syntax_is_not_an_image(body: str) -> None:
    out = render_comment(body)
    assert parse(out).find("img") is None
    assert "alt" in parse(out).get_text() or "pic" in parse(out).get_text()
    assert_inert(out)


def test_headings_stay_literal_text() -> None:
    # Decision: no headings in comments; "#" lines and setext underlines remain text.
    out = render_comment("# Title\n\n#1 fan here\n\nSub\n===")
    soup = parse(out)
    assert soup.find(re.compile(r"^h[1-6]$")) is None
    text = soup.get_text()
    assert "# Title" in text
    assert "#1 fan here" in text
    assert "===" in text


def test_horizontal_rule_stays_text() -> None:
    assert parse(render_comment("above\n\n---\n\nbelow")).find("hr") is None


def test_template_syntax_is_inert_text() -> None:
    assert "{{ config }}" in parse(render_comment("{{ config }}")).get_text()


def test_empty_and_blank_bodies() -> None:
    assert render_comment("") == ""
    assert render_comment("  \n\t\n") == ""


def test_control_characters_are_dropped() -> None:
    assert parse(render_comment("a\x00b\x02c\x1fd")).get_text() == "abcd"


# --- Determinism, size, speed, threads ---------------------------------------------------


def test_rendering_is_deterministic() -> None:
    body = "Hi *there*, see [x][r] and `code`.\n\n[r]: https://example.org\n\n```\n<x>\n```"
    assert render_comment(body) == render_comment(body) == render_comment(body)


def test_reference_definitions_do_not_leak_between_comments() -> None:
    render_comment("[x][r]\n\n[r]: https://example.org/first")
    assert parse(render_comment("[x][r]")).find("a") is None


def test_ten_thousand_characters_render() -> None:
    paragraph = "Some *text* with a [link](https://example.org) and `code`.\n\n"
    body = (paragraph * (10_000 // len(paragraph) + 1))[:10_000]
    out = render_comment(body)
    assert len(parse(out).find_all("a")) >= 150
    assert_inert(out)


@pytest.mark.parametrize(
    "body",
    [
        "[" * 10_000,
        "`[" * 5_000,
        "[\n" * 5_000,
        "[a](" * 2_500,
        "[a][" * 2_500,
        "*[" * 5_000,
        "<" * 10_000,
        "> " * 5_000 + "x",
    ],
)
def test_pathological_input_renders_inert(body: str) -> None:
    # How long these take is measured by bench/render_worst_case.py, not asserted here.
    assert_inert(render_comment(body))


def test_absurdly_deep_nesting_falls_back_to_text() -> None:
    body = "".join("    " * level + "- item\n" for level in range(400))
    out = render_comment(body)
    assert_inert(out)
    assert parse(out).get_text().count("item") == 400
    # The converter that gave up is replaced: the next comment renders normally.
    assert render_comment("*fine*") == "<p><em>fine</em></p>"


def test_concurrent_rendering_matches_sequential() -> None:
    bodies = [
        f"Comment *{i}*, [link](https://example.org/{i}) [r{i}]\n\n"
        f"[r{i}]: https://example.org/ref/{i}\n\n```\n<{i}>\n```"
        for i in range(200)
    ]
    expected = [render_comment(body) for body in bodies]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(render_comment, bodies * 4))
    assert results == expected * 4


# --- render_inline and plain_text --------------------------------------------------------


def test_render_inline_escapes_for_text_and_attributes() -> None:
    assert render_inline("<b>Ann</b> & \"Bob\" 'C'") == (
        "&lt;b&gt;Ann&lt;/b&gt; &amp; &quot;Bob&quot; &#x27;C&#x27;"
    )
    assert render_inline("**not markdown**") == "**not markdown**"


def test_plain_text_strips_tags_and_unescapes() -> None:
    out = render_comment("Hello *world* &amp; <b>\n\n- one\n- two\n\n> quoted")
    assert plain_text(out) == "Hello world & <b>\none\ntwo\nquoted"


def test_plain_text_of_arbitrary_html() -> None:
    assert plain_text("<p>a&nbsp;b<br>c</p><script>x()</script><p>d &lt; e</p>") == (
        "a b\nc\nd < e"
    )
