"""Write cost of the comment store with few and with many comments stored, side by side.

Fills two stores through ``import_comments`` — 1,000 and 100,000 comments in threads of about
100 comments each — then times ``add_comment`` on both, alternating one add on each so that
machine noise hits both alike. Every add goes to a thread of typical size (~100 comments),
rotating over the same 10 threads in both stores. Prints median and p95 latency and the ratio
many / few (target: ≤ 1.5: the cost of a write must not grow with the number of comments
stored). For context it also times reads at both sizes (the queue and counts, then the
moderation pages' listings, search and author replies) and a naive single-file TinyDB at 1,000
and 10,000 documents.

Then, in one store, a POST's store work (``add_comment``, and an edit by ``update_comment``)
into a thread of 2,000 comments against one of 10, alternating (target: big / small ≤ 1.5: a
write appends one line to its thread's log, whatever the thread's size).

    python bench/store_write.py [--adds 300] [--many 100000] [--big-thread 2000]
    python bench/store_write.py --only-thread-size   # just the big / small thread section
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tinydb import TinyDB

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comments_service.models import Comment, CommentState, new_comment_id  # noqa: E402
from comments_service.store import Store, open_store  # noqa: E402

THREAD_SIZE = 100
WRITE_THREADS = 10  # adds rotate over these, present in both stores, so both grow alike
START = datetime(2026, 1, 1, tzinfo=UTC)
_clock = itertools.count()


def make_comment(thread: str, state: CommentState = CommentState.AWAITING_REPLY) -> Comment:
    """A comment of realistic size (a few hundred bytes of body and HTML)."""
    created = (START + timedelta(seconds=next(_clock))).isoformat(timespec="microseconds")
    body = "I tried replying to every comment for a month, and this is what changed. " * 4
    return Comment(
        id=new_comment_id(), thread=thread, name="A reader", body=body, html=f"<p>{body}</p>",
        created=created, state=state, public=state is not CommentState.AWAITING_REPLY,
        question="what-changed", email="reader@example.org",
        is_author=state is CommentState.POSTED,  # the author's replies, a fifth of the store
    )


def prefill(store: Store, total: int) -> float:
    """Import ``total`` comments in threads of THREAD_SIZE; returns the seconds it took."""
    states = [CommentState.REPLIED] * 3 + [CommentState.AWAITING_REPLY, CommentState.POSTED]

    def comments() -> Iterator[Comment]:
        for number in range(total):
            yield make_comment(f"article-{number // THREAD_SIZE:05d}", states[number % 5])

    started = time.perf_counter()
    store.import_comments(comments())
    return time.perf_counter() - started


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def bench_store(folder: Path, few: int, many: int, adds: int) -> None:
    stores = {size: open_store(folder / f"store-{size}") for size in (few, many)}
    for size, store in stores.items():
        print(f"prefill {size:>7,} comments by import_comments: {prefill(store, size):6.1f} s")

    latencies: dict[int, list[float]] = {size: [] for size in stores}
    for number in range(adds):
        thread = f"article-{number % WRITE_THREADS:05d}"
        for size, store in stores.items():  # alternate: noise hits both sizes alike
            latencies[size].append(timed(lambda store=store, thread=thread: store.add_comment(
                make_comment(thread))))

    grown = THREAD_SIZE + adds // WRITE_THREADS
    print(f"\nadd_comment, {adds} adds to threads of {THREAD_SIZE}-{grown} comments (ms)")
    print(f"{'stored':>9} {'median':>8} {'p95':>8}")
    medians = {}
    for size, samples in latencies.items():
        median, p95 = summary(samples)
        medians[size] = (median, p95)
        print(f"{size:>9,} {median:8.2f} {p95:8.2f}")
    ratio_median = medians[many][0] / medians[few][0]
    ratio_p95 = medians[many][1] / medians[few][1]
    print(f"ratio {many:,} / {few:,}: median {ratio_median:.2f}, p95 {ratio_p95:.2f}"
          f"  (target <= 1.5: {'met' if ratio_median <= 1.5 else 'NOT met'})")

    print("\nreads (ms, median of 50)")
    print(f"{'stored':>9} {'open':>8} {'get':>8} {'queue50':>8} {'counts':>8} {'version':>8}")
    for size, store in stores.items():
        ids = [comment.id for comment in store.thread_comments("article-00003")]
        opened = timed(lambda size=size: open_store(folder / f"store-{size}"))
        reads = {
            "get": lambda store=store, ids=ids: [store.get_comment(ids[n % len(ids)])
                                                 for n in range(1)],
            "queue50": lambda store=store: store.waiting_comments(limit=50, offset=20),
            "counts": lambda store=store: (store.count_waiting(), store.public_counts(
                [f"article-{n:05d}" for n in range(10)])),
            "version": lambda store=store: store.thread_version("article-00003"),
        }
        medians_ms = [statistics.median(timed(read) for _ in range(50)) for read in reads.values()]
        print(f"{size:>9,} {opened:8.1f} " + " ".join(f"{value:8.2f}" for value in medians_ms))
    bench_moderation_reads(folder, stores)


def bench_moderation_reads(folder: Path, stores: dict[int, Store]) -> None:
    """The moderation pages' reads; a fresh store object for the first author_replies."""
    print("\nmoderation reads (ms; median of 20, whole-store search median of 3)")
    print(f"{'stored':>9} {'state50':>8} {'counts':>8} {'in-thrd':>8} {'replies1':>9} "
          f"{'replies':>8} {'find-all':>9} {'find-thr':>9} {'newest50':>9}")
    for size, store in stores.items():
        cold = open_store(folder / f"store-{size}")
        first_replies = timed(lambda cold=cold: cold.author_replies(limit=2000))
        reads = {
            "state50": (20, lambda store=store: store.comments_in_state(
                CommentState.REPLIED, limit=50, offset=20)),
            "counts": (20, lambda store=store: store.state_counts()),
            "in-thread": (20, lambda store=store: store.comments_in_state(
                CommentState.REPLIED, thread="article-00003")),
            "replies": (20, lambda cold=cold: cold.author_replies(limit=2000)),
            "find-all": (3, lambda store=store: store.find_comments(text="what changed")),
            "find-thread": (20, lambda store=store: store.find_comments(
                text="what changed", thread="article-00003")),
            "newest50": (20, lambda store=store: store.find_comments(limit=50)),
        }
        medians_ms = {name: statistics.median(timed(read) for _ in range(runs))
                      for name, (runs, read) in reads.items()}
        print(f"{size:>9,} {medians_ms['state50']:8.2f} {medians_ms['counts']:8.2f} "
              f"{medians_ms['in-thread']:8.2f} {first_replies:9.1f} {medians_ms['replies']:8.2f} "
              f"{medians_ms['find-all']:9.1f} {medians_ms['find-thread']:9.2f} "
              f"{medians_ms['newest50']:9.2f}")


def bench_thread_size(folder: Path, big: int, small: int, adds: int) -> None:
    """add_comment and update_comment into a big thread against a small one, alternating, in
    one store; each big-thread comment was added one by one, as POSTs would add them (so the
    log and its compactions are as a busy thread's are)."""
    store = open_store(folder / "store-threads")
    started = time.perf_counter()
    for _ in range(big):
        store.add_comment(make_comment("big-thread"))
    filled = time.perf_counter() - started
    for _ in range(small):
        store.add_comment(make_comment("small-thread"))
    print(f"\nfilled one thread with {big:,} comments by add_comment: {filled:.1f} s "
          f"({filled / big * 1000:.2f} ms each)")
    writes: dict[str, dict[str, list[float]]] = {"add": {}, "edit": {}}
    for number in range(adds):
        for thread in ("big-thread", "small-thread") if number % 2 else ("small-thread",
                                                                           "big-thread"):
            added: list[Comment] = []
            writes["add"].setdefault(thread, []).append(timed(
                lambda thread=thread, added=added: added.append(store.add_comment(
                    make_comment(thread)))))
            writes["edit"].setdefault(thread, []).append(timed(
                lambda comment=added[0]: store.update_comment(comment.id, lambda old: replace(
                    old, body=old.body + " (edited)"))))
    print(f"POST's store work into a thread of {big:,} vs one of {small} comments, {adds} each,"
          " alternating (ms)")
    print(f"{'write':>6} {'big median':>11} {'big p95':>8} {'small median':>13} {'small p95':>10} "
          f"{'ratio':>6}")
    for kind, by_thread in writes.items():
        big_median, big_p95 = summary(by_thread["big-thread"])
        small_median, small_p95 = summary(by_thread["small-thread"])
        ratio = big_median / small_median
        print(f"{kind:>6} {big_median:11.2f} {big_p95:8.2f} {small_median:13.2f} "
              f"{small_p95:10.2f} {ratio:6.2f}  (target <= 1.5: "
              f"{'met' if ratio <= 1.5 else 'NOT met'})")
    store.close()


def bench_naive(folder: Path, sizes: tuple[int, ...], inserts: int) -> None:
    """TinyDB as its README shows it: one JSON file, default storage (and no fsync)."""
    print(f"\nnaive single-file TinyDB insert, {inserts} inserts (ms, for context)")
    print(f"{'stored':>9} {'median':>8} {'p95':>8}")
    for size in sizes:
        with TinyDB(folder / f"naive-{size}.json") as database:
            database.insert_multiple(make_comment("naive").to_record() for _ in range(size))
            samples = [timed(lambda database=database: database.insert(
                make_comment("naive").to_record())) for _ in range(inserts)]
        median, p95 = summary(samples)
        print(f"{size:>9,} {median:8.2f} {p95:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=300)
    parser.add_argument("--few", type=int, default=1_000)
    parser.add_argument("--many", type=int, default=100_000)
    parser.add_argument("--naive-inserts", type=int, default=30)
    parser.add_argument("--big-thread", type=int, default=2_000)
    parser.add_argument("--small-thread", type=int, default=10)
    parser.add_argument("--only-thread-size", action="store_true")
    arguments = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tellmemore-bench-store-", dir="/tmp"))
    try:
        if not arguments.only_thread_size:
            bench_store(folder, arguments.few, arguments.many, arguments.adds)
            bench_naive(folder, (1_000, 10_000), arguments.naive_inserts)
        bench_thread_size(folder, arguments.big_thread, arguments.small_thread,
                          arguments.adds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
