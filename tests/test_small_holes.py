"""The smaller holes of issue 20, item 9: the edit token never in a URL, names with bidi
controls or zero-width characters normalised, a non-http webhook URL refused at start."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.servers import free_port
from tests.test_api import READER, check

pytestmark = pytest.mark.both_stores

PATH = "/api/comments/{comment_id}"


def posted(client) -> tuple[str, str]:
    created = client.post("/api/threads/hello/comments", json=READER).get_json()
    return f"/api/comments/{created['comment']['id']}", created["edit_token"]


@pytest.mark.parametrize("method", ["patch", "delete"])
@pytest.mark.parametrize("name", ["token", "edit_token"])
def test_an_edit_token_in_the_url_is_refused_and_changes_nothing(method, name, client, app):
    path, token = posted(client)
    kwargs = {"json": {"body": "Changed"}} if method == "patch" else {}
    response = getattr(client, method)(f"{path}?{name}={token}", **kwargs)
    assert response.status_code == 400
    assert check(response, PATH, method)["error"] == "token_in_url"
    [comment] = app.extensions["tellmemore.store"].all_comments()
    assert comment.body == READER["body"] and comment.state.value == "awaiting_reply"


def test_the_edit_token_may_travel_in_the_body(client, app):
    path, token = posted(client)
    edited = client.patch(path, json={"body": "Changed", "edit_token": token})
    assert check(edited, PATH, "patch")["comment"]["html"] == "<p>Changed</p>"
    withdrawn = client.delete(path, json={"edit_token": token})
    assert check(withdrawn, PATH, "delete")["comment"]["state"] == "withdrawn"


@pytest.mark.parametrize(("sent", "kept"), [
    ("Ada\u202e gnihtemos", "Ada gnihtemos"),  # right-to-left override
    ("\u2067Ada\u2069", "Ada"),  # an isolate around the name
    ("A\u200bd\u200da\ufeff", "Ada"),  # zero-width space, joiner, BOM
    ("Zoe\u0301", "Zo\u00e9"),  # NFC
])
def test_names_lose_bidi_controls_and_zero_width_characters(sent, kept, client, app):
    response = client.post("/api/threads/hello/comments", json={**READER, "name": sent})
    assert response.status_code == 201
    assert response.get_json()["comment"]["name"] == kept
    [comment] = app.extensions["tellmemore.store"].all_comments()
    assert comment.name == kept


def test_a_name_of_only_invisible_characters_is_refused(client, app):
    response = client.post("/api/threads/hello/comments",
                           json={**READER, "name": "\u200b\u202e\u2066"})
    assert response.status_code == 422
    assert "name" in response.get_json()["fields"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://example.org/",
                                 "http:///no-host", "ftp://example.org/hook"])
def test_a_webhook_url_that_is_not_http_stops_the_server_in_one_line(url, tmp_path):
    environment = {**os.environ, "TELLMEMORE_WEBHOOK_URLS": url,
                   "TELLMEMORE_INSTANCE_PATH": str(tmp_path / "instance")}
    done = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{free_port()}",
         "comments_service.wsgi:app"],
        env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if "refuses to start" in line]
    assert len(lines) == 1 and "WEBHOOK_URLS" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
