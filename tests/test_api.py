"""The public API: posting, reading, counting, editing, withdrawing — each response checked
against the service's own OpenAPI document."""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_spec

from comments_service.api.openapi import openapi_document
from comments_service.comments.posting import issue_edit_token
from comments_service.comments.spam import issue_form_token
from comments_service.models import CommentState

# Every test that makes the service runs on both stores (conftest.py).
pytestmark = pytest.mark.both_stores

READER = {"name": "Rosa", "body": "I *loved* this.", "email": "rosa@example.org"}


def schema_for(path: str, method: str, status: int) -> dict[str, Any] | None:
    document = openapi_document()
    response = document["paths"][path][method]["responses"][str(status)]
    content = response.get("content", {}).get("application/json")
    if content is None:
        return None
    return {**content["schema"], "components": document["components"]}


def check(response, path: str, method: str = "get") -> Any:
    """Assert that the status is documented and the body matches its schema; return JSON."""
    operation = openapi_document()["paths"][path][method]
    assert str(response.status_code) in operation["responses"], response.status_code
    schema = schema_for(path, method, response.status_code)
    if schema is None:
        return None
    body = response.get_json()
    jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)
    return body


def post(client, thread: str = "hello", **fields: Any):
    return client.post(f"/api/threads/{thread}/comments", json={**READER, **fields})


def stored(app) -> list:
    return list(app.extensions["tellmemore.store"].all_comments())


def no_private_data(text: str) -> None:
    for secret in ("rosa@example.org", "reader_key", "spam_reasons", "email"):
        assert secret not in text


# --- the document itself ------------------------------------------------------------------------


def test_openapi_document_is_valid_and_served(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    validate_spec(response.get_json())
    assert set(response.get_json()["paths"]) >= {
        "/api/threads/{thread}", "/api/threads/{thread}/comments", "/threads/{thread}/comments",
        "/api/counts", "/api/comments/{comment_id}",
    }


# --- posting ------------------------------------------------------------------------------------


def test_a_new_comment_is_stored_waiting_for_a_reply_and_not_yet_public(client, app):
    response = post(client, question="why")
    body = check(response, "/api/threads/{thread}/comments", "post")
    assert response.status_code == 201
    comment = body["comment"]
    assert comment["state"] == "awaiting_reply"
    assert comment["public"] is False
    assert comment["question"] == "why"
    assert comment["html"] == "<p>I <em>loved</em> this.</p>"
    assert body["edit_token"]
    no_private_data(response.get_data(as_text=True))
    [saved] = stored(app)
    assert saved.state is CommentState.AWAITING_REPLY
    assert saved.email == "rosa@example.org"
    assert saved.reader_key and "rosa" not in saved.reader_key
    assert app.extensions["tellmemore.store"].count_waiting() == 1


def test_immediately_policy_publishes_at_once_but_still_queues(service_config):
    from comments_service import create_app

    app = create_app({**service_config, "PUBLISH_POLICY": "immediately"})
    client = app.test_client()
    body = post(client).get_json()
    assert body["comment"]["public"] is True
    assert body["comment"]["state"] == "awaiting_reply"
    thread = check(client.get("/api/threads/hello"), "/api/threads/{thread}")
    assert thread["count"] == 1
    assert thread["comments"][0]["name"] == "Rosa"
    no_private_data(json.dumps(thread))


def test_a_reader_answer_to_the_author_enters_the_queue_again(client, app):
    store = app.extensions["tellmemore.store"]
    first = post(client).get_json()["comment"]
    # The author's reply (the moderation issue builds this path) makes both public.
    from dataclasses import replace

    from comments_service.models import Comment, new_comment_id, utc_now

    store.update_comment(first["id"], lambda c: replace(
        c, state=CommentState.REPLIED, public=True, replied_at=utc_now()))
    reply = Comment(
        id=new_comment_id(), thread="hello", name="Ada", body="Thanks, Rosa: which part?",
        html="<p>Thanks, Rosa: which part?</p>", created=utc_now(), state=CommentState.POSTED,
        public=True, parent=first["id"], is_author=True,
    )
    store.add_comment(reply)
    answer = post(client, parent=reply.id, body="The part about queues.").get_json()["comment"]
    assert answer["state"] == "awaiting_reply"
    assert [c.id for c in store.waiting_comments()] == [answer["id"]]
    tree = client.get("/api/threads/hello").get_json()["comments"]
    assert tree[0]["id"] == first["id"]
    assert tree[0]["replies"][0]["is_author"] is True


# --- validation: every case refused with a clear reason, nothing stored --------------------------

LONG = "x" * 10_001
INVALID_CASES = {
    "missing name": ({"name": None}, 422, "name"),
    "blank name": ({"name": "   "}, 422, "name"),
    "long name": ({"name": "n" * 81}, 422, "name"),
    "two-line name": ({"name": "a\nb"}, 422, "name"),
    "missing body": ({"body": None}, 422, "body"),
    "blank body": ({"body": " \n\t "}, 422, "body"),
    "long body": ({"body": LONG}, 422, "body"),
    "bad email": ({"email": "not-an-address"}, 422, "email"),
    "email with spaces": ({"email": "a b@example.org"}, 422, "email"),
    "notify without email": ({"email": None, "notify": True}, 422, "email"),
    "bad notify": ({"notify": "perhaps"}, 422, "notify"),
    "javascript website": ({"website": "javascript:alert(1)"}, 422, "website"),
    "unknown question": ({"question": "not-a-question"}, 422, "question"),
    "question of another article": ({"question": "how"}, 422, "question"),
    "unknown parent": ({"parent": "nope"}, 422, "parent"),
    "name not text": ({"name": 5}, 422, "name"),
}


@pytest.mark.parametrize("case", sorted(INVALID_CASES))
def test_invalid_comments_are_refused_and_nothing_is_stored(case, client, app):
    changes, status, field = INVALID_CASES[case]
    payload = {**READER, **changes}
    payload = {key: value for key, value in payload.items() if value is not None}
    response = client.post("/api/threads/hello/comments", json=payload)
    body = check(response, "/api/threads/{thread}/comments", "post")
    assert response.status_code == status
    assert field in body["fields"], body
    assert body["fields"][field]
    assert stored(app) == []


def test_parent_in_another_thread_or_not_public_is_refused(client, app):
    other = post(client, thread="second").get_json()["comment"]
    response = post(client, parent=other["id"])
    assert response.status_code == 422
    assert "not in this thread" in response.get_json()["fields"]["parent"]
    hidden = post(client).get_json()["comment"]  # after_reply: not public yet
    response = post(client, parent=hidden["id"])
    assert response.status_code == 422
    assert "not public" in response.get_json()["fields"]["parent"]
    assert len(stored(app)) == 2


def test_unknown_thread_is_404(client, app):
    response = post(client, thread="no-such-article")
    assert check(response, "/api/threads/{thread}/comments", "post")["error"] == "unknown_thread"
    assert response.status_code == 404
    assert client.get("/api/threads/no-such-article").status_code == 404
    assert stored(app) == []


@pytest.mark.parametrize(
    ("data", "content_type", "code"),
    [
        (b"{not json", "application/json", "malformed_json"),
        (b"[1, 2]", "application/json", "malformed_json"),
        (b'{"name": "\xff\xfe", "body": "x"}', "application/json", "invalid_utf8"),
        (b"name=a&body=b", "application/x-www-form-urlencoded", "bad_content_type"),
        (b'{"name": "a", "body": "b"}', "text/plain", "bad_content_type"),
    ],
)
def test_malformed_requests_are_400(data, content_type, code, client, app):
    response = client.post("/api/threads/hello/comments", data=data, content_type=content_type)
    assert response.status_code == 400
    assert check(response, "/api/threads/{thread}/comments", "post")["error"] == code
    assert stored(app) == []


def test_bodies_over_64_kib_are_413(client, app):
    payload = json.dumps({**READER, "body": "y" * (70 * 1024)})
    response = client.post(
        "/api/threads/hello/comments", data=payload, content_type="application/json"
    )
    assert response.status_code == 413
    check(response, "/api/threads/{thread}/comments", "post")
    assert stored(app) == []


# --- spam: kept, never dropped -------------------------------------------------------------------


def test_honeypot_and_too_fast_submissions_are_kept_as_spam(client, app):
    caught = post(client, fax="buy now").get_json()["comment"]
    assert caught["state"] == "spam"
    fresh_token = client.get("/api/form-token").get_json()["form_token"]
    fast = post(client, form_token=fresh_token).get_json()["comment"]
    assert fast["state"] == "spam"
    forged = post(client, form_token="forged.token").get_json()["comment"]
    assert forged["state"] == "spam"
    store = app.extensions["tellmemore.store"]
    reasons = {c.id: c.spam_reasons for c in stored(app)}
    assert reasons == {caught["id"]: ("honeypot",), fast["id"]: ("too_fast",),
                       forged["id"]: ("bad_form_token",)}
    assert store.count_waiting() == 0
    assert client.get("/api/threads/hello").get_json()["count"] == 0


def test_a_patient_writer_is_not_spam(client, app, monkeypatch):
    token = issue_form_token("test-secret-key")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 30)
    assert post(client, form_token=token).get_json()["comment"]["state"] == "awaiting_reply"


def test_spam_checks_can_be_turned_off(service_config):
    from comments_service import create_app

    client = create_app({**service_config, "SPAM_CHECKS": "off"}).test_client()
    assert post(client, fax="x").get_json()["comment"]["state"] == "awaiting_reply"


def test_rate_limit_answers_429_with_retry_after(service_config):
    from comments_service import create_app

    app = create_app({**service_config, "RATE_LIMIT": "2/minute"})
    client = app.test_client()
    assert post(client).status_code == 201
    assert post(client).status_code == 201
    limited = post(client)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    check(limited, "/api/threads/{thread}/comments", "post")
    assert len(stored(app)) == 2


# --- reading ------------------------------------------------------------------------------------


def publish_all(app) -> None:
    from dataclasses import replace

    store = app.extensions["tellmemore.store"]
    for comment in stored(app):
        store.update_comment(comment.id, lambda c: replace(c, public=True))


def test_thread_is_a_tree_with_etag_and_304(client, app):
    first = post(client).get_json()["comment"]
    publish_all(app)
    second = post(client, parent=first["id"], body="Me too").get_json()["comment"]
    publish_all(app)
    response = client.get("/api/threads/hello")
    body = check(response, "/api/threads/{thread}")
    assert body["count"] == 2
    assert [q["id"] for q in body["questions"]] == ["why", "what-next"]
    assert body["comments"][0]["id"] == first["id"]
    assert body["comments"][0]["replies"][0]["id"] == second["id"]
    no_private_data(response.get_data(as_text=True))
    etag = response.headers["ETag"]
    again = client.get("/api/threads/hello", headers={"If-None-Match": etag})
    assert again.status_code == 304
    post(client, body="A third")
    publish_all(app)
    changed = client.get("/api/threads/hello", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.get_json()["count"] == 3


def test_withdrawn_parent_leaves_a_placeholder(service_config):
    from comments_service import create_app

    # Published at once, so its writer may still withdraw it (an approval would lock it).
    client = create_app({**service_config, "PUBLISH_POLICY": "immediately"}).test_client()
    first = post(client).get_json()
    post(client, parent=first["comment"]["id"], body="reply")
    client.delete(f"/api/comments/{first['comment']['id']}",
                  headers={"X-Edit-Token": first["edit_token"]})
    tree = check(client.get("/api/threads/hello"), "/api/threads/{thread}")["comments"]
    assert tree[0]["removed"] is True
    assert tree[0]["html"] == ""
    assert tree[0]["name"] is None
    assert tree[0]["replies"][0]["html"] == "<p>reply</p>"


def test_counts_for_several_threads(client, app):
    post(client)
    post(client, thread="second")
    publish_all(app)
    post(client)  # waiting, not public yet
    response = client.get("/api/counts?thread=hello&thread=second&thread=ghost")
    assert check(response, "/api/counts")["counts"] == {
        "hello": {"comments": 1, "waiting": 2},
        "second": {"comments": 1, "waiting": 1},
        "ghost": None,
    }
    assert client.get("/api/counts").status_code == 422
    many = "&".join(f"thread=t{n}" for n in range(101))
    assert client.get(f"/api/counts?{many}").status_code == 422


# --- editing and withdrawing one's own comment ---------------------------------------------------


def test_edit_and_withdraw_with_the_token(client, app):
    created = post(client).get_json()
    comment_id, token = created["comment"]["id"], created["edit_token"]
    path = f"/api/comments/{comment_id}"
    edited = client.patch(path, json={"body": "Changed **my** mind"},
                          headers={"X-Edit-Token": token})
    body = check(edited, "/api/comments/{comment_id}", "patch")
    assert body["comment"]["html"] == "<p>Changed <strong>my</strong> mind</p>"
    assert body["comment"]["edited"]
    withdrawn = client.delete(path, headers={"X-Edit-Token": token})
    assert check(withdrawn, "/api/comments/{comment_id}", "delete")["comment"]["state"] == (
        "withdrawn"
    )
    assert app.extensions["tellmemore.store"].count_waiting() == 0
    assert [c.state for c in stored(app)] == [CommentState.WITHDRAWN]


@pytest.mark.parametrize("method", ["patch", "delete"])
def test_wrong_missing_or_expired_tokens_are_403(method, client, app, monkeypatch):
    created = post(client).get_json()
    comment_id = created["comment"]["id"]
    other = post(client).get_json()
    path = f"/api/comments/{comment_id}"
    send = getattr(client, method)
    kwargs = {"json": {"body": "new"}} if method == "patch" else {}
    assert send(path, **kwargs).status_code == 403
    assert send(path, headers={"X-Edit-Token": other["edit_token"]}, **kwargs).status_code == 403
    assert send(path, headers={"X-Edit-Token": "garbage"}, **kwargs).status_code == 403
    old_token = issue_edit_token("test-secret-key", comment_id)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 16 * 60)
    response = send(path, headers={"X-Edit-Token": old_token}, **kwargs)
    assert response.status_code == 403
    assert "15 minutes" in check(response, "/api/comments/{comment_id}", method)["message"]
    assert [c.body for c in stored(app)] == ["I *loved* this.", "I *loved* this."]
    assert app.extensions["tellmemore.store"].count_waiting() == 2


def test_edit_validation_and_unknown_comment(client, app):
    created = post(client).get_json()
    headers = {"X-Edit-Token": created["edit_token"]}
    path = f"/api/comments/{created['comment']['id']}"
    assert client.patch(path, json={"body": " "}, headers=headers).status_code == 422
    assert client.patch(path, json={"body": LONG}, headers=headers).status_code == 422
    assert client.patch(path, data="x", content_type="text/plain",
                        headers=headers).status_code == 400
    token = issue_edit_token("test-secret-key", "missing")
    assert client.patch("/api/comments/missing", json={"body": "x"},
                        headers={"X-Edit-Token": token}).status_code == 404
    assert [c.body for c in stored(app)] == ["I *loved* this."]


# --- the plain HTML form -------------------------------------------------------------------------


def test_the_form_endpoint_redirects_back_to_the_article(client, app):
    response = client.post(
        "/threads/hello/comments",
        data={"name": "Ana", "body": "From a form", "question": "why", "return_url": "http://evil.test/"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "http://blog.test/hello/#comment-received"
    [comment] = stored(app)
    assert (comment.name, comment.question, comment.state) == (
        "Ana", "why", CommentState.AWAITING_REPLY
    )


def test_the_form_endpoint_shows_errors_with_the_text_kept(client, app):
    response = client.post(
        "/threads/hello/comments", data={"name": "", "body": "My <b>long</b> thoughts"}
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Please give a name" in page
    assert "My &lt;b&gt;long&lt;/b&gt; thoughts" in page
    assert response.mimetype == "text/html"
    assert stored(app) == []


def test_the_form_endpoint_refuses_invalid_utf8(client, app):
    response = client.post(
        "/threads/hello/comments", data=b"name=%FF&body=x",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert stored(app) == []


# --- cross-origin and headers --------------------------------------------------------------------


def test_cors_only_for_the_site_origin(client):
    allowed = client.options(
        "/api/threads/hello/comments",
        headers={"Origin": "http://blog.test", "Access-Control-Request-Method": "POST"},
    )
    assert allowed.status_code == 204
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert client.get("/api/threads/hello", headers={"Origin": "http://blog.test"}).headers[
        "Access-Control-Allow-Origin"] == "http://blog.test"
    other = client.get("/api/threads/hello", headers={"Origin": "http://evil.test"})
    assert "Access-Control-Allow-Origin" not in other.headers
    refused = client.options(
        "/api/threads/hello/comments",
        headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Methods" not in refused.headers


@pytest.mark.parametrize("path", ["/api/threads/hello", "/healthz", "/api/openapi.json", "/nope"])
def test_security_headers_everywhere(path, client):
    headers = client.get(path).headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_no_email_or_private_field_in_any_public_response(client, app):
    email = "secret.reader@example.org"
    responses = [
        post(client, email=email, notify=True, question="why"),
        client.post("/threads/hello/comments", data={"name": "F", "body": "b", "email": email}),
    ]
    created = responses[0].get_json()
    responses.append(client.patch(f"/api/comments/{created['comment']['id']}",
                                  json={"body": "edited"},
                                  headers={"X-Edit-Token": created["edit_token"]}))
    publish_all(app)
    for path in ("/api/threads/hello", "/api/counts?thread=hello", "/api/form-token",
                 "/api/openapi.json", "/healthz"):
        responses.append(client.get(path))
    for response in responses:
        text = response.get_data(as_text=True) + str(response.headers)
        assert email not in text
        assert "reader_key" not in text
        for comment in stored(app):
            assert comment.reader_key not in text


def test_public_export_lists_every_article_with_its_public_tree(client, app):
    post(client)
    publish_all(app)
    post(client, thread="second")  # not public: not exported
    response = client.get("/api/public-export")
    body = check(response, "/api/public-export")
    assert sorted(body["threads"]) == ["hello", "second"]
    assert body["threads"]["hello"]["count"] == 1
    assert body["threads"]["second"]["comments"] == []
    no_private_data(response.get_data(as_text=True))
