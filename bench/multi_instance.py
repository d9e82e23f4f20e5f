"""Several service instances against one PostgreSQL store (issue 10), measured side by side.

Printed from one run:

1. Scaling: 1, 2 and 4 service processes, each its own gunicorn instance (one sync worker) on
   its own loopback port, all on one PostgreSQL database; the client (bench/_http_load.py,
   8 connections) spreads its connections over the ports as a load balancer would. POST a
   comment and GET a thread of 100 comments: req/s, and the ratio to one process. Rounds
   alternate the order (1-2-4, then 4-2-1) and each figure is the median over rounds.
2. Size: POST latency (one connection, one request at a time) with 1 000 comments stored vs
   1 000 000, each in its own database, one instance each, taking turns round by round;
   target 1M / 1k <= 1.5 (the PostgreSQL store's indexes keep a POST's work independent of
   the store's size).

    .venv/bin/python bench/multi_instance.py [--quick] [--big 1000000] [--admin-dsn DSN]

Each run makes its own databases on the server named by --admin-dsn (default: the local
PostgreSQL, or TELLMEMORE_BENCH_PG_ADMIN_DSN) and drops them at the end, also on errors and
Ctrl-C. Read the scaling ratios with the machine in mind: on 2 cores, the client, PostgreSQL
and the instances share the same two cores, so 4 processes cannot be 4 times 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _http_load as load
from api_vs_isso import (
    ROOT,
    VENV_BIN,
    Server,
    export_records,
    ours_post_plan,
    write_manifest,
)

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PROCESS_COUNTS = (1, 2, 4)
THREAD_SIZE = 100  # comments per prefilled thread, as in bench/api_vs_isso.py
POST_THREADS = 20  # threads the POSTs go to (of the prefilled ones)
FILL_BATCH = 5000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database_url(admin_url: str, name: str) -> str:
    """``admin_url`` (a postgresql:// URL) naming the database ``name`` instead."""
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


@contextlib.contextmanager
def fresh_database(admin_dsn: str, label: str) -> Iterator[str]:
    """A new, empty database for the duration; yields its DSN."""
    import psycopg
    from psycopg import sql

    name = f"tellmemore_bench_{label}_{os.getpid()}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield database_url(admin_dsn, name)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def environment(folder: Path, store_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELLMEMORE_")}
    env.update({
        "TELLMEMORE_INSTANCE_PATH": str(folder / "instance"),
        "TELLMEMORE_MANIFEST": str(folder / "comments-manifest.json"),
        "TELLMEMORE_STORE_URL": store_url,
        "TELLMEMORE_SECRET_KEY": "bench",
        "TELLMEMORE_RATE_LIMIT": "off",
        "TELLMEMORE_SPAM_CHECKS": "off",
        "TELLMEMORE_PUBLISH_POLICY": "immediately",
        "TELLMEMORE_MAIL_SENDER_THREAD": "false",
        "TELLMEMORE_BACKUP_DAILY": "false",
        # Links in mail need an address the service trusts (#20); nothing is mailed here.
        "TELLMEMORE_PUBLIC_URL": "http://127.0.0.1",
    })
    return env


def prepare(folder: Path, store_url: str, comments: int) -> tuple[dict[str, str], list[str]]:
    """Schema, manifest and ``comments`` stored in threads of THREAD_SIZE; returns the
    environment for the instances and the threads POSTs go to."""
    folder.mkdir(parents=True)
    threads = [f"t{number:05d}" for number in range(max(1, comments // THREAD_SIZE))]
    write_manifest(folder / "comments-manifest.json", threads[:POST_THREADS])
    env = environment(folder, store_url)
    done = subprocess.run([str(VENV_BIN / "flask"), "--app", "comments_service", "init"],
                          env=env, cwd=folder, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"flask init failed:\n{done.stdout}{done.stderr}")
    started = time.perf_counter()
    fill(env, threads, comments)
    log(f"  stored {comments} comments in {time.perf_counter() - started:.0f} s")
    return env, threads[:POST_THREADS]


def fill(env: dict[str, str], threads: list[str], comments: int) -> None:
    """Import through the store interface, in the instances' own settings."""
    from comments_service import create_app
    from comments_service.models import Comment

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        app = create_app()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    store = app.extensions["tellmemore.store"]
    try:
        done = 0
        while done < comments:
            size = min(FILL_BATCH, comments - done)
            layout: dict[str, int] = {}
            for number in range(done, done + size):
                thread = threads[number // THREAD_SIZE % len(threads)]
                layout[thread] = layout.get(thread, 0) + 1
            records = export_records(layout)
            for offset, record in enumerate(records):
                record["id"] = f"fill{done + offset:08d}"
            store.import_comments(Comment.from_record(record) for record in records)
            done += size
            if done % 100_000 == 0:
                log(f"  … {done} comments")
    finally:
        store.close()


@contextlib.contextmanager
def instances(count: int, env: dict[str, str], folder: Path) -> Iterator[list[Server]]:
    servers: list[Server] = []
    try:
        for number in range(count):
            servers.append(Server(
                f"instance {number}", [str(VENV_BIN / "gunicorn"), "comments_service.wsgi:app"],
                env, folder / f"gunicorn-{count}-{number}.log", cwd=ROOT, workers=1,
            ))
        for server in servers:
            server.wait_ready("/healthz")
        yield servers
    finally:
        for server in servers:
            server.stop()


def measured(servers: list[Server], ports: list[int], plan: load.Plan, connections: int,
             seconds: float) -> tuple[load.Result, float]:
    """One load run and the instances' CPU seconds per request during it."""
    before = sum(server.cpu_seconds() for server in servers)
    result = load.run(ports, plan, connections=connections, max_requests=1_000_000,
                      max_seconds=seconds)
    used = sum(server.cpu_seconds() for server in servers) - before
    return result, used / max(1, result.requests)


def read_plan(threads: list[str]) -> load.Plan:
    return load.Plan("GET", tuple(f"/api/threads/{thread}" for thread in threads))


def scaling(folder: Path, env: dict[str, str], threads: list[str], *, seconds: float,
            rounds: int, connections: int) -> None:
    posts: dict[int, list[float]] = {count: [] for count in PROCESS_COUNTS}
    reads: dict[int, list[float]] = {count: [] for count in PROCESS_COUNTS}
    cpu_per_post: dict[int, list[float]] = {count: [] for count in PROCESS_COUNTS}
    cpu_per_read: dict[int, list[float]] = {count: [] for count in PROCESS_COUNTS}
    for round_number in range(rounds):
        order = PROCESS_COUNTS if round_number % 2 == 0 else tuple(reversed(PROCESS_COUNTS))
        for count in order:
            with instances(count, env, folder) as servers:
                ports = [server.port for server in servers]
                post, post_cpu = measured(servers, ports, ours_post_plan(threads),
                                          connections, seconds)
                read, read_cpu = measured(servers, ports, read_plan(threads),
                                          connections, seconds)
            for result, kind, cpu in ((post, "POST", post_cpu), (read, "GET ", read_cpu)):
                if result.unexpected or result.errors:
                    raise RuntimeError(f"{count} processes, {kind}: {result.summary()}")
                log(f"  round {round_number + 1}, {count} process(es), {kind} {result.summary()}"
                    f"; service CPU {cpu * 1000:.1f} ms/request")
            posts[count].append(post.rate)
            reads[count].append(read.rate)
            cpu_per_post[count].append(post_cpu)
            cpu_per_read[count].append(read_cpu)
    print(f"\n1. Scaling over processes (one PostgreSQL, {connections} connections, "
          f"{os.cpu_count()} cores, median of {rounds} rounds)")
    print("Service CPU: the instances' own CPU per request (PostgreSQL's not included); when it")
    print("stays flat as processes are added, what caps the rate is cores, not contention.")
    print("processes | POST req/s | ratio | CPU ms/POST | GET thread req/s | ratio | CPU ms/GET")
    base_post, base_read = statistics.median(posts[1]), statistics.median(reads[1])
    for count in PROCESS_COUNTS:
        post_rate, read_rate = statistics.median(posts[count]), statistics.median(reads[count])
        print(f"{count:9d} | {post_rate:10.1f} | {post_rate / base_post:5.2f} | "
              f"{statistics.median(cpu_per_post[count]) * 1000:11.1f} | "
              f"{read_rate:16.1f} | {read_rate / base_read:5.2f} | "
              f"{statistics.median(cpu_per_read[count]) * 1000:10.1f}")


def post_latencies(server: Server, threads: list[str], requests: int) -> list[float]:
    plan = ours_post_plan(threads)
    return load.run(server.port, plan, connections=1, max_requests=requests,
                    max_seconds=600).latencies


def size_effect(small: tuple[Path, dict[str, str], list[str]],
                big: tuple[Path, dict[str, str], list[str]], *, big_count: int,
                requests: int, rounds: int) -> None:
    medians: dict[str, list[float]] = {"small": [], "big": []}
    p95s: dict[str, list[float]] = {"small": [], "big": []}
    for round_number in range(rounds):
        order = ("small", "big") if round_number % 2 == 0 else ("big", "small")
        for name in order:
            folder, env, threads = small if name == "small" else big
            with instances(1, env, folder) as (server,):
                load.run(server.port, ours_post_plan(threads), connections=1,
                         max_requests=20, max_seconds=60)  # warm up
                latencies = sorted(post_latencies(server, threads, requests))
            medians[name].append(statistics.median(latencies))
            p95s[name].append(latencies[int(0.95 * (len(latencies) - 1))])
    small_median, big_median = statistics.median(medians["small"]), statistics.median(
        medians["big"])
    ratio = big_median / small_median
    print(f"\n2. POST latency, one instance, one connection, {requests} POSTs x {rounds} rounds")
    print(f"1k stored:  p50 {small_median * 1000:6.1f} ms  "
          f"p95 {statistics.median(p95s['small']) * 1000:6.1f} ms")
    print(f"{big_count // 1000}k stored: p50 {big_median * 1000:6.1f} ms  "
          f"p95 {statistics.median(p95s['big']) * 1000:6.1f} ms")
    print(f"ratio {big_count // 1000}k / 1k: {ratio:.2f} (target <= 1.5: "
          f"{'met' if ratio <= 1.5 else 'NOT met'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-dsn", default=os.environ.get(
        "TELLMEMORE_BENCH_PG_ADMIN_DSN", DEFAULT_ADMIN_DSN))
    parser.add_argument("--big", type=int, default=1_000_000, help="comments in the big store")
    parser.add_argument("--seconds", type=float, default=8.0, help="per scaling measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--quick", action="store_true",
                        help="100k instead of 1M, 3 s per measurement: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.big, args.seconds = min(args.big, 100_000), 3.0
    with tempfile.TemporaryDirectory(prefix="tellmemore-bench-") as scratch, \
            fresh_database(args.admin_dsn, "small") as small_url, \
            fresh_database(args.admin_dsn, "big") as big_url:
        root = Path(scratch)
        log("Preparing the 1k store …")
        small_env, small_threads = prepare(root / "small", small_url, 1000)
        log(f"Preparing the {args.big} store (one import per {FILL_BATCH}) …")
        big_env, big_threads = prepare(root / "big", big_url, args.big)
        log("Scaling …")
        scaling(root / "small", small_env, small_threads, seconds=args.seconds,
                rounds=args.rounds, connections=args.connections)
        size_effect((root / "small", small_env, small_threads),
                    (root / "big", big_env, big_threads), big_count=args.big,
                    requests=100 if args.quick else 300, rounds=args.rounds + 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
