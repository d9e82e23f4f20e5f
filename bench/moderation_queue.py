"""Server time of the moderation queue page with 100 and with 10 000 comments waiting.

Builds two stores side by side (comments spread over 200 articles, imported in bulk), signs in
through the real sign-in form of an in-process app, and times GET /moderate/ (first page) and
GET /moderate/?page=200 (deep in the queue) in each. Prints medians and the ratio 10k / 100.
Aim: under 100 ms at 10 000 waiting.

    python bench/moderation_queue.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bs4 import BeautifulSoup
from werkzeug.security import generate_password_hash

from comments_service import create_app
from comments_service.models import Author, Comment, CommentState, utc_now

ARTICLES = 200
EMAIL, PASSWORD = "bench@example.org", "bench-password-123"


def manifest(folder: Path) -> Path:
    articles = [
        {"thread": f"article-{n}", "title": f"Article {n}", "url": f"http://blog.test/{n}/",
         "date": "2026-01-01T00:00:00+00:00", "lang": "en",
         "questions": [{"id": "why", "text": "Why?"}, {"id": "how", "text": "How?"}]}
        for n in range(ARTICLES)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "comments-manifest.json"
    path.write_text(json.dumps({"schema_version": 1, "articles": articles}))
    return path


def waiting_comments(count: int) -> list[Comment]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Comment(
            id=f"c{number:06d}", thread=f"article-{number % ARTICLES}", name=f"Reader {number}",
            body=f"Comment {number} about the article.",
            html=f"<p>Comment {number} about the article.</p>",
            created=(start + timedelta(seconds=number)).isoformat(timespec="microseconds"),
            state=CommentState.AWAITING_REPLY, public=False,
            question="why" if number % 3 == 0 else None,
        )
        for number in range(count)
    ]


def signed_in_client(folder: Path, count: int):
    os.environ["TELLMEMORE_INSTANCE_PATH"] = str(folder / "instance")
    app = create_app({
        "MANIFEST": str(manifest(folder)), "STORE_PATH": str(folder / "store"),
        "SECRET_KEY": "bench", "RATE_LIMIT": "off", "SIGN_IN_DELAY_SECONDS": 0,
    })
    store = app.extensions["tellmemore.store"]
    store.import_comments(waiting_comments(count))
    store.add_author(Author(id="a1", name="Bench", email=EMAIL, created=utc_now(),
                            password_hash=generate_password_hash(PASSWORD)))
    client = app.test_client()
    page = client.get("/moderate/sign-in").get_data(as_text=True)
    token = BeautifulSoup(page, "html.parser").find("input", {"name": "csrf_token"})["value"]
    client.post("/moderate/sign-in",
                data={"csrf_token": token, "email": EMAIL, "password": PASSWORD})
    assert client.get("/moderate/").status_code == 200
    return client


def median_ms(client, path: str, runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="tellmemore-queue-") as scratch:
        small = signed_in_client(Path(scratch) / "small", 100)
        large = signed_in_client(Path(scratch) / "large", 10_000)
        print(f"Moderation queue page, median of {runs} requests (server time, in process)")
        print(f"{'page':<28}{'100 waiting':>14}{'10k waiting':>14}{'ratio':>8}")
        for label, path in (("first page", "/moderate/"),
                            ("filtered by article", "/moderate/?thread=article-7"),
                            ("page 200 (10k only)", "/moderate/?page=200")):
            small_ms = median_ms(small, "/moderate/" if "page=" in path else path, runs)
            large_ms = median_ms(large, path, runs)
            print(f"{label:<28}{small_ms:>12.1f}ms{large_ms:>12.1f}ms{large_ms / small_ms:>8.2f}")


if __name__ == "__main__":
    main()
