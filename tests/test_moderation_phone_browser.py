"""Every moderation page on a phone, in a real Chromium at 390 by 844 (issue 21, item 4): no page
scrolls sideways, the navigation wraps into whole, tappable links that keep their badges, the
requests page keeps each group's actions behind one "Manage" disclosure, and the charts' labels
stay readable. The pages are filled as a busy site's would be: long words and links, requests
asked for by several people, mail in the outbox and in the demo's mailbox."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from comments_service import create_app
from comments_service.comments import replying
from comments_service.demo_mailbox import MailboxFolder
from comments_service.store import open_store
from tests.conftest import SERVICE_MANIFEST, file_as_suggested
from tests.servers import free_port, running_service, service_environment

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
NAME, EMAIL, PASSWORD = "Ada", "ada@blog.test", "correct horse battery"
LONG_WORD = "Supercalifragilisticexpialidocious" * 3
LONG_LINK = "https://example.org/" + "a-very-long-path-segment/" * 6 + "?with=query&and=more"
REQUESTS = [
    ("Maya", "Please write a post about keeping track of requests that readers repeat."),
    ("Sam", "Could you write a post about keeping track of requests readers repeat?"),
    ("Ravi", "A post about tracking the requests your readers keep repeating, please."),
    ("Elif", "Please write more on keeping a tally of requests that readers repeat."),
    ("Tom", "Please add an RSS feed of the replies only."),
    ("Lea", "An RSS feed with only the replies would help me, please add one."),
]


@dataclass(frozen=True)
class Site:
    url: str
    folder: Path
    urls: list[str]  # every moderation page, filled in


def post(base: str, thread: str, **fields: object) -> str:
    import urllib.request

    request = urllib.request.Request(
        f"{base}/api/threads/{thread}/comments", data=json.dumps(fields).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["comment"]["id"]


def every_page(app, values: dict[str, str]) -> list[str]:
    """One URL per GET route under /moderate, with the values given for its arguments; a route
    whose argument has none fails the test (a new page must be added here)."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or not rule.rule.startswith("/moderate"):
            continue
        missing = set(rule.arguments) - set(values)
        assert not missing, f"{rule.rule}: give a value for {missing}"
        urls.append(rule.rule.replace("<", "{").replace(">", "}").format(**values))
    return sorted(urls)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("phone")
    manifest = folder / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
    mailbox = MailboxFolder(folder / "mailbox")
    settings = {"MANIFEST": str(manifest), "SECRET_KEY": "phone-test-secret",
                "RATE_LIMIT": "off", "SPAM_CHECKS": "off", "SIGN_IN_DELAY_SECONDS": "0",
                "DEMO_MAILBOX": str(mailbox.path), "PUBLIC_URL": "http://comments.test",
                "AUTHOR_NOTIFY": "immediately"}
    environment = service_environment(folder, **settings)
    subprocess.run([sys.executable, "-m", "flask", "--app", "comments_service", "add-author",
                    "--name", NAME, "--email", EMAIL, "--password", PASSWORD],
                   env=environment, cwd=folder, check=True, capture_output=True)
    port = free_port()
    with running_service(folder, environment, port=port) as (base, _process):
        ids = [post(base, "hello", name=name, body=body, email=f"{name.lower()}@example.org",
                    notify=True) for name, body in REQUESTS]
        ids.append(post(base, "hello", name="Noor " + LONG_WORD[:70], question="why",
                        body=f"{LONG_WORD} and a link {LONG_LINK} that is long."))
        ids.append(post(base, "second", name="Iris", question="how",
                        body="How do you find the time to answer every single comment?"))
        store = open_store(folder / "store")
        try:
            group_id = store.get_comment(ids[1]).request
            reader_key = store.get_comment(ids[0]).reader_key  # the reader's page (#24)
            assert group_id, "the service grouped the requests as they arrived"
            author = store.author_by_email(EMAIL)
            answer = replying.reply(store, ids[0], author, "Maya, yes: a post on requests is "
                                    f"coming. Meanwhile: {LONG_LINK}")
            replying.mark_spam(store, ids[-2])
            file_as_suggested(store)  # the requests pages list what the author filed
        finally:
            store.close()
        mail_id = mailbox.add(
            b"From: Blog <blog@blog.test>\r\nTo: maya@example.org\r\n"
            b"Subject: Ada replied to your comment on \xe2\x80\x9cHello\xe2\x80\x9d\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nRead it: " + LONG_LINK.encode()
            + b"\r\n")
        app = create_app({**settings, "STORE_PATH": str(folder / "store")})
        app.extensions["tellmemore.store"].close()
        values = {"comment_id": ids[0], "reply_id": answer.id, "group_id": group_id,
                  "mail_id": mail_id, "reader_key": reader_key}
        urls = every_page(app, values)
        urls += ["/moderate/requests?all=1", "/moderate/all?state=spam",
                 "/moderate/outbox/?show=all", f"/moderate/comments/{ids[-1]}"]
        yield Site(base, folder, urls)


def sign_in(page, site: Site) -> None:
    page.goto(f"{site.url}/moderate/sign-in")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{site.url}/moderate/")


def overflowing(page) -> list[str]:
    """The elements reaching past the right edge (what makes a page scroll sideways)."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
        .slice(0, 8).map(el => `${el.tagName.toLowerCase()}.${el.className}`)""")


def test_no_moderation_page_scrolls_sideways_on_a_phone(browser, site: Site) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        page.goto(f"{site.url}/moderate/sign-in")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        sign_in(page, site)
        checked = []
        for url in site.urls:
            if urlsplit(url).path == "/moderate/sign-in":
                continue
            response = page.goto(site.url + url)
            assert response.status == 200, url
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (url, width, overflowing(page))
            checked.append(url)
        assert len(checked) >= 14, checked
    finally:
        context.close()


def test_the_navigation_wraps_into_whole_links_with_their_badges(browser, site: Site) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        sign_in(page, site)
        links = page.locator("nav[aria-label='Moderation'] a")
        boxes = links.evaluate_all("""links => links.map(a => {
            const box = a.getBoundingClientRect();
            const badge = a.querySelector('.count');
            const b = badge && badge.getBoundingClientRect();
            return {text: a.textContent.trim().replace(/\\s+/g, ' '), left: box.left,
                    right: box.right, top: box.top, bottom: box.bottom, height: box.height,
                    badge: b && {top: b.top, bottom: b.bottom, right: b.right}};
        })""")
        assert [box["text"].split(" ")[0] for box in boxes] == [
            "Queue", "All", "Spam", "Metrics", "Requests", "Outbox", "Mailbox"]
        for box in boxes:
            assert box["left"] >= 0 and box["right"] <= PHONE["width"], box
            assert box["height"] >= 32, f"too small to tap: {box}"
            if box["badge"]:  # the badge sits inside its link, on the same line
                assert box["top"] <= box["badge"]["top"] and box["badge"]["bottom"] <= box[
                    "bottom"] and box["badge"]["right"] <= box["right"], box
        assert boxes[0]["badge"] and boxes[2]["badge"], "Queue and Spam keep their counts"
        for first, second in pairwise(boxes):
            same_row = abs(first["top"] - second["top"]) < 2
            assert not same_row or first["right"] <= second["left"], (first, second)
        header = page.locator("header.top").bounding_box()
        assert header["height"] <= PHONE["height"] / 3, header
    finally:
        context.close()


def test_the_requests_page_keeps_each_groups_actions_behind_manage(browser, site: Site) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        sign_in(page, site)
        page.goto(f"{site.url}/moderate/requests?all=1")
        cards = page.locator("ol.requests > li > article.card")
        assert cards.count() >= 2
        visible_controls = page.locator(
            "ol.requests :is(input:not([type=hidden]), select, button)").evaluate_all(
            "els => els.filter(el => el.checkVisibility()).length")
        assert visible_controls == 0, "the actions wait behind Manage"
        for index in range(cards.count()):
            manage = cards.nth(index).locator(":scope > details.manage")
            assert manage.count() == 1
            assert manage.locator(":scope > summary").inner_text().startswith("Manage")
        first = cards.first.locator(":scope > details.manage")
        first.locator(":scope > summary").click()
        assert first.locator("button", has_text="Rename").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()


def test_chart_labels_stay_readable_on_a_phone(browser, site: Site) -> None:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        sign_in(page, site)
        for path in ("/moderate/metrics", "/moderate/requests?all=1"):
            page.goto(site.url + path)
            sizes = page.locator("svg.chart__svg text").evaluate_all(
                "texts => texts.map(t => t.getBoundingClientRect().height)")
            assert sizes, path
            # Rendered text at least ~11 px tall: the SVG is not just shrunk to fit.
            assert min(sizes) >= 10.5, (path, min(sizes))
    finally:
        context.close()


def test_the_admin_pages_tell_the_truth_in_chromium(browser, site: Site) -> None:
    """Issue 21, item 6, as the author sees it (the unit tests: tests/test_admin_truth.py)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, site)
        page.goto(f"{site.url}/moderate/all")
        maya = page.locator("ol.queue article.card").filter(has=page.locator(
            ".card__title", has_text="Maya"))
        assert maya.count() == 1
        assert "waiting" not in maya.locator(".card__meta").inner_text()
        assert page.locator("main").inner_text().count("a post on requests is coming") == 1
        assert maya.locator(".replies").inner_text().count("a post on requests is coming") == 1
        waiting = page.locator("ol.queue article.card").filter(has=page.locator(
            ".card__title", has_text="Sam"))
        assert "waiting" in waiting.locator(".card__meta").inner_text()

        page.goto(f"{site.url}/moderate/requests?all=1")
        page.locator("details.manage > summary").first.click()
        merge = page.locator("select[name=into]").first
        assert merge.input_value() == ""
        assert merge.locator("option").first.inner_text() == "Choose a request"

        page.goto(f"{site.url}/moderate/requests/themes")
        labels = page.locator("table.data tbody th").all_inner_texts()
        assert labels and not any("**" in label for label in labels)
        for label in labels:
            if label.endswith("…"):
                assert label[-2].isalpha() or label[-2].isdigit(), label

        response = page.goto(f"{site.url}/moderate/comments/no-such-comment")
        assert response.status == 404
        queue_link = page.get_by_role("navigation", name="Moderation").get_by_role(
            "link", name="Queue")
        assert queue_link.locator(".count").inner_text().isdigit()
    finally:
        context.close()
