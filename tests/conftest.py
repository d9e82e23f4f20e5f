"""Shared fixtures: a built copy of the sample site, a real Chromium for page tests, the comment
service (`app`, `client`, `runner`), the test author signing in (`auth`, `author`,
`author_client`), and the store on either backend (TinyDB, PostgreSQL)."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.security import generate_password_hash
from werkzeug.test import TestResponse

from comments_service import signals
from comments_service.comments import replying
from comments_service.mail.notify import unsubscribe_address
from comments_service.models import Author, utc_now
from comments_service.tally.filing import file_comment
from comments_service.tally.groups import MOVED_OUT

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Set for the whole session unless the environment running the tests chose otherwise: no
# service made by the tests runs the mail sender thread unless a test asks for it, and the
# tests back up on purpose only.
QUIET_SERVICE_ENVIRONMENT = {
    "TELLMEMORE_MAIL_SENDER_THREAD": "false",
    "TELLMEMORE_BACKUP_DAILY": "false",
}


@pytest.fixture(scope="session", autouse=True)
def quiet_service_environment() -> Iterator[None]:
    """QUIET_SERVICE_ENVIRONMENT in os.environ for the session (and in the subprocesses that
    inherit it), each variable restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in QUIET_SERVICE_ENVIRONMENT.items():
            if name not in os.environ:
                patch.setenv(name, value)
        yield


class ReceiverErrors(logging.Handler):
    """Keeps every error logged while a signal receiver runs (signals.running_receiver)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        receiver = signals.running_receiver()
        if receiver is not None:
            self.found.append(f"{receiver}: {record.getMessage()}")


@pytest.fixture(autouse=True)
def receivers_log_no_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test in which a receiver of comment_stored or reply_stored logged an error: the
    comment is stored all the same, so without this a broken subscriber would pass the suite.
    A test that breaks one on purpose says so with `receiver_errors_expected`."""
    handler = ReceiverErrors()
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
    if handler.found and request.node.get_closest_marker("receiver_errors_expected") is None:
        pytest.fail("A signal receiver logged an error:\n" + "\n".join(handler.found))


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
    # Where links in mail point when a test sets no PUBLIC_URL (mail/links.public_url).
    "service_url": "http://comments.blog.test",
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


# --- the store: one suite, two backends ---------------------------------------------------------
#
# Tests in a module or class marked `both_stores` that use `store_backend` (directly, or through
# `store`, `store_config`, `service_config`, `app`…) run once per backend: the TinyDB store in
# tmp_path, and the PostgreSQL store in a fresh schema of the database TELLMEMORE_TEST_PG_DSN
# names (skipped, with the reason, when it is not set). `tinydb_only(reason)` on a test keeps it
# to TinyDB (it reads the store's files) and says why in the skipped PostgreSQL case.

PG_DSN_VARIABLE = "TELLMEMORE_TEST_PG_DSN"
NO_PG_REASON = f"set {PG_DSN_VARIABLE} to run the PostgreSQL store tests"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if ("store_backend" not in metafunc.fixturenames
            or metafunc.definition.get_closest_marker("both_stores") is None):
        return
    tinydb_only = metafunc.definition.get_closest_marker("tinydb_only")
    if not os.environ.get(PG_DSN_VARIABLE):
        skip_postgres = [pytest.mark.skip(reason=NO_PG_REASON)]
    elif tinydb_only is not None:
        reason = tinydb_only.args[0] if tinydb_only.args else "reads the TinyDB store's files"
        skip_postgres = [pytest.mark.skip(reason=f"TinyDB only: {reason}")]
    else:
        skip_postgres = []
    metafunc.parametrize("store_backend", [
        pytest.param("tinydb", id="tinydb"),
        pytest.param("postgresql", id="postgresql", marks=skip_postgres),
    ], indirect=True)


@pytest.fixture
def store_backend(request: pytest.FixtureRequest) -> str:
    """"tinydb" (the default) or "postgresql" (in `both_stores` tests, parametrised)."""
    return getattr(request, "param", "tinydb")


def postgres_schema_url(dsn: str, schema: str) -> str:
    """The DSN (a postgresql:// URL) with ``schema`` as the search path, and as the sessions'
    application_name (so a test can find its own sessions and no one else's)."""
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options=-csearch_path%3D{schema}&application_name={schema}"


@contextmanager
def fresh_postgres_schema(*, migrated: bool = True) -> Iterator[str]:
    """A new, empty schema in the test database (migrated unless asked not to), dropped
    afterwards; yields a STORE_URL that works in it."""
    import psycopg

    from comments_service.store.postgres.schema import migrate

    dsn = os.environ[PG_DSN_VARIABLE]
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        url = postgres_schema_url(dsn, schema)
        if migrated:
            migrate(url)
        yield url
    finally:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def store_url(store_backend: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """STORE_URL for the backend: "" (TinyDB), or a migrated schema of its own (PostgreSQL).
    Every PostgreSQL store the test opens is closed before its schema is dropped, also those
    of apps the test made and did not close."""
    if store_backend != "postgresql":
        yield ""
        return
    from comments_service.store import postgres as store_postgres

    opened = []
    open_postgres_store = store_postgres.open_postgres_store

    def opening(*args, **kwargs):
        opened.append(open_postgres_store(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(store_postgres, "open_postgres_store", opening)
    with fresh_postgres_schema() as url:
        yield url
        for store in opened:
            store.close()


@pytest.fixture
def store_config(tmp_path: Path, store_url: str) -> dict[str, str]:
    """The settings that choose the store (STORE_PATH, STORE_URL), as open_configured_store
    and create_app read them."""
    return {"STORE_PATH": str(tmp_path / "store"), "STORE_URL": store_url}


@pytest.fixture
def open_test_store(store_config: dict[str, str]) -> Iterator[object]:
    """Opens another store object on the same data (standing for another process); every one
    opened is closed after the test."""
    from comments_service.store import open_configured_store

    opened = []

    def open_one():
        opened.append(open_configured_store(store_config))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_test_store):
    """A fresh store of the test's backend."""
    return open_test_store()


@pytest.fixture
def service_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_config: dict[str, str]
) -> dict[str, object]:
    """Settings for a service with a fresh store and instance folder under tmp_path."""
    import json

    monkeypatch.setenv("TELLMEMORE_INSTANCE_PATH", str(tmp_path / "instance"))
    manifest = tmp_path / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
    return {
        "MANIFEST": str(manifest),
        **store_config,
        "SECRET_KEY": "test-secret-key",
        "RATE_LIMIT": "off",
        "SPAM_CHECKS": "on",
        "SITE_ORIGINS": ["http://blog.test"],
        # No waiting after failed sign-ins (auth.py); tests of the delay set their own.
        "SIGN_IN_DELAY_SECONDS": 0,
    }


@pytest.fixture
def app(service_config: dict[str, object]) -> Iterator[Flask]:
    """The service with a fresh store; the store is closed after the test."""
    from comments_service import create_app

    application = create_app(service_config)
    yield application
    application.extensions["tellmemore.store"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser without cookies yet, talking to `app`."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """Runs `app`'s `flask …` commands in this process."""
    return app.test_cli_runner()


# --- the author signing in ----------------------------------------------------------------------

AUTHOR_EMAIL = "ada@blog.test"
AUTHOR_PASSWORD = "correct horse battery"
SIGN_IN_PATH = "/moderate/sign-in"
SIGN_OUT_PATH = "/moderate/sign-out"


class AuthActions:
    """Signs the test author in and out through the real forms, as a browser does: each post
    carries the CSRF token read from the page first.

    The client is opened on first use, so a test that only signs in to an app of its own
    (`for_app`) never makes the default one.
    """

    def __init__(self, open_client: Callable[[], FlaskClient], *,
                 email: str = AUTHOR_EMAIL, password: str = AUTHOR_PASSWORD) -> None:
        self.email = email
        self.password = password
        self._open_client = open_client
        self._client: FlaskClient | None = None
        self._signed_in = False

    @property
    def client(self) -> FlaskClient:
        """The browser these actions sign in."""
        if self._client is None:
            self._client = self._open_client()
        return self._client

    @property
    def app(self) -> Flask:
        """The app the browser talks to."""
        return self.client.application

    def for_app(self, app: Flask, *, email: str | None = None,
                password: str | None = None) -> AuthActions:
        """The same actions for a new browser of ``app`` (another app, or another browser of
        this one), optionally for another author's email and password."""
        return AuthActions(app.test_client, email=email or self.email,
                           password=password or self.password)

    def add_author(self) -> Author:
        """The author in the app's store, added the first time it is asked for. The hash is
        a cheap one: the add-author command's scrypt hashes are tested in test_auth.py."""
        store = self.app.extensions["tellmemore.store"]
        existing = store.author_by_email(self.email)
        if existing is not None:
            return existing
        return store.add_author(Author(
            id="author-1", name="Ada", email=self.email, created=utc_now(),
            password_hash=generate_password_hash(self.password, method="pbkdf2:sha256:1000"),
        ))

    def csrf_token(self, path: str = SIGN_IN_PATH, **request: object) -> str:
        """The CSRF token of the form on the page at ``path``, as this browser's session has it."""
        response = self.client.get(path, **request)
        assert response.status_code == 200, (path, response.status_code)
        page = BeautifulSoup(response.get_data(as_text=True), "html.parser")
        return page.find("input", {"name": "csrf_token"})["value"]

    def submit(self, email: str | None = None, password: str | None = None, *,
               environ: dict[str, str] | None = None, **fields: str) -> TestResponse:
        """Fill in and send the sign-in form (the page for its token, then the post) with the
        author's email and password unless others are given; whatever comes of it."""
        environ_base = environ or {}
        data = {
            "csrf_token": self.csrf_token(environ_base=environ_base),
            "email": self.email if email is None else email,
            "password": self.password if password is None else password,
            **fields,
        }
        response = self.client.post(SIGN_IN_PATH, data=data, environ_base=environ_base)
        self._signed_in = response.status_code == 303
        return response

    def login(self) -> FlaskClient:
        """The browser, signed in as the author (stored first if need be). Signs in once: later
        calls return the same signed-in browser."""
        if not self._signed_in:
            self.add_author()
            response = self.submit()
            assert response.status_code == 303, response.get_data(as_text=True)[:500]
        return self.client

    def logout(self) -> TestResponse:
        """Send the sign-out form of the moderation pages."""
        response = self.client.post(SIGN_OUT_PATH,
                                    data={"csrf_token": self.csrf_token("/moderate/")})
        self._signed_in = False
        return response


@pytest.fixture
def auth(request: pytest.FixtureRequest) -> AuthActions:
    """Signs the test author in and out of `app` through `client` (flaskr's `auth`):
    `auth.login()` returns the signed-in client, `auth.for_app(other)` does the same for an app
    the test made itself."""
    return AuthActions(lambda: request.getfixturevalue("client"))


@pytest.fixture
def author(app: Flask, auth: AuthActions) -> Author:
    """The test author (AUTHOR_EMAIL, AUTHOR_PASSWORD), stored in `app`'s store."""
    return auth.add_author()


@pytest.fixture
def author_client(client: FlaskClient, auth: AuthActions) -> FlaskClient:
    """`client`, signed in as the test author."""
    return auth.login()


def file_as_suggested(store) -> int:
    """The author files every reader comment under the request the machine put it in (what
    answering each with its first suggestion does); returns how many were filed."""
    filed = 0
    for comment in list(store.all_comments()):
        if (comment.request and comment.request != MOVED_OUT and not comment.request_filed
                and not comment.is_author):
            file_comment(store, comment.id, comment.request)
            filed += 1
    return filed


def demo_store_in_use(app: Flask):
    """The app's store after `demo-data`, then some use: every reader comment filed where the
    machine put it, a reply (and its notification), a spam verdict, an unsubscribed address."""
    result = app.test_cli_runner().invoke(args=["demo-data"])
    assert result.exit_code == 0, result.output
    store = app.extensions["tellmemore.store"]
    file_as_suggested(store)
    author = store.list_authors()[0]
    with app.test_request_context():
        waiting = store.waiting_comments(limit=10)
        replying.reply(store, waiting[0].id, author, f"{waiting[0].name}, thank you: yes.")
        replying.mark_spam(store, waiting[1].id)
        unsubscribe_address(store, "maya@example.org")
    return store

