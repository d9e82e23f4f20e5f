"""Does assigning one comment stay cheap as the store grows? And how long does regroup take?

    .venv/bin/python bench/tally_scale.py            # lexical grouper, and the model's if installed
    .venv/bin/python bench/tally_scale.py --n 20000  # a smaller "big" store

Stored comments are made from the labelled comments of bench/tally_data with six made-up
words appended to each (so nearly every one is new text and many open groups of their own: a
worst case for the number of centroids). Assignment cost is the mean time of ``assign`` for 300
further comments, against a grouper holding 1 000 comments and one holding N (100 000).

For the model the encoder's cost does not depend on the store, so the store is built from
random unit vectors, as many groups as the lexical run made or n/10 if more (no 100k encodes),
and the full regroup time is extrapolated from measured encoder throughput (printed as such);
the settle that follows the encoding (tally_settle) is timed on that many vectors.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comments_service.tally import grouper as tally  # noqa: E402

DATA = ROOT / "bench" / "tally_data" / "comments.json"


def synthetic(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    bodies = [c["body"] for c in json.loads(DATA.read_text(encoding="utf-8"))]
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocabulary = [
        "".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(30000)
    ]
    return [f"{rng.choice(bodies)} {' '.join(rng.sample(vocabulary, 6))}" for _ in range(count)]


def mean_assign_ms(grouper: tally.RequestGrouper, texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        grouper.assign(text)
    return (time.perf_counter() - started) / len(texts) * 1000


def lexical(n: int) -> int:
    probe = synthetic(300, seed=99)
    small = tally.RequestGrouper(tally.LexicalEmbedder())
    small.regroup(synthetic(1000, seed=1))
    started = time.perf_counter()
    big = tally.RequestGrouper(tally.LexicalEmbedder())
    assigned = big.regroup(synthetic(n, seed=2))
    regroup_s = time.perf_counter() - started
    grouped = sum(1 for group in assigned if group is not None)
    state_mb = len(json.dumps(big.state())) / 1e6
    small_ms, big_ms = mean_assign_ms(small, probe), mean_assign_ms(big, probe)
    print(f"lexical: regroup of {n} comments: {regroup_s:.1f} s on one core "
          f"({grouped} asked for something, {len(big.sizes)} groups, state {state_mb:.1f} MB JSON)")
    print(f"lexical: assign at 1k stored {small_ms:.2f} ms, at {n // 1000}k stored {big_ms:.2f} ms,"
          f" ratio {big_ms / small_ms:.2f}")
    return len(big.sizes)


class _FixedEncoder:
    """Stands in for the model's encoder with random unit vectors (the index is what grows)."""

    name = "minilm"

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def encode(self, texts: list[str]) -> list[list[float]]:
        out = []
        for _ in texts:
            row = [self.rng.gauss(0, 1) for _ in range(384)]
            norm = sum(value * value for value in row) ** 0.5
            out.append([value / norm for value in row])
        return out


def model(groups_big: int, n: int) -> None:
    probe = synthetic(300, seed=99)
    timings = {}
    groups_big = max(groups_big, n // 10)  # at least one group per ten comments: a worst case
    for label, groups in (("1k", 400), (f"{n // 1000}k", groups_big)):
        grouper = tally.RequestGrouper(_FixedEncoder(seed=3), threshold=2.0)  # every one a group
        grouper.regroup([f"please add {i}" for i in range(groups)])
        real = tally.MiniLMEmbedder()
        grouper.embedder = real
        real.encode(["warm up"])
        timings[label] = mean_assign_ms(grouper, probe)
        # The merge step (off by default) costs one more product after each join: make every
        # probe join (threshold -1) and look for a merge that never comes (threshold 2).
        grouper.threshold, grouper.merge_threshold = -1.0, 2.0
        timings[label + " merge"] = mean_assign_ms(grouper, probe)
    small, small_merge, big, big_merge = timings.values()
    print(f"minilm: assign at 1k stored {small:.2f} ms (400 groups), at {n // 1000}k stored "
          f"{big:.2f} ms ({groups_big} groups), ratio {big / small:.2f}")
    print(f"minilm with the merge step: assign at 1k stored {small_merge:.2f} ms, at "
          f"{n // 1000}k stored {big_merge:.2f} ms, ratio {big_merge / small_merge:.2f}")
    texts = [tally.request_topic(text) or text for text in synthetic(1024, seed=4)]
    started = time.perf_counter()
    encoded = tally.MiniLMEmbedder().encode(texts)
    per_second = len(texts) / (time.perf_counter() - started)
    share = sum(1 for text in synthetic(2000, seed=5) if tally.request_topic(text)) / 2000
    estimate = n * share / per_second
    print(f"minilm: encodes {per_second:.0f} request texts/s in batches; regroup of {n} comments "
          f"({share:.0%} ask for something) extrapolated: {estimate / 60:.1f} min of encoding")
    settle_time(encoded, int(n * share))


def settle_time(encoded: list[list[float]], count: int) -> None:
    """Time tally_settle on ``count`` vectors: the encoded comments, each repeated with a little
    noise, so every real comment stands for a crowd of near rewordings (large clusters, the
    costly case for the averages)."""
    import numpy as np

    from comments_service.tally import settle as tally_settle

    rng = np.random.default_rng(6)
    base = np.asarray(encoded, dtype=np.float32)
    picks = rng.integers(0, len(base), count)
    vectors = base[picks] + rng.normal(0, 0.02, (count, base.shape[1])).astype(np.float32)
    started = time.perf_counter()
    clusters = tally_settle.settle(vectors, tally_settle.MINILM)
    took = time.perf_counter() - started
    print(f"minilm: settling {count} vectors (from {len(base)} comments with noise) took "
          f"{took:.1f} s, {len(set(clusters))} groups")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    groups = lexical(args.n)
    if tally.MiniLMEmbedder.available():
        model(groups, args.n)
    else:
        print("minilm: skipped, the packaged model is not installed (make install)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
