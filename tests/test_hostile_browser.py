"""Hostile input in a real Chromium: the injection corpus (tests/injection_corpus.py) posted as
readers' names, comment bodies and websites, written by the author as replies, and written as
the text of reflection questions in the article a site is built from. Then every page that
shows any of it is opened: the article with the live widget, the article with the comments
baked in (built with COMMENTS_EXPORT pointing at the service's /api/public-export, saved to a
file), and every moderation page (queue, each comment, spam pile, all comments, metrics,
outbox, editing each reply, the reply preview).

On every page: no dialog opens, window.alert/confirm/prompt/print are never called (replaced
by an init script), no element a payload could create exists inside reader-written content,
no element anywhere carries an on* attribute or a javascript:/data:/vbscript: link, every
<script> is one of ours, and the console shows no Content-Security-Policy violation (which is
what a payload that got into the page would cause).

A representative selection of the corpus keeps the normal run short; TELLMEMORE_LONG_TESTS=1
posts all of it.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import markdown
import pytest

from comments_service.comments import replying
from comments_service.store import Store, open_store
from tests.injection_corpus import PAYLOADS
from tests.servers import free_port, running_service, service_environment

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
LONG = os.environ.get("TELLMEMORE_LONG_TESTS") == "1"
SECRET = "hostile-browser-secret"
NAME, EMAIL, PASSWORD = "Ada", "ada@blog.test", "correct horse battery"
THREAD = "hostile"
# One of each family in the corpus: script tags, handlers, schemes, obfuscation, reference
# links, attribute break-outs, images, SVG/MathML, frames, styles, parser confusion, code.
SELECTION = [0, 3, 6, 8, 11, 14, 17, 21, 25, 31, 36, 43, 46, 48, 52, 56, 58, 63, 66, 71, 74,
             80, 82, 89, 92]
CHOSEN = PAYLOADS if LONG else [PAYLOADS[index] for index in SELECTION]
# Valid http(s) addresses (anything else is refused) that try to break out of the href.
HOSTILE_WEBSITES = [
    'https://example.org/"><script>alert(1)</script>',
    "https://example.org/' onmouseover='alert(1)",
    "http://example.org/?q=<svg onload=alert(1)>",
    "https://example.org/#\" onclick=\"alert(1)",
]
# Inside reader-written content nothing of these may exist.
ACTIVE_TAGS = ("script, img, svg, iframe, object, embed, math, style, form, input, button, "
               "textarea, select, meta, base, link, details, body, noscript, video, audio")
READER_CONTENT = (".prose, .comment__text, .card__body, .comment__name, .comment__question, "
                  ".reflection__text, .quote, .preview")
INIT_SCRIPT = """
window.__pwned = [];
for (const name of ['alert', 'confirm', 'prompt', 'print']) {
    window[name] = (...args) => { window.__pwned.push(name + ':' + String(args[0])); };
}
"""
INERT = """([activeTags, readerContent]) => {
    const readerAreas = [...document.querySelectorAll(readerContent)];
    const everything = [...document.querySelectorAll('*')];
    const badScheme = /^\\s*(javascript|data|vbscript):/i;
    return {
        pwned: window.__pwned || [],
        elements: readerAreas.flatMap(area => [...area.querySelectorAll(activeTags)])
            .map(el => el.outerHTML.slice(0, 120)),
        handlers: everything.filter(el => [...el.attributes].some(a => /^on/i.test(a.name)))
            .map(el => el.outerHTML.slice(0, 120)),
        schemes: everything.filter(el => ['href', 'src', 'action', 'formaction', 'xlink:href',
                                          'data', 'srcdoc'].some(name => el.hasAttribute(name)
                && (name === 'srcdoc' || badScheme.test(el.getAttribute(name)))))
            .map(el => el.outerHTML.slice(0, 120)),
        // Ours: a file from this same origin, or the strings catalogue (JSON, never run).
        scripts: [...document.scripts].filter(s => !(
                (s.src && s.src.startsWith(location.origin + '/'))
                || (!s.src && s.type === 'application/json')))
            .map(s => s.outerHTML.slice(0, 120)),
    };
}"""
CLEAN = {"pwned": [], "elements": [], "handlers": [], "schemes": [], "scripts": []}


def question_payloads() -> list[str]:
    """Payloads that fit in a Markdown code span on one line (the author's question text)."""
    return [payload for payload in CHOSEN
            if "`" not in payload and "\n" not in payload and "{#" not in payload
            and payload.isprintable() and payload.strip() == payload and payload]


def article_source() -> str:
    """An article whose reflection questions show payloads as text (code spans): their plain
    text, which goes into the manifest, the theme and the moderation pages, is the payload."""
    questions = "\n".join(f"- Would `{payload}` run here? {{#q{index}}}"
                          for index, payload in enumerate(question_payloads()))
    return (
        "Title: Hostile questions\nDate: 2026-10-01 10:00\nSlug: hostile\n"
        "Author: Ada Listener\nSummary: Questions that look like markup.\n\n"
        "Readers write anything; so, sometimes, does the author.\n\n"
        f"## Questions for reflection\n\n{questions}\n"
    )


def build(content: Path, output: Path, **settings: object) -> Path:
    """Build ``content`` with the project's settings; one `-e` with every pair (Pelican keeps
    only the last `-e`)."""
    pairs = [f"{key}={json.dumps(value)}" for key, value in settings.items()]
    command = [sys.executable, "-m", "pelican", str(content), "-s", str(ROOT / "pelicanconf.py"),
               "-o", str(output), "--fatal", "errors", "-e", *pairs]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return output


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(folder: Path, port: int) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def request_json(url: str, data: dict | None = None) -> tuple[int, dict]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@dataclass
class Hostile:
    site: str  # the site built without baked comments (the widget loads them)
    baked: str  # the site built with the public export baked in
    service: str
    article_path: str
    comments: list[str] = field(default_factory=list)  # reader comment ids
    replies: list[str] = field(default_factory=list)  # author reply ids
    refused: list[str] = field(default_factory=list)  # what validation refused, for the report


def post_corpus(service: str, questions: list[str]) -> tuple[list[str], list[str]]:
    """Each payload as a name, a body and (when it is a URL at all) a website; returns the
    stored ids and what was refused."""
    ids, refused = [], []
    for index, payload in enumerate(CHOSEN):
        name = payload.strip() if payload.strip() and "\n" not in payload else f"Reader {index}"
        fields = {
            "name": name[:80], "body": payload if payload.strip() else f"Body {index}",
            "email": f"reader{index}@example.org", "notify": True,
            "website": payload, "question": questions[index % len(questions)],
        }
        url = f"{service}/api/threads/{THREAD}/comments"
        status, answer = request_json(url, fields)
        if status == 422:  # a payload is not a valid name or address: say so, send the rest
            refused.append(f"{index}: {sorted(answer['fields'])}")
            for problem in answer["fields"]:
                fields[problem] = {"name": f"Reader {index}", "body": f"Body {index}",
                                   "website": HOSTILE_WEBSITES[index % len(HOSTILE_WEBSITES)],
                                   "email": None}[problem]
            status, answer = request_json(url, fields)
        assert status == 201, (index, payload, answer)
        ids.append(answer["comment"]["id"])
    return ids, refused


def shape_the_store(store: Store, ids: list[str]) -> list[str]:
    """Every third comment to spam; every third answered by the author with a payload."""
    author = store.author_by_email(EMAIL)
    replies = []
    for index, comment_id in enumerate(ids):
        if index % 3 == 1:
            replying.mark_spam(store, comment_id)
        elif index % 3 == 2:
            body = CHOSEN[index] if CHOSEN[index].strip() else "Thanks."
            replies.append(replying.reply(store, comment_id, author, body).id)
    return replies


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    folder = tmp_path_factory.mktemp("hostile")
    content = folder / "content" / "articles"
    content.mkdir(parents=True)
    (content / "hostile.md").write_text(article_source(), encoding="utf-8")
    site_port, baked_port, service_port = free_port(), free_port(), free_port()
    service = f"http://127.0.0.1:{service_port}"
    site_output = build(folder / "content", folder / "site", COMMENTS_EXPORT=None,
                        SITEURL=f"http://127.0.0.1:{site_port}", COMMENTS_SERVICE_URL=service)
    manifest = json.loads((site_output / "comments-manifest.json").read_text("utf-8"))
    [article] = manifest["articles"]
    # The manifest has each question's plain text: the payload as Markdown's code span keeps
    # it (spacing collapsed; Python-Markdown drops the "!" of "--!>").
    assert [q["text"] for q in article["questions"]] == [
        " ".join(html.unescape(re.sub(r"<[^>]*>", "", markdown.markdown(
            f"Would `{payload}` run here?"))).split()) for payload in question_payloads()]
    environment = service_environment(
        folder, MANIFEST=str(site_output / "comments-manifest.json"), SECRET_KEY=SECRET,
        SITE_ORIGINS=f"http://127.0.0.1:{site_port},http://127.0.0.1:{baked_port}",
        RATE_LIMIT="off", SPAM_CHECKS="off", PUBLISH_POLICY="immediately",
        SIGN_IN_DELAY_SECONDS="0", AUTHOR_NOTIFY="immediately", MAIL_SENDER_THREAD="false",
        SMTP_FROM="blog@blog.test", PUBLIC_URL=service,
    )
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "comments_service", "add-author", "--name",
         NAME, "--email", EMAIL, "--password", PASSWORD],
        env=environment, cwd=folder, check=True, capture_output=True, timeout=60,
    )
    servers = [serve(site_output, site_port)]
    store = open_store(folder / "store")
    try:
        with running_service(folder, environment, port=service_port):
            ids, refused = post_corpus(service, [q["id"] for q in article["questions"]])
            replies = shape_the_store(store, ids)
            _, export = request_json(f"{service}/api/public-export")
            (folder / "export.json").write_text(json.dumps(export), encoding="utf-8")
            baked_output = build(folder / "content", folder / "baked",
                                 SITEURL=f"http://127.0.0.1:{baked_port}",
                                 COMMENTS_SERVICE_URL=service,
                                 COMMENTS_EXPORT=str(folder / "export.json"))
            servers.append(serve(baked_output, baked_port))
            path = article["url"].split("/", 3)[3]
            yield Hostile(f"http://127.0.0.1:{site_port}", f"http://127.0.0.1:{baked_port}",
                          service, path, ids, replies, refused)
    finally:
        store.close()
        for server in servers:
            server.shutdown()
            server.server_close()


@dataclass
class Watched:
    dialogs: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def watch(page) -> Watched:
    seen = Watched()

    def on_dialog(dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            seen.csp.append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.add_init_script(INIT_SCRIPT)
    return seen


def assert_inert(page, seen: Watched, where: str) -> None:
    found = page.evaluate(INERT, [ACTIVE_TAGS, READER_CONTENT])
    assert found == CLEAN, (where, found)
    assert not seen.dialogs, (where, seen.dialogs)
    assert not seen.csp, (where, seen.csp)
    assert not seen.errors, (where, seen.errors)


# --- the reader's side ----------------------------------------------------------------------------


def test_the_article_with_the_live_widget_runs_no_payload(page, hostile: Hostile) -> None:
    seen = watch(page)
    page.goto(f"{hostile.site}/{hostile.article_path}")
    page.wait_for_selector("#comments[data-state='live']", state="attached")
    shown = page.locator("#comment-list li.comment:not(.comment--removed)").count()
    assert shown >= len(hostile.comments) * 2 // 3, shown  # the public ones and the replies
    # Names and question texts that look like markup are shown as text.
    names = page.locator("#comment-list .comment__name").all_text_contents()
    assert any("<" in name for name in names), names
    questions = page.locator("#comment-question option").all_text_contents()
    assert any("<" in text for text in questions), questions
    assert page.locator("#comment-list .comment__question").count() > 0
    assert_inert(page, seen, "widget")


def test_the_baked_article_runs_no_payload_with_or_without_scripts(
    browser, hostile: Hostile
) -> None:
    for scripts in (False, True):
        context = browser.new_context(java_script_enabled=scripts)
        try:
            page = context.new_page()
            seen = watch(page)
            page.goto(f"{hostile.baked}/{hostile.article_path}")
            baked = page.locator("#comment-list li.comment").count()
            assert baked >= len(hostile.comments) * 2 // 3, baked
            if scripts:
                page.wait_for_selector("#comments[data-state='live']", state="attached")
            assert_inert(page, seen, f"baked, scripts={scripts}")
        finally:
            context.close()


# --- the author's pages ---------------------------------------------------------------------------


def sign_in(page, hostile: Hostile) -> None:
    page.goto(f"{hostile.service}/moderate/sign-in")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{hostile.service}/moderate/")


def pages_of(page, url: str) -> int:
    """How many pages a paged list has (from its "page N of M" links)."""
    numbers = page.locator("a[href*='page=']").evaluate_all(
        "links => links.map(a => Number(new URL(a.href).searchParams.get('page')) || 1)")
    return max([1, *numbers])


def test_every_moderation_page_runs_no_payload(page, hostile: Hostile) -> None:
    seen = watch(page)
    sign_in(page, hostile)
    base = f"{hostile.service}/moderate"
    visited = []
    for listing in ("/", "/spam", "/all"):
        page.goto(f"{base}{listing}")
        assert_inert(page, seen, listing)
        visited.append(listing)
        for number in range(2, pages_of(page, f"{base}{listing}") + 1):
            separator = "&" if "?" in listing else "?"
            page.goto(f"{base}{listing}{separator}page={number}")
            assert_inert(page, seen, f"{listing} page {number}")
    for single in ("/metrics", "/outbox/", "/all?q=script", "/all?state=spam"):
        page.goto(f"{base}{single}")
        assert page.url.startswith(f"{base}{single.split('?')[0]}"), page.url
        assert_inert(page, seen, single)
        visited.append(single)
    assert page.goto(f"{base}/outbox/").status == 200
    for comment_id in [*hostile.comments, *hostile.replies]:
        response = page.goto(f"{base}/comments/{comment_id}")
        assert response.status == 200, comment_id
        assert_inert(page, seen, f"comment {comment_id}")
    for reply_id in hostile.replies:
        response = page.goto(f"{base}/replies/{reply_id}/edit")
        assert response.status == 200, reply_id
        assert_inert(page, seen, f"edit reply {reply_id}")
    assert visited


def test_the_reply_preview_runs_no_payload(page, hostile: Hostile) -> None:
    """The author's own draft, previewed by the server (Preview button) and live (the script),
    is rendered by the same sanitiser as readers' comments."""
    seen = watch(page)
    sign_in(page, hostile)
    waiting = hostile.comments[0]
    page.goto(f"{hostile.service}/moderate/comments/{waiting}")
    draft = "\n\n".join(CHOSEN[:12])
    page.fill("#reply-body", draft)
    page.click("#preview-button")
    page.wait_for_load_state()
    assert page.locator("#preview").is_visible()
    assert page.locator("#reply-body").input_value().strip() == draft.strip()
    assert_inert(page, seen, "preview")


# --- the checks themselves ------------------------------------------------------------------------


def test_the_checks_catch_a_payload_that_runs(page) -> None:
    """A page where the payloads do run: every check above must see it."""
    hostile_page = (
        "<!doctype html><title>x</title><div class='prose'><img src=x onerror=alert(1)>"
        "<a href='javascript:alert(2)'>x</a></div><script>print()</script>"
    )
    page.route("http://detector.test/", lambda route: route.fulfill(
        status=200, content_type="text/html", body=hostile_page))
    watch(page)
    page.goto("http://detector.test/")
    page.wait_for_function("window.__pwned.length >= 2")
    found = page.evaluate(INERT, [ACTIVE_TAGS, READER_CONTENT])
    assert found["pwned"] == ["print:undefined", "alert:1"] or sorted(found["pwned"]) == [
        "alert:1", "print:undefined"], found
    assert len(found["elements"]) == 1 and len(found["handlers"]) == 1
    assert len(found["schemes"]) == 1 and len(found["scripts"]) == 1
