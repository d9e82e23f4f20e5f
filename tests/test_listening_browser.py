"""The public listening figures in a real Chromium (#22, item 3): built into the article and
the footer from the service's public export, and the article's kept current by the widget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from comments_service.comments.replying import reply
from tests.test_widget_browser import (  # noqa: F401  (stack: the module's own service and site)
    AUTHOR,
    DESKTOP,
    Stack,
    StaticSite,
    build,
    seed,
    serve,
    stack,
)

pytestmark = pytest.mark.browser

THREAD = "reply-to-every-comment"
WORDS = ("sourdough", "bikes", "maps", "tea", "kites", "ferries", "chess", "birds", "radio",
         "fonts", "jazz", "tents")


@pytest.fixture(scope="module")
def listening_site(stack: Stack, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
                   ) -> Iterator[StaticSite]:
    """Twelve comments on THREAD, three answered individually, the site built from the
    service's public export."""
    comments = [seed(stack.store, THREAD, f"Reader {n}", f"What about {word}?")
                for n, word in enumerate(WORDS)]
    for comment in comments[:3]:
        reply(stack.store, comment.id, AUTHOR, f"{comment.name}, a good question about it.")
    port = stack.extra_ports["baked"]
    output = build(tmp_path_factory.mktemp("listening") / "site",
                   SITEURL=f"http://127.0.0.1:{port}", COMMENTS_SERVICE_URL=stack.service,
                   COMMENTS_EXPORT=f"{stack.service}/api/public-export")
    site = serve(output, port)
    site.comments = comments  # type: ignore[attr-defined]
    yield site
    site.close()


def test_the_article_and_the_footer_show_how_the_author_listens(
        browser, stack: Stack, listening_site: StaticSite) -> None:  # noqa: F811
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(stack.article_url(THREAD, listening_site))
        line = page.locator("#comments-listening")
        assert line.inner_text() == "The author has answered 3 of 12 comments here."
        assert line.is_visible()
        footer = page.locator("#site-listening")
        assert footer.inner_text().startswith("Replies individually: 25 % of comments answered")
        assert "last 90 days" in footer.inner_text() and footer.is_visible()
        page.goto(f"{listening_site.url}/")
        assert page.locator("#site-listening").is_visible()  # every page, the home page too
    finally:
        context.close()


def test_the_widget_keeps_the_article_figure_current(
        browser, stack: Stack, listening_site: StaticSite) -> None:  # noqa: F811
    fourth = listening_site.comments[3]  # type: ignore[attr-defined]
    reply(stack.store, fourth.id, AUTHOR, f"{fourth.name}, yes: that one next week.")
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(stack.article_url(THREAD, listening_site))
        page.wait_for_function(
            "() => document.querySelector('[data-l=answered]').textContent === '4'")
        assert page.locator("#comments-listening").inner_text() == (
            "The author has answered 4 of 12 comments here.")
    finally:
        context.close()
