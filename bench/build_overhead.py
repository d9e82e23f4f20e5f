"""Build overhead of our plugins and theme against vanilla Pelican, measured side by side.

Generates N articles (default 1000) that end in reflection questions, then builds them with
vanilla Pelican (its default theme, no plugins) and with tellmemore's plugins and theme,
alternating the two so that machine noise hits both alike. Each build runs in a fresh process;
its CPU time and peak memory come from that process's own resource usage. Prints the medians
and the ratio ours / vanilla (target: ≤ 1.10).

    python bench/build_overhead.py [--articles 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
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
COMMON_SETTINGS = [
    'TIMEZONE="UTC"', 'SITEURL="http://127.0.0.1:8000"', "RELATIVE_URLS=true",
    'ARTICLE_URL="{date:%Y}/{slug}/"', 'ARTICLE_SAVE_AS="{date:%Y}/{slug}/index.html"',
    "DEFAULT_PAGINATION=10", "LOAD_CONTENT_CACHE=false", "CACHE_CONTENT=false",
    'FEED_ALL_ATOM="feeds/all.atom.xml"', "CATEGORY_FEED_ATOM=null", "TRANSLATION_FEED_ATOM=null",
    "AUTHOR_FEED_ATOM=null", "AUTHOR_FEED_RSS=null",
]
VARIANTS = {
    "vanilla": ["PLUGINS=[]"],
    "tellmemore": [
        f'THEME="{ROOT / "theme"}"', f'PLUGIN_PATHS=["{ROOT / "plugins"}"]',
        'PLUGINS=["reflection", "comments", "strings"]',
    ],
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


def build_once(content: Path, output: Path, variant: str) -> tuple[float, float, float]:
    """One build in a fresh process: (wall seconds, CPU seconds, peak RSS in MiB)."""
    shutil.rmtree(output, ignore_errors=True)
    command = [
        sys.executable, "-m", "pelican", str(content), "-o", str(output), "-q",
        "-e", *COMMON_SETTINGS, *VARIANTS[variant],
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
        generate_articles(content, arguments.articles)
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in VARIANTS}
        build_once(content, Path(scratch) / "warm", "tellmemore")  # warm the file cache
        for run in range(arguments.runs):
            order = list(VARIANTS) if run % 2 == 0 else list(reversed(VARIANTS))
            for variant in order:
                results[variant].append(build_once(content, Path(scratch) / variant, variant))

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
