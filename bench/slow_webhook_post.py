"""A reader's POST with a slow webhook receiver against one with a fast receiver, side by side.

Webhooks go through the outbox: the POST only queues the event, and the sender thread delivers
it, so a receiver that takes seconds to answer must not show in the reader's wait. Three apps in
this process, each with a TinyDB store in a temporary folder and the sender thread running as in
production: one without WEBHOOK_URLS, one whose receiver answers at once, and one whose receiver
holds every delivery for --delay seconds (receivers on free loopback ports). POSTs take turns
between the three, the order flipping every round. Prints the median and p95 of each and the
ratios: slow / fast is the receiver's share of the reader's wait (target: under 1.5; a POST
that waited for the receiver would be hundreds of times slower), fast / none what queueing
the event costs. Also how many deliveries each receiver had begun while the POSTs were timed,
which shows the sender was at work meanwhile. tests/test_webhooks.py used to assert that POST
under 1 s with a 2 s receiver.

    python bench/slow_webhook_post.py [--runs 50] [--delay 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from comments_service import create_app
from comments_service.outbox.queue import SENDER_EXTENSION

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _post_timing import p95, post_ms
from api_vs_isso import serving

TARGET_RATIO = 1.5
MANIFEST = {
    "schema_version": 1,
    "site_name": "Bench blog",
    "site_url": "http://blog.test",
    "articles": [{
        "thread": "hello", "title": "Hello", "url": "http://blog.test/hello/",
        "date": "2026-10-01T00:00:00+00:00", "lang": "en", "questions": [],
    }],
}


def receiver(delay: float, begun: list[str]) -> Callable[..., BaseHTTPRequestHandler]:
    """A handler that records each webhook's delivery id as it arrives, waits ``delay``
    seconds, then answers 204."""

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            begun.append(self.headers.get("X-Tellmemore-Delivery", ""))
            time.sleep(delay)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Receiver


def service(folder: Path, settings: dict[str, object] | None = None) -> Flask:
    """The comment service on a fresh store under ``folder``, its sender thread on and waking
    only when something is queued (as tests/test_webhooks.py had it)."""
    folder.mkdir(parents=True)
    manifest = folder / "comments-manifest.json"
    manifest.write_text(json.dumps(MANIFEST), encoding="utf-8")
    return create_app({
        "MANIFEST": str(manifest), "STORE_PATH": str(folder / "store"), "SECRET_KEY": "bench",
        "RATE_LIMIT": "off", "SPAM_CHECKS": "off", "AUTHOR_NOTIFY": "off",
        "MAIL_SENDER_THREAD": True, "MAIL_POLL_SECONDS": 30, "BACKUP_DAILY": False,
        **(settings or {}),
    })


def reader_comment(number: int) -> dict[str, str]:
    """One reader's comment, with an email (so it may be mailed about)."""
    return {"name": "Rosa", "body": f"Comment number {number}.", "email": "rosa@example.org"}


def measure(clients: dict[str, FlaskClient], runs: int) -> dict[str, list[float]]:
    """``runs`` POSTs on each app, taking turns (the first of each app is not counted)."""
    for client in clients.values():
        client.get("/healthz")  # the first request starts the sender thread
        post_ms(client, reader_comment(0))
    names = list(clients)
    timings: dict[str, list[float]] = {name: [] for name in names}
    for number in range(1, runs + 1):
        for name in names if number % 2 else names[::-1]:
            timings[name].append(post_ms(clients[name], reader_comment(number)))
    return timings


def hook_settings(port: int, delay: float) -> dict[str, object]:
    """Webhooks to the receiver on ``port``, with a timeout it never reaches."""
    return {"WEBHOOK_URLS": f"http://127.0.0.1:{port}/hook", "WEBHOOK_SECRET": "bench",
            "WEBHOOK_RETRY_BASE_SECONDS": 0, "WEBHOOK_TIMEOUT_SECONDS": delay + 5}


def ratio_line(label: str, ratio: float, target: float | None = None) -> str:
    if target is None:
        return f"{label}: {ratio:.2f}"
    verdict = "met" if ratio < target else "MISSED"
    return f"{label}: {ratio:.2f} (target under {target:g}: {verdict})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--delay", type=float, default=2.0,
                        help="seconds the slow receiver holds each delivery")
    options = parser.parse_args()
    fast_begun: list[str] = []
    slow_begun: list[str] = []
    with (tempfile.TemporaryDirectory(prefix="tellmemore-webhook-") as scratch,
          serving(receiver(0.0, fast_begun)) as fast_port,
          serving(receiver(options.delay, slow_begun)) as slow_port):
        folder = Path(scratch)
        # This process's own instance folder: no instance config.py of a real service is read.
        os.environ["TELLMEMORE_INSTANCE_PATH"] = str(folder / "instance")
        apps = {
            "no webhooks": service(folder / "none"),
            "fast receiver": service(folder / "fast", hook_settings(fast_port, 0.0)),
            "slow receiver": service(folder / "slow", hook_settings(slow_port, options.delay)),
        }
        try:
            timings = measure({name: app.test_client() for name, app in apps.items()},
                              options.runs)
            begun = {"fast receiver": len(fast_begun), "slow receiver": len(slow_begun)}
        finally:
            for app in apps.values():
                sender = app.extensions.get(SENDER_EXTENSION)
                if sender is not None:
                    sender.stop(timeout=options.delay + 5)
                app.extensions["tellmemore.store"].close()
    medians = {name: statistics.median(samples) for name, samples in timings.items()}
    print(f"A reader's POST in process, {options.runs} on each app in turn; the slow receiver "
          f"holds each delivery {options.delay:g} s")
    print(f"{'app':<16}{'median ms':>11}{'p95 ms':>9}{'deliveries begun':>18}")
    for name, samples in timings.items():
        started = begun.get(name)
        print(f"{name:<16}{medians[name]:>11.1f}{p95(samples):>9.1f}"
              f"{'' if started is None else f'{started} of {options.runs + 1}':>18}")
    print(ratio_line("slow / fast", medians["slow receiver"] / medians["fast receiver"],
                     TARGET_RATIO))
    print(ratio_line("fast / none (queueing the event)",
                     medians["fast receiver"] / medians["no webhooks"]))


if __name__ == "__main__":
    main()
