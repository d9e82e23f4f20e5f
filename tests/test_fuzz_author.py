"""Schema fuzzing of the author's routes (issue 20, item 3): Schemathesis, signed in, against
the LIVE service under gunicorn. The moderation pages are HTML, not an API with a document of
its own, so the document is made here from the app's own routes: every /moderate rule and
method, its path parameters, the query parameters the pages read and the form fields their
forms send (all text). The only promise checked is the one SECURITY.md makes for every input:
never a 5xx. The signed-in browser's cookie and CSRF token go with every request; sign-out,
"sign out everywhere" and the password change are left out (they would end the session the run
needs), and are covered by tests/test_sessions.py.

Besides generated data, the hostile cases the adversarial test found are sent on purpose to
the public API and the author's pages alike (lone surrogates, deep nesting, page 10^20).
"""

from __future__ import annotations

import collections
import http.cookiejar
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from werkzeug.security import generate_password_hash

from comments_service.comments.replying import reply
from comments_service.models import Author, utc_now
from comments_service.store import open_store
from tests.conftest import AUTHOR_EMAIL, AUTHOR_PASSWORD, SERVICE_MANIFEST
from tests.servers import running_service, service_environment

LONG = os.environ.get("TELLMEMORE_LONG_TESTS") == "1"
FUZZ_EXAMPLES = 25
LONG_EXAMPLES = 200
# Routes that end the session the run signs in with (tested in tests/test_sessions.py).
LEFT_OUT = {("/moderate/sign-out", "post"), ("/moderate/sign-out-everywhere", "post"),
            ("/moderate/password", "post"), ("/moderate/sign-in", "post")}
QUERY_PARAMETERS = ["page", "q", "state", "thread", "question", "show", "all", "next", "back"]
FORM_FIELDS = ["body", "intent", "return_to", "choice", "label", "link", "status", "into",
               "from", "to", "comment", "reject", "nudged", "next", "back", "page", "thread"]
FLASK_PARAMETER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def author_document(rules: list[tuple[str, str]]) -> dict:
    """An OpenAPI 3.1 document of the given (Flask rule, method) pairs."""
    paths: dict[str, dict] = {}
    for rule, method in rules:
        path = FLASK_PARAMETER.sub(r"{\1}", rule)
        names = FLASK_PARAMETER.findall(rule)
        operation: dict = {
            "operationId": f"{method} {path}",
            "parameters": [{"name": name, "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1}} for name in names],
            "responses": {"default": {"description": "Anything but a server error."}},
        }
        if method == "get":
            operation["parameters"] += [{"name": name, "in": "query", "required": False,
                                         "schema": {"type": "string"}}
                                        for name in QUERY_PARAMETERS]
        else:
            operation["requestBody"] = {"required": True, "content": {
                "application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "additionalProperties": False,
                    "properties": {name: {"type": "string"} for name in FORM_FIELDS}}}}}
        paths.setdefault(path, {})[method] = operation
    return {"openapi": "3.1.0", "info": {"title": "tellmemore author routes", "version": "1"},
            "paths": paths}


def moderation_rules() -> list[tuple[str, str]]:
    """Every /moderate (rule, method) of the app, but those in LEFT_OUT."""
    from flask import Flask

    from comments_service.moderation import bp

    app = Flask(__name__)
    app.register_blueprint(bp)
    return sorted(
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules() if rule.rule.startswith("/moderate")
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if (rule.rule, method.lower()) not in LEFT_OUT
    )


RULES = moderation_rules()
DOCUMENT = author_document(RULES)


@dataclass(frozen=True)
class SignedIn:
    url: str
    cookie: str
    csrf_token: str
    known: dict[str, list[str]]


def _request(opener, url: str, data: dict | None = None) -> str:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with opener.open(urllib.request.Request(url, data=body), timeout=10) as response:
        return response.read().decode()


@pytest.fixture(scope="module")
def signed_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedIn]:
    """gunicorn -w 2 with comments, a reply and an author signed in through the real form."""
    folder: Path = tmp_path_factory.mktemp("fuzz-author")
    manifest = folder / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
    store = open_store(folder / "store")
    try:
        store.add_author(Author(id="author-1", name="Ada", email=AUTHOR_EMAIL, created=utc_now(),
                                password_hash=generate_password_hash(
                                    AUTHOR_PASSWORD, method="pbkdf2:sha256:1000")))
    finally:
        store.close()
    environment = service_environment(
        folder, MANIFEST=str(manifest), SECRET_KEY="fuzz-secret", RATE_LIMIT="off",
        SPAM_CHECKS="off", SITE_ORIGINS="http://blog.test", SIGN_IN_DELAY_SECONDS="0",
    )
    with running_service(folder, environment) as (url, _process):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        ids = []
        for thread, name in (("hello", "Rosa"), ("hello", "Tom"), ("second", "Lea")):
            request = urllib.request.Request(
                f"{url}/api/threads/{thread}/comments", method="POST",
                data=json.dumps({"name": name, "body": f"A comment by {name}."}).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                ids.append(json.load(response)["comment"]["id"])
        form = BeautifulSoup(_request(opener, f"{url}/moderate/sign-in"), "html.parser")
        token = form.find("input", {"name": "csrf_token"})["value"]
        _request(opener, f"{url}/moderate/sign-in",
                 {"csrf_token": token, "email": AUTHOR_EMAIL, "password": AUTHOR_PASSWORD})
        page = BeautifulSoup(_request(opener, f"{url}/moderate/"), "html.parser")
        token = page.find("input", {"name": "csrf_token"})["value"]
        store = open_store(folder / "store")
        try:
            author = store.author_by_email(AUTHOR_EMAIL)
            replies = [reply(store, ids[0], author, "Rosa, thank you: yes, weekly.").id]
            groups = sorted({c.request for c in store.all_comments() if c.request})
            messages = [message.id for message in store.list_messages()]
        finally:
            store.close()
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        yield SignedIn(url, cookie, token, {
            "comment_id": ids, "reply_id": replies, "group_id": groups or ["g"],
            "message_id": messages or ["20260101-x"]})


@pytest.fixture(scope="module")
def author_schema():
    return schemathesis.openapi.from_dict(DOCUMENT)


def cases(operation, mode: GenerationMode, known: dict[str, list[str]]):
    """Generated requests, some aimed at records that exist (else most would be 404s)."""
    strategies = [operation.as_strategy(mode)]
    names = {parameter.name for parameter in operation.path_parameters}
    for name in names & known.keys():
        for value in known[name]:
            strategies.append(operation.as_strategy(mode, path_parameters={name: value}))
    return st.one_of(strategies)


# Deletions last, so that the edits before them still find replies to edit.
RUNS = [(FLASK_PARAMETER.sub(r"{\1}", rule), method.upper(), mode)
        for rule, method in sorted(RULES, key=lambda pair: pair[0].endswith("/delete"))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]


@pytest.mark.parametrize(("path", "method", "mode"), RUNS,
                         ids=[f"{method} {path} {mode}" for path, method, mode in RUNS])
def test_no_author_route_answers_a_server_error(author_schema, signed_in, path, method, mode):
    operation = author_schema[path][method]
    statuses: collections.Counter[int] = collections.Counter()
    headers = {"Cookie": signed_in.cookie, "X-CSRFToken": signed_in.csrf_token,
               "Referer": f"{signed_in.url}/moderate/"}

    @given(case=cases(operation, mode, signed_in.known))
    @settings(max_examples=LONG_EXAMPLES if LONG else FUZZ_EXAMPLES, deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:
        response = case.call(base_url=signed_in.url, headers=headers, timeout=10,
                             allow_redirects=False)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error])

    fuzz()
    assert statuses, "no request was sent"
    # Still signed in: the run reached the pages, not only the sign-in form.
    assert statuses.keys() - {302, 401}, dict(statuses)
    print(f"{method} {path} {mode}: {dict(statuses)}")


HOSTILE = [
    ("POST", "/api/threads/hello/comments", "application/json",
     '{"name": "\\ud800", "body": "x"}', 400),
    ("POST", "/api/threads/hello/comments", "application/json",
     '{"name": "a", "body": "x", "z": ' + "[" * 1000 + "]" * 1000 + "}", 400),
    ("GET", "/moderate/all?page=100000000000000000000", None, None, 400),
    ("GET", "/moderate/outbox/?page=100000000000000000000", None, None, 400),
    ("GET", "/moderate/?page=100000000000000000000", None, None, 400),
]


@pytest.mark.parametrize(("method", "path", "kind", "body", "status"), HOSTILE,
                         ids=[f"{case[0]} {case[1][:40]}" for case in HOSTILE])
def test_the_hostile_cases_found_by_hand_are_4xx_on_the_live_service(
    signed_in, method, path, kind, body, status
):
    headers = {"Cookie": signed_in.cookie}
    if kind:
        headers["Content-Type"] = kind
    request = urllib.request.Request(f"{signed_in.url}{path}", method=method, headers=headers,
                                     data=body.encode() if body is not None else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answered = response.status
    except urllib.error.HTTPError as error:
        answered = error.code
    assert answered == status


def test_the_document_covers_every_author_route_but_those_left_out():
    assert len(RULES) > 20
    assert all(rule.startswith("/moderate") for rule, _ in RULES)
