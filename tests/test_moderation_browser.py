"""The author's moderation pages in a real Chromium, against the service running under gunicorn:
keyboard-only sign-in and replying, the nudge, spam and restore, CSRF, labels and focus, and
the live preview."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import SERVICE_MANIFEST
from tests.servers import free_port, running_service, service_environment

pytestmark = pytest.mark.browser

NAME, EMAIL, PASSWORD = "Ada", "ada@blog.test", "correct horse battery"
DESKTOP = {"width": 1280, "height": 900}


# --- the service, for real ---------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    url: str  # http://127.0.0.1:<port>
    environment: dict[str, str]
    folder: Path

    def flask(self, *arguments: str) -> str:
        """Run `flask --app comments_service …` against this service's store."""
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "comments_service", *arguments],
            env=self.environment, cwd=self.folder, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def stored(self, comment_id: str) -> dict:
        """The comment as the store holds it (through `flask export`)."""
        document = json.loads(self.flask("export"))
        return next(record for record in document["comments"] if record["id"] == comment_id)

    def post_comment(self, name: str, body: str, thread: str = "hello") -> str:
        """A reader's comment through the public API; returns its id."""
        request = urllib.request.Request(
            f"{self.url}/api/threads/{thread}/comments",
            data=json.dumps({"name": name, "body": body}).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
            return json.load(response)["comment"]["id"]

    def thread(self, thread: str = "hello") -> dict:
        with urllib.request.urlopen(f"{self.url}/api/threads/{thread}", timeout=10) as response:
            return json.load(response)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """gunicorn -w 2 on a free loopback port, a fresh store, and the author Ada."""
    manifest = tmp_path / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
    environment = service_environment(
        tmp_path, MANIFEST=str(manifest), SECRET_KEY="browser-test-secret", RATE_LIMIT="off",
        SIGN_IN_DELAY_SECONDS="0",
    )
    port = free_port()
    service = Service(f"http://127.0.0.1:{port}", environment, tmp_path)
    service.flask("add-author", "--name", NAME, "--email", EMAIL, "--password", PASSWORD)
    with running_service(tmp_path, environment, port=port):
        yield service


# --- helpers -----------------------------------------------------------------------------------


def sign_in(page, service: Service) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(f"{service.url}/moderate/sign-in")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{service.url}/moderate/")


def active(page) -> dict:
    """What has the keyboard focus, and how it looks."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            const box = el.getBoundingClientRect();
            return {
                tag: el.tagName.toLowerCase(), id: el.id, cls: String(el.className),
                text: (el.textContent || '').trim().replace(/\\s+/g, ' '),
                outlineStyle: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth),
                left: box.left, top: box.top, width: box.width, height: box.height,
            };
        }"""
    )


def queue_ids(page) -> list[str]:
    return page.locator("ol.queue article.card").evaluate_all(
        "cards => cards.map(card => card.dataset.commentId)"
    )


def type_reply(page, text: str) -> None:
    """Press "r" to focus the reply box, then type as a person would."""
    page.keyboard.press("r")
    assert active(page)["id"] == "reply-body"
    page.keyboard.type(text)


# --- 1. signing in -----------------------------------------------------------------------------


def test_anonymous_visit_is_sent_to_sign_in_and_keyboard_sign_in_lands_on_the_queue(
    page, service: Service
) -> None:
    page.set_viewport_size(DESKTOP)
    page.goto(f"{service.url}/moderate/")
    address = urlsplit(page.url)
    assert address.path == "/moderate/sign-in"
    assert parse_qs(address.query) == {"next": ["/moderate/"]}
    assert page.locator("h1").inner_text() == "Sign in"

    # Keyboard only: the first Tab reaches the skip link, a few more the email field.
    page.keyboard.press("Tab")
    assert active(page)["text"] == "Skip to content"
    for _ in range(4):
        page.keyboard.press("Tab")
        if active(page)["id"] == "email":
            break
    assert active(page)["id"] == "email"
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")
    assert active(page)["id"] == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")

    page.wait_for_url(f"{service.url}/moderate/")
    assert page.locator("h1").inner_text().startswith("Waiting for your reply")
    assert page.locator(".who").inner_text() == NAME


def test_a_wrong_password_keeps_the_author_out_with_a_labelled_error(page, service) -> None:
    page.goto(f"{service.url}/moderate/sign-in")
    page.fill("#email", EMAIL)
    page.fill("#password", "not the password")
    page.press("#password", "Enter")
    page.wait_for_load_state()
    error = page.locator("#sign-in-error")
    assert error.get_attribute("role") == "alert"
    assert error.inner_text() == "Email or password is wrong."
    assert page.locator("#email").get_attribute("aria-describedby") == "sign-in-error"
    assert page.locator("#email").input_value() == EMAIL
    page.goto(f"{service.url}/moderate/")
    assert "/moderate/sign-in" in page.url


# --- 2. answering the whole queue with the keyboard --------------------------------------------


READERS = (
    ("Rosa", "The queue idea helped me answer every reader of my newsletter.", "hello",
     "Rosa, glad the queue suits a newsletter: which issue drew the most answers?"),
    ("Tom", "Gardening blogs need this: my tomato posts get dozens of questions.", "hello",
     "Tom, tomato questions deserve answers. Do you batch them by variety or by season?"),
    ("Lea", "I tried weekly digests instead and my readers felt ignored.", "second",
     "Lea, weekly digests sound efficient; what made readers feel ignored, the delay or tone?"),
)


def test_the_whole_queue_answered_with_the_keyboard_only(page, service: Service) -> None:
    ids = [service.post_comment(name, body, thread) for name, body, thread, _ in READERS]
    sign_in(page, service)
    assert queue_ids(page) == ids  # oldest first
    assert page.locator("h1 .count").inner_text() == "3"

    page.keyboard.press("r")  # on the queue: open the oldest comment
    for index, (comment_id, (name, _, _, reply)) in enumerate(zip(ids, READERS, strict=True)):
        # Each opens to be answered: the reply box already has the focus (#24).
        page.wait_for_url(f"{service.url}/moderate/comments/{comment_id}?reply=1")
        assert page.locator("h1").inner_text().startswith(name)
        if index:
            flash = page.locator(".flash--success").inner_text()
            assert flash == f"Replied to {READERS[index - 1][0]}."
        assert active(page)["id"] == "reply-body"
        page.keyboard.type(reply)
        page.keyboard.press("Control+Enter")  # Reply & next

    page.wait_for_url(f"{service.url}/moderate/")
    assert "The queue is empty" in page.locator("main").inner_text()
    assert page.locator("p.empty").inner_text().startswith("Nothing is waiting")
    assert page.locator("h1 .count").inner_text() == "0"
    assert queue_ids(page) == []

    published = {}
    for thread in ("hello", "second"):
        for comment in service.thread(thread)["comments"]:
            published[comment["id"]] = comment
    for comment_id, (name, _, _, reply) in zip(ids, READERS, strict=True):
        [answer] = published[comment_id]["replies"]
        assert answer["is_author"] is True
        assert answer["name"] == NAME
        assert reply.split(",")[1].split()[0] in answer["html"]
        assert published[comment_id]["name"] == name
    assert service.thread("hello")["count"] == 4 and service.thread("second")["count"] == 2


def test_j_k_move_through_the_queue_and_a_approves(page, service: Service) -> None:
    first = service.post_comment("Rosa", "The queue idea helped me with my newsletter.")
    second = service.post_comment("Tom", "My tomato posts get dozens of questions.")
    sign_in(page, service)
    page.keyboard.press("j")
    assert active(page)["text"] == "Rosa"
    page.keyboard.press("j")
    assert active(page)["text"] == "Tom"
    page.keyboard.press("k")
    assert active(page)["text"] == "Rosa"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{service.url}/moderate/comments/{first}")

    page.keyboard.press("j")
    page.wait_for_url(f"{service.url}/moderate/comments/{second}")
    page.keyboard.press("k")
    page.wait_for_url(f"{service.url}/moderate/comments/{first}")
    shortcuts = page.locator("#shortcuts")
    assert shortcuts.get_attribute("open") is None
    page.keyboard.press("?")
    assert shortcuts.get_attribute("open") is not None
    assert shortcuts.locator("dl").is_visible()

    page.keyboard.press("a")  # approve without replying & next: public, still waiting
    page.wait_for_url(f"{service.url}/moderate/comments/{second}?reply=1")
    assert "still waits for your reply" in page.locator(".flash--success").inner_text()
    assert service.thread()["count"] == 1
    assert service.stored(first)["state"] == "awaiting_reply"
    page.goto(f"{service.url}/moderate/comments/{first}")
    assert page.locator("#approve-form").count() == 0


def test_single_key_shortcuts_can_be_turned_off(page, service: Service) -> None:
    comment = service.post_comment("Rosa", "The queue idea helped me with my newsletter.")
    sign_in(page, service)
    page.goto(f"{service.url}/moderate/comments/{comment}")
    page.locator("#shortcuts summary").click()
    page.check("#single-key-shortcuts-off")
    page.locator("h1").click()  # focus away from the checkbox
    page.keyboard.press("s")  # would mark spam if the shortcuts were on
    page.reload()
    assert page.locator("#single-key-shortcuts-off").is_checked()
    assert service.stored(comment)["state"] == "awaiting_reply"
    page.keyboard.press("r")
    assert active(page)["id"] != "reply-body"


# --- 3. the nudge ------------------------------------------------------------------------------


def test_the_nudge_warns_on_thanks_and_sending_anyway_works(page, service: Service) -> None:
    comment_id = service.post_comment("Rosa", "The queue idea helped me with my newsletter.")
    sign_in(page, service)
    page.goto(f"{service.url}/moderate/comments/{comment_id}")
    assert page.locator("#nudge").count() == 0
    type_reply(page, "Thanks!")
    page.keyboard.press("Control+Enter")

    nudge = page.locator("#nudge")
    nudge.wait_for()
    assert nudge.get_attribute("role") == "alert"
    assert "could answer any comment" in nudge.inner_text()
    assert page.get_by_role("alert").count() == 1
    assert page.locator("#reply-body").input_value() == "Thanks!"  # the draft is kept
    assert page.locator("#reply-next").inner_text() == "Send anyway & next"
    assert page.locator("#reply-only").inner_text() == "Send anyway"
    assert service.stored(comment_id)["state"] == "awaiting_reply"  # nothing was sent

    page.keyboard.press("r")
    assert active(page)["id"] == "reply-body"
    page.keyboard.press("Control+Enter")  # send anyway (the same text)
    page.wait_for_url(f"{service.url}/moderate/")
    assert page.locator("p.empty").is_visible()
    [comment] = service.thread()["comments"]
    assert comment["id"] == comment_id
    assert [(r["is_author"], r["html"]) for r in comment["replies"]] == [(True, "<p>Thanks!</p>")]


def test_an_edited_draft_is_checked_again(page, service: Service) -> None:
    comment_id = service.post_comment("Rosa", "The queue idea helped me with my newsletter.")
    sign_in(page, service)
    page.goto(f"{service.url}/moderate/comments/{comment_id}")
    type_reply(page, "Thanks!")
    page.keyboard.press("Control+Enter")
    page.locator("#nudge").wait_for()
    page.keyboard.press("r")
    page.keyboard.type(" Great!")
    page.keyboard.press("Control+Enter")
    page.locator("#nudge").wait_for()
    assert page.locator("#reply-body").input_value() == "Thanks! Great!"
    assert service.stored(comment_id)["state"] == "awaiting_reply"


# --- 4. spam and restore -----------------------------------------------------------------------


def test_spam_with_s_and_restore_with_not_spam(page, service: Service) -> None:
    spammy = service.post_comment("Rosa", "Cheap watches at my site, best prices today.")
    other = service.post_comment("Tom", "My tomato posts get dozens of questions.")
    sign_in(page, service)
    page.goto(f"{service.url}/moderate/comments/{spammy}")
    page.keyboard.press("s")
    page.wait_for_url(f"{service.url}/moderate/comments/{other}?reply=1")  # on to the next
    assert page.locator(".flash--success").inner_text() == "Rosa's comment was moved to spam."

    page.goto(f"{service.url}/moderate/")
    assert queue_ids(page) == [other]
    page.goto(f"{service.url}/moderate/spam")
    assert page.locator("article.card").evaluate_all(
        "cards => cards.map(card => card.dataset.commentId)") == [spammy]
    assert service.stored(spammy)["state"] == "spam"

    restore = page.get_by_role("button", name="Not spam: restore Rosa's comment")
    restore.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{service.url}/moderate/spam")
    page.locator(".flash--success").wait_for()
    assert page.locator(".flash--success").inner_text() == "Rosa's comment is back in the queue."
    assert page.locator("p.empty").inner_text() == "No spam."
    page.goto(f"{service.url}/moderate/")
    assert queue_ids(page) == [spammy, other]
    assert service.stored(spammy)["state"] == "awaiting_reply"


# --- 5. forged posts ---------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(page, service: Service) -> None:
    comment_id = service.post_comment("Rosa", "The queue idea helped me with my newsletter.")
    sign_in(page, service)
    before = service.stored(comment_id)
    target = f"{service.url}/moderate/comments/{comment_id}/spam"

    # The signed-in context's cookies go along; only the token is missing (or wrong).
    forged = page.request.post(target, form={"return_to": "queue"}, max_redirects=0)
    assert forged.status == 400
    wrong = page.request.post(target, form={"csrf_token": "forged", "return_to": "queue"},
                              max_redirects=0)
    assert wrong.status == 400

    # A form injected into the author's own page, as a cross-site attacker would build it.
    page.goto(f"{service.url}/moderate/")
    with page.expect_navigation() as navigation:
        page.evaluate(
            """target => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = target;
                document.body.appendChild(form);
                form.submit();
            }""",
            target,
        )
    assert navigation.value.status == 400
    assert "This form has expired" in page.locator("main").inner_text()
    assert service.stored(comment_id) == before

    # The same request with the page's token goes through: the session was not the problem.
    page.goto(f"{service.url}/moderate/comments/{comment_id}")
    token = page.locator("#spam-form input[name=csrf_token]").input_value()
    genuine = page.request.post(target, form={"csrf_token": token, "return_to": "queue"},
                                max_redirects=0)
    assert genuine.status == 303
    assert service.stored(comment_id)["state"] == "spam"


# --- 6. labels, focus and headings ---------------------------------------------------------------

UNNAMED_CONTROLS = """() => {
    const named = el => {
        const by = (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
            .map(id => (document.getElementById(id) || {}).textContent || '').join(' ').trim();
        const label = Array.from(el.labels || []).map(l => l.textContent).join(' ').trim();
        const own = el.tagName === 'BUTTON' ? el.textContent.trim()
            : ['submit', 'reset', 'button'].includes(el.type) ? (el.value || '').trim() : '';
        return by || (el.getAttribute('aria-label') || '').trim() || label || own
            || (el.getAttribute('title') || '').trim();
    };
    const controls = Array.from(
        document.querySelectorAll('input:not([type=hidden]), select, textarea, button'));
    return {
        count: controls.length,
        unnamed: controls.filter(el => !named(el)).map(el => el.outerHTML.slice(0, 120)),
    };
}"""


def check_page(page, url: str) -> list[dict]:
    """Labels, headings and the keyboard path through one page; returns the Tab stops."""
    page.goto(url)
    controls = page.evaluate(UNNAMED_CONTROLS)
    assert controls["count"] > 0
    assert controls["unnamed"] == [], f"controls without an accessible name on {url}"
    # Chromium's own accessibility tree agrees: no unnamed control.
    tree = page.locator("body").aria_snapshot()
    bare = re.findall(r"^\s*- (?:textbox|combobox|button|checkbox|searchbox)\s*(?::.*)?$",
                      tree, flags=re.MULTILINE)
    assert bare == [], tree
    assert page.locator("h1").count() == 1
    levels = page.locator("h1, h2, h3, h4, h5, h6").evaluate_all(
        "headings => headings.map(h => Number(h.tagName[1]))")
    assert levels[0] == 1 and all(
        later <= earlier + 1 for earlier, later in pairwise(levels)
    ), f"heading levels skip on {url}: {levels}"

    assert active(page)["tag"] == "body"  # nothing takes the focus on its own
    stops = []
    for _ in range(40):
        page.keyboard.press("Tab")
        now = active(page)
        if now["tag"] == "body" or (stops and now == stops[0]):
            break
        assert now["outlineStyle"] != "none" and now["outlineWidth"] >= 2, now
        assert now["width"] > 1 and now["height"] > 1, f"focus on an invisible element: {now}"
        stops.append(now)
    assert stops, f"nothing on {url} takes the focus"
    return stops


def test_pages_have_named_controls_a_skip_link_first_visible_focus_and_one_h1(
    page, service: Service
) -> None:
    comment_id = service.post_comment("Rosa", "The queue idea helped me with my newsletter.")
    page.set_viewport_size(DESKTOP)
    signed_out = [f"{service.url}/moderate/sign-in"]
    signed_in = [f"{service.url}/moderate/", f"{service.url}/moderate/comments/{comment_id}",
                 f"{service.url}/moderate/spam"]
    for url in signed_out + signed_in:
        if url == signed_in[0]:
            sign_in(page, service)
        stops = check_page(page, url)
        skip = stops[0]
        assert skip["text"] == "Skip to content", url
        assert skip["left"] >= 0 and skip["top"] >= 0, "the skip link stays off screen"
        ids = [stop["id"] for stop in stops]
        if url in signed_out:
            assert ids.index("email") < ids.index("password"), ids
        assert ("reply-body" in ids) == ("/comments/" in url), ids

    # The skip link moves the focus into the main content.
    page.goto(f"{service.url}/moderate/comments/{comment_id}")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert active(page)["id"] == "content"
    page.keyboard.press("Tab")
    assert active(page)["text"] == "Back to the queue"


# --- 7. the live preview -----------------------------------------------------------------------


def test_the_live_preview_renders_markdown_without_sending(page, service: Service) -> None:
    comment_id = service.post_comment("Rosa", "The queue idea helped me with my newsletter.")
    sign_in(page, service)
    page.goto(f"{service.url}/moderate/comments/{comment_id}")
    preview = page.locator("#preview")
    assert preview.is_hidden()
    type_reply(page, "Rosa, your *newsletter* queue is `clever`.")
    emphasis = page.locator("#preview-body em")
    emphasis.wait_for()
    assert emphasis.inner_text() == "newsletter"
    assert page.locator("#preview-body code").inner_text() == "clever"
    assert preview.is_visible()
    assert page.url == f"{service.url}/moderate/comments/{comment_id}"  # still here
    assert service.stored(comment_id)["state"] == "awaiting_reply"
    assert service.thread()["comments"] == []  # nothing public, no reply

    # Emptying the box hides the preview again.
    page.keyboard.press("Control+a")
    page.keyboard.press("Backspace")
    preview.wait_for(state="hidden")
    assert page.locator("#reply-body").input_value() == ""


# --- filing requests while replying (#18) -------------------------------------------------------


def test_requests_are_filed_with_one_key_while_replying(page, service: Service) -> None:
    """The author files the first comment as a new request, then the second under the
    suggestion ranked first with the key 1; the requests page counts the two people."""
    first = service.post_comment("Kim", "Could you add per-tag RSS feeds?")
    second = service.post_comment("Lou", "Please make separate RSS feeds for each tag.")
    sign_in(page, service)
    page.goto(f"{service.url}/moderate/comments/{first}")
    page.keyboard.press("n")  # a new request; its label is prefilled from the comment
    assert active(page)["id"] == "filing-label"
    page.keyboard.press("Control+a")
    page.keyboard.type("Per-tag RSS feeds")
    page.click("#reply-body")
    page.keyboard.type("Kim, per-tag feeds are a fine idea: I will add them.")
    page.keyboard.press("Control+Enter")  # reply & next, and file
    page.wait_for_url(re.compile(rf".*/moderate/comments/{second}.*"))

    suggestion = page.locator('#filing input[data-filing-key="1"]')
    assert "Per-tag RSS feeds" in page.locator("#filing label").first.inner_text()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("1")
    assert suggestion.is_checked()
    type_reply(page, "Lou, noted: separate feeds per tag are on the way.")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(r".*/moderate/.*"))
    assert service.stored(first)["request"] == service.stored(second)["request"]
    assert service.stored(second)["request_filed"] is True

    page.goto(f"{service.url}/moderate/requests")
    card = page.locator("article[data-request-id]").first
    assert "Per-tag RSS feeds" in card.inner_text() and "2" in card.inner_text()

