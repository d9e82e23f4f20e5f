"""A reader's own comment once the author has acted on it (issue 20, item 1): no edit or
withdrawal after a reply or an approval (409, the text kept), and every edit still allowed
goes through the spam and link checks a new comment does."""

from __future__ import annotations

import pytest

from comments_service import create_app
from comments_service.comments import replying
from comments_service.comments.posting import LOCKED_BY_APPROVAL, LOCKED_BY_REPLY
from comments_service.models import CommentState
from tests.test_api import READER, check

pytestmark = pytest.mark.both_stores

PATH = "/api/comments/{comment_id}"
SPAMMY = " ".join(f"https://spam.example/{n}" for n in range(20))


def posted(client) -> tuple[str, dict[str, str]]:
    created = client.post("/api/threads/hello/comments", json=READER).get_json()
    return created["comment"]["id"], {"X-Edit-Token": created["edit_token"]}


def store_of(app):
    return app.extensions["tellmemore.store"]


def author_replies(app, author, comment_id: str) -> None:
    with app.test_request_context():
        replying.reply(store_of(app), comment_id, author, "Thank you, Rosa.")


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_no_edit_or_withdrawal_once_the_author_replied(method, client, app, author):
    comment_id, headers = posted(client)
    author_replies(app, author, comment_id)
    send = getattr(client, method)
    kwargs = {"json": {"body": SPAMMY}} if method == "patch" else {}
    refused = send(f"/api/comments/{comment_id}", headers=headers, **kwargs)
    assert refused.status_code == 409
    body = check(refused, PATH, method)
    assert body["error"] == "edit_locked" and body["message"] == LOCKED_BY_REPLY
    kept = store_of(app).get_comment(comment_id)
    assert kept.body == READER["body"] and kept.state is CommentState.REPLIED and kept.public


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_no_edit_or_withdrawal_once_the_author_approved(method, client, app):
    comment_id, headers = posted(client)
    replying.approve(store_of(app), comment_id)
    send = getattr(client, method)
    kwargs = {"json": {"body": "Something else entirely"}} if method == "patch" else {}
    refused = send(f"/api/comments/{comment_id}", headers=headers, **kwargs)
    assert refused.status_code == 409
    assert check(refused, PATH, method)["message"] == LOCKED_BY_APPROVAL
    assert store_of(app).get_comment(comment_id).body == READER["body"]


def test_under_immediately_a_public_comment_stays_editable_until_the_reply(
    service_config, auth
):
    app = create_app({**service_config, "PUBLISH_POLICY": "immediately"})
    client = app.test_client()
    comment_id, headers = posted(client)
    path = f"/api/comments/{comment_id}"
    assert client.patch(path, json={"body": "Better put."}, headers=headers).status_code == 200
    author_replies(app, auth.for_app(app).add_author(), comment_id)
    assert client.patch(path, json={"body": "Changed."}, headers=headers).status_code == 409
    assert client.delete(path, headers=headers).status_code == 409
    assert store_of(app).get_comment(comment_id).body == "Better put."


def test_an_edit_runs_the_link_check_and_spam_leaves_public_view(service_config):
    app = create_app({**service_config, "PUBLISH_POLICY": "immediately"})
    client = app.test_client()
    comment_id, headers = posted(client)
    assert client.get("/api/threads/hello").get_json()["count"] == 1
    edited = client.patch(f"/api/comments/{comment_id}", json={"body": SPAMMY}, headers=headers)
    assert edited.status_code == 200
    assert edited.get_json()["comment"]["state"] == "spam"
    saved = store_of(app).get_comment(comment_id)
    assert saved.state is CommentState.SPAM and not saved.public
    assert "many_links" in saved.spam_reasons
    assert client.get("/api/threads/hello").get_json()["count"] == 0
    assert store_of(app).count_waiting() == 0


def test_an_edit_filling_the_honeypot_is_spam(client, app):
    comment_id, headers = posted(client)
    edited = client.patch(f"/api/comments/{comment_id}", json={"body": "Fine", "fax": "1"},
                          headers=headers)
    assert edited.status_code == 200
    assert store_of(app).get_comment(comment_id).spam_reasons == ("honeypot",)
