"""Rendering cost of hostile comments against an ordinary one, measured side by side.

Unbounded link parsing made 10 000 "[" take ~9 s in stock Python-Markdown; render.py bounds
it. Prints each case's median time and its ratio to an ordinary 10 000-character comment.

    python bench/render_worst_case.py
"""

from __future__ import annotations

import statistics
import time

from comments_service.comments.render import render_comment

ORDINARY = ("Some *text* with a [link](https://example.org) and `code`.\n\n" * 200)[:10_000]
HOSTILE = {
    "10k [": "[" * 10_000,
    "5k `[": "`[" * 5_000,
    "5k [ newline": "[\n" * 5_000,
    "2.5k [a](": "[a](" * 2_500,
    "2.5k [a][": "[a][" * 2_500,
    "5k *[": "*[" * 5_000,
    "10k <": "<" * 10_000,
    "5k quotes": "> " * 5_000 + "x",
}


def median_seconds(body: str, runs: int = 5) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        render_comment(body)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    baseline = median_seconds(ORDINARY)
    print(f"{'case':<16}{'median ms':>12}{'x ordinary':>12}")
    print(f"{'ordinary 10k':<16}{baseline * 1000:>12.1f}{1.0:>12.1f}")
    for name, body in HOSTILE.items():
        seconds = median_seconds(body)
        print(f"{name:<16}{seconds * 1000:>12.1f}{seconds / baseline:>12.1f}")


if __name__ == "__main__":
    main()
