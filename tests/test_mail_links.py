"""Links in mail never come from the request's Host header (issue 20, item 2): they use
PUBLIC_URL, else the manifest's service_url; without either a server refuses to start, in
one line naming PUBLIC_URL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from comments_service import create_app
from comments_service.comments import replying
from comments_service.mail import notify
from comments_service.mail.links import MailSetupError, manifest_service_url
from comments_service.manifest import parse_manifest
from tests.conftest import SERVICE_MANIFEST
from tests.servers import free_port, service_environment, stop_group

FORGED = "evil.example"
READER = {"name": "Rosa", "body": "Tell me when you answer.", "email": "rosa@example.org",
          "notify": True}


def links_of(app) -> list[str]:
    store = app.extensions["tellmemore.store"]
    return [message.headers.get("List-Unsubscribe", "") + message.text
            for message in store.list_messages()]


def reply_under_forged_host(app, author, comment_id: str) -> None:
    """The author's reply, queued while serving a request whose Host header is forged."""
    with app.test_request_context(base_url=f"http://{FORGED}"):
        replying.reply(app.extensions["tellmemore.store"], comment_id, author,
                       "Rosa, yes: every Sunday, in order.")


@pytest.mark.parametrize(("public_url", "expected"), [
    ("https://comments.example.org", "https://comments.example.org/"),
    ("", SERVICE_MANIFEST["service_url"] + "/"),
])
def test_a_forged_host_never_reaches_the_links_in_mail(service_config, auth, public_url,
                                                       expected):
    app = create_app({**service_config, "PUBLIC_URL": public_url, "SPAM_CHECKS": "off",
                      "MAIL_DOUBLE_OPT_IN": True, "AUTHOR_NOTIFY": "immediately"})
    client = app.test_client()
    posted = client.post("/api/threads/hello/comments", json=READER,
                         headers={"Host": FORGED}).get_json()
    reply_under_forged_host(app, auth.for_app(app).add_author(), posted["comment"]["id"])
    texts = links_of(app)
    assert len(texts) >= 2, "a confirmation for the reader and a notice for the author"
    assert all(FORGED not in text for text in texts), texts
    assert any(expected in text for text in texts), texts
    app.extensions["tellmemore.store"].close()


def test_without_public_url_or_service_url_mail_is_refused_not_pointed_at_the_host(
    service_config, tmp_path
):
    manifest = tmp_path / "no-service-url.json"
    manifest.write_text(json.dumps({**SERVICE_MANIFEST, "service_url": ""}), encoding="utf-8")
    app = create_app({**service_config, "MANIFEST": str(manifest), "PUBLIC_URL": ""})
    with app.test_request_context(base_url=f"http://{FORGED}"), \
            pytest.raises(MailSetupError, match="PUBLIC_URL"):
        notify.queue_message(app.extensions["tellmemore.store"], to="rosa@example.org",
                             subject="x", text="x")
    app.extensions["tellmemore.store"].close()


@pytest.mark.parametrize(("service_url", "derived"), [
    ("https://comments.example.org/", "https://comments.example.org"),
    ("https://example.org/comments", "https://example.org/comments"),
    ("/comments", None), ("comments.example.org", None), ("javascript:alert(1)", None),
    ("https://comments.example.org/?x=1", None), ("https://user:pw@example.org", None), ("", None),
])
def test_only_an_unambiguous_service_url_is_derived(service_url, derived):
    manifest = parse_manifest(json.dumps({**SERVICE_MANIFEST, "service_url": service_url}), "m")
    assert manifest_service_url(manifest) == derived


def start_server(folder: Path, **settings: str) -> tuple[int, str]:
    environment = service_environment(folder, **settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-b",
         f"127.0.0.1:{free_port()}", "comments_service.wsgi:app"],
        cwd=folder, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        stop_group(process)
    return process.returncode, output


def test_a_server_without_an_address_for_mail_links_refuses_to_start_in_one_line(tmp_path):
    manifest = tmp_path / "comments-manifest.json"
    manifest.write_text(json.dumps({**SERVICE_MANIFEST, "service_url": ""}), encoding="utf-8")
    status, output = start_server(tmp_path, MANIFEST=str(manifest))
    assert status == 3, output
    [line] = [line for line in output.splitlines() if "refuses to start" in line]
    assert "PUBLIC_URL" in line and "Host" in line
