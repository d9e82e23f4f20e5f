"""Build and check the labelled comments of the tally benchmark.

    .venv/bin/python bench/tally_data/build.py          # writes comments.json beside this file
    .venv/bin/python bench/tally_data/build.py --check  # fails if comments.json is stale or wrong

Sources (hand-written, one comment per line): ``requests.txt`` (comments asking for something,
under a ``## request-id | family | description`` header) and ``nonrequests.txt`` (comments asking
for nothing, under ``## kind | reflection question``). A line ``@name: text`` is written by a
named reader, who keeps one reader_key across all their comments.

The split is by *family* (a request and its near misses share one), so thresholds tuned on the
"tune" half are judged on requests they have never seen. Non-requests alternate between halves.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "comments.json"

THREADS = (
    "sourdough-at-home", "rust-borrow-checker", "balcony-garden", "coast-ride", "leaving-home",
    "the-broken-oven", "my-desk", "on-burnout", "kimchi-spring", "ten-years-of-blogging",
)


def _reader_key(name: str) -> str:
    # Stands in for the service's HMAC of an email: stable per reader, opaque.
    return hashlib.sha256(f"tally-bench:{name}".encode()).hexdigest()[:16]


def _parse(path: Path) -> list[tuple[list[str], str, str | None]]:
    """(header fields, body, reader name or None) for every comment line of a source file."""
    rows = []
    header: list[str] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not line.startswith("## ")):
            continue
        if line.startswith("## "):
            header = [part.strip() for part in line[3:].split("|")]
            continue
        if header is None:
            raise ValueError(f"{path.name}: comment before any header: {line!r}")
        reader = None
        if line.startswith("@"):
            reader, _, line = line[1:].partition(":")
            line = line.strip()
        rows.append((header, line, reader))
    return rows


def build() -> list[dict]:
    requests = _parse(HERE / "requests.txt")
    others = _parse(HERE / "nonrequests.txt")
    family_size = Counter(header[1] for header, _, _ in requests)
    # Greedy balance: biggest family first, into the half that has fewer request comments.
    halves: dict[str, str] = {}
    load = {"tune": 0, "test": 0}
    for family, size in sorted(family_size.items(), key=lambda item: (-item[1], item[0])):
        half = min(load, key=lambda name: (load[name], name))
        halves[family] = half
        load[half] += size

    comments = []
    for index, (header, body, reader) in enumerate(requests):
        request, family, _ = header
        comments.append({
            "body": body, "request": request, "family": family, "kind": "request",
            "question": None, "split": halves[family], "reader": reader or f"r{index}",
            "thread": THREADS[hash_index(request, len(THREADS))],
        })
    for index, (header, body, reader) in enumerate(others):
        kind = header[0]
        question = header[1] if len(header) > 1 and header[1] else None
        comments.append({
            "body": body, "request": None, "family": None, "kind": kind, "question": question,
            "split": ("tune", "test")[index % 2], "reader": reader or f"n{index}",
            "thread": THREADS[hash_index(body, len(THREADS))],
        })
    for number, comment in enumerate(comments):
        comment["id"] = f"c{number:04d}"
        comment["reader_key"] = _reader_key(comment.pop("reader"))
    return comments


def hash_index(text: str, size: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % size


def check(comments: list[dict]) -> list[str]:
    """Problems with the data set, as sentences (empty when it is fit for the benchmark)."""
    problems = []
    bodies = Counter(comment["body"].casefold() for comment in comments)
    problems += [f"duplicate comment: {body!r}" for body, n in bodies.items() if n > 1]
    sizes = Counter(comment["request"] for comment in comments if comment["request"])
    if len(comments) < 600:
        problems.append(f"only {len(comments)} comments (want >= 600)")
    repeated = [request for request, n in sizes.items() if n >= 3]
    if len(repeated) < 40:
        problems.append(f"only {len(repeated)} requests asked 3+ times (want >= 40)")
    top = max(sizes.values()) / len(comments)
    if not 0.02 <= top <= 0.06:
        problems.append(f"most-asked request is {top:.1%} of comments (want a few %)")
    for half in ("tune", "test"):
        part = [comment for comment in comments if comment["split"] == half]
        if not any(comment["request"] for comment in part):
            problems.append(f"{half} half has no requests")
    return problems


def summary(comments: list[dict]) -> str:
    sizes = Counter(comment["request"] for comment in comments if comment["request"])
    nulls = sum(1 for comment in comments if not comment["request"])
    readers = Counter(comment["reader_key"] for comment in comments)
    lines = [
        f"{len(comments)} comments: {len(comments) - nulls} ask for one of {len(sizes)} requests, "
        f"{nulls} ask for nothing",
        "most asked: " + ", ".join(f"{r} {n}" for r, n in sizes.most_common(5)),
        f"requests asked 3-8 times: {sum(1 for n in sizes.values() if 3 <= n <= 8)}; "
        f"asked once: {sum(1 for n in sizes.values() if n == 1)}",
        f"readers who wrote more than once: {sum(1 for n in readers.values() if n > 1)}",
    ]
    for half in ("tune", "test"):
        part = [comment for comment in comments if comment["split"] == half]
        asked = {comment["request"] for comment in part if comment["request"]}
        lines.append(f"{half}: {len(part)} comments, {len(asked)} requests")
    return "\n".join(lines)


def main() -> int:
    comments = build()
    problems = check(comments)
    for problem in problems:
        print("PROBLEM:", problem)
    text = json.dumps(comments, ensure_ascii=False, indent=1) + "\n"
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print("comments.json is stale: run build.py")
            return 1
    else:
        OUT.write_text(text, encoding="utf-8")
    print(summary(comments))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
