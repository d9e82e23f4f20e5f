"""Mixed load on loopback against gunicorn -w 4 (docs/FAULTS.md, "Load").

Several client processes send POSTs to four threads, GETs of threads (plain and with
If-None-Match), and GETs of counts, over keep-alive http.client connections. Every comment
acknowledged with 201 must be stored exactly once, and no answer may be a 5xx.

The normal suite runs 2 000 requests; ``TELLMEMORE_LONG_TESTS=1`` runs 20 000:

    TELLMEMORE_LONG_TESTS=1 .venv/bin/pytest tests/test_load.py -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.servers import running_service, service_environment

LONG = os.environ.get("TELLMEMORE_LONG_TESTS") == "1"
REQUESTS = 20_000 if LONG else 2_000
CLIENTS = 8
THREADS = ["load-a", "load-b", "load-c", "load-d"]
MANIFEST = {
    "schema_version": 1,
    "site_name": "Load",
    "site_url": "http://blog.test",
    "service_url": "http://127.0.0.1:5000",  # the address for links in mail
    "articles": [
        {"thread": thread, "title": thread, "url": f"http://blog.test/{thread}/",
         "date": "2026-10-01T00:00:00+00:00", "lang": "en",
         "questions": [{"id": "why", "text": "Why?"}]}
        for thread in THREADS
    ],
}

# One client process: ``count`` requests, the kind of each chosen by its number, over one
# keep-alive connection (reopened when the server closes it). Prints one JSON line at the end.
CLIENT = """
import http.client, json, sys
port, client, count, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
etags, statuses, acknowledged, errors = {}, {}, [], []
for number in range(count):
    thread = threads[(number * 7 + client) % len(threads)]
    kind = number % 20
    headers, body, method = {}, None, "GET"
    if kind < 8:
        method, path = "POST", f"/api/threads/{thread}/comments"
        body = json.dumps({"name": f"Reader {client}", "body": f"Load {client}/{number}",
                           "question": "why"})
        headers["Content-Type"] = "application/json"
    elif kind < 13:
        path = f"/api/threads/{thread}"
    elif kind < 17:
        path = f"/api/threads/{thread}"
        if thread in etags:
            headers["If-None-Match"] = etags[thread]
    else:
        path = "/api/counts?" + "&".join(f"thread={name}" for name in threads)
    for attempt in range(3):
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            break
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            # A POST whose answer was lost may or may not be stored: never resent, counted.
            if method == "POST" or attempt == 2:
                errors.append(f"{method} {path}: {error!r}")
                payload = None
                break
    if payload is None:
        continue
    key = f"{method} {response.status}"
    statuses[key] = statuses.get(key, 0) + 1
    if response.status == 201:
        acknowledged.append(json.loads(payload)["comment"]["id"])
    elif method == "GET" and response.status == 200 and path.startswith("/api/threads/"):
        etags[thread] = response.getheader("ETag")
connection.close()
print(json.dumps({"statuses": statuses, "acknowledged": acknowledged, "errors": errors}))
"""


def stored_comments(environment: dict[str, str], cwd: Path) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "comments_service", "export"],
        env=environment, cwd=cwd, capture_output=True, text=True, check=True, timeout=120,
    )
    return json.loads(result.stdout)["comments"]


@pytest.mark.slow
def test_mixed_load_keeps_every_acknowledged_comment_once_without_5xx(tmp_path, capsys):
    manifest = tmp_path / "comments-manifest.json"
    manifest.write_text(json.dumps(MANIFEST))
    environment = service_environment(
        tmp_path, MANIFEST=str(manifest), RATE_LIMIT="off", PUBLISH_POLICY="immediately",
        SPAM_CHECKS="off", MAIL_SENDER_THREAD="false", BACKUP_DAILY="false",
    )
    with running_service(tmp_path, environment, workers=4) as (url, _process):
        port = url.rsplit(":", 1)[1]
        started = time.perf_counter()
        clients = [
            subprocess.Popen(
                [sys.executable, "-c", CLIENT, port, str(client), str(REQUESTS // CLIENTS),
                 *THREADS],
                stdout=subprocess.PIPE, text=True,
            )
            for client in range(CLIENTS)
        ]
        results = []
        for client in clients:
            output, _ = client.communicate(timeout=1800)
            assert client.returncode == 0
            results.append(json.loads(output))
        elapsed = time.perf_counter() - started

    statuses: Counter[str] = Counter()
    acknowledged: list[str] = []
    errors: list[str] = []
    for result in results:
        statuses.update(result["statuses"])
        acknowledged += result["acknowledged"]
        errors += result["errors"]
    answered = sum(statuses.values())
    with capsys.disabled():
        print(f"\n{answered} requests from {CLIENTS} processes in {elapsed:.1f} s: "
              f"{answered / elapsed:.0f} requests/s against gunicorn -w 4; "
              f"{dict(sorted(statuses.items()))}")
    assert errors == []
    assert answered == REQUESTS
    assert not [key for key in statuses if key.split()[1].startswith("5")]
    assert set(statuses) <= {"POST 201", "GET 200", "GET 304"}
    assert statuses["GET 304"] > 0  # If-None-Match was answered from the thread's ETag
    posts = CLIENTS * sum(1 for number in range(REQUESTS // CLIENTS) if number % 20 < 8)
    assert len(acknowledged) == statuses["POST 201"] == posts

    stored = stored_comments(environment, tmp_path)
    ids = [record["id"] for record in stored]
    assert len(ids) == len(set(ids)), "a comment is stored twice"
    assert Counter(ids) == Counter(acknowledged)
    assert Counter(record["thread"] for record in stored).keys() == set(THREADS)
