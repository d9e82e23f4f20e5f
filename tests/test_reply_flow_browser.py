"""One key a comment (#24), in a real Chromium against gunicorn: from the queue, `r` opens the
oldest comment with the reply box focused; each reply is its text and Ctrl+Enter, which sends
it and opens the next comment, its reply box focused again, the comment and the box in view."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.test_moderation_browser import Service, active, service, sign_in  # noqa: F401

pytestmark = pytest.mark.browser

# (topic, a reply written for that reader alone: the nudge holds back copied replies)
TOPICS = (
    ("sourdough", "my starter lives in the fridge and gets fed on Fridays."),
    ("bike repairs", "a chain checker was the best five euros I ever spent."),
    ("tax forms", "I keep one folder per year and a list of what goes in it."),
    ("night trains", "the couchette to Vienna is the one I would try first."),
    ("garden beds", "raised ones saved my back; start with a single bed."),
    ("chess", "the endgame books helped me more than any opening."),
    ("knitting", "socks taught me patience, scarves taught me nothing."),
    ("old maps", "the library lends scans, ask at the front desk."),
    ("jazz records", "start with Kind of Blue, then follow the sidemen."),
    ("rain gear", "a cheap poncho beats an expensive jacket on a bike."),
    ("tea", "I brew it cooler than the packet says, about eighty degrees."),
    ("hill walks", "the ridge path is easier clockwise, the views open later."),
    ("fonts", "two families are plenty; I use one serif and one mono."),
    ("kites", "a light wind and an open beach are all it took for us."),
    ("bread ovens", "the clay one took a summer to build and a year to master."),
    ("sea swims", "go with someone, and get out before you feel cold."),
    ("pottery", "centring the clay took me six evenings, then it clicked."),
    ("radio", "the shortwave bands come alive after sunset, try then."),
    ("birds", "a feeder by the window taught me their names in a month."),
    ("ferries", "the early crossing is quieter and the coffee is fresh."),
)


def in_view(page, selector: str) -> bool:
    return page.evaluate(
        """selector => {
            const box = document.querySelector(selector).getBoundingClientRect();
            return box.top >= 0 && box.bottom <= window.innerHeight;
        }""", selector)


@pytest.mark.parametrize(("viewport", "count"), [
    ({"width": 1280, "height": 900}, 20), ({"width": 390, "height": 844}, 5),
], ids=["desktop-20", "phone-5"])
def test_comments_are_answered_with_one_key_each_beyond_the_text(
        page, service: Service, viewport, count) -> None:  # noqa: F811
    topics = TOPICS[:count]
    ids = [service.post_comment(f"Reader {number}", f"A question about {topic}, please?")
           for number, (topic, _answer) in enumerate(topics)]
    sign_in(page, service)
    page.set_viewport_size(viewport)
    with page.expect_navigation():
        page.keyboard.press("r")  # the queue: start with the oldest
    for number, (topic, answer) in enumerate(topics):
        assert urlsplit(page.url).path == f"/moderate/comments/{ids[number]}", (number, page.url)
        assert active(page)["id"] == "reply-body", number  # no key spent on focusing it
        assert in_view(page, "#reply-body"), number
        if viewport["width"] > 1000:  # on a phone the box comes first, the comment above it
            assert in_view(page, "article.card"), number
        page.wait_for_function(
            "() => document.getElementById('arrival').textContent"
            ".includes('reply box has the focus')")
        page.keyboard.type(f"Reader {number}, on {topic}: {answer}")
        with page.expect_navigation():
            page.keyboard.press("Control+Enter")
    assert page.url.rstrip("/").endswith("/moderate")  # the queue is empty
    assert "every comment has its reply" in page.content()
    for comment_id in ids:
        assert service.stored(comment_id)["state"] == "replied"


def post_as(running: Service, body: str, email: str, thread: str = "hello") -> str:
    request = urllib.request.Request(
        f"{running.url}/api/threads/{thread}/comments",
        data=json.dumps({"name": "Maya", "body": body, "email": email}).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["comment"]["id"]


def test_the_reader_is_beside_the_reply_box(page, service: Service) -> None:  # noqa: F811
    """A returning reader with three earlier comments: the panel beside the reply box lists
    them, newest first, and says since when they write."""
    earlier = ["Could you write about sourdough starters?", "The cold kitchen killed mine.",
               "Rye flour saved it!"]
    for body in earlier:
        post_as(service, body, "maya@reader.test")
    current = post_as(service, "Now the bread is too sour.", "maya@reader.test")
    sign_in(page, service)
    page.goto(f"{service.url}/moderate/comments/{current}")
    panel = page.locator("section.reader")
    assert "Maya and you" in panel.inner_text() and "4 comments" in panel.inner_text()
    assert panel.locator(".reader__text").all_inner_texts() == list(reversed(earlier))
    reply_box = page.locator("#reply-body").bounding_box()
    beside = panel.bounding_box()
    assert beside["x"] >= reply_box["x"] + reply_box["width"]  # beside it, on a wide screen
    assert "maya@reader.test" not in page.content()
