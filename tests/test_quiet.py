"""A quiet, clean install and console (issue 21, item 7): an editable install prints no
setuptools banner, mail retries take one log line each, `invoke --list` says whole sentences,
and the theme ships a favicon. (/healthz without server paths: tests/test_service_app.py; the
demo's console without its poll: tests/test_demo_mailbox.py and tests/test_demo_browser.py.)"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from comments_service import create_app
from comments_service.outbox.sender import send_due
from tests.test_notify import SmtpServer, free_port, queue, store

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_an_editable_install_prints_no_setuptools_banner(tmp_path):
    # Into a folder of its own (--prefix, --ignore-installed): the suite's own install stays.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--ignore-installed",
         "--prefix", str(tmp_path / "prefix"), "-e", str(ROOT)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Warning" not in output.replace("WARNING: Location", ""), output[-3000:]
    assert "*****" not in output


class BusyServer:
    """An SMTP server answering every recipient with a two-line "try later"."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "451-4.3.0 Busy right now,\r\n451 4.3.0 please try again later"


def test_each_mail_retry_is_one_log_line(mail_config, caplog, tmp_path):
    for server in ("down", "busy"):
        smtp = SmtpServer(free_port())
        if server == "busy":
            smtp.mailbox = BusyServer()
            smtp.start()
        app = create_app({**mail_config, "SMTP_PORT": smtp.port,
                          "SMTP_RETRY_BASE_SECONDS": 60, "STORE_PATH": str(tmp_path / server)})
        try:
            messages = [queue(app, subject=f"Hello {number}") for number in range(3)]
            caplog.clear()
            with (caplog.at_level(logging.WARNING, logger="comments_service.outbox.sender"),
                  app.app_context()):
                send_due(store(app), app.config)
            lines = [record.getMessage() for record in caplog.records]
            assert len(lines) == len(messages), lines
            for line, message in zip(lines, messages, strict=True):
                assert "\n" not in line and message.id in line, line
                assert re.search(r"retrying at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d UTC: ", line)
            if server == "busy":
                assert "Busy right now, 4.3.0 please try again later" in lines[0]
        finally:
            smtp.stop()
            store(app).close()


@pytest.fixture
def mail_config(service_config):
    return {**service_config, "SMTP_HOST": "127.0.0.1", "SMTP_FROM": "blog@blog.test",
            "PUBLIC_URL": "http://comments.test", "SMTP_TIMEOUT_SECONDS": 5,
            "SMTP_RETRY_BASE_SECONDS": 0, "MAIL_DOUBLE_OPT_IN": False, "AUTHOR_NOTIFY": "off",
            "SPAM_CHECKS": "off", "MAIL_SENDER_THREAD": False}


def test_invoke_list_describes_each_task_in_a_whole_sentence():
    from invoke import Collection

    import tasks

    collection = Collection.from_module(tasks)
    for name in collection.task_names:
        first = (collection[name].__doc__ or "").strip().split("\n\n")[0]
        assert "\n" not in first, f"{name}: the first paragraph is cut by --list: {first!r}"
        assert first[0].isupper() and first.endswith("."), f"{name}: {first!r}"
    listed = subprocess.run([str(Path(sys.executable).parent / "invoke"), "--list"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    entries = re.findall(r"^  (\S+)\s+(.*(?:\n {15}.*)*)", listed, re.MULTILINE)
    assert len(entries) == len(collection.task_names)
    for name, text in entries:
        assert " ".join(text.split()).endswith("."), f"invoke --list cuts {name}: {text!r}"


def test_every_page_of_the_site_names_a_favicon_that_is_there(site_output: Path):
    pages = [page for page in sorted(site_output.rglob("*.html"))
             if page.name != "comments-layout.html"]
    assert pages
    for page in pages:
        icon = BeautifulSoup(page.read_text("utf-8"), "html.parser").find("link", rel="icon")
        assert icon is not None, page
        target = (page.parent / icon["href"]).resolve() if not icon["href"].startswith(
            "http") else site_output / icon["href"].split("/", 3)[3]
        assert target.is_file(), (page, icon["href"])
        assert icon.get("type") == "image/svg+xml"
