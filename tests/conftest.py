"""Shared fixtures: a built copy of the sample site, and a real Chromium for page tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# No service made by the tests runs the mail sender thread unless a test asks for it.
os.environ.setdefault("TELLMEMORE_MAIL_SENDER_THREAD", "false")
os.environ.setdefault("TELLMEMORE_BACKUP_DAILY", "false")  # tests back up on purpose only
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def build_site(output: Path, *extra_settings: str, settings_file: str = "pelicanconf.py") -> Path:
    """Build the sample site with Pelican in a subprocess, as the README's tasks do."""
    command = [
        sys.executable, "-m", "pelican", str(ROOT / "content"),
        "-s", str(ROOT / settings_file), "-o", str(output), "--fatal", "errors",
    ]
    # Deterministic pages: nothing is baked from a comment service that may be running here.
    # One -e with every pair: Pelican keeps only the last -e flag it is given.
    command += ["-e", "COMMENTS_EXPORT=null", *extra_settings]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    return output


@pytest.fixture(scope="session")
def site_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample site, built once per test session into a temporary folder."""
    return build_site(tmp_path_factory.mktemp("site") / "output")


def chromium_executable() -> str | None:
    for candidate in CHROMIUM_PATHS:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (headless); installed by .ci/run."""
    executable = chromium_executable()
    if executable is None:
        pytest.fail("Chromium is not installed: run `bash .ci/run` or `apt-get install chromium`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh browser page; closed after the test."""
    context = browser.new_context()
    new_page = context.new_page()
    yield new_page
    context.close()


@pytest.fixture(scope="session")
def site_server(site_output: Path) -> Iterator[str]:
    """Serve the built site on a loopback port; yields its base URL."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site_output))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# --- the comment service --------------------------------------------------------------------

SERVICE_MANIFEST = {
    "schema_version": 1,
    "site_name": "Test blog",
    "site_url": "http://blog.test",
    "articles": [
        {
            "thread": "hello",
            "title": "Hello",
            "url": "http://blog.test/hello/",
            "date": "2026-10-01T00:00:00+00:00",
            "lang": "en",
            "questions": [
                {"id": "why", "text": "Why?"},
                {"id": "what-next", "text": "What next?"},
            ],
        },
        {
            "thread": "second",
            "title": "Second post",
            "url": "http://blog.test/second/",
            "date": "2026-10-02T00:00:00+00:00",
            "lang": "en",
            "questions": [{"id": "how", "text": "How?"}],
        },
    ],
}


@pytest.fixture
def service_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Settings for a service with a fresh store and instance folder under tmp_path."""
    import json

    monkeypatch.setenv("TELLMEMORE_INSTANCE_PATH", str(tmp_path / "instance"))
    manifest = tmp_path / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
    return {
        "MANIFEST": str(manifest),
        "STORE_PATH": str(tmp_path / "store"),
        "SECRET_KEY": "test-secret-key",
        "RATE_LIMIT": "off",
        "SPAM_CHECKS": "on",
        "SITE_ORIGINS": ["http://blog.test"],
        # No waiting after failed sign-ins (auth.py); tests of the delay set their own.
        "SIGN_IN_DELAY_SECONDS": 0,
    }


@pytest.fixture
def app(service_config):
    from comments_service import create_app

    application = create_app(service_config)
    yield application
    application.extensions["tellmemore.store"].close()


@pytest.fixture
def client(app):
    return app.test_client()
