"""The service under gunicorn -w 4: concurrent POSTs from many connections, every 201 kept once;
and a worker killed mid-write loses nothing it acknowledged."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import SERVICE_MANIFEST
from tests.servers import running_service, service_environment

POSTERS = 8
POSTS_EACH = 50


@pytest.fixture
def gunicorn_service(tmp_path: Path):
    manifest = tmp_path / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST))
    environment = service_environment(
        tmp_path, MANIFEST=str(manifest), RATE_LIMIT="off", PUBLISH_POLICY="immediately",
        MAIL_SENDER_THREAD="false",
    )
    with running_service(tmp_path, environment, workers=4) as (url, process):
        yield int(url.rsplit(":", 1)[1]), process, environment


def post_many(port: int, thread: str, count: int, acknowledged: list[str], failures: list) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for number in range(count):
            body = json.dumps({"name": f"Reader {number}", "body": f"Comment {number}"})
            try:
                connection.request("POST", f"/api/threads/{thread}/comments", body=body,
                                   headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                failures.append(repr(error))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            if response.status == 201:
                acknowledged.append(json.loads(payload)["comment"]["id"])
            else:
                failures.append((response.status, payload[:200]))
    finally:
        connection.close()


def stored_ids(environment: dict[str, str], cwd: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "comments_service", "export"],
        env=environment, cwd=cwd, capture_output=True, text=True, check=True,
    )
    return [record["id"] for record in json.loads(result.stdout)["comments"]]


@pytest.mark.slow
def test_four_workers_keep_every_concurrent_comment_exactly_once(gunicorn_service, tmp_path):
    port, _, environment = gunicorn_service
    acknowledged: list[str] = []
    failures: list = []
    posters = [
        threading.Thread(
            target=post_many,
            args=(port, "hello" if n % 2 else "second", POSTS_EACH, acknowledged, failures),
        )
        for n in range(POSTERS)
    ]
    for poster in posters:
        poster.start()
    for poster in posters:
        poster.join()
    assert failures == []
    assert len(acknowledged) == POSTERS * POSTS_EACH
    ids = stored_ids(environment, tmp_path)
    assert len(ids) == len(set(ids)) == POSTERS * POSTS_EACH
    assert set(ids) == set(acknowledged)


@pytest.mark.slow
def test_a_worker_killed_mid_write_loses_nothing_acknowledged(gunicorn_service, tmp_path):
    port, process, environment = gunicorn_service
    acknowledged: list[str] = []
    failures: list = []
    posters = [
        threading.Thread(target=post_many, args=(port, "hello", 60, acknowledged, failures))
        for _ in range(4)
    ]
    for poster in posters:
        poster.start()
    time.sleep(0.3)
    workers = subprocess.run(
        ["pgrep", "-P", str(process.pid)], capture_output=True, text=True
    ).stdout.split()
    for worker in workers[:2]:
        os.kill(int(worker), signal.SIGKILL)
    for poster in posters:
        poster.join()
    assert acknowledged, failures
    ids = stored_ids(environment, tmp_path)
    assert set(acknowledged) <= set(ids)
    assert len(ids) == len(set(ids))
