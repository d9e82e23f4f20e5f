"""Several service instances behind one load balancer (issue 10): two gunicorn processes on two
loopback ports share one store and one secret key, and a reader's or author's requests may
land on either. Sessions, CSRF tokens, edit tokens and form tokens are signed, so any instance
accepts what another issued; rate limits and sign-in failures are shared through Redis."""

from __future__ import annotations

import http.cookiejar
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tests.conftest import SERVICE_MANIFEST
from tests.servers import running_service, service_environment

EMAIL, PASSWORD = "ada@blog.test", "correct horse battery"
READER = {"name": "Rosa", "body": "Would love a post on how you keep the queue short."}
REDIS_URL = os.environ.get("TELLMEMORE_TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="set TELLMEMORE_TEST_REDIS_URL to run the shared rate-limit tests"
)


class Browser:
    """One visitor: a cookie jar shared by every instance, as behind a load balancer (cookies
    belong to the host, not the port)."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def request(self, method: str, url: str, *, data: dict | None = None,
                json_body: dict | None = None, headers: dict | None = None,
                ) -> tuple[int, str, dict]:
        body, sent = None, dict(headers or {})
        if json_body is not None:
            body, sent["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        elif data is not None:
            body = urllib.parse.urlencode(data).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=body, method=method, headers=sent)
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), dict(error.headers)

    def csrf_token(self, url: str) -> str:
        status, page, _ = self.request("GET", url)
        assert status == 200, page
        return BeautifulSoup(page, "html.parser").find("input", {"name": "csrf_token"})["value"]


pytestmark = pytest.mark.both_stores


def start_instances(tmp_path: Path, store_url: str, count: int, **settings: str,
                    ) -> tuple[list[str], ExitStack]:
    """``count`` instances, each with its own instance folder, sharing the store and key."""
    manifest = tmp_path / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
    shared = {"MANIFEST": str(manifest), "SITE_ORIGINS": "http://blog.test",
              "SIGN_IN_DELAY_SECONDS": "0", "STORE_PATH": str(tmp_path / "store"),
              "STORE_URL": store_url, **settings}
    first = service_environment(tmp_path / "instance-0", **shared)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "comments_service", "add-author",
         "--name", "Ada", "--email", EMAIL, "--password", PASSWORD],
        env=first, cwd=tmp_path, check=True, capture_output=True, text=True,
    )
    stack, urls = ExitStack(), []
    for number in range(count):
        folder = tmp_path / f"instance-{number}"
        folder.mkdir(exist_ok=True)
        url, _process = stack.enter_context(running_service(
            folder, service_environment(folder, **shared), workers=1,
        ))
        urls.append(url)
    return urls, stack


@pytest.fixture
def instances(tmp_path: Path, store_url: str) -> Iterator[list[str]]:
    urls, stack = start_instances(tmp_path, store_url, 2)
    with stack:
        yield urls


def post_comment(browser: Browser, base: str) -> tuple[int, dict]:
    status, body, _ = browser.request("POST", f"{base}/api/threads/hello/comments",
                                      json_body=READER)
    return status, json.loads(body)


def sign_in(browser: Browser, base: str, password: str = PASSWORD) -> int:
    token = browser.csrf_token(f"{base}/moderate/sign-in")
    status, _page, _ = browser.request(
        "POST", f"{base}/moderate/sign-in",
        data={"csrf_token": token, "email": EMAIL, "password": password},
    )
    return status


def test_an_edit_token_from_one_instance_works_on_the_other(instances):
    first, second = instances
    reader = Browser()
    status, created = post_comment(reader, first)
    assert status == 201, created
    comment_id, token = created["comment"]["id"], created["edit_token"]
    status, body, _ = reader.request(
        "PATCH", f"{second}/api/comments/{comment_id}", json_body={"body": "Edited elsewhere"},
        headers={"X-Edit-Token": token},
    )
    assert status == 200, body
    assert "Edited elsewhere" in json.loads(body)["comment"]["html"]
    status, body, _ = reader.request(
        "PATCH", f"{second}/api/comments/{comment_id}", json_body={"body": "Forged"},
        headers={"X-Edit-Token": token[:-2] + "xx"},
    )
    assert status == 403, body


def test_a_sign_in_and_its_csrf_token_work_on_every_instance(instances):
    first, second = instances
    reader = Browser()
    status, created = post_comment(reader, second)
    assert status == 201, created
    comment_id = created["comment"]["id"]

    author = Browser()
    assert sign_in(author, first) == 200  # 303 to the queue, followed
    status, queue, _ = author.request("GET", f"{second}/moderate/")
    assert status == 200 and READER["name"] in queue, queue
    # The form comes from one instance, the reply goes to the other.
    token = author.csrf_token(f"{first}/moderate/comments/{comment_id}")
    status, page, _ = author.request(
        "POST", f"{second}/moderate/comments/{comment_id}/reply",
        data={"csrf_token": token, "intent": "reply",
              "body": "Rosa, a post on keeping the queue short is next on my list."},
    )
    assert status == 200, page
    status, thread, _ = reader.request("GET", f"{first}/api/threads/hello")
    assert "keeping the queue short is next" in thread

    status, _page, _ = author.request("POST", f"{second}/moderate/sign-out",
                                      data={"csrf_token": author.csrf_token(f"{first}/moderate/")})
    assert status == 200
    status, page, _ = author.request("GET", f"{first}/moderate/")
    assert "sign-in" in page.lower() and READER["name"] not in page


@needs_redis
def test_rate_limits_are_shared_through_redis(tmp_path):
    prefix = f"tellmemore-test-{secrets.token_hex(6)}"
    urls, stack = start_instances(
        tmp_path, "", 2, RATE_LIMIT="3/minute", RATE_LIMIT_STORAGE_URI=REDIS_URL,
        RATE_LIMIT_KEY_PREFIX=prefix, SIGN_IN_DELAY_SECONDS="60",
    )
    with stack:
        first, second = urls
        reader = Browser()
        assert [post_comment(reader, base)[0] for base in (first, second, first)] == [201] * 3
        status, body, headers = reader.request("POST", f"{second}/api/threads/hello/comments",
                                               json_body=READER)
        assert status == 429, body
        assert int(headers["Retry-After"]) > 0

        guesser = Browser()
        assert sign_in(guesser, first, "wrong password 1") == 401
        # The address's wait after a failure holds on the other instance too.
        assert sign_in(guesser, second, "wrong password 2") == 429
        assert sign_in(guesser, first, PASSWORD) == 429


def test_without_redis_each_instance_counts_alone(tmp_path):
    """The default counts in the instance folder, shared by that instance's workers only:
    documented in docs/DEPLOY.md as the reason instances on several machines set
    RATE_LIMIT_STORAGE_URI."""
    urls, stack = start_instances(tmp_path, "", 2, RATE_LIMIT="1/minute")
    with stack:
        first, second = urls
        reader = Browser()
        assert post_comment(reader, first)[0] == 201
        assert post_comment(reader, first)[0] == 429
        assert post_comment(reader, second)[0] == 201


def test_two_instances_storing_repeated_requests_at_once_group_every_one(
    tmp_path, store_url, open_test_store
):
    """The tally's lock spans processes: 24 readers ask for one of two things through two
    instances at once, and every request lands in its group, counted once."""
    # Lexical: the model's background regroup would fold the log this test reads back.
    urls, stack = start_instances(tmp_path, store_url, 2, RATE_LIMIT="off",
                                  TALLY_EMBEDDER="lexical")
    asks = ("Could you please write a post about sourdough starters for beginners?",
            "Please add a dark mode to the whole site, my eyes would thank you.")

    def ask(number: int) -> str:
        status, body = post_comment_text(Browser(), urls[number % 2], f"Reader {number}",
                                         asks[number // 2 % 2])
        assert status == 201, body
        return body["comment"]["id"]

    with stack, ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(ask, range(24)))
    store = open_test_store()
    groups: dict[str, set[str]] = {}
    for comment_id in ids:
        comment = store.get_comment(comment_id)
        assert comment.request is not None, comment
        groups.setdefault(comment.request, set()).add(comment.body)
    # Two groups, each holding one of the two requests only.
    assert len(groups) == 2 and all(len(bodies) == 1 for bodies in groups.values())
    with store.request_tally() as tally:
        records, _ = tally.records()
    assert sorted(record["comment"] for record in records) == sorted(ids)


def post_comment_text(browser: Browser, base: str, name: str, body: str) -> tuple[int, dict]:
    status, text, _ = browser.request("POST", f"{base}/api/threads/hello/comments",
                                      json_body={"name": name, "body": body})
    return status, json.loads(text)
