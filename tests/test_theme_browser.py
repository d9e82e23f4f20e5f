"""The tellmemore theme in a real Chromium: visibility, focus, small screens, dark mode."""

from __future__ import annotations

import posixpath
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def article_urls(site_output: Path) -> list[str]:
    """Site-relative URLs of the articles, as the archives page lists them."""
    soup = BeautifulSoup((site_output / "archives/index.html").read_text("utf-8"), "html.parser")
    urls = []
    for a in soup.select("main .archive-list a[href]:not(.comment-count)"):
        urls.append(posixpath.normpath(posixpath.join("archives", a["href"])) + "/")
    assert urls, "the archives page lists no article"
    return urls


@pytest.fixture(scope="module")
def article_url(site_output: Path, site_server: str) -> str:
    return f"{site_server}/{article_urls(site_output)[0]}"


def focused(page) -> dict:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            const box = el.getBoundingClientRect();
            return {
                tag: el.tagName.toLowerCase(),
                text: el.textContent.trim(),
                cls: el.className,
                outlineStyle: style.outlineStyle,
                outlineWidth: parseFloat(style.outlineWidth),
                outlineColor: style.outlineColor,
                top: box.top, bottom: box.bottom, width: box.width,
            };
        }"""
    )


def test_reflection_block_is_visible(page, article_url: str) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(article_url)
    section = page.locator("section#reflection")
    section.scroll_into_view_if_needed()
    assert section.is_visible()
    assert page.locator("#reflection-heading").inner_text() == "Questions for reflection"
    questions = section.locator("ol > li")
    assert questions.count() >= 1
    for index in range(questions.count()):
        assert questions.nth(index).is_visible()
        assert questions.nth(index).locator("a.answer-this").is_visible()
    # The screen-reader text of the answer link takes no room on screen.
    hidden = section.locator("a.answer-this .visually-hidden").first
    assert hidden.bounding_box()["width"] <= 1


def test_keyboard_focus_is_visible(page, article_url: str) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(article_url)
    page.keyboard.press("Tab")
    skip = focused(page)
    assert skip["text"] == "Skip to content"
    assert skip["outlineStyle"] != "none" and skip["outlineWidth"] >= 2
    assert skip["top"] >= 0 and skip["width"] > 1, "the skip link stays off screen when focused"

    links_seen = 0
    for _ in range(6):
        page.keyboard.press("Tab")
        state = focused(page)
        if state["tag"] == "a":
            links_seen += 1
            assert state["outlineStyle"] != "none", f"no focus outline on {state['text']!r}"
            assert state["outlineWidth"] >= 2
    assert links_seen >= 3

    answer = page.locator("a.answer-this").first
    answer.scroll_into_view_if_needed()
    for _ in range(200):
        page.keyboard.press("Tab")
        if "answer-this" in focused(page)["cls"]:
            break
    state = focused(page)
    assert "answer-this" in state["cls"], "Tab never reached an Answer this link"
    assert state["outlineStyle"] != "none"


def test_skip_link_moves_to_main(page, article_url: str) -> None:
    page.goto(article_url)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    # Wait for the browser to follow the link (slower on a loaded machine), then check both.
    page.wait_for_function(
        "location.hash === '#content' && document.activeElement.id === 'content'", timeout=5000
    )
    assert urlsplit(page.url).fragment == "content"
    assert page.evaluate("document.activeElement.id") == "content"


@pytest.mark.parametrize(
    "path", [None, "", "archives/", "tags/"], ids=["article", "index", "archives", "tags"]
)
def test_no_horizontal_scroll_on_a_phone(
    page, site_server: str, article_url: str, path: str | None
) -> None:
    page.set_viewport_size(PHONE)
    url = article_url if path is None else f"{site_server}/{path}"
    page.goto(url)
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"{url}: scrollWidth {widths[0]} > clientWidth {widths[1]}"
    # The reading column fills the phone rather than sitting at desktop width.
    main_width = page.evaluate("document.querySelector('main').getBoundingClientRect().width")
    assert main_width <= PHONE["width"]


def test_dark_scheme_changes_the_colours(page, article_url: str) -> None:
    script = """() => {
        const body = getComputedStyle(document.body);
        const form = getComputedStyle(document.querySelector('#comment-form'));
        return [body.backgroundColor, body.color, form.backgroundColor];
    }"""
    page.emulate_media(color_scheme="light")
    page.goto(article_url)
    light = page.evaluate(script)
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate(script)
    assert light[0] != dark[0], "the body background does not change in dark mode"
    assert light[1] != dark[1], "the text colour does not change in dark mode"
    assert light[2] != dark[2], "the comment form does not follow the colour scheme"

    def luminance(css: str) -> float:
        r, g, b = (int(v) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    assert luminance(dark[0]) < luminance(light[0])


def test_answer_this_goes_to_the_comment_form(page, article_url: str) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(article_url)
    answer = page.locator("a.answer-this").first
    question_id = answer.get_attribute("data-question")
    answer.click()
    page.wait_for_url(f"**?question={question_id}#comment-form")
    parts = urlsplit(page.url)
    assert parts.query == f"question={question_id}"
    assert parts.fragment == "comment-form"
    form = page.locator("#comment-form")
    assert form.is_visible()
    assert form.evaluate("f => f.getBoundingClientRect().top") < DESKTOP["height"] / 2, (
        "the comment form was not scrolled into view"
    )


def test_comment_form_validates_without_javascript(page, article_url: str) -> None:
    page.goto(article_url)
    form = page.locator("#comment-form")
    assert form.evaluate("f => f.checkValidity()") is False, "an empty comment must not submit"
    page.fill("#comment-name", "Reader")
    page.fill("#comment-body", "A thought about this.")
    assert form.evaluate("f => f.checkValidity()") is True
    for control in ("#comment-name", "#comment-email", "#comment-question", "#comment-body"):
        assert page.locator(control).is_visible()
        label = page.locator(f"label[for='{control[1:]}']")
        assert label.is_visible(), f"{control} has no visible label"
