"""Posting a 10 000-character comment against an ordinary one, measured side by side.

A comment that asks for something is grouped with the requests like it while the reader's POST
waits (tally), so a long one must not make that POST slow. One app in this process (TinyDB
store in a temporary folder, the lexical grouper, spam checks and rate limits off) takes POSTs
of three kinds in turn, the order rotating every round so that machine noise hits all alike:

* an ordinary request (about 30 characters),
* a request of 9 931 characters (grouped; the tally keeps a clipped copy of its text),
* 10 000 characters of one letter (asks for nothing, so it is not grouped).

Prints each kind's median and p95 time and its ratio to the ordinary request. The target is the
limit tests/test_requests.py used to assert: the long request under 2 s.

    python bench/huge_comment_post.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from _post_timing import p95, post_ms
from flask import Flask
from flask.testing import FlaskClient

from comments_service import create_app

KINDS = {
    "ordinary request": "Could you add per-tag RSS feeds?",
    "9.9k request": "Could you write about burnout? " + "So much to say about it here. " * 330,
    "10k of one letter": "x" * 10_000,
}
BASELINE = "ordinary request"
TARGET_KIND, TARGET_MS = "9.9k request", 2000.0
MANIFEST = {
    "schema_version": 1,
    "site_name": "Bench blog",
    "site_url": "http://blog.test",
    "articles": [{
        "thread": "hello", "title": "Hello", "url": "http://blog.test/hello/",
        "date": "2026-10-01T00:00:00+00:00", "lang": "en",
        "questions": [{"id": "why", "text": "Why?"}],
    }],
}


def service(folder: Path) -> Flask:
    """The comment service on a fresh store under ``folder``, with no background threads."""
    manifest = folder / "comments-manifest.json"
    manifest.write_text(json.dumps(MANIFEST), encoding="utf-8")
    return create_app({
        "MANIFEST": str(manifest), "STORE_PATH": str(folder / "store"), "SECRET_KEY": "bench",
        "RATE_LIMIT": "off", "SPAM_CHECKS": "off", "MAIL_SENDER_THREAD": False,
        "BACKUP_DAILY": False,
    })


def measure(client: FlaskClient, runs: int) -> dict[str, list[float]]:
    """``runs`` POSTs of each kind, taking turns, after one of each that is not counted (the
    first request of a process loads templates and the grouper)."""
    for body in KINDS.values():
        post_ms(client, {"name": "Rosa", "body": body})
    names = list(KINDS)
    timings: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(runs):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            timings[name].append(post_ms(client, {"name": "Rosa", "body": KINDS[name]}))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="tellmemore-huge-") as scratch:
        folder = Path(scratch)
        # This process's own instance folder: no instance config.py of a real service is read.
        os.environ["TELLMEMORE_INSTANCE_PATH"] = str(folder / "instance")
        app = service(folder)
        try:
            timings = measure(app.test_client(), runs)
        finally:
            app.extensions["tellmemore.store"].close()
    baseline = statistics.median(timings[BASELINE])
    print(f"POST a comment in process (TinyDB, lexical grouper), {runs} of each kind in turn")
    print(f"{'kind':<20}{'median ms':>11}{'p95 ms':>9}{'x ordinary':>12}")
    for name, samples in timings.items():
        median = statistics.median(samples)
        print(f"{name:<20}{median:>11.1f}{p95(samples):>9.1f}{median / baseline:>12.1f}")
    target_median = statistics.median(timings[TARGET_KIND])
    verdict = "met" if target_median < TARGET_MS else "MISSED"
    print(f"Target: the {TARGET_KIND} under {TARGET_MS:.0f} ms "
          f"(median {target_median:.0f} ms: {verdict})")


if __name__ == "__main__":
    main()
