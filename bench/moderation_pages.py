"""Server time of every moderation page with 1 000 and with 100 000 comments stored, side by side.

Issue 19: each page must read only what it shows, so its cost must not grow with the store:
≤ 100 ms at 100 000 stored comments with 10 000 waiting, and ≤ 1.5 times its cost at 1 000.

Both stores hold the same site (200 articles of two reflection questions each) and comments
of the same mix, only more of them: 10 % waiting, 40 % replied (each with the author's reply,
some sent over the nudge's warnings), spam and withdrawn ones, a third answering a question,
readers who come back, requests filed by the author, times spread over two years with the
last weeks busiest, one busy article with a quarter of the comments. What a page shows is the
same at both sizes where the page has a fixed length (a full page of the busy article's queue,
of a search for a word that 30 comments hold, 40 requests of two people or more); the columns
"KB" give each page's size, so a page that shows more at 100 000 can be told apart. Each store
is filled through ``import_comments``; an in-process app signs in through the real sign-in
form, each page is fetched once to warm the process (as a running worker is), then the two
stores' pages are timed in turns. Prints medians, the ratio and the
process CPU time per request, which other work on the machine disturbs least.

    python bench/moderation_pages.py [--runs 15] [--small 1000] [--large 100000]
                                     [--postgres postgresql://localhost/test]

With ``--postgres URL`` the two stores are two fresh databases beside the one named (created,
migrated, vacuumed and analysed after the fill as autovacuum would, and dropped by the bench),
and the same pages are timed there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup
from werkzeug.security import generate_password_hash

from comments_service import create_app
from comments_service.models import Author, Comment, CommentState, RequestGroup, utc_now

ARTICLES = 200
QUESTIONS = ("why", "how")
GROUPS = 40
EMAIL, PASSWORD = "bench@example.org", "bench-password-123"
WORDS = ("reader", "reply", "listen", "comment", "question", "answer", "habit", "story",
         "detail", "example", "moment", "week", "change", "learn", "share", "idea", "post",
         "dark", "mode", "podcast", "video", "newsletter", "series", "tutorial", "python")
RARE_WORD = "zanzibar"  # in RARE_COMMENTS comments at any size: what a text search finds
RARE_COMMENTS = 30
# Readers comment most where an article is busy: this one takes a quarter of the comments, so
# its queue shows a full page at 1 000 comments as at 100 000.
BUSY_ARTICLE, BUSY_SHARE = "article-7", 0.25
TARGET_MS, TARGET_RATIO = 100.0, 1.5


def manifest(folder: Path) -> Path:
    articles = [
        {"thread": f"article-{n}", "title": f"Article {n}", "url": f"http://blog.test/{n}/",
         "date": "2025-01-01T00:00:00+00:00", "lang": "en",
         "questions": [{"id": "why", "text": "Why?"}, {"id": "how", "text": "How?"}]}
        for n in range(ARTICLES)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "comments-manifest.json"
    path.write_text(json.dumps({"schema_version": 1, "articles": articles}))
    return path


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def comments(total: int, now: datetime) -> Iterator[Comment]:
    """``total`` comments in all (readers' and the author's replies), oldest first; waiting
    ones are the newest tenth of the readers'."""
    chance = random.Random(19)
    # Of R readers' comments the newest 18 % wait (10 % of all comments) and 93 % of the
    # others are replied, each by one reply of the author's: about 1.76 R comments in all.
    readers = total * 100 // 176
    waiting_from = readers - readers * 18 // 100
    rare_every = max(1, readers // RARE_COMMENTS)
    filings = 0
    made = 0
    span = timedelta(days=730)
    for number in range(readers):
        if made >= total:
            return
        # Times spread over two years, denser towards now (the last weeks busiest).
        age = span * (1 - (number / readers) ** 0.5)
        created = now - age - timedelta(minutes=chance.randint(60, 600))
        words = [chance.choice(WORDS) for _ in range(chance.randint(8, 40))]
        if number % rare_every == rare_every // 2 and number // rare_every < RARE_COMMENTS:
            words.insert(3, RARE_WORD)
        body = " ".join(words).capitalize() + "."
        roll = chance.random()
        if number >= waiting_from:
            state = CommentState.SPAM if roll < 0.04 else CommentState.AWAITING_REPLY
        else:
            state = (CommentState.SPAM if roll < 0.05 else CommentState.WITHDRAWN
                     if roll < 0.07 else CommentState.REPLIED)
        reader = chance.randrange(max(1, readers // 3))
        comment_id = f"c{number:07d}"
        filed = chance.random() < 0.15 and state is not CommentState.SPAM
        # Every request has two people's comments at any size; the others go at random.
        request = (f"g{filings % GROUPS:03d}" if filings < 2 * GROUPS
                   else f"g{chance.randrange(GROUPS):03d}")
        filings += filed
        thread = (BUSY_ARTICLE if chance.random() < BUSY_SHARE
                  else f"article-{chance.randrange(ARTICLES)}")
        yield Comment(
            id=comment_id, thread=thread,
            name=f"Reader {reader}", body=body, html=f"<p>{body}</p>", created=stamp(created),
            state=state, public=state in (CommentState.REPLIED, CommentState.AWAITING_REPLY),
            question=chance.choice(QUESTIONS) if chance.random() < 0.33 else None,
            reader_key=f"r{reader:06d}", email=f"r{reader}@example.org" if reader % 4 else None,
            notify=reader % 4 == 1,
            replied_at=stamp(created + timedelta(hours=chance.expovariate(1 / 20)))
            if state is CommentState.REPLIED else None,
            request=request if filed else None,
            request_filed=filed or chance.random() < 0.3,
        )
        made += 1
        if state is CommentState.REPLIED and made < total:
            made += 1
            yield reply_to(comment_id, created, chance)


def reply_to(comment_id: str, created: datetime, chance: random.Random) -> Comment:
    # Its time is only roughly the comment's replied_at: the figures read replied_at.
    body = f"Thank you — about your {chance.choice(WORDS)}: " + " ".join(
        chance.choice(WORDS) for _ in range(chance.randint(10, 30)))
    return Comment(
        id=f"{comment_id}-reply", thread="", name="Author", body=body, html=f"<p>{body}</p>",
        created=stamp(created + timedelta(hours=1)), state=CommentState.POSTED, public=True,
        parent=comment_id, is_author=True,
        nudge_warnings=("generic",) if chance.random() < 0.05 else (),
    )


def filled(total: int, now: datetime) -> list[Comment]:
    """The comments, each author reply in its comment's thread."""
    made: list[Comment] = []
    threads: dict[str, str] = {}
    for comment in comments(total, now):
        if comment.is_author:
            comment = Comment(**{**comment.__dict__, "thread": threads[comment.parent or ""]})
        threads[comment.id] = comment.thread
        made.append(comment)
    return made


def signed_in_client(folder: Path, total: int, now: datetime, store_url: str | None):
    os.environ["TELLMEMORE_INSTANCE_PATH"] = str(folder / "instance")
    config: dict[str, Any] = {
        "MANIFEST": str(manifest(folder)), "SECRET_KEY": "bench", "RATE_LIMIT": "off",
        "SIGN_IN_DELAY_SECONDS": 0, "PUBLIC_URL": "http://comments.bench.test",
        # No mail thread or daily backup: they would use the store while the bench times it.
        "MAIL_SENDER_THREAD": False, "BACKUP_DAILY": False,
    }
    config.update({"STORE_URL": store_url} if store_url else
                  {"STORE_PATH": str(folder / "store")})
    app = create_app(config)
    store = app.extensions["tellmemore.store"]
    started = time.perf_counter()
    made = filled(total, now)
    store.import_comments(made)
    for number in range(GROUPS):
        store.update_request_group(f"g{number:03d}", lambda group, n=number: RequestGroup(
            **{**group.__dict__, "label": f"Request {n}"}))
    if store_url:
        # What autovacuum does to a live database, done now: without it, right after a bulk
        # import, PostgreSQL has no statistics and no visibility map (no index-only scans).
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
    print(f"  filled {total:>7,} comments in {time.perf_counter() - started:5.1f} s "
          f"({store.count_in_state(CommentState.AWAITING_REPLY):,} waiting)")
    store.add_author(Author(id="a1", name="Bench", email=EMAIL, created=utc_now(),
                            password_hash=generate_password_hash(PASSWORD)))
    client = app.test_client()
    page = client.get("/moderate/sign-in").get_data(as_text=True)
    token = BeautifulSoup(page, "html.parser").find("input", {"name": "csrf_token"})["value"]
    client.post("/moderate/sign-in",
                data={"csrf_token": token, "email": EMAIL, "password": PASSWORD})
    assert client.get("/moderate/").status_code == 200
    waiting = store.comments_in_state(CommentState.AWAITING_REPLY, limit=1, offset=50)
    return client, waiting[0].id, store


def pages(comment_id: str) -> list[tuple[str, str]]:
    return [
        ("queue", "/moderate/"),
        ("queue, page 3", "/moderate/?page=3"),  # full at 1 000 too (83 waiting)
        ("queue, one article", f"/moderate/?thread={BUSY_ARTICLE}"),
        ("queue, one question", "/moderate/?question=why"),
        ("one comment", f"/moderate/comments/{comment_id}"),
        ("all comments", "/moderate/all"),
        ("all, replied", "/moderate/all?state=replied"),
        ("search, rare word", f"/moderate/all?q={RARE_WORD}"),
        # What a search costs itself: the rare word's page shows the same 25 cards at both
        # sizes, this one nothing.
        ("search, no match", f"/moderate/all?q={RARE_WORD[:-1]}q"),
        ("search, common word", "/moderate/all?q=podcast"),
        ("spam", "/moderate/spam"),
        ("metrics", "/moderate/metrics"),
        ("requests", "/moderate/requests"),
        ("themes", "/moderate/requests/themes"),
    ]


def timed(client, path: str) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    response = client.get(path)
    elapsed = ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
    assert response.status_code == 200, (path, response.status_code)
    return elapsed


def kilobytes(client, path: str) -> float:
    """The page's size: what it shows, roughly."""
    return len(client.get(path).data) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL")
    arguments = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="tellmemore-pages-") as scratch, \
            databases(arguments.postgres) as urls:
        print("Filling the stores…")
        small, small_id, small_store = signed_in_client(Path(scratch) / "small", arguments.small,
                                                        now, urls[0])
        large, large_id, large_store = signed_in_client(Path(scratch) / "large", arguments.large,
                                                        now, urls[1])
        backend = "PostgreSQL" if arguments.postgres else "TinyDB"
        print(f"\nModeration pages, {backend}, median of {arguments.runs} requests in process "
              f"(server wall ms; CPU ms in brackets)")
        print(f"{'page':<22}{arguments.small:>16,}{arguments.large:>20,}{'ratio':>8}"
              f"{'CPU ratio':>11}{'KB':>13}  target")
        failed = 0
        for (label, small_path), (_, large_path) in zip(pages(small_id), pages(large_id),
                                                        strict=True):
            sizes = f"{kilobytes(small, small_path):.0f} / {kilobytes(large, large_path):.0f}"
            samples: dict[str, list[tuple[float, float]]] = {"small": [], "large": []}
            for run in range(arguments.runs):
                order = (("small", small, small_path), ("large", large, large_path))
                for name, client, path in order if run % 2 == 0 else reversed(order):
                    samples[name].append(timed(client, path))
            (small_ms, small_cpu), (large_ms, large_cpu) = (
                (statistics.median(s[0] for s in samples[name]),
                 statistics.median(s[1] for s in samples[name])) for name in ("small", "large"))
            ratio, cpu_ratio = large_ms / small_ms, large_cpu / max(small_cpu, 0.01)
            met = large_ms <= TARGET_MS and min(ratio, cpu_ratio) <= TARGET_RATIO
            failed += not met
            print(f"{label:<22}{small_ms:>8.1f} ({small_cpu:>5.1f}){large_ms:>10.1f} "
                  f"({large_cpu:>6.1f}){ratio:>8.2f}{cpu_ratio:>11.2f}{sizes:>13}  "
                  f"{'met' if met else 'NOT MET'}")
        for store in (small_store, large_store):
            store.close()  # before the databases are dropped
        print(f"\nTarget: ≤ {TARGET_MS:.0f} ms at {arguments.large:,} and ≤ {TARGET_RATIO} times "
              f"the cost at {arguments.small:,} (wall or CPU). {failed or 'No'} page(s) missed.")


class databases:
    """Two fresh PostgreSQL databases beside the one ``url`` names, dropped afterwards; or
    (None, None) for the embedded store."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.names: list[str] = []

    def __enter__(self) -> tuple[str | None, str | None]:
        if not self.url:
            return None, None
        import psycopg

        base, _, _ = self.url.rpartition("/")
        with psycopg.connect(self.url, autocommit=True) as connection:
            for size in ("small", "large"):
                name = f"tellmemore_bench_pages_{size}_{os.getpid()}"
                connection.execute(f'CREATE DATABASE "{name}"')
                self.names.append(name)
        urls = [f"{base}/{name}" for name in self.names]
        from comments_service.store.postgres.schema import migrate

        for url in urls:
            migrate(url)
        return urls[0], urls[1]

    def __exit__(self, *_: object) -> None:
        if not self.names:
            return
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            for name in self.names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
