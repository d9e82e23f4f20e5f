"""Schema fuzzing of the public API: Schemathesis generates requests from the service's own
OpenAPI document (/api/openapi.json) and sends them to the LIVE service under gunicorn.

Every answer must be documented for its operation (status code, content type, JSON schema of
the body), never a 5xx, and must carry the security headers. The store is seeded with public
comments and threads first, so reads return real trees and edits/withdrawals meet real ids.

Bounded: FUZZ_EXAMPLES examples per operation in the normal suite (the whole module takes well
under a minute); TELLMEMORE_LONG_TESTS=1 runs LONG_EXAMPLES per operation, positive and
negative (schema-violating) data alike.
"""

from __future__ import annotations

import collections
import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from comments_service.api.openapi import openapi_document
from comments_service.models import CommentState
from comments_service.store import open_store
from tests.conftest import SERVICE_MANIFEST
from tests.servers import running_service, service_environment

LONG = os.environ.get("TELLMEMORE_LONG_TESTS") == "1"
FUZZ_EXAMPLES = 50
LONG_EXAMPLES = 400
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _post(url: str, thread: str, fields: dict) -> dict:
    request = urllib.request.Request(
        f"{url}/api/threads/{thread}/comments", data=json.dumps(fields).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


@dataclass(frozen=True)
class Live:
    url: str
    known: dict[str, list[str]]  # path parameter → values that exist in the store
    editable: dict[str, tuple[str, str]]  # PATCH/DELETE → (comment id, its edit token)


@pytest.fixture(scope="module")
def live_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """gunicorn -w 2 with the test manifest and a store holding public threads."""
    folder: Path = tmp_path_factory.mktemp("fuzz")
    manifest = folder / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
    environment = service_environment(
        folder, MANIFEST=str(manifest), SECRET_KEY="fuzz-secret", RATE_LIMIT="off",
        SPAM_CHECKS="on", SITE_ORIGINS="http://blog.test",
    )
    with running_service(folder, environment) as (url, _process):
        first = _post(url, "hello", {"name": "Rosa", "body": "A *first* comment.",
                                     "email": "rosa@example.org", "question": "why"})
        second = _post(url, "second", {"name": "Tom", "body": "Another one."})
        store = open_store(folder / "store")
        try:
            for comment in store.all_comments():
                store.update_comment(
                    comment.id, lambda c: replace(c, public=True, state=CommentState.REPLIED))
        finally:
            store.close()
        third = _post(url, "hello", {"name": "Lea", "body": "A reply.",
                                     "parent": first["comment"]["id"]})
        ids = [posted["comment"]["id"] for posted in (first, second, third)]
        # One comment each for edits and withdrawals with a valid token (a withdrawn comment
        # cannot be edited, so they must not share one).
        tokens = {method: _post(url, "second", {"name": "Ed", "body": f"To {method}."})
                  for method in ("PATCH", "DELETE")}
        yield Live(url, {"thread": ["hello", "second"], "comment_id": ids}, {
            method: (posted["comment"]["id"], posted["edit_token"])
            for method, posted in tokens.items()
        })


@pytest.fixture(scope="module")
def api_schema(live_service: Live):
    return schemathesis.openapi.from_url(f"{live_service.url}/api/openapi.json")


def assert_security_headers(response) -> None:
    """nosniff and a CSP that forbids framing, on every answer (security.add_headers)."""
    headers = {name.lower(): values for name, values in response.headers.items()}
    if "server" not in headers:
        # gunicorn's own refusal of a request it could not parse (a request line over 4 KiB):
        # the service never saw it, so it carries no header of the service's.
        assert response.status_code == 400, response.status_code
        return
    assert headers.get("x-content-type-options") == ["nosniff"], headers
    [csp] = headers.get("content-security-policy", [""])
    assert "frame-ancestors 'none'" in csp, headers


# The public API; the author routes (tagged "author") need a signed-in session.
DOCUMENT_PATHS = {path: methods for path, methods in openapi_document()["paths"].items()
                  if not path.startswith("/moderate/")}
# Negative data (requests that break the schema) only exists where there is input to break.
RUNS = sorted(
    (path, method.upper(), mode)
    for path, methods in DOCUMENT_PATHS.items() for method, operation in methods.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or operation.get("parameters")
    or operation.get("requestBody")
)


def cases(operation, mode: GenerationMode, live: Live):
    """Generated requests; for operations on a thread or a comment, some of them aimed at
    threads and comments that exist (else nearly every request would be a plain 404), and
    for edits and withdrawals some with a valid edit token."""
    known = live.known
    strategies = [operation.as_strategy(mode)]
    if operation.method.upper() in live.editable:
        comment_id, token = live.editable[operation.method.upper()]
        strategies.append(operation.as_strategy(
            mode, path_parameters={"comment_id": comment_id}, headers={"X-Edit-Token": token}))
    names = {parameter.name for parameter in operation.path_parameters}
    for value in known.get("thread", []) if "thread" in names else []:
        strategies.append(operation.as_strategy(mode, path_parameters={"thread": value}))
    for value in known.get("comment_id", []) if "comment_id" in names else []:
        strategies.append(operation.as_strategy(mode, path_parameters={"comment_id": value}))
    return st.one_of(strategies)


@pytest.mark.parametrize(("path", "method", "mode"), RUNS,
                         ids=[f"{method} {path} {mode}" for path, method, mode in RUNS])
def test_every_answer_is_documented_and_never_a_server_error(
    api_schema, live_service, path, method, mode
) -> None:
    operation = api_schema[path][method]
    statuses: collections.Counter[int] = collections.Counter()

    @given(case=cases(operation, mode, live_service))
    @settings(
        max_examples=LONG_EXAMPLES if LONG else FUZZ_EXAMPLES, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case) -> None:
        response = case.call(timeout=10)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
        assert_security_headers(response)

    fuzz()
    assert statuses, "no request was sent"
    print(f"{method} {path} {mode}: {dict(statuses)}")
