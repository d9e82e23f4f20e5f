"""The reader beside the reply box (#24): CommentStore.reader_history with few and many comments
stored, side by side.

Fills two stores through ``import_comments`` (1,000 and 100,000 comments by default, threads of
100, each reader writing about 10 comments spread over the threads, a fifth of the comments
the author's replies), then asks both for the history of the same 200 readers, alternating, as
the comment page does (limit 6: the panel; the replies to all of the reader's comments, for
the nudge). Prints the median and p95 in ms, the
ratio many / few, and the target: at most 20 ms at 100,000 (the embedded TinyDB store; with
``--postgres URL`` a PostgreSQL database, emptied first, is measured too).

    python bench/reader_history.py [--many 100000] [--postgres postgresql://…]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comments_service.models import Comment, CommentState  # noqa: E402
from comments_service.store import Store, open_configured_store, open_store  # noqa: E402

THREAD_SIZE = 100
PER_READER = 10
ASKED = 200
TARGET_MS = 20.0
START = datetime(2026, 1, 1, tzinfo=UTC)


def comments(total: int, seed: int = 3) -> Iterator[Comment]:
    """Reader comments and, for some, the author's reply right after them, in one thread."""
    rng = random.Random(seed)
    readers = max(1, total // PER_READER)
    body = "I tried replying to every comment for a month, and this is what changed. " * 3
    number = 0
    while number < total:
        thread = f"article-{rng.randrange(max(1, total // THREAD_SIZE)):05d}"
        created = START + timedelta(seconds=number)
        comment = Comment(
            id=f"c{number:07d}", thread=thread, name="A reader", body=body,
            html=f"<p>{body}</p>", created=created.isoformat(timespec="microseconds"),
            state=CommentState.REPLIED, public=True, reader_key=f"reader-{rng.randrange(readers)}")
        yield comment
        number += 1
        if number % 5 == 0 and number < total:
            yield Comment(
                id=f"c{number:07d}", thread=thread, name="Ada", body="A reply of mine.",
                html="<p>A reply of mine.</p>",
                created=(created + timedelta(milliseconds=1)).isoformat(timespec="microseconds"),
                state=CommentState.POSTED, public=True, is_author=True, parent=comment.id)
            number += 1


def measure(stores: dict[int, Store], readers: list[str]) -> dict[int, list[float]]:
    times: dict[int, list[float]] = {size: [] for size in stores}
    for reader in readers:
        for size, store in stores.items():
            started = time.perf_counter()
            store.reader_history(reader, limit=6)
            times[size].append((time.perf_counter() - started) * 1000)
    return times


def report(name: str, times: dict[int, list[float]]) -> None:
    print(f"\n{name}: reader_history(limit=6), {len(next(iter(times.values())))} readers (ms)")
    print(f"{'stored':>9} {'median':>8} {'p95':>8}")
    medians = {}
    for size, samples in times.items():
        ordered = sorted(samples)
        medians[size] = statistics.median(ordered)
        print(f"{size:>9,} {medians[size]:8.2f} {ordered[int(0.95 * (len(ordered) - 1))]:8.2f}")
    few, many = min(times), max(times)
    print(f"ratio {many:,} / {few:,}: {medians[many] / medians[few]:.2f}; at {many:,}: "
          f"{medians[many]:.1f} ms (target <= {TARGET_MS:.0f} ms: "
          f"{'met' if medians[many] <= TARGET_MS else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--few", type=int, default=1_000)
    parser.add_argument("--many", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL whose schema may be emptied")
    arguments = parser.parse_args()
    sizes = (arguments.few, arguments.many)
    rng = random.Random(5)
    readers = [f"reader-{rng.randrange(arguments.few // PER_READER)}" for _ in range(ASKED)]
    with tempfile.TemporaryDirectory(prefix="reader-history-") as scratch:
        stores: dict[int, Store] = {}
        for size in sizes:
            stores[size] = open_store(Path(scratch) / f"store-{size}")
            started = time.perf_counter()
            stores[size].import_comments(comments(size))
            print(f"TinyDB: {size:,} comments imported in {time.perf_counter() - started:.1f} s")
        measure(stores, readers[:10])  # warm: the first call reads the index
        report("TinyDB", measure(stores, readers))
    if arguments.postgres:
        from comments_service.store.postgres.schema import migrate

        migrate(arguments.postgres)
        store = open_configured_store({"STORE_URL": arguments.postgres})
        store.import_comments(comments(arguments.many))
        samples = sorted(measure({arguments.many: store}, readers)[arguments.many])
        p95 = samples[int(0.95 * (len(samples) - 1))]
        print(f"\nPostgreSQL, {arguments.many:,} stored: reader_history median "
              f"{statistics.median(samples):.2f} ms, p95 {p95:.2f} ms "
              f"(target <= {TARGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
