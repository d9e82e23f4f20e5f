"""One rate budget per client across gunicorn workers and across the two posting routes
(issue 20, item 6): with RATE_LIMIT=5/minute under gunicorn -w 4, comments from one address
sent at once over the JSON API and the plain form get exactly five accepted. (With per-process
counts, memory://, the same burst got 11 of 24 through: the workers each took some.)"""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from comments_service.store.rate_counts import SqliteCounters, counts_uri
from tests.conftest import SERVICE_MANIFEST
from tests.servers import running_service, service_environment

READER = {"name": "Rosa", "body": "One more thought."}


def send(base: str, route: str) -> int:
    """One comment over a fresh connection (so any worker may take it); the status."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        if route == "api":
            body, kind, path = json.dumps(READER), "application/json", "/api/threads/hello/comments"
        else:
            body, kind, path = (urlencode(READER), "application/x-www-form-urlencoded",
                                "/threads/hello/comments")
        connection.request("POST", path, body=body, headers={"Content-Type": kind})
        return connection.getresponse().status
    finally:
        connection.close()


def burst(base: str, routes: list[str]) -> list[int]:
    """Every route's POST at the same moment, from one client address."""
    statuses: list[int] = [0] * len(routes)
    start = threading.Barrier(len(routes))

    def one(index: int) -> None:
        start.wait()
        statuses[index] = send(base, routes[index])

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(routes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def service(tmp_path: Path, **settings: str):
    manifest = tmp_path / "comments-manifest.json"
    manifest.write_text(json.dumps(SERVICE_MANIFEST), encoding="utf-8")
    environment = service_environment(tmp_path, MANIFEST=str(manifest), SPAM_CHECKS="off",
                                      RATE_LIMIT="5/minute", **settings)
    return running_service(tmp_path, environment, workers=4)


def test_four_workers_and_both_routes_share_one_budget(tmp_path):
    with service(tmp_path) as (base, _process):
        # Enough at once that every worker takes some.
        statuses = burst(base, ["api", "form"] * 12)
        accepted = [status for status in statuses if status in (201, 303)]
        assert len(accepted) == 5, statuses
        assert statuses.count(429) == 19, statuses
        # Still spent a moment later, whichever route asks.
        assert send(base, "form") == 429 and send(base, "api") == 429


def test_the_counters_file_counts_across_processes_and_expires(tmp_path):
    uri = counts_uri(tmp_path)
    first, second = SqliteCounters(uri), SqliteCounters(uri)
    assert first.incr("k", 60) == 1 and second.incr("k", 60) == 2
    assert first.get("k") == 2 and second.get_expiry("k") > 0
    assert first.incr("short", 0.001) == 1
    threading.Event().wait(0.01)
    assert second.get("short") == 0 and second.incr("short", 60) == 1
    second.clear("k")
    assert first.get("k") == 0 and first.check()
    # The keys name client addresses: the file is the service's alone.
    assert (tmp_path / "rate-limits.sqlite3").stat().st_mode & 0o077 == 0


def test_the_form_and_the_api_draw_on_one_budget_in_one_process(service_config):
    from comments_service import create_app

    client = create_app({**service_config, "RATE_LIMIT": "2/minute",
                         "SPAM_CHECKS": "off"}).test_client()
    assert client.post("/api/threads/hello/comments", json=READER).status_code == 201
    assert client.post("/threads/hello/comments", data=READER).status_code == 303
    assert client.post("/api/threads/hello/comments", json=READER).status_code == 429
    assert client.post("/threads/hello/comments", data=READER).status_code == 429
