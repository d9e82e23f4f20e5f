"""The demo's request walk-through in a real Chromium against gunicorn (#18): four readers ask
for the same post in other words; the author files the first as a new request and each of the
other three with one key, the request being suggested first; the bug report and the thank-you
are filed as not a request with one key each; the requests page counts 4 people; marking the
request done queues one mail to each of the four, and only to them."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from comments_service.cli.demo import DEMO_EMAIL, DEMO_PASSWORD
from comments_service.store import open_store
from comments_service.tally.grouper import MiniLMEmbedder
from tests.conftest import SERVICE_MANIFEST
from tests.servers import free_port, running_service, service_environment
from tests.test_moderation_browser import Service, active

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not MiniLMEmbedder.available(),
                       reason="the walk-through ranks with the sentence model (make install)"),
]

ASKING = ("Priya", "Sam", "Ravi", "Elif")  # the demo's four readers asking for one post
NOT_REQUESTS = ("Lea", "Noor")  # a bug report and a thank-you
LABEL = "How I keep track of repeated requests"
LINK = "https://blog.test/posts/tracking-requests/"
WRITTEN_FOR = {  # each reply its own (the nudge holds a copied one back)
    "Sam": "Sam, three readers asking before you noticed is the story: the post will start there.",
    "Ravi": "Ravi, remembering who asked is the heart of it; I will show how I do that.",
    "Elif": "Elif, examples it is: the post will walk through a real month of requests.",
    "Lea": "Lea, good catch on the match statement and Python 3.9: I will name the version.",
    "Noor": "Noor, I am glad it came in the week you needed it. What made it fit?",
}


@pytest.fixture
def demo_service(tmp_path: Path) -> Iterator[Service]:
    """gunicorn -w 2 with the demo's data and settings (the sentence model: auto)."""
    manifest = tmp_path / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
    environment = service_environment(
        tmp_path, MANIFEST=str(manifest), SECRET_KEY="walk-through-secret", RATE_LIMIT="off",
        SIGN_IN_DELAY_SECONDS="0", TALLY_EMBEDDER="auto", PUBLIC_URL="http://127.0.0.1",
    )
    port = free_port()
    service = Service(f"http://127.0.0.1:{port}", environment, tmp_path)
    service.flask("demo-data")
    with running_service(tmp_path, environment, port=port):
        yield service


def comment_ids(service: Service) -> dict[str, str]:
    return {record["name"]: record["id"]
            for record in json.loads(service.flask("export"))["comments"]}


def open_comment(page, service: Service, comment_id: str) -> None:
    page.goto(f"{service.url}/moderate/comments/{comment_id}")
    page.locator("body").click(position={"x": 5, "y": 5})  # keys outside the reply box


def reply(page, text: str) -> None:
    page.keyboard.press("r")
    assert active(page)["id"] == "reply-body"
    page.keyboard.type(text)
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")  # reply & next, and file


def test_four_readers_are_filed_with_one_key_each_and_hear_back_once(
        page, demo_service: Service) -> None:
    service = demo_service
    ids = comment_ids(service)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{service.url}/moderate/sign-in")
    page.fill("#email", DEMO_EMAIL)
    page.fill("#password", DEMO_PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{service.url}/moderate/")

    first, *others = ASKING
    open_comment(page, service, ids[first])
    page.keyboard.press("n")  # a new request, its label prefilled and focused
    assert active(page)["id"] == "filing-label"
    page.keyboard.press("Control+a")
    page.keyboard.type(LABEL)
    page.click("#reply-body")
    page.keyboard.type(f"{first}, yes: a post on keeping track of repeated requests is next.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    request = service.stored(ids[first])["request"]
    assert request and service.stored(ids[first])["request_filed"]

    for name in others:
        open_comment(page, service, ids[name])
        top = page.locator('#filing input[data-filing-key="1"]')
        assert top.get_attribute("value") == request, name  # suggested first
        page.keyboard.press("1")  # the one key
        assert top.is_checked()
        reply(page, WRITTEN_FOR[name])
        stored = service.stored(ids[name])
        assert (stored["request"], stored["request_filed"]) == (request, True), name

    for name in NOT_REQUESTS:
        open_comment(page, service, ids[name])
        page.keyboard.press("0")
        assert page.locator('#filing input[value="none"]').is_checked()
        reply(page, WRITTEN_FOR[name])
        stored = service.stored(ids[name])
        assert stored["request_filed"] and stored["request"] != request, name

    page.goto(f"{service.url}/moderate/requests")
    card = page.locator(f'article[data-request-id="{request}"]')
    assert LABEL in card.inner_text()
    assert re.search(r"\b4 people\b", card.inner_text()), card.inner_text()
    assert page.locator("article[data-request-id]").count() == 1  # nothing else counted

    page.goto(f"{service.url}/moderate/requests/{request}")
    status = page.locator(f"#status-{request}")
    status.evaluate("field => { const box = field.closest('details'); if (box) box.open = true; }")
    status.select_option("done")
    page.fill(f"#link-{request}", LINK)
    with page.expect_navigation():
        page.locator(f"#link-{request}").press("Enter")
    for _again in range(2):  # marking it done twice still mails each reader once
        status = page.locator(f"#status-{request}")
        status.evaluate(
            "field => { const box = field.closest('details'); if (box) box.open = true; }")
        with page.expect_navigation():
            page.locator(f"#link-{request}").press("Enter")

    store = open_store(service.folder / "store")
    try:
        done = Counter(message.to for message in store.list_messages(limit=500)
                       if message.kind == "request_done")
    finally:
        store.close()
    assert done == Counter({f"{name.lower()}@example.org": 1 for name in ASKING})
