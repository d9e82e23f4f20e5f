"""Author accounts and sign-in (auth.py): the add-author command, the sign-in form, the session
cookie, CSRF, throttled failures, and every /moderate route refusing strangers."""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from flask import Blueprint, Flask, g, render_template_string, url_for
from werkzeug.routing import Rule
from werkzeug.security import check_password_hash, generate_password_hash

from comments_service import create_app
from comments_service.config import ConfigError
from comments_service.models import Author, Comment, CommentState, utc_now
from comments_service.moderation import auth as moderation_auth
from tests.conftest import AUTHOR_EMAIL, AUTHOR_PASSWORD, SERVICE_MANIFEST

PASSWORD = AUTHOR_PASSWORD  # the test author's (conftest.py's `auth` and `author`)
EMAIL = AUTHOR_EMAIL
SIGN_IN = "/moderate/sign-in"
SIGN_OUT = "/moderate/sign-out"
HOME = "/moderate/"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PLACEHOLDER = "x"  # every URL argument of a route, and the id of a stored comment

# A page of the author area that shows a CSRF token to a signed-in author (tests only).
token_page = Blueprint("token_page", __name__)


@token_page.get("/moderate/test-token")
def show_token():
    return render_template_string("{{ csrf_token() }}")


@token_page.post("/moderate/test-action")
def record_action():
    return "acted"


@pytest.fixture
def app(service_config):
    application = create_app(service_config)
    application.register_blueprint(token_page)
    yield application
    application.extensions["tellmemore.store"].close()


def store(app):
    return app.extensions["tellmemore.store"]


def shown_token(client) -> str:
    """The CSRF token the test page shows to a signed-in author."""
    response = client.get("/moderate/test-token")
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def signed_in_as(client) -> str | None:
    """The id of the author this client is signed in as, seen from inside a request."""
    with client:
        client.get(SIGN_IN)
        author = g.current_author
    return author.id if author else None


def store_snapshot(app) -> tuple[list[dict], list[Author]]:
    return [c.to_record() for c in store(app).all_comments()], store(app).list_authors()


def add_author(runner, *args: str, **kwargs: Any):
    return runner.invoke(args=["add-author", *args], **kwargs)


# --- the add-author command -------------------------------------------------------------------


def test_add_author_stores_a_scrypt_hash_never_the_password(app, runner):
    result = add_author(runner, "--name", "Ada", "--email", EMAIL, "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    assert "Added author Ada <ada@blog.test>" in result.output
    stored = store(app).author_by_email(EMAIL)
    assert stored.name == "Ada"
    assert stored.password_hash.startswith("scrypt:")
    assert check_password_hash(stored.password_hash, PASSWORD)
    files = [path for path in Path(app.config["STORE_PATH"]).rglob("*") if path.is_file()]
    everything = b"".join(path.read_bytes() for path in files)
    assert EMAIL.encode() in everything  # the author is in these files …
    assert PASSWORD.encode() not in everything  # … and the password is not
    assert PASSWORD not in result.output


def test_add_author_prompts_for_what_is_missing_and_hides_the_password(app, runner):
    result = add_author(runner, input=f"Ada\n{EMAIL}\n{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Name:" in result.output and "Email:" in result.output
    assert "Repeat for confirmation:" in result.output
    assert PASSWORD not in result.output
    assert check_password_hash(store(app).author_by_email(EMAIL).password_hash, PASSWORD)


def test_add_author_refuses_a_taken_email_whatever_its_case(app, runner):
    first = add_author(runner, "--name", "Ada", "--email", EMAIL, "--password", PASSWORD)
    assert first.exit_code == 0
    again = add_author(runner, "--name", "Eve", "--email", EMAIL.upper(), "--password", PASSWORD)
    assert again.exit_code == 1
    assert "exists already" in again.output
    assert [a.name for a in store(app).list_authors()] == ["Ada"]


@pytest.mark.parametrize(("name", "email", "password", "message"), [
    ("   ", EMAIL, PASSWORD, "name must not be blank"),
    ("Ada", "not-an-email", PASSWORD, "is not an email address"),
    ("Ada", "ada@localhost", PASSWORD, "is not an email address"),
    ("Ada", "ada @blog.test", PASSWORD, "is not an email address"),
    ("Ada", "", PASSWORD, "is not an email address"),
    ("Ada", EMAIL, "123456789", "at least 10 characters"),
    ("Ada\nEve", EMAIL, PASSWORD, "one line"),
])
def test_add_author_refuses_bad_details(app, runner, name, email, password, message):
    result = add_author(runner, "--name", name, "--email", email, "--password", password)
    assert result.exit_code == 1
    assert message in result.output
    assert "No author was added" in result.output
    assert store(app).list_authors() == []


# --- signing in and out -----------------------------------------------------------------------


def test_the_sign_in_form_is_labelled_and_carries_a_csrf_token(client):
    response = client.get(SIGN_IN)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    form = soup.find("form", {"action": SIGN_IN})
    assert form["method"] == "post"
    email, password = form.find(id="email"), form.find(id="password")
    assert soup.find("label", {"for": "email"}) and soup.find("label", {"for": "password"})
    assert email["autocomplete"] == "username" and email["type"] == "email"
    assert password["autocomplete"] == "current-password" and password["type"] == "password"
    assert form.find("input", {"type": "hidden", "name": "csrf_token"})["value"]
    assert soup.find(attrs={"role": "alert"}) is None


def test_signing_in_opens_a_session_and_leads_to_the_queue(client, author, auth):
    response = auth.submit()
    assert response.status_code == 303
    assert response.headers["Location"] == HOME
    assert signed_in_as(client) == author.id
    # Signed in, the form sends the author on.
    assert client.get(SIGN_IN).headers["Location"] == HOME


@pytest.mark.parametrize(("email", "password"), [
    (EMAIL, "wrong password!"),
    ("nobody@blog.test", PASSWORD),
    (EMAIL.upper(), "wrong password!"),
])
def test_a_failed_sign_in_says_the_same_whatever_was_wrong(client, author, auth, email, password):
    response = auth.submit(email, password)
    assert response.status_code == 401
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    assert soup.find(attrs={"role": "alert"}).get_text(strip=True) == "Email or password is wrong."
    assert soup.find(id="email")["value"] == email
    assert soup.find(id="email")["aria-invalid"] == "true"
    assert soup.find(id="password").get("value") is None
    assert signed_in_as(client) is None


def test_the_email_is_compared_without_case(client, author, auth):
    assert auth.submit("  ADA@Blog.Test ").status_code == 303
    assert signed_in_as(client) == author.id


def test_a_sign_in_without_email_or_password_asks_for_both(client, author, auth):
    response = auth.submit(EMAIL, "")
    assert response.status_code == 400
    assert "Enter your email and password." in response.get_data(as_text=True)


def test_signing_out_ends_the_session(client, author, auth):
    auth.login()
    response = auth.logout()
    assert response.status_code == 303
    assert response.headers["Location"] == SIGN_IN
    assert signed_in_as(client) is None
    assert client.get("/moderate/test-token").status_code == 302


def test_signing_in_starts_a_new_session(client, author, auth):
    """Session fixation: nothing planted in the session before sign-in survives it."""
    auth.csrf_token()
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
        anonymous_token = session["csrf_token"]
    auth.submit()
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("csrf_token") != anonymous_token
        assert session[moderation_auth.AUTHOR_ID] == author.id
        assert len(session[moderation_auth.SESSION_NONCE]) >= 16


def test_each_sign_in_gets_its_own_session_value(app, author, auth):
    values = set()
    for _ in range(2):
        browser = auth.for_app(app)
        browser.submit()
        with browser.client.session_transaction() as session:
            values.add(session[moderation_auth.SESSION_NONCE])
    assert len(values) == 2


# --- where the author goes next ----------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "/moderate/spam", "/moderate/comments/abc?state=spam&page=2", "/moderate",
])
def test_next_leads_back_to_a_moderation_page(client, author, auth, target):
    assert client.get(SIGN_IN, query_string={"next": target}).status_code == 200
    response = auth.submit(next=target)
    assert response.headers["Location"] == target


@pytest.mark.parametrize("target", [
    "https://evil.test", "https://evil.test/moderate/", "//evil.test", "//evil.test/moderate",
    "/\\evil.test", "\\\\evil.test", "/moderate\\..\\\\evil.test", "javascript:alert(1)",
    "JavaScript:alert(1)//moderate", "http://localhost/moderate/", "/\t/evil.test",
    "/moderate/\n//evil.test", "/api/counts", "/moderateevil", "moderate/spam", "",
])
def test_next_never_leads_off_the_moderation_pages(client, author, auth, target):
    page = client.get(SIGN_IN, query_string={"next": target}).get_data(as_text=True)
    assert BeautifulSoup(page, "html.parser").find("input", {"name": "next"}) is None
    response = auth.submit(next=target)
    assert response.status_code == 303
    assert response.headers["Location"] == HOME


def test_next_in_the_query_string_is_checked_too(client, author, auth):
    token = auth.csrf_token()
    response = client.post(
        SIGN_IN, query_string={"next": "//evil.test"},
        data={"csrf_token": token, "email": EMAIL, "password": PASSWORD},
    )
    assert response.headers["Location"] == HOME


# --- the session cookie -----------------------------------------------------------------------


def session_cookie(response) -> str:
    cookies = [value for value in response.headers.getlist("Set-Cookie")
               if value.startswith("tellmemore_session=")]
    assert len(cookies) == 1, response.headers.getlist("Set-Cookie")
    return cookies[0]


def cookie_attributes(cookie: str) -> dict[str, str]:
    attributes = {}
    for part in cookie.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        attributes[name.lower()] = value
    return attributes


def test_the_session_cookie_is_httponly_lax_and_lasts_two_weeks(client, author, auth):
    attributes = cookie_attributes(session_cookie(auth.submit()))
    assert "httponly" in attributes
    assert attributes["samesite"] == "Lax"
    assert "secure" not in attributes  # plain http (a local test): a Secure cookie would be lost
    expires = parsedate_to_datetime(attributes["expires"])
    days = (expires - datetime.now(UTC)).total_seconds() / 86400
    assert 13.9 < days <= 14


def test_the_session_cookie_is_secure_over_https(client, author, auth):
    https = {"base_url": "https://localhost"}
    token = auth.csrf_token(**https)
    response = client.post(
        SIGN_IN, data={"csrf_token": token, "email": EMAIL, "password": PASSWORD},
        headers={"Referer": "https://localhost/moderate/sign-in"}, **https,
    )
    assert response.status_code == 303
    attributes = cookie_attributes(session_cookie(response))
    assert "secure" in attributes and "httponly" in attributes
    assert attributes["samesite"] == "Lax"


def test_session_cookie_secure_setting_forces_secure(service_config):
    app = create_app({**service_config, "SESSION_COOKIE_SECURE": True})
    assert "secure" in cookie_attributes(session_cookie(app.test_client().get(SIGN_IN)))


def test_the_lifetime_is_configurable_and_ends_the_sign_in(service_config, auth):
    app = create_app({**service_config, "SESSION_LIFETIME_HOURS": 1})
    ada = auth.for_app(app)
    ada.add_author()
    client = ada.client
    expires = cookie_attributes(session_cookie(ada.submit()))["expires"]
    minutes = (parsedate_to_datetime(expires) - datetime.now(UTC)).total_seconds() / 60
    assert 59 < minutes <= 60
    assert signed_in_as(client) == "author-1"
    # The cookie is renewed on every request, but the sign-in itself still ends on time.
    with client.session_transaction() as session:
        session[moderation_auth.SIGNED_IN_AT] -= 3601
    assert signed_in_as(client) is None


@pytest.mark.parametrize("hours", [0, -1, "soon"])
def test_a_bad_lifetime_is_refused_at_start(service_config, hours):
    with pytest.raises(ConfigError, match="SESSION_LIFETIME_HOURS"):
        create_app({**service_config, "SESSION_LIFETIME_HOURS": hours})


# --- removed authors and changed passwords ------------------------------------------------------


def test_a_removed_author_is_signed_out(client, app, author, auth, monkeypatch):
    auth.submit()
    assert client.get("/moderate/test-token").status_code == 200
    real_get_author = store(app).get_author
    monkeypatch.setattr(store(app), "get_author",
                        lambda author_id: None if author_id == author.id else
                        real_get_author(author_id))
    response = client.get("/moderate/test-token")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == SIGN_IN
    assert signed_in_as(client) is None
    with client.session_transaction() as session:
        assert moderation_auth.AUTHOR_ID not in session


def test_changing_the_password_ends_other_sessions(client, app, author, auth):
    auth.submit()
    new_hash = generate_password_hash("another password", method="pbkdf2:sha256:1000")
    store(app).update_author(
        author.id, lambda old: Author(**{**old.to_record(), "password_hash": new_hash})
    )
    assert signed_in_as(client) is None


# --- CSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "forged", "ImFiYyI.Zxxxxx.yyyyyyyyy"])
def test_a_sign_in_without_a_valid_token_is_refused(client, author, auth, token):
    auth.csrf_token()  # the session has a token of its own; the post does not carry it
    data = {"email": EMAIL, "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = client.post(SIGN_IN, data=data)
    assert response.status_code == 400
    page = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    assert "form has expired" in page.find(attrs={"role": "alert"}).get_text()
    assert page.find("input", {"name": "csrf_token"})["value"]  # a fresh form to try again
    assert signed_in_as(client) is None


def test_a_csrf_failure_answers_json_to_json_clients(client, author):
    response = client.post(SIGN_IN, json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "csrf_failed"
    assert "form has expired" in body["message"]


def test_a_sign_in_from_another_site_over_https_is_refused(client, author, auth):
    https = {"base_url": "https://localhost"}
    token = auth.csrf_token(**https)
    response = client.post(
        SIGN_IN, data={"csrf_token": token, "email": EMAIL, "password": PASSWORD},
        headers={"Referer": "https://evil.test/"}, **https,
    )
    assert response.status_code == 400
    assert signed_in_as(client) is None


def test_a_sign_out_without_a_token_does_nothing(client, author, auth):
    auth.submit()
    response = client.post(SIGN_OUT, headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "csrf_failed"
    assert signed_in_as(client) == author.id


def test_the_public_api_needs_no_csrf_token(client, app):
    response = client.post("/api/threads/hello/comments", json={
        "name": "Rosa", "body": "I *loved* this.", "email": "rosa@example.org",
    })
    assert response.status_code == 201
    form = client.post("/threads/hello/comments", data={"name": "Rosa", "body": "Hi"})
    assert form.status_code != 400


# --- throttling failed sign-ins -----------------------------------------------------------------


def test_repeated_failures_from_one_address_are_refused(client, app, author, auth):
    for other in ("bea@blog.test", "cy@blog.test"):
        store(app).add_author(Author(
            id=other, name=other, email=other, created=utc_now(),
            password_hash=generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"),
        ))
        for _ in range(5):  # as many as one email may fail
            assert auth.submit(other, "wrong password!").status_code == 401
    # Ten failures from this address: even a first try for another email is refused.
    assert auth.submit().status_code == 429
    assert signed_in_as(client) is None
    assert auth.for_app(app).submit(environ={"REMOTE_ADDR": "192.0.2.9"}).status_code == 303


def test_a_refusal_answers_json_to_json_clients(client, author, auth, service_config):
    for other in ("bea@blog.test", "cy@blog.test"):
        for _ in range(5):
            auth.submit(other, "wrong password!")
    token = auth.csrf_token()
    response = client.post(
        SIGN_IN, data={"csrf_token": token, "email": EMAIL, "password": PASSWORD},
        headers={"Accept": "application/json", "Content-Type": "multipart/form-data"},
    )
    assert response.status_code == 429
    assert response.get_json()["error"] == "too_many_requests"
    assert int(response.headers["Retry-After"]) > 0


def test_successful_sign_ins_are_not_counted(app, author, auth):
    for _ in range(12):
        assert auth.for_app(app).submit().status_code == 303


def test_unknown_emails_cost_a_password_check_too(monkeypatch, client, auth):
    checked: list[str] = []
    real_check = moderation_auth.check_password_hash
    monkeypatch.setattr(moderation_auth, "check_password_hash",
                        lambda hashed, password: checked.append(hashed) or real_check(hashed,
                                                                                       password))
    assert auth.submit("nobody@blog.test", PASSWORD).status_code == 401
    assert len(checked) == 1 and checked[0].startswith("scrypt:")


# --- every /moderate route ----------------------------------------------------------------------


def moderation_routes(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) of the app under /moderate, HEAD and OPTIONS left out."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule == "/moderate" or rule.rule.startswith("/moderate/"):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                routes.append((rule, method))
    return sorted(routes, key=lambda route: (route[0].rule, route[1]))


@functools.cache
def collected_routes() -> tuple[tuple[str, str, str], ...]:
    """(path pattern, method, endpoint) of the service's /moderate routes, from a real app with
    an instance folder of its own. Tests are parametrised with them while being collected, so
    the instance folder is set by a monkeypatch undone before this returns."""
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        root = Path(folder)
        patch.setenv("TELLMEMORE_INSTANCE_PATH", str(root / "instance"))
        manifest = root / "comments-manifest.json"
        manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
        application = create_app({
            "MANIFEST": str(manifest), "STORE_PATH": str(root / "store"),
            "SECRET_KEY": "collecting-routes", "MAIL_SENDER_THREAD": False,
            "BACKUP_DAILY": False,
        })
        try:
            return tuple((rule.rule, method, rule.endpoint)
                         for rule, method in moderation_routes(application))
        finally:
            application.extensions["tellmemore.store"].close()


# The route-by-route tests below, each with the routes it is about.
ROUTE_CASES: dict[str, Callable[[tuple[str, str, str]], bool]] = {
    "test_every_moderation_route_refuses_strangers":
        lambda route: route[2] != "moderation.auth.sign_in",
    "test_every_moderation_change_needs_a_csrf_token":
        lambda route: route[1] in STATE_CHANGING,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One case per /moderate route (and method) for the tests in ROUTE_CASES."""
    wanted = ROUTE_CASES.get(metafunc.function.__name__)
    if wanted is None:
        return
    routes = [route for route in collected_routes() if wanted(route)]
    metafunc.parametrize(("pattern", "method", "endpoint"), routes,
                         ids=[f"{method} {pattern}" for pattern, method, _ in routes])


def route_url(app: Flask, endpoint: str, pattern: str) -> str:
    rule = next(rule for rule in app.url_map.iter_rules()
                if rule.endpoint == endpoint and rule.rule == pattern)
    with app.test_request_context():
        return url_for(endpoint, **dict.fromkeys(rule.arguments, PLACEHOLDER))


@pytest.fixture
def seeded(app, author) -> Flask:
    """A comment whose id is the placeholder, so a route that acted would change the store."""
    store(app).add_comment(Comment(
        id=PLACEHOLDER, thread="hello", name="Rosa", body="Hi", html="<p>Hi</p>",
        created=utc_now(), state=CommentState.AWAITING_REPLY, public=False, question="why",
    ))
    return app


def test_the_route_list_includes_sign_in_and_sign_out(app):
    found = {(rule.rule, method) for rule, method in moderation_routes(app)}
    assert {(SIGN_IN, "GET"), (SIGN_IN, "POST"), (SIGN_OUT, "POST")} <= found
    assert {(pattern, method) for pattern, method, _ in collected_routes()} <= found


def test_every_moderation_route_refuses_strangers(seeded, pattern, method, endpoint, auth):
    app = seeded
    client = auth.client
    url = route_url(app, endpoint, pattern)
    before = store_snapshot(app)
    if method == "GET":
        response = client.get(url)
        assert response.status_code == 302
        location = urlsplit(response.headers["Location"])
        assert location.path == SIGN_IN
        assert parse_qs(location.query)["next"] == [url]
    else:
        # Without a token CSRF refuses; with a valid one the sign-in check still must.
        assert client.open(url, method=method).status_code == 400
        token = auth.csrf_token()
        response = client.open(url, method=method, data={"csrf_token": token, "body": "Hi"})
        assert response.status_code in (302, 303, 401), response.status_code
        if response.status_code == 401:
            assert "Sign in first" in response.get_data(as_text=True)
        else:
            assert urlsplit(response.headers["Location"]).path == SIGN_IN
        json_response = client.open(url, method=method, json={"body": "Hi"},
                                    headers={"X-CSRFToken": token})
        if json_response.status_code == 401:
            assert json_response.get_json()["error"] == "sign_in_required"
    assert store_snapshot(app) == before


def test_every_moderation_change_needs_a_csrf_token(seeded, pattern, method, endpoint, auth):
    app = seeded
    client = auth.login()
    before = store_snapshot(app)
    url = route_url(app, endpoint, pattern)
    form = client.open(url, method=method,
                       data={"body": "Hi", "email": EMAIL, "password": PASSWORD})
    assert form.status_code == 400
    assert "form has expired" in form.get_data(as_text=True)
    forged = client.open(url, method=method, json={"body": "Hi"},
                         headers={"X-CSRFToken": "forged"})
    assert forged.status_code == 400
    assert forged.get_json()["error"] == "csrf_failed"
    assert store_snapshot(app) == before
    assert signed_in_as(client) == "author-1"


def test_an_anonymous_form_post_gets_the_sign_in_form_back(client, author, auth):
    token = auth.csrf_token()
    response = client.post(
        "/moderate/test-action", data={"csrf_token": token},
        headers={"Referer": "http://localhost/moderate/spam?page=2"},
    )
    assert response.status_code == 401
    page = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    assert "Sign in first" in page.find(attrs={"role": "alert"}).get_text()
    assert page.find("input", {"name": "next"})["value"] == "/moderate/spam?page=2"
    assert "acted" not in response.get_data(as_text=True)
    # Signing in from there leads back to the page the form was on.
    assert auth.submit(next="/moderate/spam?page=2").headers["Location"] == (
        "/moderate/spam?page=2"
    )
    token = shown_token(client)
    assert client.post("/moderate/test-action", data={"csrf_token": token}).data == b"acted"


def test_a_referrer_from_another_site_is_not_a_way_back(client, author, auth):
    response = client.post(
        "/moderate/test-action", data={"csrf_token": auth.csrf_token()},
        headers={"Referer": "https://evil.test/moderate/spam"},
    )
    assert response.status_code == 401
    page = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    assert page.find("input", {"name": "next"}) is None


def test_login_required_guards_a_view_of_its_own(app, author):
    calls = []

    @moderation_auth.login_required
    def action():
        calls.append(1)
        return "done"

    with app.test_request_context("/elsewhere", method="POST", headers={"Accept": "text/html"}):
        response, status = action()
        assert status == 401
        assert "Sign in first" in response
    with app.test_request_context("/elsewhere?a=1", method="GET"):
        response = action()
        assert response.status_code == 302
        assert response.headers["Location"] == SIGN_IN
    assert calls == []


@pytest.mark.parametrize(("target", "expected"), [
    ("/moderate/spam", "/moderate/spam"),
    ("/moderate", "/moderate"),
    ("/moderate/../api", None),
    ("/moderate/%2e%2e/api", None),
    ("/moderate/./spam", None),
    ("https://evil.test/moderate", None),
    ("//evil.test", None),
    ("/\\evil.test", None),
    ("javascript:alert(1)", None),
    (None, None),
    ("/moderate/" + "a" * 3000, None),
])
def test_safe_next(target, expected):
    assert moderation_auth.safe_next(target) == expected
