"""Ending sessions (issue 20, item 5): sign-out ends every copy of the session cookie, "sign out
everywhere" ends every session of the author, a password change every session but the one
that made it."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from comments_service.moderation.auth import SESSION_COOKIE_NAME
from tests.conftest import AUTHOR_PASSWORD

pytestmark = pytest.mark.both_stores

NEW_PASSWORD = "a much longer new passphrase"


def signed_in(response) -> bool:
    return response.status_code == 200


def copy_of(app, client):
    """Another browser holding a copy of ``client``'s session cookie (a stolen cookie)."""
    thief = app.test_client()
    thief.set_cookie(SESSION_COOKIE_NAME, client.get_cookie(SESSION_COOKIE_NAME).value)
    return thief


def post_form(client, path: str, **fields: str):
    token = BeautifulSoup(client.get("/moderate/").get_data(as_text=True), "html.parser").find(
        "input", {"name": "csrf_token"})["value"]
    return client.post(path, data={"csrf_token": token, **fields})


def test_a_copied_cookie_is_signed_out_with_the_original(app, auth):
    browser = auth.login()
    thief = copy_of(app, browser)
    assert signed_in(thief.get("/moderate/")), "the copy works while the session lasts"
    assert auth.logout().status_code == 303
    assert thief.get("/moderate/").status_code == 302
    assert browser.get("/moderate/").status_code == 302


def test_signing_out_one_browser_leaves_the_others_signed_in(app, auth):
    auth.login()
    other = auth.for_app(app)
    other.login()
    auth.logout()
    assert signed_in(other.client.get("/moderate/"))
    # The author signs in again on the first browser: a new session, not an ended one.
    assert signed_in(auth.login().get("/moderate/"))


def test_sign_out_everywhere_ends_every_session(app, auth):
    browser = auth.login()
    other = auth.for_app(app)
    other.login()
    thief = copy_of(app, other.client)
    page = browser.get("/moderate/").get_data(as_text=True)
    assert "Sign out everywhere" in page
    answer = post_form(browser, "/moderate/sign-out-everywhere")
    assert answer.status_code == 303 and answer.location.endswith("/moderate/sign-in")
    for client in (browser, other.client, thief):
        assert client.get("/moderate/").status_code == 302
    assert signed_in(auth.for_app(app).login().get("/moderate/")), "signing in again works"


def test_a_password_change_ends_every_other_session(app, auth):
    browser = auth.login()
    other = auth.for_app(app)
    other.login()
    thief = copy_of(app, browser)
    assert signed_in(browser.get("/moderate/password"))
    changed = post_form(browser, "/moderate/password", current_password=AUTHOR_PASSWORD,
                        new_password=NEW_PASSWORD, repeat_password=NEW_PASSWORD)
    assert changed.status_code == 303
    assert signed_in(browser.get("/moderate/")), "the browser that changed it stays in"
    assert other.client.get("/moderate/").status_code == 302
    assert thief.get("/moderate/").status_code == 302, "the old cookie's copy is out"
    assert auth.for_app(app).submit().status_code == 401, "the old password no longer works"
    assert auth.for_app(app, password=NEW_PASSWORD).submit().status_code == 303


@pytest.mark.parametrize(("current", "new", "repeat", "status"), [
    ("wrong password", NEW_PASSWORD, NEW_PASSWORD, 401),
    (AUTHOR_PASSWORD, "short", "short", 400),
    (AUTHOR_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", 400),
])
def test_a_refused_password_change_changes_nothing(app, auth, current, new, repeat, status):
    browser = auth.login()
    other = auth.for_app(app)
    other.login()
    answer = post_form(browser, "/moderate/password", current_password=current,
                       new_password=new, repeat_password=repeat)
    assert answer.status_code == status
    assert signed_in(other.client.get("/moderate/"))
    assert auth.for_app(app).submit().status_code == 303
