"""The demo as a new user tries it (issue 21): `invoke demo` itself, in a temporary folder on
free ports, driven in Chromium through the whole loop: a reader posts with an email and "email
me" ticked, confirms the address from the demo's Mailbox, the author replies from the
moderation page, the reader opens the reply notification in the Mailbox, follows it to the
reply and unsubscribes from it. The console shows one line per message and no poll noise."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from comments_service.cli.demo import DEMO_EMAIL, DEMO_NAME, DEMO_PASSWORD
from tasks import REBAKE_AGENT
from tests.servers import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
READER, ADDRESS = "Rosa Demo", "rosa.demo@example.org"
COMMENT = "I tried asking one question at the end instead of three. Two readers answered!"
REPLY = ("Rosa, two answers from one question is a fine start: which of the two surprised "
         "you more?")
READY = "Press Ctrl-C to stop."


@dataclass
class Demo:
    process: subprocess.Popen
    folder: Path
    site: str
    service: str
    lines: list[str] = field(default_factory=list)

    def wait_for_line(self, pattern: str, seconds: float = 120) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            assert self.process.poll() is None, "\n".join(self.lines[-40:])
            time.sleep(0.2)
        raise AssertionError(f"no console line matching {pattern!r}:\n" + "\n".join(self.lines))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("demo")
    site_port, service_port, mail_port = free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "invoke"), "demo", "--site-port", str(site_port),
         "--service-port", str(service_port), "--mail-port", str(mail_port),
         "--folder", str(folder)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        start_new_session=True, env={
            # As from a fresh shell: none of the test session's TELLMEMORE_* settings.
            **{key: value for key, value in os.environ.items()
               if not key.startswith("TELLMEMORE_")},
            "PYTHONUNBUFFERED": "1",
        },
    )
    running = Demo(process, folder, f"http://127.0.0.1:{site_port}",
                   f"http://127.0.0.1:{service_port}")

    def read() -> None:
        for line in process.stdout:
            running.lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    try:
        running.wait_for_line(re.escape(READY))
        yield running
    finally:
        # Ctrl-C's clean-up: the demo stops gunicorn, the site server and the mail sink.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        process.stdout.close()


def article_url(demo: Demo) -> str:
    manifest = json.loads((demo.folder / "output" / "comments-manifest.json").read_text("utf-8"))
    return manifest["articles"][0]["url"]


def open_mail(page, demo: Demo, to: str, subject: str, seconds: float = 30) -> None:
    """Open the Mailbox until a message to ``to`` whose subject holds ``subject`` is there,
    then open it."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(f"{demo.service}/moderate/mailbox/")
        cards = page.locator("ol.mailbox article.card").filter(has_text=to).filter(
            has_text=subject)
        if cards.count():
            cards.first.locator("h2 a").click()
            page.wait_for_url(re.compile(r"/moderate/mailbox/[^/]+$"))
            return
        assert time.monotonic() < deadline, page.locator("main").inner_text()
        time.sleep(0.5)


def test_the_whole_loop_with_the_demo_mailbox(browser, demo: Demo) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        # A reader posts, with an email and "email me" ticked.
        article = article_url(demo)
        page.goto(article)
        page.wait_for_selector("#comments[data-state='live']", state="attached")
        page.fill("#comment-body", COMMENT)
        page.fill("#comment-name", READER)
        page.fill("#comment-email", ADDRESS)
        page.check("#comment-notify")
        # The demo keeps its spam checks on: a form sent within 3 s of its first use would be
        # taken for a bot's (a person takes longer than that to write).
        time.sleep(3.5)
        page.click("#comment-form button[type=submit]")
        page.locator("#comment-form-notice").wait_for()

        # The author signs in; the Mailbox is in the navigation (the demo runs one).
        page.goto(f"{demo.service}/moderate/sign-in")
        page.fill("#email", DEMO_EMAIL)
        page.fill("#password", DEMO_PASSWORD)
        page.press("#password", "Enter")
        page.wait_for_url(f"{demo.service}/moderate/")
        page.get_by_role("navigation", name="Moderation").get_by_role(
            "link", name="Mailbox").click()
        page.wait_for_url(f"{demo.service}/moderate/mailbox/")

        # The reader confirms the address from the confirmation in the Mailbox.
        open_mail(page, demo, ADDRESS, "Confirm your email address")
        page.locator("pre.mail-text a[href*='/confirm/']").click()
        page.get_by_role("button", name=re.compile(r"^Confirm ro\S+@example\.org$")).click()
        assert page.locator("h1").inner_text() == "Your address is confirmed"

        # The author replies from the moderation page.
        page.goto(f"{demo.service}/moderate/")
        page.locator("ol.queue article.card").filter(has_text=READER).locator(
            "a").first.click()
        page.fill("#reply-body", REPLY)
        page.get_by_role("button", name="Reply", exact=True).click()
        page.wait_for_url(re.compile(r"/moderate/(\?.*)?$"))
        assert f"Replied to {READER}" in page.locator(".flash").first.inner_text()

        # The notification arrives: it links to the reply and can unsubscribe.
        open_mail(page, demo, ADDRESS, f"{DEMO_NAME} replied to your comment")
        text = page.locator("pre.mail-text").inner_text()
        assert REPLY in text and COMMENT in text
        reply_link = page.locator("pre.mail-text a").filter(has_text="#comment-").first
        href = reply_link.get_attribute("href")
        assert href.startswith(article)
        mailbox_page = page.url
        reply_link.click()
        page.wait_for_selector("#comments[data-state='live']", state="attached")
        assert REPLY in page.locator("#comment-list").inner_text()

        page.goto(mailbox_page)
        page.locator("pre.mail-text a[href*='/unsubscribe/']").first.click()
        page.get_by_role("button", name=re.compile(r"^Unsubscribe ro\S+@example\.org$")).click()
        assert page.locator("h1").inner_text() == "You are unsubscribed"
    finally:
        context.close()

    # One console line per message, naming where to read it; no poll of the public export.
    confirm = demo.wait_for_line(rf"Mail to {re.escape(ADDRESS)}: .Confirm your email address")
    assert f"{demo.service}/moderate/mailbox/" in confirm
    demo.wait_for_line(rf"Mail to {re.escape(ADDRESS)}: .{DEMO_NAME} replied")
    assert sum(ADDRESS in line and line.lstrip().startswith("Mail to")
               for line in demo.lines) == 2
    # The export is fetched by each rebuild (a line each), never logged for the 3-second poll.
    exports = [line for line in demo.lines if "/api/public-export" in line]
    builds = [line for line in demo.lines if line.startswith("Done: Processed")]
    assert not [line for line in exports if REBAKE_AGENT in line]
    assert len(exports) <= len(builds), exports


def test_the_demo_mailbox_holds_the_authors_digest_with_working_links(browser, demo: Demo):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"{demo.service}/moderate/sign-in")
        page.fill("#email", DEMO_EMAIL)
        page.fill("#password", DEMO_PASSWORD)
        page.press("#password", "Enter")
        page.wait_for_url(f"{demo.service}/moderate/")
        open_mail(page, demo, DEMO_EMAIL, "new comments on")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        links = page.locator("pre.mail-text a[href*='/moderate/comments/']")
        assert links.count() >= 9
        links.first.click()
        page.wait_for_url(re.compile(r"/moderate/comments/[^/?]+"))
        assert page.locator("#reply-body").is_visible()
    finally:
        context.close()
