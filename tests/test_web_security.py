"""Web security of the whole service, swept route by route from the app's own URL map (so a new
route is covered, or fails the coverage checks here, without anyone remembering this file):

* CSRF: every <form method=post> on every rendered page carries a csrf_token, and its action
  refuses the post without it (tests/test_auth.py has the route-by-route refusals; this file
  starts from the pages as rendered). The only forms without a token are the documented
  exemptions: the public comment form (cross-origin by design, no session to ride on) and the
  unsubscribe/confirm buttons (the signed token in the URL is the proof).
* Headers on every page and every API response (errors too): nosniff, X-Frame-Options DENY,
  a CSP with frame-ancestors 'none', a Referrer-Policy; moderation pages never cached.
* The session cookie: HttpOnly, SameSite=Lax, Secure over https, only ever set on /moderate.
* No email address, password hash, reader_key, edit token of another comment or secret in any
  public response (every public GET route, feeds and the public export included).
* No open redirect: every `next`/return parameter and every redirect of every route, fed
  hostile targets, leads only to this service or to the article's own address.

Sign-in throttling is tested in tests/test_auth.py (test_repeated_failures_*).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from bs4 import BeautifulSoup
from flask import Flask, url_for

from comments_service import create_app
from comments_service.comments import replying
from comments_service.mail.tokens import confirm_token, unsubscribe_token
from tests.conftest import AuthActions

EMAIL, PASSWORD = "ada.author@blog.test", "correct horse battery"
READER_EMAILS = ("rosa.secret@example.org", "form.secret@example.org", "spam.secret@example.org")
HOST = "localhost"
# Forms that may post without a CSRF token, and why (docs/SECURITY.md, "CSRF").
EXEMPT_ACTIONS = {
    re.compile(r"^/threads/[^/]+/comments$"): "public comment form: no session to ride on",
    re.compile(r"^/unsubscribe/[^/]+$"): "one-click unsubscribe: the signed URL is the proof",
    re.compile(r"^/confirm/[^/]+$"): "address confirmation: the signed URL is the proof",
}
HOSTILE_TARGETS = [
    "https://evil.test/", "//evil.test/", "/\\evil.test", "\\\\evil.test", "https:evil.test",
    "/moderate/../..//evil.test", "/moderate/%2e%2e/%2e%2e//evil.test", "javascript:alert(1)",
    "\t//evil.test", "/%09/evil.test", "///evil.test", "https://localhost@evil.test/",
    "/moderate@evil.test", "http://localhost.evil.test/moderate/",
]
REDIRECT_PARAMETERS = ("next", "return_to", "redirect", "url", "return", "continue", "to")


@dataclass
class Seeded:
    app: Flask
    waiting: str
    replied: str
    spam: str
    reply: str
    message: str
    unsubscribe: str
    confirm: str
    edit_tokens: dict[str, str]  # comment id → its edit token
    auth: AuthActions  # signs the author in (this file's EMAIL) on a browser of its own


def store(app):
    return app.extensions["tellmemore.store"]


@pytest.fixture
def seeded(service_config, auth) -> Iterator[Seeded]:
    app = create_app({
        **service_config, "SPAM_CHECKS": "off", "PUBLISH_POLICY": "after_reply",
        "AUTHOR_NOTIFY": "immediately", "SMTP_FROM": "blog@blog.test",
        "PUBLIC_URL": f"http://{HOST}", "DEMO_MAILBOX": str(service_config["MANIFEST"]) + ".mail",
    })
    author_auth = auth.for_app(app, email=EMAIL, password=PASSWORD)
    author = author_auth.add_author()
    client = app.test_client()
    tokens = {}
    ids = []
    for email, body in zip(READER_EMAILS, ("Waiting.", "Replied to.", "Spam."), strict=True):
        created = client.post("/api/threads/hello/comments", json={
            "name": "Rosa", "body": body, "email": email, "notify": True, "question": "why"})
        assert created.status_code == 201
        ids.append(created.get_json()["comment"]["id"])
        tokens[ids[-1]] = created.get_json()["edit_token"]
    form = client.post("/threads/hello/comments", data={
        "name": "Form", "body": "From the form.", "email": READER_EMAILS[1]})
    assert form.status_code == 303
    answer = replying.reply(store(app), ids[1], author, "Thanks, Rosa.")
    replying.mark_spam(store(app), ids[2])
    [message, *_] = store(app).list_messages()
    yield Seeded(
        app, ids[0], ids[1], ids[2], answer.id, message.id,
        unsubscribe_token(app.config["SECRET_KEY"], READER_EMAILS[0]),
        confirm_token(app.config["SECRET_KEY"], READER_EMAILS[0]), tokens, author_auth,
    )
    store(app).close()


def snapshot(app) -> tuple:
    return ([c.to_record() for c in store(app).all_comments()],
            [(m.id, m.status) for m in store(app).list_messages(limit=1000)],
            store(app).list_authors())


def rendered_pages(seeded: Seeded) -> dict[str, tuple[object, str]]:
    """Every HTML page the service renders, as an author and as a stranger: URL → (the client
    that saw it, whose session its tokens belong to; the page)."""
    author, stranger = seeded.auth.login(), seeded.app.test_client()
    pages = {}
    for url in ("/moderate/", "/moderate/?thread=hello&question=why", "/moderate/spam",
                "/moderate/all", "/moderate/all?state=spam", "/moderate/metrics",
                "/moderate/outbox/", "/moderate/outbox/?show=all",
                f"/moderate/comments/{seeded.waiting}", f"/moderate/comments/{seeded.replied}",
                f"/moderate/comments/{seeded.spam}", f"/moderate/replies/{seeded.reply}/edit"):
        response = author.get(url)
        assert response.status_code == 200, url
        pages[url] = (author, response.get_data(as_text=True))
    # Pages added since this list was written (any /moderate GET route) are rendered too.
    for url in every_get_url(seeded):
        if url.startswith("/moderate") and url not in pages and "/sign-in" not in url:
            response = author.get(url)
            assert response.status_code == 200, url
            if response.mimetype == "text/html":
                pages[url] = (author, response.get_data(as_text=True))
    for url in ("/moderate/sign-in", f"/unsubscribe/{seeded.unsubscribe}",
                f"/confirm/{seeded.confirm}"):
        response = stranger.get(url)
        assert response.status_code == 200, url
        pages[url] = (stranger, response.get_data(as_text=True))
    refused = stranger.post("/threads/hello/comments", data={"name": "", "body": ""})
    assert refused.status_code == 422
    pages["form error page"] = (stranger, refused.get_data(as_text=True))
    return pages


def html_get_endpoints(seeded: Seeded) -> set[str]:
    """Endpoints answering GET with a page for people (not JSON, feeds or static files)."""
    return {seeded.app.url_map.bind(HOST).match(urlsplit(url).path)[0]
            for url in every_get_url(seeded)
            if url.startswith(("/moderate", "/unsubscribe/", "/confirm/"))}


# --- CSRF, from the rendered pages ------------------------------------------------------------


def post_forms(pages: dict[str, tuple[object, str]]) -> list[tuple[str, object, str, dict]]:
    """(page, client, action path, fields) of every POST form; fields as a browser sends them."""
    forms = []
    for url, (client, html) in pages.items():
        for form in BeautifulSoup(html, "html.parser").find_all("form"):
            if (form.get("method") or "get").lower() != "post":
                continue
            action = form.get("action") or (url if url.startswith("/") else "")
            fields = {field["name"]: field.get("value", "")
                      for field in form.find_all(["input", "textarea"]) if field.get("name")}
            button = form.find("button", attrs={"name": True})
            if button is not None:
                fields[button["name"]] = button.get("value", "")
            forms.append((url, client, urlsplit(action).path, fields))
    return forms


def test_every_post_form_on_every_page_carries_a_token_its_route_insists_on(seeded):
    pages = rendered_pages(seeded)
    author_pages = html_get_endpoints(seeded)
    visited = {seeded.app.url_map.bind(HOST).match(urlsplit(url).path)[0]
               for url in pages if url.startswith("/")}
    assert author_pages <= visited, f"pages never rendered here: {author_pages - visited}"
    forms = post_forms(pages)
    assert len(forms) >= 15, forms
    exempt, accepted_once = [], set()
    # Sign-out last: it ends the session the other posts need.
    for page, client, action, fields in sorted(
            forms, key=lambda form: form[2].endswith("/sign-out")):
        reasons = [why for pattern, why in EXEMPT_ACTIONS.items() if pattern.match(action)]
        if reasons:
            exempt.append(action)
            continue
        assert fields.get("csrf_token"), f"a form on {page} posting to {action} has no token"
        before = snapshot(seeded.app)
        without = {name: value for name, value in fields.items() if name != "csrf_token"}
        refused = client.post(action, data=without)
        assert refused.status_code == 400, (page, action, refused.status_code)
        assert "form has expired" in refused.get_data(as_text=True)
        forged = client.post(action, data={**without, "csrf_token": "forged"})
        assert forged.status_code == 400, (page, action)
        assert snapshot(seeded.app) == before, f"{action} acted without a token"
        if action in accepted_once:
            continue
        accepted_once.add(action)
        # With the page's own token the same post is not refused for CSRF.
        accepted = client.post(action, data=fields)
        assert accepted.status_code != 400 or "form has expired" not in accepted.get_data(
            as_text=True), (page, action)
    assert {"/moderate/sign-out", "/moderate/sign-in"} <= {form[2] for form in forms}
    assert any(action.startswith("/unsubscribe/") for action in exempt)
    assert any(action.startswith("/threads/") for action in exempt)


# --- headers on every response ------------------------------------------------------------------


def route_values(seeded: Seeded, endpoint: str) -> dict[str, str]:
    """Real values for the URL arguments of the app's routes."""
    token = seeded.confirm if endpoint.startswith("unsubscribe.confirm") else seeded.unsubscribe
    return {"thread": "hello", "comment_id": seeded.waiting, "reply_id": seeded.reply,
            "token": token, "message_id": seeded.message, "filename": "moderation.css"}


def every_get_url(seeded: Seeded) -> list[str]:
    """One URL for every GET route of the app, with real values for its arguments. A route
    with an argument named nowhere in route_values is left out (add a value for it there)."""
    urls = []
    for rule in seeded.app.url_map.iter_rules():
        values = route_values(seeded, rule.endpoint)
        if "GET" not in (rule.methods or ()) or set(rule.arguments) - set(values):
            continue
        with seeded.app.test_request_context():
            urls.append(url_for(rule.endpoint, **{name: values[name] for name in rule.arguments}))
    return sorted(set(urls))


def assert_security_headers(response, url: str) -> None:
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", url
    assert headers.get("X-Frame-Options") == "DENY", url
    csp = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, (url, csp)
    assert "script-src 'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, url
    assert headers.get("Referrer-Policy") in (
        "strict-origin-when-cross-origin", "no-referrer", "same-origin"), url


def test_every_get_route_answers_with_the_security_headers(seeded):
    author, stranger = seeded.auth.login(), seeded.app.test_client()
    urls = every_get_url(seeded)
    assert len(urls) >= 15, urls
    for url in urls:
        for client in (author, stranger):
            response = client.get(url)
            response.close()
            assert response.status_code < 500, url
            assert_security_headers(response, url)
            if url.startswith("/moderate"):
                # Clickjacking (DENY + frame-ancestors above) and no cached author pages.
                assert response.headers.get("Cache-Control") == "no-store", url


@pytest.mark.parametrize(("method", "url", "kwargs", "status"), [
    ("POST", "/api/threads/hello/comments", {"json": {"name": "R", "body": "Hi"}}, 201),
    ("POST", "/api/threads/hello/comments", {"json": {"name": ""}}, 422),
    ("POST", "/api/threads/hello/comments", {"data": "x" * 70_000,
                                             "content_type": "application/json"}, 413),
    ("POST", "/api/threads/nope/comments", {"json": {}}, 404),
    ("PATCH", "/api/comments/nope", {"json": {"body": "x"}}, 403),
    ("DELETE", "/api/comments/nope", {}, 403),
    ("PUT", "/api/counts", {}, 405),
    ("OPTIONS", "/api/threads/hello/comments", {"headers": {
        "Origin": "http://blog.test", "Access-Control-Request-Method": "POST"}}, 204),
    ("GET", "/no/such/page", {}, 404),
    ("POST", "/moderate/sign-out", {}, 400),
])
def test_api_answers_and_errors_carry_the_headers_too(seeded, method, url, kwargs, status):
    response = seeded.app.test_client().open(url, method=method, **kwargs)
    assert response.status_code == status
    assert_security_headers(response, url)


# --- the session cookie ---------------------------------------------------------------------------


def test_the_session_cookie_is_httponly_lax_and_only_set_by_the_author_pages(seeded):
    app = seeded.app
    client, token = seeded.auth.client, seeded.auth.csrf_token()
    for scheme in ("http", "https"):
        response = client.post("/moderate/sign-in", base_url=f"{scheme}://{HOST}", data={
            "csrf_token": token, "email": EMAIL, "password": PASSWORD})
        [cookie] = [value for value in response.headers.getlist("Set-Cookie")
                    if value.startswith("tellmemore_session=")]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "path", "expires"} <= attributes, cookie
        assert "SameSite=Lax" in cookie
        assert ("secure" in attributes) == (scheme == "https"), cookie
    stranger = app.test_client()
    for url in every_get_url(seeded):
        if not url.startswith("/moderate"):
            response = stranger.get(url)
            response.close()
            assert not response.headers.getlist("Set-Cookie"), url
    created = stranger.post("/api/threads/hello/comments", json={"name": "R", "body": "Hi"})
    assert not created.headers.getlist("Set-Cookie")


# --- nothing private in public answers ------------------------------------------------------------


def test_no_email_hash_key_or_token_in_any_public_response(seeded):
    app = seeded.app
    author = store(app).author_by_email(EMAIL)
    secrets = [*READER_EMAILS, EMAIL, author.password_hash, app.config["SECRET_KEY"]]
    secrets += [comment.reader_key for comment in store(app).all_comments() if comment.reader_key]
    secrets += list(seeded.edit_tokens.values())
    # Make everything public that can be: the replied comment is; approve the waiting one.
    replying.approve(store(app), seeded.waiting)
    client = app.test_client()
    public = [url for url in every_get_url(seeded) if not url.startswith(
        ("/moderate", "/static", "/api/counts"))]
    assert {"/api/public-export", "/feeds/replies.atom", "/feeds/threads/hello.atom",
            "/api/threads/hello", f"/unsubscribe/{seeded.unsubscribe}"} <= set(public), public
    public.append("/api/counts?thread=hello&thread=second")
    bodies = []
    for url in public:
        response = client.get(url)
        assert response.status_code == 200, url
        bodies.append((url, response.get_data(as_text=True) + str(response.headers)))
    assert "Replied to." in dict(bodies)["/api/public-export"]
    assert "Waiting." in dict(bodies)["/feeds/threads/hello.atom"]
    # A reader's own answers: their own token only, nobody else's.
    created = client.post("/api/threads/hello/comments", json={
        "name": "New", "body": "Mine.", "email": "new.reader@example.org"})
    bodies.append(("created", created.get_data(as_text=True).replace(
        created.get_json()["edit_token"], "")))
    for url, text in bodies:
        for secret in [*secrets, "new.reader@example.org"]:
            assert secret not in text, (url, secret[:12])
        assert "reader_key" not in text and "password" not in text.lower(), url


# --- open redirects ------------------------------------------------------------------------------


def assert_local(response, allowed_hosts: tuple[str, ...] = ("", HOST)) -> None:
    location = response.headers.get("Location")
    if location is None:
        return
    parts = urlsplit(location)
    assert parts.scheme in ("", "http", "https"), location
    assert parts.netloc in allowed_hosts, location
    assert not parts.path.startswith("//") and "\\" not in location, location


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_sign_in_next_never_leads_off_the_service(seeded, target):
    client = seeded.app.test_client()
    page = client.get("/moderate/sign-in", query_string={"next": target})
    assert_local(page)
    form = BeautifulSoup(page.get_data(as_text=True), "html.parser")
    kept = form.find("input", {"name": "next"})
    assert kept is None or not kept.get("value") or kept["value"].startswith("/moderate/")
    token = form.find("input", {"name": "csrf_token"})["value"]
    response = client.post("/moderate/sign-in", query_string={"next": target}, data={
        "csrf_token": token, "email": EMAIL, "password": PASSWORD, "next": target})
    assert response.status_code == 303
    assert_local(response, ("",))
    assert urlsplit(response.headers["Location"]).path.startswith("/moderate/")
    # Signed in, the form sends the author on at once: still never away.
    assert_local(client.get("/moderate/sign-in", query_string={"next": target}), ("",))


def test_no_route_redirects_to_a_hostile_target(seeded):
    """Every route and method, signed in with a valid CSRF token, with every usual redirect
    parameter (query and form) and a hostile Referer: any Location stays here."""
    app = seeded.app
    client = seeded.auth.login()
    token = seeded.auth.csrf_token("/moderate/")
    checked = 0
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            values = route_values(seeded, rule.endpoint)
            if rule.endpoint == "moderation.auth.sign_out" or set(rule.arguments) - set(values):
                continue
            with app.test_request_context():
                url = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
            for target in ("https://evil.test/", "//evil.test/", "/\\evil.test"):
                hostile = dict.fromkeys(REDIRECT_PARAMETERS, target)
                data = {**hostile, "csrf_token": token, "name": "R", "body": "Hi there."}
                response = client.open(url, method=method, query_string=hostile,
                                       data=data if method != "GET" else None,
                                       headers={"Referer": target})
                response.close()
                # The form endpoint goes back to the article's address from the manifest.
                assert_local(response, ("", HOST, "blog.test"))
                if response.headers.get("Location", "").startswith("http://blog.test"):
                    assert response.headers["Location"].startswith("http://blog.test/hello/")
                checked += 1
    assert checked > 60, checked


def test_unsubscribe_and_confirm_pages_never_redirect(seeded):
    client = seeded.app.test_client()
    for url in (f"/unsubscribe/{seeded.unsubscribe}", f"/confirm/{seeded.confirm}",
                "/unsubscribe/forged", "/confirm/forged"):
        for method in ("GET", "POST"):
            response = client.open(url, method=method, query_string={"next": "https://evil.test"},
                                   data={"next": "https://evil.test"})
            assert response.status_code in (200, 404), url
            assert "Location" not in response.headers
            assert response.headers["Referrer-Policy"] == "no-referrer"


# --- proxies: who the client is -----------------------------------------------------------


def post_from(client, forwarded_for: str):
    return client.post("/api/threads/hello/comments",
                       json={"name": "Rosa", "body": "A comment from behind a proxy."},
                       headers={"X-Forwarded-For": forwarded_for},
                       environ_base={"REMOTE_ADDR": "10.0.0.1"})


def test_without_trusted_proxies_a_forwarded_address_is_ignored(service_config):
    client = create_app({**service_config, "RATE_LIMIT": "1/minute"}).test_client()
    assert post_from(client, "203.0.113.1").status_code == 201
    # A client cannot escape its limit by claiming another address.
    assert post_from(client, "203.0.113.2").status_code == 429


def test_behind_a_trusted_proxy_each_reader_has_their_own_limit(service_config):
    app = create_app({**service_config, "RATE_LIMIT": "1/minute", "TRUSTED_PROXIES": 1})
    client = app.test_client()
    assert post_from(client, "203.0.113.1").status_code == 201
    assert post_from(client, "203.0.113.2").status_code == 201
    assert post_from(client, "203.0.113.1").status_code == 429
    # The scheme the proxy saw decides the session cookie's Secure flag.
    response = client.get("/moderate/sign-in", headers={"X-Forwarded-Proto": "https"},
                          environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert "Secure" in response.headers.get("Set-Cookie", "Secure")


@pytest.mark.parametrize("value", [-1, "two", True, 1.5])
def test_a_trusted_proxies_setting_that_is_not_a_count_stops_the_start(service_config, value):
    from comments_service.config import ConfigError

    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        create_app({**service_config, "TRUSTED_PROXIES": value})
