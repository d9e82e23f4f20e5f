"""No 5xx on any input (issue 20, item 3): lone surrogates in any JSON field, JSON nested 1000
deep and huge page numbers are clear 4xx answers, and nothing is stored for them."""

from __future__ import annotations

import pytest

from tests.test_api import READER, check

pytestmark = pytest.mark.both_stores

FIELDS = ["name", "body", "email", "website", "parent", "question", "reader_token", "fax",
          "form_token", "notify"]
POST_PATH = "/api/threads/{thread}/comments"


def raw_post(client, text: str):
    return client.post("/api/threads/hello/comments", data=text,
                       content_type="application/json")


def stored(app) -> list:
    return list(app.extensions["tellmemore.store"].all_comments())


@pytest.mark.parametrize("field", FIELDS)
def test_a_lone_surrogate_in_any_field_of_a_new_comment_is_400(field, client, app):
    fields = {"name": "Rosa", "body": "Fine text"}
    text = (
        "{" + ", ".join(f'"{name}": "{value}"' for name, value in fields.items() if name != field)
        + f', "{field}": "before \\ud800 after"' + "}"
    )
    response = raw_post(client, text)
    assert response.status_code == 400
    assert check(response, POST_PATH, "post")["error"] == "invalid_text"
    assert stored(app) == []


@pytest.mark.parametrize("text", [
    '{"name": "Rosa", "body": "x", "\\udfff": 1}',  # in a key
    '{"name": "Rosa", "body": "x", "extra": [[{"deep": "\\udc00"}]]}',  # deep inside
])
def test_a_lone_surrogate_anywhere_in_the_body_is_400(text, client, app):
    assert raw_post(client, text).status_code == 400
    assert stored(app) == []


def test_a_surrogate_pair_is_the_character_it_encodes(client, app):
    response = raw_post(client, '{"name": "Rosa", "body": "smile \\ud83d\\ude00"}')
    assert response.status_code == 201
    assert stored(app)[0].body == "smile \U0001F600"


def test_a_lone_surrogate_in_an_edit_is_400_and_the_text_stays(client, app):
    created = client.post("/api/threads/hello/comments", json=READER).get_json()
    path = f"/api/comments/{created['comment']['id']}"
    response = client.patch(path, data='{"body": "new \\ud800"}', content_type="application/json",
                            headers={"X-Edit-Token": created["edit_token"]})
    assert response.status_code == 400
    assert check(response, "/api/comments/{comment_id}", "patch")["error"] == "invalid_text"
    assert stored(app)[0].body == READER["body"]


@pytest.mark.parametrize("depth", [1000, 5000, 20000])
def test_json_nested_deep_is_400(depth, client, app):
    text = '{"name": "Rosa", "body": "x", "z": ' + "[" * depth + "]" * depth + "}"
    response = raw_post(client, text)
    assert response.status_code in (400, 413)
    if response.status_code == 400:
        assert check(response, POST_PATH, "post")["error"] == "malformed_json"
    assert stored(app) == []


@pytest.mark.parametrize("path", ["/moderate/", "/moderate/all", "/moderate/spam",
                                  "/moderate/outbox/"])
@pytest.mark.parametrize("page", ["100000000000000000000", "0", "-1", "1e5", "\u0661"])
def test_a_page_number_out_of_range_is_400(path, page, author_client):
    response = author_client.get(f"{path}?page={page}")
    assert response.status_code == 400, (path, page, response.status_code)
    assert author_client.get(f"{path}?page=1").status_code == 200


def give_a_field_the_wrong_type(app, store_config, comment_id: str) -> None:
    """What a hand edit or a bad restore leaves: a comment's date stored as a number."""
    import json
    from pathlib import Path

    from comments_service.store import open_store

    if store_config["STORE_URL"]:
        import psycopg

        with psycopg.connect(store_config["STORE_URL"], autocommit=True) as connection:
            connection.execute("UPDATE comments SET record = json_build_object("
                               "'id', id, 'thread', thread, 'name', 'x', 'body', 'x',"
                               " 'html', 'x', 'created', 5, 'state', 'awaiting_reply',"
                               " 'public', false) WHERE id = %s", (comment_id,))
        return
    # Fold the thread's log into its snapshot first, so that the snapshot holds the comment.
    store = open_store(store_config["STORE_PATH"])
    with store._threads.lock("hello"):
        store._threads.compact("hello", store._threads.state("hello", locked=True))
    store.close()
    path = Path(store_config["STORE_PATH"]) / "threads" / "hello.json"
    data = json.loads(path.read_text())
    next(iter(data["comments"].values()))["created"] = 5
    path.write_text(json.dumps(data))


def test_a_wrong_typed_field_is_found_by_check_and_never_a_500(
    client, app, auth, runner, store_config
):
    created = client.post("/api/threads/hello/comments", json=READER).get_json()
    author_client = auth.login()
    give_a_field_the_wrong_type(app, store_config, created["comment"]["id"])
    for path in ("/moderate/metrics", "/moderate/", "/moderate/all"):
        assert author_client.get(path).status_code == 503, path
    assert client.get("/api/threads/hello").status_code == 503
    result = runner.invoke(args=["check"])
    assert result.exit_code == 1
    assert "created" in result.output or "cannot be read" in result.output, result.output
