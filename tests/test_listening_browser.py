"""The public listening figures in a real Chromium (#22, item 3): built into the article and
the footer from the service's public export, and both kept current by the widget, the footer
from the site's numbers in the thread payload (listening.footer_fields), in the built page's
language and units."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from comments_service.comments.render import render_comment
from comments_service.comments.replying import reply
from comments_service.listening import footer_fields
from comments_service.models import Comment, CommentState, new_comment_id
from tests.test_widget_browser import (  # noqa: F401  (stack: the module's own service and site)
    AUTHOR,
    DESKTOP,
    Stack,
    StaticSite,
    build,
    open_article,
    seed,
    serve,
    stack,
)

pytestmark = pytest.mark.browser

THREAD = "reply-to-every-comment"
ELSEWHERE = "running-a-small-blog"  # another article: the site's figures span them all
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


@pytest.fixture(scope="module")
def stack_settings() -> dict[str, str]:
    """The site's figures worked out afresh on every request: the tests change them and look
    at once, where the service would take up to a minute (unit tests check that minute)."""
    return {"LISTENING_CACHE_SECONDS": "0"}


@pytest.fixture(scope="module")
def french_site(stack: Stack, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
                ) -> Iterator[StaticSite]:
    """The same site in French, built from the service's public export."""
    port = stack.extra_ports["fr"]
    output = build(tmp_path_factory.mktemp("listening-fr") / "site",
                   SITEURL=f"http://127.0.0.1:{port}", COMMENTS_SERVICE_URL=stack.service,
                   COMMENTS_EXPORT=f"{stack.service}/api/public-export", DEFAULT_LANG="fr")
    site = serve(output, port)
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


def footer_text(service: Stack, english: bool = True) -> str:
    """The footer as the service's current figures make it, in the built pages' unit (they
    are built with replies a moment after the comments: minutes)."""
    fields = footer_fields(service.get("/api/listening")["listening"])
    if english:
        return (f"Replies individually: {fields['site_share']} % of comments answered, median "
                f"time to reply {fields['site_reply_min']} min, last 90 days.")
    return (f"Répond à chacun : {fields['site_share']} % des commentaires ont reçu une "
            f"réponse, en {fields['site_reply_min']} min (médiane), sur les 90 derniers jours.")


def footer_refreshed(page, service: Stack, english: bool = True) -> str:
    """The footer once the widget has written the service's current figures into it."""
    expected = footer_text(service, english)
    page.wait_for_function(
        "text => document.getElementById('site-listening').textContent === text", arg=expected)
    return page.locator("#site-listening").inner_text()


def test_the_widget_keeps_the_footer_current_without_a_rebuild(
        browser, stack: Stack, listening_site: StaticSite, french_site: StaticSite  # noqa: F811
        ) -> None:
    """New comments on another article, answered two hours after they came: the site's
    share and median change, and the footer the build wrote says so once the widget has
    asked for the thread, in the language and the unit it was built with."""
    still = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    live = browser.new_context(viewport=DESKTOP)
    french = browser.new_context(viewport=DESKTOP, locale="fr-FR")
    try:
        page = still.new_page()
        page.goto(stack.article_url(THREAD, listening_site))
        built = page.locator("#site-listening").inner_text()
        assert built.startswith("Replies individually: 25 % of comments answered")
        assert built.endswith(" min, last 90 days.")
        live_page = live.new_page()
        open_article(live_page, stack.article_url(THREAD, listening_site))
        assert footer_refreshed(live_page, stack) == footer_text(stack)

        two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="microseconds")
        for n, word in enumerate(("rivers", "owls", "clocks", "lamps")):
            comment = stack.store.add_comment(Comment(
                id=new_comment_id(), thread=ELSEWHERE, name=f"Walker {n}",
                body=f"And {word}?", html=render_comment(f"And {word}?"),
                created=two_hours_ago, state=CommentState.AWAITING_REPLY, public=False))
            reply(stack.store, comment.id, AUTHOR, f"Walker {n}, {word} are next.")
        changed = footer_text(stack)
        assert changed != built
        assert " 60 min," in changed or " 120 min," in changed  # two hours among the minutes

        # No rebuild: the same built page, its footer refreshed from the thread payload.
        open_article(live_page, stack.article_url(THREAD, listening_site))
        assert footer_refreshed(live_page, stack) == changed
        assert live_page.locator("#site-listening [data-l]").count() == 2  # share and time

        french_page = french.new_page()
        open_article(french_page, stack.article_url(THREAD, french_site))
        assert footer_refreshed(french_page, stack, english=False) == footer_text(stack, False)

        # A page built without the line (no export) gets none from the widget.
        open_article(live_page, stack.article_url(THREAD))
        assert stack.get(f"/api/threads/{THREAD}")["listening"]["site_share"] > 0
        assert live_page.locator("#site-listening, [data-l^=site_]").count() == 0
    finally:
        for context in (still, live, french):
            context.close()
