"""flask … export / import: everything out, everything back, idempotent, nothing half-imported."""

from __future__ import annotations

import json

import pytest

from comments_service import create_app


def post(client, **fields):
    payload = {"name": "Rosa", "body": "Hello", "email": "rosa@example.org", **fields}
    response = client.post("/api/threads/hello/comments", json=payload)
    assert response.status_code == 201
    return response.get_json()["comment"]


def export(app, tmp_path, name="export.json"):
    target = tmp_path / name
    result = app.test_cli_runner().invoke(args=["export", "--output", str(target)])
    assert result.exit_code == 0, result.output
    return target


def test_export_then_import_into_a_new_store_is_lossless_and_idempotent(
    app, client, service_config, tmp_path
):
    post(client, question="why")
    post(client, fax="spam!")
    target = export(app, tmp_path)
    document = json.loads(target.read_text())
    assert document["format"] == "tellmemore-export"
    assert len(document["comments"]) == 2
    assert document["comments"][0]["email"] == "rosa@example.org"  # the author's own data

    fresh = create_app({**service_config, "STORE_PATH": str(tmp_path / "other-store")})
    runner = fresh.test_cli_runner()
    first = runner.invoke(args=["import", str(target)])
    assert first.exit_code == 0, first.output
    assert "Imported 2 comments (0 already present)" in first.output
    second = runner.invoke(args=["import", str(target)])
    assert "Imported 0 comments (2 already present)" in second.output
    def records(application):
        return [c.to_record() for c in application.extensions["tellmemore.store"].all_comments()]

    assert records(app) == records(fresh)
    assert fresh.extensions["tellmemore.store"].count_waiting() == 1


def test_export_to_standard_output(app, client):
    post(client)
    result = app.test_cli_runner().invoke(args=["export"])
    assert json.loads(result.output)["comments"][0]["name"] == "Rosa"


BAD_FILES = {
    "not json": ("{oops", "is not JSON"),
    "not an export": (json.dumps({"comments": []}), "is not a tellmemore export"),
    "newer version": (
        json.dumps({"format": "tellmemore-export", "version": 9, "comments": []}),
        "export version 9",
    ),
    "comments not a list": (
        json.dumps({"format": "tellmemore-export", "version": 1, "comments": {}}),
        "comments is missing or not a list",
    ),
}


def record(**changes):
    base = {
        "id": "abc", "thread": "hello", "name": "A", "body": "b", "html": "<p>b</p>",
        "created": "2026-01-01T00:00:00.000000+00:00", "state": "awaiting_reply",
        "public": False,
    }
    return {**base, **changes}


BAD_RECORDS = {
    "missing name": (record(name=None), "comments[1]: name is missing"),
    "bad state": (record(state="lost"), "state 'lost' is unknown"),
    "bad thread": (record(thread="../x"), "not a valid thread key"),
    "bad time": (record(created="yesterday"), "created is not an ISO 8601 time"),
    "public not boolean": (record(public="yes"), "public must be true or false"),
    "repeated id": (record(id="first"), "id 'first' appears twice"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_are_refused_whole(case, app, client, tmp_path):
    post(client)
    text, message = BAD_FILES[case]
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = app.test_cli_runner().invoke(args=["import", str(path)])
    assert result.exit_code == 1
    assert message in result.output
    assert "Nothing was imported" in result.output
    assert app.extensions["tellmemore.store"].count_comments() == 1


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_one_bad_record_refuses_the_whole_file(case, app, tmp_path):
    bad, message = BAD_RECORDS[case]
    document = {
        "format": "tellmemore-export", "version": 1,
        "comments": [record(id="first"), bad, record(id="third")],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    result = app.test_cli_runner().invoke(args=["import", str(path)])
    assert result.exit_code == 1
    assert message in result.output
    assert app.extensions["tellmemore.store"].count_comments() == 0
