"""Build overhead of our plugins and theme against vanilla Pelican, measured side by side.

Generates N articles (default 1000) that end in reflection questions, and the comment service's
public export for them (a quarter of the articles with comments and the author's replies, the
site's listening figures), then builds them with vanilla Pelican and with tellmemore, both from
the site's own settings file (``pelicanconf.py``), alternating the two so that machine noise
hits both alike. Vanilla is that file with Pelican's default theme, no plugins and the direct
templates Pelican builds by default (its theme has no ``comments_layout``); tellmemore is that
file as it is, reading the generated export instead of asking a running comment service. Each
build runs in a fresh process; its CPU time and peak memory come from that process's own
resource usage. Prints the medians and the ratio ours / vanilla (target: ≤ 1.10).

    python bench/build_overhead.py [--articles 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "reader", "reply", "listen", "comment", "question", "answer", "author", "post", "write",
    "feedback", "thought", "idea", "request", "queue", "time", "week", "change", "learn",
    "share", "habit", "story", "detail", "example", "moment",
)
# Both variants: the real settings file, with a content cache that never helps (every build
# is a cold one, as a first build or a CI build is).
COMMON_SETTINGS = ["LOAD_CONTENT_CACHE=false", "CACHE_CONTENT=false"]
VARIANTS = {
    "vanilla": [
        'THEME="notmyidea"', "PLUGINS=[]",
        'DIRECT_TEMPLATES=["index", "tags", "categories", "authors", "archives"]',
    ],
    "tellmemore": [],  # pelicanconf.py as it is; COMMENTS_EXPORT is added by main()
}


def sentence(rng: random.Random, length: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(length)).capitalize() + "."


def generate_articles(folder: Path, count: int, seed: int = 7) -> None:
    """Articles of a realistic size: a few sections, a code block, a closing questions list."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for number in range(count):
        paragraphs = "\n\n".join(
            " ".join(sentence(rng, rng.randint(8, 20)) for _ in range(5)) for _ in range(6)
        )
        questions = "\n".join(f"- {sentence(rng, 9)[:-1]}?" for _ in range(3))
        text = (
            f"Title: Article {number}\nDate: 2025-01-01 00:{number % 60:02d}\n"
            f"Slug: article-{number}\nCategory: c{number % 5}\n"
            f"Tags: t{number % 7}, t{number % 11}\n\n"
            f"{paragraphs}\n\n## A section\n\n{paragraphs[:400]}\n\n"
            f"```python\nprint({number})\n```\n\n## Questions for reflection\n\n{questions}\n"
        )
        (folder / f"article-{number}.md").write_text(text, encoding="utf-8")


def generate_export(path: Path, count: int, seed: int = 11) -> None:
    """A public export as ``GET /api/public-export`` gives it: every article has its thread;
    one in four has readers' comments, each answered by the author in a nested reply."""
    rng = random.Random(seed)
    threads = {}
    for number in range(count):
        comments = []
        for index in range(rng.choice((1, 2, 3, 5)) if number % 4 == 0 else 0):
            created = f"2025-02-{1 + index:02d}T10:00:00+00:00"
            reply = {
                "id": f"r{number}-{index}", "parent": f"c{number}-{index}", "question": None,
                "name": "Ada Listener", "website": None, "html": f"<p>{sentence(rng, 12)}</p>",
                "created": created, "edited": None, "is_author": True, "replies": [],
            }
            comments.append({
                "id": f"c{number}-{index}", "parent": None, "question": None,
                "name": f"Reader {index}",
                "website": "https://example.org/" if index % 2 else None,
                "html": f"<p>{sentence(rng, 20)}</p>", "created": created,
                "edited": created if index == 2 else None, "is_author": False,
                "replies": [reply],
            })
        slug = f"article-{number}"
        threads[slug] = {
            "thread": slug, "title": f"Article {number}", "url": f"/2025/{slug}/",
            "questions": [], "count": 2 * len(comments), "waiting": int(number % 3 == 0),
            "comments": comments, "listening": None,
        }
    listening = {"window_days": 90, "received": 120, "answered": 114, "answered_share": 0.95,
                 "median_reply_hours": 7.2}
    document = {"schema_version": 1, "generated": "2026-12-07T00:00:00+00:00",
                "threads": threads, "listening": listening}
    path.write_text(json.dumps(document), encoding="utf-8")


def build_once(
    content: Path, output: Path, variant: str, extra: list[str]
) -> tuple[float, float, float]:
    """One build in a fresh process: (wall seconds, CPU seconds, peak RSS in MiB)."""
    shutil.rmtree(output, ignore_errors=True)
    # One -e with every pair: Pelican keeps only the last -e flag it is given.
    command = [
        sys.executable, "-m", "pelican", str(content), "-s", str(ROOT / "pelicanconf.py"),
        "-o", str(output), "-q", "-e", *COMMON_SETTINGS, *VARIANTS[variant], *extra,
    ]
    started = time.perf_counter()
    log = output.with_suffix(".log")
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=content.parent, stdout=log_file, stderr=log_file)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(
            f"{variant} build failed with exit code {process.returncode}:\n{log.read_text()}"
        )
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tellmemore-bench-") as scratch:
        content = Path(scratch) / "content"
        # pelicanconf.py reads articles from content/articles.
        generate_articles(content / "articles", arguments.articles)
        export = Path(scratch) / "public-export.json"
        generate_export(export, arguments.articles)
        extra = {"vanilla": [], "tellmemore": [f'COMMENTS_EXPORT="{export}"']}
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in VARIANTS}
        for variant in VARIANTS:  # warm the file cache
            build_once(content, Path(scratch) / "warm", variant, extra[variant])
        for run in range(arguments.runs):
            order = list(VARIANTS) if run % 2 == 0 else list(reversed(VARIANTS))
            for variant in order:
                results[variant].append(
                    build_once(content, Path(scratch) / variant, variant, extra[variant])
                )

    print(f"Build of {arguments.articles} articles, median of {arguments.runs} alternating runs")
    print(f"{'variant':<12}{'wall s':>10}{'CPU s':>10}{'peak MiB':>10}")
    medians = {}
    for variant, runs in results.items():
        medians[variant] = [statistics.median(column) for column in zip(*runs, strict=True)]
        wall, cpu, rss = medians[variant]
        print(f"{variant:<12}{wall:>10.2f}{cpu:>10.2f}{rss:>10.1f}")
    ours, vanilla = medians["tellmemore"], medians["vanilla"]
    print(
        f"ratio tellmemore/vanilla: wall {ours[0] / vanilla[0]:.3f}, "
        f"CPU {ours[1] / vanilla[1]:.3f}, peak memory {ours[2] / vanilla[2]:.3f} "
        "(target: time ≤ 1.10)"
    )


if __name__ == "__main__":
    main()
