"""The readers' side in a real Chromium: the comment widget and the baked comments, against the
sample site built for loopback ports and the real comment service under gunicorn.

The service runs with TELLMEMORE_SPAM_CHECKS=off (so tests need not wait 3 s before each send);
`test_the_form_token_is_taken_when_the_form_is_first_used` checks, with the service's own
`spam_reasons`, that what the widget sends passes the checks when they are on. The author's
replies are written straight into the same store from this process (`replying.reply`): the
store is safe across processes and the service sees the change on its next read.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from comments_service.comments.render import render_comment
from comments_service.comments.replying import reply
from comments_service.comments.spam import spam_reasons
from comments_service.models import Author, Comment, CommentState, new_comment_id, utc_now
from comments_service.store import Store, open_store
from tests.injection_corpus import PAYLOADS
from tests.servers import free_port, running_service, service_environment

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
SECRET = "widget-browser-test-secret"
AUTHOR = Author(id="author-ada", name="Ada Listener", email="ada@blog.test",
                password_hash="unused", created="2026-01-01T00:00:00+00:00")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WAITING = "Waiting for the author's reply"

# Each test writes to its own article, so the tests do not depend on each other's comments.
POSTING = "reply-to-every-comment"
NO_SCRIPT = "running-a-small-blog"
REPLYING = "ending-with-reflection-questions"
INJECTION = "measuring-reply-speed"
BAKED = "four-kinds-of-reply"
SCREENSHOT = "listening-to-readers"
OTHER = "tally-repeated-requests"


# --- the stack: built sites, their static servers, the service --------------------------------


def build(output: Path, **settings: object) -> Path:
    """Build the sample site. One `-e` with every pair: Pelican keeps only the last `-e` given."""
    pairs = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
    command = [sys.executable, "-m", "pelican", str(ROOT / "content"), "-s",
               str(ROOT / "pelicanconf.py"), "-o", str(output), "--fatal", "errors", "-e", *pairs]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return output


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class StaticSite:
    url: str
    folder: Path
    server: http.server.ThreadingHTTPServer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(folder: Path, port: int) -> StaticSite:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return StaticSite(f"http://127.0.0.1:{port}", folder, server)


@dataclass
class Stack:
    site: StaticSite
    service: str
    store: Store
    manifest: dict
    extra_ports: dict[str, int] = field(default_factory=dict)

    def article_url(self, thread: str, site: StaticSite | None = None) -> str:
        entry = next(a for a in self.manifest["articles"] if a["thread"] == thread)
        path = entry["url"].split("/", 3)[3]
        return f"{(site or self.site).url}/{path}"

    def questions(self, thread: str) -> list[str]:
        entry = next(a for a in self.manifest["articles"] if a["thread"] == thread)
        return [question["id"] for question in entry["questions"]]

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.service}{path}", timeout=10) as response:
            return json.load(response)


@pytest.fixture(scope="module")
def stack_settings() -> dict[str, str]:
    """More service settings (names without TELLMEMORE_) for a module that imports ``stack``
    and overrides this fixture."""
    return {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, stack_settings: dict[str, str]
          ) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("widget")
    site_port, service_port = free_port(), free_port()
    ports = {"baked": free_port(), "fr": free_port()}
    service = f"http://127.0.0.1:{service_port}"
    output = build(folder / "site", SITEURL=f"http://127.0.0.1:{site_port}",
                   COMMENTS_SERVICE_URL=service, COMMENTS_EXPORT=None)
    manifest_path = output / "comments-manifest.json"
    environment = service_environment(
        folder, MANIFEST=str(manifest_path), SECRET_KEY=SECRET,
        SITE_ORIGINS=",".join(f"http://127.0.0.1:{port}" for port in (site_port, *ports.values())),
        RATE_LIMIT="off", SPAM_CHECKS="off", PUBLISH_POLICY="after_reply", **stack_settings,
    )
    site = serve(output, site_port)
    store = open_store(folder / "store")
    try:
        with running_service(folder, environment, port=service_port):
            yield Stack(site, service, store, json.loads(manifest_path.read_text("utf-8")), ports)
    finally:
        site.close()
        store.close()


# --- helpers ---------------------------------------------------------------------------------


def seed(store: Store, thread: str, name: str, body: str, **fields: object) -> Comment:
    """A reader comment, waiting, as if posted a moment ago."""
    return store.add_comment(Comment(
        id=new_comment_id(), thread=thread, name=name, body=body, html=render_comment(body),
        created=utc_now(), state=CommentState.AWAITING_REPLY, public=False, **fields,
    ))


@dataclass
class Watch:
    """Dialogs and console errors seen by a page; either fails the test that asks."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def watch(page) -> Watch:
    seen = Watch()

    def on_dialog(dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message) -> None:
        # Failed loads are reported with their address below (the favicon is not ours).
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            seen.errors.append(message.text)

    def on_response(response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            seen.errors.append(f"{response.status} {response.url}")

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.on("response", on_response)
    # A fetch still running when the test reloads the page is cancelled (ERR_ABORTED) by the
    # navigation, not failed: on a busy machine the widget's refresh can still be in flight.
    page.on("requestfailed", lambda request: request.failure == "net::ERR_ABORTED"
            or seen.errors.append(f"failed {request.url}"))
    return seen


def open_article(page, url: str, state: str = "live") -> None:
    page.goto(url)
    page.wait_for_selector(f"#comments[data-state='{state}']", state="attached")


def send(page, name: str, body: str) -> None:
    page.fill("#comment-body", body)
    page.fill("#comment-name", name)
    page.click("#comment-form button[type=submit]")


def li(page, comment_id: str):
    return page.locator(f"#comment-list li[data-id='{comment_id}']")


def mine(page) -> dict:
    return page.evaluate("JSON.parse(localStorage.getItem('tellmemore:mine') || '{}')")


def posted_id(page, body: str) -> str:
    """The id of the reader's own comment with this text, from the widget's localStorage."""
    for comment_id, entry in mine(page).items():
        if entry["b"] == body:
            return comment_id
    raise AssertionError(f"no comment {body!r} in localStorage")


def own(li_locator) -> object:
    """The card of a comment itself, not of its replies."""
    return li_locator.locator(":scope > article")


# --- 1. posting with JavaScript; the author's reply ------------------------------------------


def test_post_with_javascript_waits_then_shows_under_the_authors_reply(page, stack: Stack):
    seen = watch(page)
    page.set_viewport_size(DESKTOP)
    open_article(page, stack.article_url(POSTING))
    body = "Replying to every comment sounds slow. How long does it take you each week?"
    send(page, "Rosa", body)
    notice = page.locator("#comment-form-notice")
    notice.wait_for()
    assert "reached the author" in notice.inner_text()
    assert notice.get_attribute("role") == "status"

    comment_id = posted_id(page, body)
    entry = mine(page)[comment_id]
    assert entry["t"] == POSTING and entry["k"], "the edit token is kept with the comment"
    waiting = li(page, comment_id)
    assert "comment--waiting" in waiting.get_attribute("class")
    assert own(waiting).locator(".badge--waiting").inner_text() == WAITING
    assert own(waiting).locator(".comment__name").inner_text() == "Rosa"
    assert page.input_value("#comment-body") == "", "the form is cleared after sending"
    stored = stack.store.get_comment(comment_id)
    assert stored.state is CommentState.AWAITING_REPLY and not stored.public

    # The author replies; on the next visit the comment is public, the reply under it.
    answer = reply(stack.store, comment_id, AUTHOR, "About an hour, mostly on Sunday mornings.")
    page.reload()
    page.wait_for_selector("#comments[data-state='live']", state="attached")
    public = li(page, comment_id)
    assert public.count() == 1, "the public copy replaces the waiting one: no duplicate"
    assert "comment--waiting" not in public.get_attribute("class")
    assert page.locator("#comment-list .comment--waiting").count() == 0
    nested = public.locator(f":scope > ol > li[data-id='{answer.id}']")
    assert "comment--author" in nested.get_attribute("class")
    assert own(nested).locator(".badge--author").inner_text() == "Author"
    assert own(nested).locator(".comment__name").inner_text() == AUTHOR.name
    assert "Sunday mornings" in own(nested).locator(".comment__text").inner_text()
    assert own(public).locator("time").get_attribute("datetime") == stored.created
    assert not seen.dialogs and not seen.errors, (seen.dialogs, seen.errors)


# --- 2. without JavaScript ---------------------------------------------------------------------


def test_post_without_javascript_comes_back_with_the_notice(browser, stack: Stack):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        url = stack.article_url(NO_SCRIPT)
        page.goto(url)
        assert not page.locator("#comment-received").is_visible()
        page.fill("#comment-body", "Read without scripts, answered without scripts.")
        page.fill("#comment-name", "Noor")
        page.fill("#comment-email", "noor@example.org")
        page.check("#comment-notify")
        page.click("#comment-form button[type=submit]")
        page.wait_for_url(url + "#comment-received")
        notice = page.locator("#comment-received")
        assert notice.is_visible()
        assert "reached the author" in notice.inner_text()
    finally:
        context.close()
    stored = [c for c in stack.store.thread_comments(NO_SCRIPT) if c.name == "Noor"]
    assert len(stored) == 1
    assert stored[0].state is CommentState.AWAITING_REPLY and stored[0].notify


# --- 3. replying to a reply --------------------------------------------------------------------


def test_reply_to_an_authors_reply_goes_back_into_the_queue(page, stack: Stack):
    seen = watch(page)
    first = seed(stack.store, REPLYING, "Iris", "Do you answer the rude ones too?")
    answer = reply(stack.store, first.id, AUTHOR, "Yes, briefly and politely.")
    waiting_before = stack.store.count_waiting(thread=REPLYING)
    page.set_viewport_size(DESKTOP)
    open_article(page, stack.article_url(REPLYING))

    # Every public comment has a Reply button (a real <button type=button>), named for whom.
    buttons = page.locator("#comment-list .comment__actions button")
    assert buttons.count() >= 2
    assert set(buttons.evaluate_all("bs => bs.map(b => b.type)")) == {"button"}
    reply_button = own(li(page, answer.id)).get_by_role("button", name=f"Reply to {AUTHOR.name}")

    # Reply moves the form under the comment; Cancel takes it home and focus back.
    reply_button.click()
    form = li(page, answer.id).locator(":scope > #comment-form")
    assert form.count() == 1
    assert page.locator("#comment-form-heading").inner_text() == f"Reply to {AUTHOR.name}"
    assert page.input_value("#comment-form input[name=parent]") == answer.id
    assert page.evaluate("document.activeElement.id") == "comment-body"
    page.get_by_role("button", name="Cancel reply").click()
    assert li(page, answer.id).locator("#comment-form").count() == 0
    assert page.locator("#comments > #comment-form").count() == 1
    assert page.input_value("#comment-form input[name=parent]") == ""
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        f"Reply to {AUTHOR.name}"
    )

    reply_button.click()
    send(page, "Iris", "Thank you, that is reassuring.")
    page.locator("#comment-form-notice").wait_for()
    assert page.locator("#comments > #comment-form").count() == 1, "the form goes home after"
    comment_id = posted_id(page, "Thank you, that is reassuring.")
    pending = li(page, answer.id).locator(f":scope > ol > li[data-id='{comment_id}']")
    assert "comment--waiting" in pending.get_attribute("class")
    stored = stack.store.get_comment(comment_id)
    assert stored.parent == answer.id and stored.state is CommentState.AWAITING_REPLY
    assert stack.store.count_waiting(thread=REPLYING) == waiting_before + 1
    assert not seen.dialogs and not seen.errors, (seen.dialogs, seen.errors)


# --- 4. answering a reflection question --------------------------------------------------------


def test_answer_this_chooses_the_question_and_the_comment_shows_it(page, stack: Stack):
    questions = stack.questions(OTHER)
    assert len(questions) >= 2
    chosen = questions[1]
    page.set_viewport_size(DESKTOP)
    open_article(page, stack.article_url(OTHER))
    page.locator(f"a.answer-this[data-question='{chosen}']").click()
    page.wait_for_url(f"**?question={chosen}#comment-form")
    assert page.input_value("#comment-question") == chosen
    assert page.evaluate("document.activeElement.id") == "comment-body"
    body = "The request I hear most is for an index of past answers."
    send(page, "Omar", body)
    page.locator("#comment-form-notice").wait_for()
    comment_id = posted_id(page, body)
    assert stack.store.get_comment(comment_id).question == chosen

    # Once public, the comment says which question it answers, linked to the question.
    reply(stack.store, comment_id, AUTHOR, "An index is a good idea; I will make one.")
    page.reload()
    page.wait_for_selector("#comments[data-state='live']", state="attached")
    label = own(li(page, comment_id)).locator(".comment__question a")
    assert label.get_attribute("href") == f"#q-{chosen}"
    assert page.locator(f"#q-{chosen}").count() == 1
    question_text = page.locator(f"#comment-question option[value='{chosen}']").inner_text()
    assert label.inner_text() == question_text.strip()

    # Arriving with ?question= chooses it too; the select still offers "none".
    third = questions[-1]
    open_article(page, stack.article_url(OTHER) + f"?question={third}#comment-form")
    assert page.input_value("#comment-question") == third
    # The live list went in above the form; the form stays where the reader was sent.
    top = page.locator("#comment-form").evaluate("f => f.getBoundingClientRect().top")
    assert 0 <= top < DESKTOP["height"] / 2, top
    page.select_option("#comment-question", "")
    assert page.input_value("#comment-question") == ""


# --- 5. script injection -----------------------------------------------------------------------


NAME_PAYLOADS = [p for p in PAYLOADS if "\n" not in p and len(p) <= 80 and p.strip()][:6]
BODY_PAYLOADS = [PAYLOADS[i] for i in (0, 8, 11, 17, 45, 62, 78)]


def assert_inert(page, seen: Watch) -> None:
    dangerous = page.evaluate(
        """() => {
            const list = document.getElementById('comment-list');
            const all = [...list.querySelectorAll('*')];
            const tags = 'script, img, svg, iframe, object, embed, math, style, form';
            return {
                elements: list.querySelectorAll(tags).length,
                handlers: all.filter(el => [...el.attributes].some(
                    a => a.name.startsWith('on'))).length,
                links: [...list.querySelectorAll('a[href]')].filter(
                    a => !/^(https?:|mailto:|#)/.test(a.getAttribute('href'))).length,
                pwned: window.__pwned === true,
            };
        }"""
    )
    assert dangerous == {"elements": 0, "handlers": 0, "links": 0, "pwned": False}, dangerous
    assert not seen.dialogs, f"a payload ran: {seen.dialogs}"
    assert not seen.errors, seen.errors


def test_script_injection_shows_as_text_and_runs_nothing(page, stack: Stack):
    seen = watch(page)
    page.add_init_script(
        "window.alert = window.confirm = window.prompt = () => { window.__pwned = true; };"
    )
    page.set_viewport_size(DESKTOP)
    open_article(page, stack.article_url(INJECTION))
    pairs = list(zip(NAME_PAYLOADS, BODY_PAYLOADS, strict=False))
    for name, body in pairs:
        send(page, name, body)
        page.wait_for_function(
            """body => Object.values(JSON.parse(localStorage.getItem('tellmemore:mine') || '{}'))
                       .some(m => m.b === body)""",
            arg=body,
        )
    assert_inert(page, seen)
    ids = {posted_id(page, body): name for name, body in pairs}
    for comment_id, name in ids.items():
        assert own(li(page, comment_id)).locator(".comment__name").text_content() == name.strip()

    # Public and loaded live from the thread, they stay text.
    for comment_id in ids:
        reply(stack.store, comment_id, AUTHOR, "Noted.")
    page.reload()
    page.wait_for_selector("#comments[data-state='live']", state="attached")
    for comment_id, name in ids.items():
        assert "comment--waiting" not in li(page, comment_id).get_attribute("class")
        assert own(li(page, comment_id)).locator(".comment__name").text_content() == name.strip()
    assert_inert(page, seen)


# --- 6. the service is down --------------------------------------------------------------------


def test_service_down_keeps_the_text_after_a_failed_send_and_a_reload(browser, stack: Stack):
    context = browser.new_context(viewport=DESKTOP)
    try:
        context.route(f"{stack.service}/**", lambda route: route.abort())
        page = context.new_page()
        url = stack.article_url(POSTING)
        open_article(page, url, state="offline")
        assert "could not be loaded" in page.locator("#comments-note").inner_text()
        body = "Written while the comment service was away."
        send(page, "Lena", body)
        alert = page.locator("#comment-form-alert")
        alert.wait_for()
        assert alert.get_attribute("role") == "alert"
        assert "Sending failed" in alert.inner_text()
        assert page.input_value("#comment-body") == body

        page.reload()
        page.wait_for_selector("#comments[data-state='offline']", state="attached")
        assert page.input_value("#comment-body") == body, "the draft survives a reload"

        # Back up: the same text goes through, and the draft is forgotten.
        context.unroute(f"{stack.service}/**")
        page.fill("#comment-name", "Lena")
        page.click("#comment-form button[type=submit]")
        page.locator("#comment-form-notice").wait_for()
        assert page.evaluate(f"localStorage.getItem('tellmemore:draft:{POSTING}')") is None
        assert posted_id(page, body)
    finally:
        context.close()


# --- 7. the server's per-field errors ----------------------------------------------------------


def test_the_servers_field_errors_show_inline_and_are_announced(page, stack: Stack):
    page.set_viewport_size(DESKTOP)
    open_article(page, stack.article_url(POSTING))
    page.fill("#comment-body", "A fine comment with a bad website.")
    page.fill("#comment-name", "   ")  # the browser's `required` lets spaces through
    page.fill("#comment-website", "javascript:alert(1)")  # a URL to the browser, not to us
    page.click("#comment-form button[type=submit]")
    alert = page.locator("#comment-form-alert")
    alert.wait_for()
    assert "not sent" in alert.inner_text()
    for control, words in (("#comment-name", "give a name"), ("#comment-website", "http")):
        field_ = page.locator(control)
        assert field_.get_attribute("aria-invalid") == "true"
        described = field_.get_attribute("aria-describedby").split()
        message = page.locator(f"#{described[0]}")
        assert words in message.inner_text(), message.inner_text()
    assert page.evaluate("document.activeElement.id") == "comment-name", "focus on the first"
    assert page.input_value("#comment-body") == "A fine comment with a bad website."
    # The email hint stays described; fixing a field clears its error.
    page.fill("#comment-name", "Valid Name")
    assert page.locator("#comment-name").get_attribute("aria-invalid") is None
    assert page.locator("#comment-name-error").count() == 0
    page.fill("#comment-website", "https://example.org/")
    page.click("#comment-form button[type=submit]")
    page.locator("#comment-form-notice").wait_for()
    assert page.locator("#comment-form [aria-invalid]").count() == 0
    assert page.locator("#comment-form-alert").inner_text() == ""
    comment_id = posted_id(page, "A fine comment with a bad website.")
    name_link = own(li(page, comment_id)).locator("a.comment__name")
    assert name_link.get_attribute("href") == "https://example.org/"
    assert name_link.get_attribute("rel") == "nofollow ugc noopener"


# --- 8. editing and withdrawing one's own comment ----------------------------------------------


def test_edit_and_withdraw_own_comment_inside_the_window(page, stack: Stack):
    page.set_viewport_size(DESKTOP)
    url = stack.article_url(POSTING)
    open_article(page, url)
    send(page, "Milan", "First thoughts, badly put.")
    page.locator("#comment-form-notice").wait_for()
    comment_id = posted_id(page, "First thoughts, badly put.")
    card = own(li(page, comment_id))

    card.get_by_role("button", name="Edit").click()
    editor = page.get_by_label("Edit your comment")
    assert editor.input_value() == "First thoughts, badly put."
    editor.fill("Second thoughts, better put.")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_function(
        "id => document.querySelector(`li[data-id='${id}'] .comment__edited`)", arg=comment_id
    )
    assert "Second thoughts" in card.locator(".comment__text").inner_text()
    assert stack.store.get_comment(comment_id).body == "Second thoughts, better put."

    card.get_by_role("button", name="Withdraw").click()
    page.get_by_role("button", name="Yes, withdraw it").click()
    page.wait_for_function(
        "id => !document.querySelector(`li[data-id='${id}']`)", arg=comment_id
    )
    assert "withdrawn" in page.locator("#comments-note").inner_text()
    assert comment_id not in mine(page)
    assert stack.store.get_comment(comment_id).state is CommentState.WITHDRAWN

    # After the window the buttons are gone, but a waiting comment still shows as waiting.
    send(page, "Milan", "Third thoughts.")
    page.locator("#comment-form-notice").wait_for()
    late = posted_id(page, "Third thoughts.")
    # The window is ended as the reloaded page starts, before the widget reads it: set from
    # the old page, a render still under way there could write the old window back.
    page.add_init_script(f"(() => {{ const id = {json.dumps(late)};" + """
        const m = JSON.parse(localStorage.getItem('tellmemore:mine') || '{}');
        if (m[id]) { m[id].u = Date.now() - 1000;
                     localStorage.setItem('tellmemore:mine', JSON.stringify(m)); } })()""")
    page.reload()
    page.wait_for_selector("#comments[data-state='live']", state="attached")
    late_card = own(li(page, late))
    assert late_card.locator(".badge--waiting").count() == 1
    assert late_card.get_by_role("button").count() == 0


def test_after_the_authors_reply_edit_and_withdraw_give_way_to_the_reason(page, stack: Stack):
    """Issue 20, item 1: the service refuses changes once the author acted (409); the widget
    shows why instead of buttons that would fail."""
    from comments_service.comments.replying import approve

    page.set_viewport_size(DESKTOP)
    open_article(page, stack.article_url(POSTING))
    send(page, "Ines", "A first question, before any answer.")
    page.locator("#comment-form-notice").wait_for()
    approved = posted_id(page, "A first question, before any answer.")
    send(page, "Ines", "A second question, answered soon.")
    page.wait_for_function("() => document.querySelectorAll('.comment--waiting').length >= 2")
    answered = posted_id(page, "A second question, answered soon.")
    assert own(li(page, answered)).get_by_role("button", name="Edit").count() == 1

    approve(stack.store, approved)
    reply(stack.store, answered, AUTHOR, "Answered.")
    page.reload()
    page.wait_for_selector("#comments[data-state='live']", state="attached")
    for comment_id, reason in ((answered, "replied"), (approved, "published")):
        card = own(li(page, comment_id))
        assert card.get_by_role("button", name="Edit").count() == 0
        assert card.get_by_role("button", name="Withdraw").count() == 0
        assert f"The author has {reason}" in card.locator(".comment__locked").inner_text()


# --- 9. follow-up email and "Remember me" ------------------------------------------------------


def test_follow_up_needs_an_email_and_remember_me_is_opt_in(browser, stack: Stack):
    url = stack.article_url(POSTING)
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        open_article(page, url)
        assert page.locator("#comment-remember").is_visible()
        assert page.locator("#comment-notify").is_disabled(), "no email, no follow-up"
        page.fill("#comment-email", "vera@example.org")
        assert page.locator("#comment-notify").is_enabled()
        page.check("#comment-notify")
        send(page, "Vera", "Please tell me when you answer.")
        page.locator("#comment-form-notice").wait_for()
        stored = stack.store.get_comment(posted_id(page, "Please tell me when you answer."))
        assert stored.notify and stored.email == "vera@example.org"
        assert page.evaluate("localStorage.getItem('tellmemore:reader')") is None, (
            "nothing about the reader is kept without Remember me"
        )

        page.check("#comment-remember")
        page.fill("#comment-website", "https://vera.example.org/")
        page.reload()
        page.wait_for_selector("#comments[data-state='live']", state="attached")
        assert page.input_value("#comment-name") == "Vera"
        assert page.input_value("#comment-email") == "vera@example.org"
        assert page.input_value("#comment-website") == "https://vera.example.org/"
        assert page.is_checked("#comment-remember")
        assert page.locator("#comment-notify").is_enabled()

        page.uncheck("#comment-remember")
        assert page.evaluate("localStorage.getItem('tellmemore:reader')") is None
    finally:
        context.close()


# --- 10. the form token -----------------------------------------------------------------------


def test_the_form_token_is_taken_when_the_form_is_first_used(page, stack: Stack):
    tokens: list[float] = []
    page.on("request", lambda r: "/api/form-token" in r.url and tokens.append(time.monotonic()))
    page.set_viewport_size(DESKTOP)
    open_article(page, stack.article_url(POSTING))
    assert not tokens, "no token before the reader uses the form"
    with page.expect_response(lambda r: "/api/form-token" in r.url):
        page.click("#comment-body")
    page.keyboard.type("Typed by a person, at a person's pace.")
    page.fill("#comment-name", "Tom")
    with page.expect_request(lambda r: r.method == "POST" and "/comments" in r.url) as sent:
        page.click("#comment-form button[type=submit]")
    data = sent.value.post_data_json
    assert len(tokens) == 1, "one token, taken on first use, not at sending time"
    assert data["form_token"] and data["fax"] == ""
    # A person writes for longer than the spam timer's few seconds: the token is checked as if
    # half a minute had passed since the form was first used, instead of waiting that long.
    real_time = time.time
    with pytest.MonkeyPatch.context() as clock:
        clock.setattr(time, "time", lambda: real_time() + 30)
        assert spam_reasons(data, data["body"], SECRET, 3) == (), "with checks on, this is no spam"


# --- 11. counts on lists of articles -----------------------------------------------------------


@pytest.mark.parametrize("path", ["", "archives/"], ids=["index", "archives"])
def test_counts_fill_in_with_one_request(page, stack: Stack, path: str):
    requests: list[str] = []
    page.on("request", lambda r: "/api/counts" in r.url and requests.append(r.url))
    page.goto(f"{stack.site.url}/{path}")
    links = page.locator("a.comment-count[data-thread]")
    assert links.count() >= 5
    page.wait_for_function(
        "() => [...document.querySelectorAll('a.comment-count')].every(a => a.dataset.comments)"
    )
    assert len(requests) == 1, requests
    threads = links.evaluate_all("links => links.map(a => a.dataset.thread)")
    query = "&".join(f"thread={t}" for t in threads)
    counts = stack.get(f"/api/counts?{query}")["counts"]
    for index, thread in enumerate(threads):
        expected = counts[thread]
        text = links.nth(index).locator(".comment-count__text").inner_text()
        if expected["comments"] == 0 and expected["waiting"] == 0:
            assert text == "No comments yet"
        if expected["comments"]:
            assert re.search(rf"\b{expected['comments']} comments?\b", text), text
        if expected["waiting"]:
            assert f"{expected['waiting']} waiting for a reply" in text, text
        assert links.nth(index).get_attribute("href").endswith("#comments")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"counts-{path.strip('/') or 'index'}.png", full_page=True)


# --- 12. the baked list -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def baked_site(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticSite]:
    """The site built with BAKED's comments baked in from a public export written here."""
    questions = stack.questions(BAKED)
    store = stack.store
    first = seed(store, BAKED, "Amara", "I liked the *second* kind best.", question=questions[0],
                 website="https://amara.example.org/")
    answer = reply(store, first.id, AUTHOR, "Why the second one, do you think?")
    follow = seed(store, BAKED, "Amara", "Because it asks **back**.", parent=answer.id)
    reply(store, follow.id, AUTHOR, "That is the whole idea.")
    other = seed(store, BAKED, "<img src=x onerror=alert(1)>",
                 "A name that looks like markup stays a name.\n\n<script>alert(1)</script>")
    reply(store, other.id, AUTHOR, "It does.")
    seed(store, BAKED, "Still waiting", "Not public yet: not baked.")
    export = {"schema_version": 1, "generated": utc_now(),
              "threads": {BAKED: stack.get(f"/api/threads/{BAKED}")}}
    folder = tmp_path_factory.mktemp("baked")
    (folder / "export.json").write_text(json.dumps(export), encoding="utf-8")
    port = stack.extra_ports["baked"]
    output = build(folder / "site", SITEURL=f"http://127.0.0.1:{port}",
                   COMMENTS_SERVICE_URL=stack.service,
                   COMMENTS_EXPORT=str(folder / "export.json"))
    site = serve(output, port)
    yield site
    site.close()


LIST_SHAPE = """() => [...document.querySelectorAll('#comment-list li.comment')].map(li => ({
    id: li.dataset.id, cls: li.className,
    depth: (() => {
        let d = 0, n = li;
        while ((n = n.parentElement.closest('li.comment'))) d++;
        return d;
    })(),
    name: li.querySelector(':scope > article .comment__name')?.textContent,
    question: li.querySelector(':scope > article .comment__question')?.textContent,
    html: li.querySelector(':scope > article .comment__text')?.innerHTML.trim(),
    datetime: li.querySelector(':scope > article time')?.getAttribute('datetime'),
}))"""


def test_baked_comments_read_without_javascript(browser, stack: Stack, baked_site: StaticSite):
    context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(stack.article_url(BAKED, baked_site))
        items = page.locator("#comment-list > ol.comment-tree li.comment")
        assert items.count() == 6
        assert page.locator(".comments__count").inner_text() == "6 comments, 1 waiting for a reply"
        shape = page.evaluate(LIST_SHAPE)
        assert [item["depth"] for item in shape] == [0, 1, 2, 3, 0, 1]
        assert shape[0]["name"] == "Amara" and shape[1]["name"] == AUTHOR.name
        assert shape[4]["name"] == "<img src=x onerror=alert(1)>", "a name is text, not markup"
        assert all(re.match(r"\d{4}-\d\d-\d\dT", item["datetime"]) for item in shape)
        assert page.locator("#comment-list .badge--author").count() == 3
        assert page.locator("#comment-list .comment--author").count() == 3
        question = page.locator("#comment-list .comment__question a")
        assert question.count() == 1
        assert question.get_attribute("href") == f"#q-{stack.questions(BAKED)[0]}"
        website = page.locator("#comment-list a.comment__name")
        assert website.get_attribute("rel") == "nofollow ugc noopener"
        assert page.locator("#comment-list script, #comment-list img").count() == 0
        assert "Not public yet" not in page.locator("#comment-list").inner_text()
        assert page.locator("#comment-list .comment__actions").count() == 0
        baked_height = page.locator("#comment-list").bounding_box()["height"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.set_viewport_size(PHONE)
        page.locator("#comments").screenshot(path=ARTIFACTS / "baked-no-javascript-390.png")
    finally:
        context.close()

    # With scripts the live list replaces the baked one: same items, same height.
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        seen = watch(page)
        page.add_init_script(
            """window.__shifts = 0;
               new PerformanceObserver(list => { for (const e of list.getEntries())
                   if (!e.hadRecentInput) window.__shifts += e.value; })
               .observe({type: 'layout-shift', buffered: true});"""
        )
        page.goto(stack.article_url(BAKED, baked_site))
        before = page.evaluate(LIST_SHAPE)
        page.wait_for_selector("#comments[data-state='live']", state="attached")
        after = page.evaluate(LIST_SHAPE)
        assert len(after) == 6 == len({item["id"] for item in after}), "no duplicates"
        assert after == before == shape, "the live list is built like the baked one"
        assert page.locator("#comment-list .comment__actions").count() == 6
        live_height = page.locator("#comment-list").bounding_box()["height"]
        assert abs(live_height - baked_height) <= 2, (baked_height, live_height)
        assert page.evaluate("window.__shifts") < 0.01
        assert not seen.dialogs and not seen.errors, (seen.dialogs, seen.errors)
    finally:
        context.close()


def test_baked_comments_stay_when_the_service_is_down(browser, stack, baked_site):
    context = browser.new_context(viewport=DESKTOP)
    try:
        context.route(f"{stack.service}/**", lambda route: route.abort())
        page = context.new_page()
        open_article(page, stack.article_url(BAKED, baked_site), state="offline")
        assert page.locator("#comment-list li.comment").count() == 6
        assert "could not be loaded" in page.locator("#comments-note").inner_text()
    finally:
        context.close()


# --- 13. screenshots ----------------------------------------------------------------------------


def test_screenshots_of_an_article_with_comments(browser, stack: Stack):
    questions = stack.questions(SCREENSHOT)
    store = stack.store
    first = seed(store, SCREENSHOT, "Hana Okafor",
                 "I keep a notebook of the questions readers ask me twice. It is the most "
                 "useful thing I own as a writer, and it started from a comment like this one.",
                 question=questions[0], website="https://hana.example.org/")
    answer = reply(store, first.id, AUTHOR,
                   "A notebook of repeated questions is a lovely habit. Which question is at the "
                   "top of yours this month?")
    back = seed(store, SCREENSHOT, "Hana Okafor", "How to say no to a request *kindly*.",
                parent=answer.id)
    reply(store, back.id, AUTHOR, "Then that might be my next article.")
    second = seed(store, SCREENSHOT, "Sam", "Short one: **thank you** for answering everyone.")
    reply(store, second.id, AUTHOR, "Thank you for reading, Sam.")
    ARTIFACTS.mkdir(exist_ok=True)
    for label, viewport in (("1280", DESKTOP), ("390", PHONE)):
        context = browser.new_context(viewport=viewport, device_scale_factor=1)
        try:
            page = context.new_page()
            open_article(page, stack.article_url(SCREENSHOT))
            send(page, "Jo", "My own comment, still waiting for the author's reply.")
            page.locator("#comment-form-notice").wait_for()
            own(li(page, first.id)).get_by_role("button", name="Reply").first.click()
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1], f"{label}: sideways scroll {widths}"
            page.locator("#comments").screenshot(path=ARTIFACTS / f"comments-{label}.png")
            page.screenshot(path=ARTIFACTS / f"article-{label}.png", full_page=True)
        finally:
            context.close()
    context = browser.new_context(viewport=DESKTOP, device_scale_factor=1, color_scheme="dark")
    try:
        page = context.new_page()
        open_article(page, stack.article_url(SCREENSHOT))
        page.locator("#comments").screenshot(path=ARTIFACTS / "comments-1280-dark.png")
    finally:
        context.close()
    assert (ARTIFACTS / "comments-390.png").stat().st_size > 0


# --- 14. French ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def french_site(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticSite]:
    port = stack.extra_ports["fr"]
    output = build(tmp_path_factory.mktemp("fr") / "site", SITEURL=f"http://127.0.0.1:{port}",
                   COMMENTS_SERVICE_URL=stack.service, COMMENTS_EXPORT=None, DEFAULT_LANG="fr")
    site = serve(output, port)
    yield site
    site.close()


def test_the_widget_speaks_french(browser, stack: Stack, french_site: StaticSite):
    thread = SCREENSHOT
    first = seed(stack.store, thread, "Claire", "Une question en français.")
    reply(stack.store, first.id, AUTHOR, "Une réponse en français.")
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR")
    try:
        page = context.new_page()
        open_article(page, stack.article_url(thread, french_site))
        assert page.locator("#comment-form-heading").inner_text() == "Ajouter un commentaire"
        assert re.search(r"\d+ commentaires?", page.locator(".comments__count").inner_text())
        card = own(li(page, first.id))
        assert card.get_by_role("button", name="Répondre à Claire").is_visible()
        # The reader's locale for dates: French month abbreviations, no English ones.
        date = card.locator("time").inner_text()
        assert re.search(r"\d{4}", date) and not re.search(r"[A-Z][a-z]{2} \d", date), date
        page.fill("#comment-body", "Un commentaire.")
        page.fill("#comment-name", "   ")
        page.click("#comment-form button[type=submit]")
        page.locator("#comment-form-alert").wait_for()
        assert "pas été envoyé" in page.locator("#comment-form-alert").inner_text()
        assert "nom" in page.locator("#comment-name-error").inner_text()
        page.fill("#comment-name", "Claire")
        page.click("#comment-form button[type=submit]")
        page.locator("#comment-form-notice").wait_for()
        assert "auteur" in page.locator("#comment-form-notice").inner_text()
        waiting = page.locator("#comment-list .badge--waiting")
        assert waiting.first.inner_text() == "En attente de la réponse de l\u2019auteur"
    finally:
        context.close()


# --- 15. the reader's thread and the plain form (issue 21, items 2 and 3) ---------------------


STRAY_TEXT = """() => {
    // Text a reader can see that sits straight in a list or a box, not in a paragraph, a
    // name, a date…: what `payload.comments.length && …` printed as "0".
    const walker = document.createTreeWalker(document.getElementById('comment-list'),
                                             NodeFilter.SHOW_TEXT);
    const stray = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const tag = node.parentElement.tagName;
        const bare = ['DIV', 'OL', 'LI'].includes(tag);
        if (node.textContent.trim() && bare) stray.push(node.textContent);
    }
    return stray;
}"""


def test_a_thread_without_public_comments_shows_no_stray_text(page, stack: Stack):
    quiet = next(article["thread"] for article in stack.manifest["articles"]
                 if not stack.get(f"/api/threads/{article['thread']}")["comments"])
    seed(stack.store, quiet, "Ines", "Waiting, so not public yet.")
    page.set_viewport_size(DESKTOP)
    open_article(page, stack.article_url(quiet))
    assert page.evaluate(STRAY_TEXT) == []
    waiting = stack.get(f"/api/threads/{quiet}")["waiting"]
    assert waiting >= 1  # other tests may have left waiting comments there too
    assert page.locator("#comment-list").inner_text().strip() == f"{waiting} waiting for a reply"


def test_the_email_me_hint_goes_once_an_email_is_typed(browser, stack: Stack):
    for scripts in (True, False):
        context = browser.new_context(java_script_enabled=scripts, viewport=DESKTOP)
        try:
            page = context.new_page()
            page.goto(stack.article_url(POSTING))
            hint = page.locator("#comment-notify-hint")
            assert hint.is_visible(), "no email yet: the hint says one is needed"
            page.fill("#comment-email", "lea@example.org")
            assert not hint.is_visible(), f"scripts {scripts}: the hint stays with an email"
            page.fill("#comment-email", "")
            assert hint.is_visible()
        finally:
            context.close()


def form_controls(page) -> list[str]:
    """The names of the form's visible controls, in page order."""
    return page.locator("#comment-form").evaluate(
        "f => [...f.elements].filter(e => e.name && e.type !== 'hidden' && e.type !== 'submit'"
        " && e.name !== 'fax').map(e => e.name)")


def test_answer_this_without_javascript_opens_the_form_with_its_question(browser, stack: Stack):
    questions = stack.questions(OTHER)
    chosen = questions[-1]
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        article = stack.article_url(OTHER)
        page.goto(article)
        article_fields = form_controls(page)
        page.locator(f"a.answer-this[data-question='{chosen}']").click()
        page.wait_for_url(f"{stack.service}/threads/{OTHER}/comments?question={chosen}")
        assert page.input_value("#comment-question") == chosen
        # The site's own frame and styles: header, footer, the form dressed as on the article.
        assert page.locator("header.site-header .site-title").is_visible()
        assert page.locator("footer.site-footer").is_visible()
        assert page.locator("#comment-form").evaluate(
            "f => getComputedStyle(f).borderTopStyle") == "solid"
        assert form_controls(page) == article_fields
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.fill("#comment-body", "An index of past answers, please.")
        page.fill("#comment-name", "Jonas")
        page.click("#comment-form button[type=submit]")
        page.wait_for_url(article + "#comment-received")
    finally:
        context.close()
    [stored] = [c for c in stack.store.thread_comments(OTHER) if c.name == "Jonas"]
    assert stored.question == chosen


def test_a_refused_form_comes_back_in_the_sites_layout_with_every_field(browser, stack: Stack):
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(stack.article_url(NO_SCRIPT))
        article_fields = form_controls(page)
        page.fill("#comment-body", "Kept through the error.")
        page.fill("#comment-name", "Pia")
        page.fill("#comment-email", "not-an-address")
        page.check("#comment-notify")
        page.fill("#comment-website", "https://pia.example.org/")
        # The browser's own check would stop a bad email before it leaves: send it anyway.
        page.locator("#comment-form").evaluate("f => { f.noValidate = true; }")
        page.click("#comment-form button[type=submit]")
        page.wait_for_load_state()
        assert page.url.startswith(stack.service)
        assert page.locator("h1").inner_text() == "Please check your comment"
        assert page.locator("header.site-header").is_visible()
        assert page.locator("footer.site-footer").is_visible()
        assert form_controls(page) == article_fields
        assert page.input_value("#comment-body") == "Kept through the error."
        assert page.input_value("#comment-website") == "https://pia.example.org/"
        assert page.is_checked("#comment-notify")
        email = page.locator("#comment-email")
        assert email.get_attribute("aria-invalid") == "true"
        assert page.locator("#comment-email-error").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "form-error-390.png", full_page=True)
    finally:
        context.close()
    assert not [c for c in stack.store.thread_comments(NO_SCRIPT) if c.name == "Pia"]
