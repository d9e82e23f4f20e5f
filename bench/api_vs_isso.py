"""HTTP throughput of tellmemore's comment service against Isso 0.14 and a bare Flask app.

Every server runs under gunicorn with two sync workers on loopback and is loaded by the same
closed-loop client (bench/_http_load.py: one process per connection, 8 connections unless
said otherwise). Each phase stops after a number of requests or a number of seconds,
whichever comes first. Servers compared take turns round by round (the order flips every
round), and each headline ratio is the median of the per-round ratios, so load from other
work on the machine, which comes and goes, hurts both sides of a ratio alike. Printed, side
by side from one run:

1. POST a comment: ours vs Isso vs bare Flask (req/s); target ours / Isso >= 1.0.
2. GET a thread of 3000 comments: ours vs Isso (req/s); target ours / Isso >= 50. Ours serves
   a body it cached for the thread's current version (rebuilt after every change), so the
   latency of a GET right after a POST, when the body must be rebuilt, is printed as well.
3. POST latency of ours with 1k vs 100k comments stored (100 per thread), POSTs going to
   threads of ~100 comments: median and p95; target 100k / 1k <= 1.5.
4. POST into one thread growing from 0 to 3000 comments, ours vs Isso, each server filling the
   same stretch (0-250, 250-500, 500-1000, 1000-2000, 2000-3000) in turn, the order flipping
   every stretch: req/s, the ratio, and the server's CPU ms per request (which other work on
   a shared machine disturbs least); target ours / Isso >= 1.0 at every size.

Isso is installed into its own virtualenv (kept in a cache folder and reused):

    .venv/bin/python bench/api_vs_isso.py [--quick] [--isso-venv DIR] [--no-isso]
    .venv/bin/python bench/api_vs_isso.py --only-growth   # phase 4 alone (about 1 minute)

Everything else (stores, Isso's database, logs) lives in a temporary folder that is removed
at the end, and every server started is stopped, also on errors, Ctrl-C and SIGTERM.
The whole run takes about 7 minutes on 2 cores (--quick: about 3 minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import html
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _http_load as load

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
ISSO_REQUIREMENT = "isso==0.14.*"
JSON_HEADERS = {"Content-Type": "application/json"}
GROWTH_PIECES = 4  # phase 4: runs per server in each stretch of the growing thread
WORDS = (
    "thanks", "for", "writing", "this", "the", "part", "about", "habits", "made", "me",
    "think", "of", "my", "own", "week", "and", "how", "small", "changes", "add", "up",
    "I", "tried", "it", "too", "question", "answer", "reader", "story", "detail",
)

BARE_FLASK_APP = '''\
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/echo")
def echo():
    request.get_json()
    return jsonify(ok=True), 201


@app.get("/hello")
def hello():
    return jsonify(hello="world", numbers=[1, 2, 3])
'''

SITE_PAGE = (
    "<!doctype html><html><head><title>Bench</title></head><body>"
    '<div id="isso-thread"><h1>Bench</h1></div></body></html>'
)


@dataclass(frozen=True)
class Settings:
    connections: int
    rounds: int
    get_rounds: int
    post_seconds: float
    post_requests: int
    get_seconds_ours: float
    get_seconds_isso: float
    big_thread: int
    post_threads: int
    cold_samples: int
    small_store_threads: int
    large_store_threads: int
    per_thread: int
    latency_connections: int
    latency_seconds: float
    latency_requests: int
    latency_threads: int
    latency_rounds: int
    hot_seconds: float
    growth: tuple[int, ...]


FULL = Settings(
    connections=8, rounds=5, get_rounds=3, post_seconds=6, post_requests=20_000,
    get_seconds_ours=10,
    get_seconds_isso=20, big_thread=3000, post_threads=100, cold_samples=5,
    small_store_threads=10, large_store_threads=1000, per_thread=100, latency_connections=2,
    latency_seconds=15, latency_requests=150, latency_threads=10, latency_rounds=8,
    hot_seconds=5, growth=(250, 500, 1000, 2000, 3000),
)
QUICK = Settings(
    connections=8, rounds=1, get_rounds=1, post_seconds=3, post_requests=3000,
    get_seconds_ours=3,
    get_seconds_isso=6, big_thread=3000, post_threads=100, cold_samples=3,
    small_store_threads=10, large_store_threads=100, per_thread=100, latency_connections=2,
    latency_seconds=5, latency_requests=100, latency_threads=10, latency_rounds=2,
    hot_seconds=2, growth=(250, 500, 1000, 2000, 3000),
)


def comment_text(number: int) -> str:
    """A few sentences of about 250 characters, different for every number."""
    words = [WORDS[(number * 7 + index * 13) % len(WORDS)] for index in range(44)]
    return f"Comment {number}: " + " ".join(words).capitalize() + "."


def log(message: str) -> None:
    print(message, flush=True)


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Server:
    """A gunicorn started in its own process group, stopped with the whole group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path,
                 cwd: Path | None = None, workers: int = 2) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*argv, "--workers", str(workers), "--bind", f"{HOST}:{self.port}",
             "--log-level", "warning"],
            env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, path: str, timeout: float = 90.0) -> None:
        """Wait until the workers answer (any status counts: the server is up)."""
        deadline = time.monotonic() + timeout
        answered = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                load.request_once(self.port, "GET", path, timeout=10)
                answered += 1
                if answered >= 4:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU time used so far by the live processes of the server's process group."""
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # Fields after the command name: state ppid pgrp ... utime (12th) stime (13th).
            fields = raw[raw.rindex(")") + 2 :].split()
            if int(fields[2]) == self.process.pid:
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Workers left behind by a master that died first share its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


class SiteHandler(BaseHTTPRequestHandler):
    """The "blog" Isso reads a new thread's title from: the same small page at every path."""

    def _answer(self, with_body: bool) -> None:
        payload = SITE_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if with_body:
            self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def site_server() -> contextlib.AbstractContextManager[int]:
    return serving(SiteHandler)


@contextlib.contextmanager
def serving(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[int]:
    """A threaded HTTP server on a free loopback port for the ``with`` block; yields the port."""
    server = ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


# --- Isso ------------------------------------------------------------------------------------


def default_isso_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "tellmemore-bench" / "isso-0.14-venv"


def isso_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not python.exists():
        return None
    found = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('isso'))"],
        capture_output=True, text=True, check=False,
    )
    if found.returncode != 0 or not (venv / "bin" / "gunicorn").exists():
        return None
    return found.stdout.strip()


def ensure_isso(venv: Path) -> tuple[str | None, str]:
    """Isso 0.14 and gunicorn in their own virtualenv: (version or None, what happened)."""
    version = isso_version(venv)
    if version and version.startswith("0.14"):
        return version, f"reused {venv}"
    log(f"Installing {ISSO_REQUIREMENT} and gunicorn into {venv} ...")
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         ISSO_REQUIREMENT, "gunicorn"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip().splitlines()
            return None, f"`{' '.join(step)}` failed:\n" + "\n".join(output[-15:])
    version = isso_version(venv)
    if not version or not version.startswith("0.14"):
        return None, f"installed, but isso reports version {version!r}"
    return version, f"installed into {venv}"


def isso_config(folder: Path, site_port: int) -> Path:
    config = folder / "isso.cfg"
    config.write_text(
        "[general]\n"
        f"dbpath = {folder / 'comments.db'}\n"
        f"host = http://{HOST}:{site_port}/\n"
        "notify = stdout\n"
        "gravatar = false\n"
        "[moderation]\n"
        "enabled = false\n"
        "[guard]\n"
        "enabled = false\n",
        encoding="utf-8",
    )
    return config


def isso_post_plan(uris: list[str]) -> load.Plan:
    text = json.dumps(comment_text(0)).replace("Comment 0:", "Comment {n}:")
    body = ('{"text": ' + text + ', "author": "Reader {n}", "email": null, '
            '"website": null, "parent": null}')
    return load.Plan("POST", tuple(f"/new?uri={uri}" for uri in uris), body, JSON_HEADERS,
                     expected=(201,))


# --- ours --------------------------------------------------------------------------------------


def ours_post_plan(threads: list[str]) -> load.Plan:
    text = json.dumps(comment_text(0)).replace("Comment 0:", "Comment {n}:")
    body = '{"name": "Reader {n}", "body": ' + text + "}"
    return load.Plan("POST", tuple(f"/api/threads/{thread}/comments" for thread in threads),
                     body, JSON_HEADERS, expected=(201,))


def write_manifest(path: Path, threads: list[str]) -> None:
    articles = [
        {"thread": thread, "title": f"Bench {thread}", "url": f"http://{HOST}:9/{thread}/",
         "date": "2026-01-01T00:00:00+00:00", "lang": "en", "questions": []}
        for thread in threads
    ]
    document = {"schema_version": 1, "site_name": "Bench", "site_url": f"http://{HOST}:9",
                "articles": articles}
    path.write_text(json.dumps(document), encoding="utf-8")


def ours_env(folder: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELLMEMORE_")}
    env.update({
        "TELLMEMORE_INSTANCE_PATH": str(folder / "instance"),
        "TELLMEMORE_MANIFEST": str(folder / "comments-manifest.json"),
        "TELLMEMORE_STORE_PATH": str(folder / "store"),
        "TELLMEMORE_SECRET_KEY": "bench",
        "TELLMEMORE_RATE_LIMIT": "off",
        "TELLMEMORE_SPAM_CHECKS": "off",
        "TELLMEMORE_PUBLISH_POLICY": "immediately",
        # Links in mail need an address the service trusts (#20); nothing is mailed here.
        "TELLMEMORE_PUBLIC_URL": "http://127.0.0.1",
    })
    return env


def export_records(layout: dict[str, int]) -> list[dict[str, object]]:
    """Comments for an import: ``layout`` maps thread → how many, oldest first."""
    records: list[dict[str, object]] = []
    number = 0
    for thread, count in layout.items():
        for _ in range(count):
            number += 1
            text = comment_text(number)
            seconds, micros = divmod(number, 1_000_000)
            minutes, seconds = divmod(seconds, 60)
            records.append({
                "id": f"bench{number:08d}", "thread": thread, "name": f"Reader {number}",
                "body": text, "html": f"<p>{html.escape(text)}</p>",
                "created": f"2026-01-01T00:{minutes:02d}:{seconds:02d}.{micros:06d}+00:00",
                "state": "awaiting_reply", "public": True, "parent": None, "question": None,
                "email": None, "website": None, "is_author": False, "notify": False,
                "replied_at": None, "edited_at": None, "request": None, "reader_key": None,
                "spam_reasons": [],
            })
    return records


def prepare_ours(folder: Path, manifest_threads: list[str], layout: dict[str, int]) -> str:
    """Manifest and prefilled store through `flask import`; returns how it was filled."""
    folder.mkdir(parents=True)
    write_manifest(folder / "comments-manifest.json", manifest_threads)
    if not layout:
        return "empty"
    export = folder / "prefill.json"
    export.write_text(json.dumps({
        "format": "tellmemore-export", "version": 1,
        "exported_at": "2026-01-01T00:00:00+00:00", "comments": export_records(layout),
    }), encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "comments_service", "import", str(export)],
        env=ours_env(folder), cwd=ROOT, capture_output=True, text=True, check=False,
    )
    export.unlink()
    if done.returncode != 0:
        return "import failed: " + (done.stdout + done.stderr).strip()[-400:]
    return f"imported in {time.perf_counter() - started:.1f} s"


def start_ours(name: str, folder: Path) -> Server:
    server = Server(
        name, [str(VENV_BIN / "gunicorn"), "comments_service.wsgi:app"],
        ours_env(folder), folder / "gunicorn.log", cwd=ROOT,
    )
    try:
        server.wait_ready("/healthz")
    except BaseException:
        server.stop()
        raise
    return server


def fill_by_posting(server: Server, plan: load.Plan, count: int) -> load.Result:
    result = load.run(server.port, plan, connections=8, max_requests=count, max_seconds=900)
    if result.unexpected or result.errors or result.requests != count:
        raise RuntimeError(f"filling {server.name} by POST: {result.summary()}")
    return result


# --- measuring -------------------------------------------------------------------------------


def measure(name: str, server: Server, plan: load.Plan, *, seconds: float, requests: int,
            connections: int, problems: list[str], cpu: list[float] | None = None) -> load.Result:
    """One timed run; ``cpu``, when given, gets the server's CPU seconds used during it."""
    cpu_before = server.cpu_seconds()
    result = load.run(server.port, plan, connections=connections, max_requests=requests,
                      max_seconds=seconds)
    used = server.cpu_seconds() - cpu_before
    if cpu is not None:
        cpu.append(used)
    server_cores = used / result.seconds if result.seconds else 0
    log(f"  {name:<24} {result.summary()}; server CPU {server_cores:.2f} cores")
    if result.unexpected or result.errors:
        problems.append(f"{name}: {result.unexpected} unexpected statuses "
                        f"{dict(result.statuses)}, {result.errors} connection errors")
    return result


def warm_up(server: Server, plan: load.Plan, requests: int, problems: list[str]) -> None:
    """A short unrecorded run: imports, caches and connections settle before timing."""
    result = load.run(server.port, plan, connections=2, max_requests=requests, max_seconds=2)
    if result.unexpected or result.errors:
        problems.append(f"warm-up of {server.name}: {result.summary()}")


def median_rate(results: list[load.Result]) -> float:
    return statistics.median(result.rate for result in results)


def paired_ratios(ours: list[load.Result], theirs: list[load.Result]) -> list[float]:
    """Rate ratios round by round: each pair ran back to back, so machine load that drifts
    (other work on a shared machine) hits both alike. Their median is the headline ratio."""
    return [mine.rate / other.rate for mine, other in zip(ours, theirs, strict=True)]


def ratio_line(ratios: list[float], medians_ratio: float, target: float, *, at_least: bool,
               digits: int) -> str:
    listed = ", ".join(f"{ratio:.{digits}f}" for ratio in ratios)
    headline = statistics.median(ratios)
    return (f"{headline:.{digits}f}  {verdict(headline, target, at_least=at_least)}  "
            f"[median of per-round ratios {listed}; ratio of the medians "
            f"{medians_ratio:.{digits}f}]")


def pooled(results: list[load.Result]) -> load.Result:
    """All rounds' requests as one sample (for latency percentiles)."""
    statuses: Counter[int] = Counter()
    for result in results:
        statuses.update(result.statuses)
    return load.Result(
        requests=sum(result.requests for result in results),
        seconds=sum(result.seconds for result in results),
        latencies=[latency for result in results for latency in result.latencies],
        statuses=statuses, errors=sum(result.errors for result in results),
        unexpected=sum(result.unexpected for result in results),
        client_cpu_seconds=sum(result.client_cpu_seconds for result in results),
    )


def verdict(value: float, target: float, *, at_least: bool) -> str:
    met = value >= target if at_least else value <= target
    return f"{'met' if met else 'MISSED'} (target {'>=' if at_least else '<='} {target:g})"


def count_ours(server: Server, thread: str) -> tuple[int, int]:
    """(public comments, response bytes) of one of our threads."""
    status, body, _ = load.request_once(server.port, "GET", f"/api/threads/{thread}")
    if status != 200:
        raise RuntimeError(f"GET {thread} from {server.name}: {status}")
    return int(json.loads(body)["count"]), len(body)


def count_isso(server: Server, uri: str) -> tuple[int, int]:
    """(comments, response bytes) of an Isso thread."""
    status, body, _ = load.request_once(server.port, "GET", f"/?uri={uri}")
    if status != 200:
        raise RuntimeError(f"GET {uri} from {server.name}: {status}")
    return int(json.loads(body)["total_replies"]), len(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short phases, one round, 10k instead of 100k stored comments")
    parser.add_argument("--isso-venv", type=Path, default=default_isso_venv(),
                        help="virtualenv for Isso 0.14 (created when missing; default %(default)s)")
    parser.add_argument("--no-isso", action="store_true", help="measure ours and bare Flask only")
    parser.add_argument("--only-growth", action="store_true",
                        help="only phase 4: POST into one thread growing to 3000 comments")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    started = time.monotonic()
    # A plain `kill` must still stop the servers (they run in their own sessions).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    problems: list[str] = []

    run = ("quick" if args.quick else "full") + (", phase 4 only" if args.only_growth else "")
    log(f"tellmemore API vs Isso 0.14 vs bare Flask ({run} run; "
        f"gunicorn --workers 2; {os.cpu_count()} CPUs; client: {settings.connections} "
        "connections, one process each)")
    isso_note = "skipped (--no-isso)"
    isso_ok = False
    if not args.no_isso:
        version, isso_note = ensure_isso(args.isso_venv)
        isso_ok = version is not None
        isso_note = f"Isso {version}: {isso_note}" if isso_ok else f"Isso NOT measured: {isso_note}"
    log(isso_note)

    load_before = os.getloadavg()[0]
    log(f"Load average before start: {load_before:.2f} (other work on the machine skews rates;"
        " paired rounds below share what noise there is)")
    tmp = Path(tempfile.mkdtemp(prefix="tellmemore-bench-"))
    servers: list[Server] = []

    def stop_all() -> None:
        while servers:
            servers.pop().stop()

    try:
        with site_server() as site_port:
            summary = [] if args.only_growth else run_phases(
                settings, tmp, site_port, isso_ok, args.isso_venv, servers, problems)
            stop_all()
            summary += run_growth(settings, tmp, site_port, isso_ok, args.isso_venv, servers,
                                  problems)
            stop_all()
    except KeyboardInterrupt:
        log("Interrupted.")
        return 130
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    log("")
    log("== Results " + "=" * 60)
    for line in summary:
        log(line)
    log(f"Total time {time.monotonic() - started:.0f} s; 1-minute load average at start "
        f"{load_before:.2f}, at end {os.getloadavg()[0]:.2f} (the benchmark itself keeps about "
        "2 busy).")
    if problems:
        log("PROBLEMS (requests that did not get the expected status):")
        for problem in problems:
            log(f"  {problem}")
        return 1
    return 0


def run_phases(settings: Settings, tmp: Path, site_port: int, isso_ok: bool, isso_venv: Path,
               servers: list[Server], problems: list[str]) -> list[str]:
    s = settings
    summary: list[str] = []
    post_threads = [f"post-{index:02d}" for index in range(s.post_threads)]

    # -- servers for phases 1 and 2 ----------------------------------------------------------
    bare_folder = tmp / "bare"
    bare_folder.mkdir()
    (bare_folder / "bare_app.py").write_text(BARE_FLASK_APP, encoding="utf-8")
    bare = Server("bare Flask", [str(VENV_BIN / "gunicorn"), "bare_app:app"], dict(os.environ),
                  bare_folder / "gunicorn.log", cwd=bare_folder)
    servers.append(bare)
    bare.wait_ready("/hello")

    log(f"Preparing our store: {s.big_thread} comments in thread 'big' ...")
    ours_folder = tmp / "ours"
    how = prepare_ours(ours_folder, ["big", *post_threads], {"big": s.big_thread})
    log(f"  {how}")
    ours = start_ours("ours", ours_folder)
    servers.append(ours)
    import_failed = how.startswith("import failed")
    if import_failed:
        log("  falling back to POSTing the comments (slower)")
        fill_by_posting(ours, ours_post_plan(["big"]), s.big_thread)
        summary.append(f"NOTE: `flask import` failed ({how}); our stores were filled by POST.")

    isso: Server | None = None
    if isso_ok:
        isso_folder = tmp / "isso"
        isso_folder.mkdir()
        config = isso_config(isso_folder, site_port)
        env = dict(os.environ, ISSO_SETTINGS=str(config))
        isso = Server("Isso", [str(isso_venv / "bin" / "gunicorn"), "isso.run:application"],
                      env, isso_folder / "gunicorn.log", cwd=isso_folder)
        servers.append(isso)
        isso.wait_ready("/config")

    # Threads exist before timing starts: Isso fetches a new thread's title from the site.
    for thread in post_threads:
        status, _, _ = load.request_once(
            ours.port, "POST", f"/api/threads/{thread}/comments",
            json.dumps({"name": "Warm", "body": comment_text(0)}).encode(), JSON_HEADERS)
        if status != 201:
            raise RuntimeError(f"first POST to our {thread}: {status}")
        if isso:
            status, _, _ = load.request_once(
                isso.port, "POST", f"/new?uri=/{thread}/",
                json.dumps({"text": comment_text(0), "author": "Warm"}).encode(), JSON_HEADERS)
            if status != 201:
                raise RuntimeError(f"first POST to Isso /{thread}/: {status}")

    # -- 1. POST -----------------------------------------------------------------------------
    log("")
    log(f"1. POST a comment ({s.connections} connections, each run <= {s.post_seconds:g} s or "
        f"{s.post_requests} requests, spread round-robin over {s.post_threads} threads; "
        f"{s.rounds} round(s))")
    echo = load.Plan("POST", ("/echo",), '{"name": "Reader {n}", "body": "Hello {n}"}',
                     JSON_HEADERS, expected=(201,))
    hello = load.Plan("GET", ("/hello",))
    plans: list[tuple[str, Server, load.Plan]] = [
        ("bare Flask POST /echo", bare, echo),
        ("ours POST", ours, ours_post_plan(post_threads)),
    ]
    if isso:
        plans.append(("Isso POST /new", isso, isso_post_plan([f"/{t}/" for t in post_threads])))
    post_results: dict[str, list[load.Result]] = {name: [] for name, _, _ in plans}
    hello_results = []
    for _, server, plan in plans:
        warm_up(server, plan, 100, problems)
    warm_up(bare, hello, 100, problems)
    for round_number in range(s.rounds):
        log(f" round {round_number + 1}")
        # Every other round in reverse order, so no server always runs right after another.
        for name, server, plan in plans if round_number % 2 == 0 else reversed(plans):
            post_results[name].append(measure(
                name, server, plan, seconds=s.post_seconds, requests=s.post_requests,
                connections=s.connections, problems=problems))
        hello_results.append(measure(
            "bare Flask GET /hello", bare, hello, seconds=s.post_seconds,
            requests=s.post_requests, connections=s.connections, problems=problems))
    posted_per_thread, _ = count_ours(ours, post_threads[0])
    bare_post = median_rate(post_results["bare Flask POST /echo"])
    ours_post = median_rate(post_results["ours POST"])
    client_cpu = max(result.client_cpu_share for result in hello_results)
    summary.append(
        f"1. POST a comment, req/s (median of {s.rounds} round(s), {s.connections} connections,"
        f" {s.post_threads} threads, ~{posted_per_thread} comments each at the end):"
    )
    summary.append(f"   bare Flask {bare_post:8.1f}   (GET /hello {median_rate(hello_results):.1f};"
                   f" client used {client_cpu:.2f} CPU cores there)")
    summary.append(f"   ours       {ours_post:8.1f}   p50 "
                   f"{pooled(post_results['ours POST']).median * 1000:.1f} ms, p95 "
                   f"{pooled(post_results['ours POST']).percentile(0.95) * 1000:.1f} ms")
    if isso:
        isso_post = median_rate(post_results["Isso POST /new"])
        isso_pooled = pooled(post_results["Isso POST /new"])
        summary.append(f"   Isso       {isso_post:8.1f}   p50 {isso_pooled.median * 1000:.1f} ms,"
                       f" p95 {isso_pooled.percentile(0.95) * 1000:.1f} ms")
        ratios = paired_ratios(post_results["ours POST"], post_results["Isso POST /new"])
        summary.append("   ours / Isso = " + ratio_line(ratios, ours_post / isso_post, 1.0,
                                                        at_least=True, digits=2))
    summary.append(f"   ours / bare Flask = {ours_post / bare_post:.2f}")

    # -- 2. GET a big thread -----------------------------------------------------------------
    log("")
    log(f"2. GET a thread of {s.big_thread} comments (no If-None-Match)")
    if isso:
        log(f"  filling Isso's /big/ with {s.big_thread} comments by POST ...")
        # The first comment alone: Isso workers creating the same new thread at once collide.
        status, _, _ = load.request_once(
            isso.port, "POST", "/new?uri=/big/",
            json.dumps({"text": comment_text(0), "author": "First"}).encode(), JSON_HEADERS)
        if status != 201:
            raise RuntimeError(f"first POST to Isso /big/: {status}")
        filled = fill_by_posting(isso, isso_post_plan(["/big/"]), s.big_thread - 1)
        log(f"  done at {filled.rate:.0f} req/s")
    ours_count, ours_bytes = count_ours(ours, "big")
    log(f"  ours: {ours_count} public comments in 'big', {ours_bytes / 1e6:.2f} MB of JSON")
    if isso:
        isso_count, isso_bytes = count_isso(isso, "/big/")
        log(f"  Isso: {isso_count} comments in /big/, {isso_bytes / 1e6:.2f} MB of JSON")
    ours_get = load.Plan("GET", ("/api/threads/big",))
    isso_get = load.Plan("GET", ("/?uri=/big/",))
    get_results: dict[str, list[load.Result]] = {"ours GET": [], "Isso GET": []}
    warm_up(ours, ours_get, 20, problems)
    if isso:
        warm_up(isso, isso_get, 2, problems)
    for round_number in range(s.get_rounds):
        log(f" round {round_number + 1}")
        get_results["ours GET"].append(measure(
            "ours GET", ours, ours_get, seconds=s.get_seconds_ours, requests=100_000,
            connections=s.connections, problems=problems))
        if isso:
            get_results["Isso GET"].append(measure(
                "Isso GET", isso, isso_get, seconds=s.get_seconds_isso, requests=10_000,
                connections=s.connections, problems=problems))
    # A GET right after a POST must rebuild the body: one connection, nothing else running.
    cold: list[float] = []
    for _ in range(s.cold_samples):
        status, _, _ = load.request_once(
            ours.port, "POST", "/api/threads/big/comments",
            json.dumps({"name": "Cold", "body": comment_text(1)}).encode(), JSON_HEADERS)
        get_status, _, seconds = load.request_once(ours.port, "GET", "/api/threads/big")
        if status != 201 or get_status != 200:
            problems.append(f"cold GET of ours: POST {status}, GET {get_status}")
        cold.append(seconds)
    isso_single: list[float] = []
    if isso:
        for _ in range(s.cold_samples):
            get_status, _, seconds = load.request_once(isso.port, "GET", "/?uri=/big/")
            if get_status != 200:
                problems.append(f"single GET of Isso: {get_status}")
            isso_single.append(seconds)
    # Worst case for ours: every POST rewrites the file of one thread of 3000 comments.
    log(f" POST into the one thread of {s.big_thread} comments")
    hot_ours = measure("ours POST to 'big'", ours, ours_post_plan(["big"]),
                       seconds=s.hot_seconds, requests=s.post_requests,
                       connections=s.connections, problems=problems)
    hot_isso = (measure("Isso POST to /big/", isso, isso_post_plan(["/big/"]),
                        seconds=s.hot_seconds, requests=s.post_requests,
                        connections=s.connections, problems=problems) if isso else None)
    ours_get_rate = median_rate(get_results["ours GET"])
    summary.append(f"2. GET a thread of {s.big_thread} comments, req/s (median of {s.get_rounds} "
                   f"round(s), {s.connections} connections):")
    ours_get_pooled = pooled(get_results["ours GET"])
    summary.append(f"   ours       {ours_get_rate:8.1f}   p50 {ours_get_pooled.median * 1000:.1f}"
                   f" ms, p95 {ours_get_pooled.percentile(0.95) * 1000:.1f} ms (cached body)")
    if isso:
        isso_get_rate = median_rate(get_results["Isso GET"])
        isso_get_pooled = pooled(get_results["Isso GET"])
        summary.append(f"   Isso       {isso_get_rate:8.1f}   p50 "
                       f"{isso_get_pooled.median * 1000:.1f} ms, p95 "
                       f"{isso_get_pooled.percentile(0.95) * 1000:.1f} ms")
        ratios = paired_ratios(get_results["ours GET"], get_results["Isso GET"])
        summary.append("   ours / Isso = " + ratio_line(ratios, ours_get_rate / isso_get_rate, 50,
                                                        at_least=True, digits=1))
    summary.append(f"   one GET alone right after a POST (body rebuilt): ours median "
                   f"{statistics.median(cold) * 1000:.1f} ms"
                   + (f"; one Isso GET alone: median {statistics.median(isso_single) * 1000:.1f}"
                      " ms" if isso_single else ""))

    summary.append(f"   POST into that thread (one {s.hot_seconds:g} s run, not a target): ours "
                   f"{hot_ours.rate:.1f} req/s (p50 {hot_ours.median * 1000:.1f} ms)"
                   + (f", Isso {hot_isso.rate:.1f} req/s (p50 {hot_isso.median * 1000:.1f} ms)"
                      if hot_isso else ""))

    for server in list(servers):
        server.stop()
        servers.remove(server)

    # -- 3. POST latency vs store size --------------------------------------------------------
    log("")
    large_total = s.large_store_threads * s.per_thread
    small_total = s.small_store_threads * s.per_thread
    log(f"3. POST latency of ours with {small_total} vs {large_total} comments stored "
        f"({s.per_thread} per thread; {s.latency_connections} connections; POSTs round-robin over "
        f"{s.latency_threads} threads of {s.per_thread}; each run <= {s.latency_seconds:g} s or "
        f"{s.latency_requests} requests)")
    all_threads = [f"t{index:04d}" for index in range(s.large_store_threads)]
    targets = all_threads[: s.latency_threads]
    stores: list[tuple[str, Server]] = []
    for label, thread_count in (("small", s.small_store_threads),
                                ("large", s.large_store_threads)):
        folder = tmp / f"ours-{label}"
        total = thread_count * s.per_thread
        log(f"  preparing {total} comments ...")
        how = prepare_ours(folder, all_threads,
                           {thread: s.per_thread for thread in all_threads[:thread_count]})
        log(f"    {how}")
        server = start_ours(f"ours, {total} stored", folder)
        servers.append(server)
        if how.startswith("import failed"):
            summary.append(f"NOTE: {label} store filled by POST: {how}")
            fill_by_posting(server, ours_post_plan(all_threads[:thread_count]), total)
        stores.append((f"ours, {total} stored", server))
    latency_results: dict[str, list[load.Result]] = {name: [] for name, _ in stores}
    plan = ours_post_plan(targets)
    for _, server in stores:
        warm_up(server, plan, 20, problems)
    for round_number in range(s.latency_rounds):
        log(f" round {round_number + 1}")
        order = stores if round_number % 2 == 0 else list(reversed(stores))
        for name, server in order:
            latency_results[name].append(measure(
                name, server, plan, seconds=s.latency_seconds, requests=s.latency_requests,
                connections=s.latency_connections, problems=problems))
    end_size, _ = count_ours(stores[0][1], targets[0])
    small_pooled = pooled(latency_results[stores[0][0]])
    large_pooled = pooled(latency_results[stores[1][0]])
    summary.append(f"3. POST latency of ours ({s.latency_rounds} alternating runs each, "
                   f"{s.latency_connections} connections, threads of {s.per_thread} -> {end_size}"
                   " comments over the runs):")
    for label, result in ((f"{small_total:>7} stored", small_pooled),
                          (f"{large_total:>7} stored", large_pooled)):
        summary.append(f"   {label}  p50 {result.median * 1000:6.1f} ms  p95 "
                       f"{result.percentile(0.95) * 1000:6.1f} ms  ({result.rate:.1f} req/s)")
    pair_ratios = [large.median / small.median for small, large in zip(
        latency_results[stores[0][0]], latency_results[stores[1][0]], strict=True)]
    p95_ratio = large_pooled.percentile(0.95) / small_pooled.percentile(0.95)
    summary.append(f"   {large_total} / {small_total}, p50: " + ratio_line(
        pair_ratios, large_pooled.median / small_pooled.median, 1.5, at_least=False, digits=2))
    summary.append(f"   {large_total} / {small_total}, p95 of all runs pooled: {p95_ratio:.2f}")
    return summary


def start_isso(folder: Path, site_port: int, isso_venv: Path) -> Server:
    folder.mkdir()
    env = dict(os.environ, ISSO_SETTINGS=str(isso_config(folder, site_port)))
    isso = Server("Isso", [str(isso_venv / "bin" / "gunicorn"), "isso.run:application"],
                  env, folder / "gunicorn.log", cwd=folder)
    try:
        isso.wait_ready("/config")
    except BaseException:
        isso.stop()
        raise
    return isso


def run_growth(settings: Settings, tmp: Path, site_port: int, isso_ok: bool, isso_venv: Path,
               servers: list[Server], problems: list[str]) -> list[str]:
    """Phase 4: one thread grown from empty to settings.growth[-1] comments by POST, on fresh
    servers; each stretch is filled by ours and by Isso in turn (the order flips every
    stretch), with the same 8 connections."""
    s = settings
    log("")
    log(f"4. POST into one thread growing 0 -> {s.growth[-1]} comments ({s.connections} "
        "connections; each stretch filled by each server in turn)")
    ours_folder = tmp / "ours-growth"
    prepare_ours(ours_folder, ["grow"], {})
    contenders: list[tuple[str, Server, load.Plan]] = []
    ours = start_ours("ours", ours_folder)
    servers.append(ours)
    contenders.append(("ours", ours, ours_post_plan(["grow"])))
    if isso_ok:
        isso = start_isso(tmp / "isso-growth", site_port, isso_venv)
        servers.append(isso)
        contenders.append(("Isso", isso, isso_post_plan(["/grow/"])))
    # The first comment alone: Isso workers creating the same new thread at once collide.
    for name, server, plan in contenders:
        path = plan.paths[0]
        body = (json.dumps({"name": "First", "body": comment_text(0)}) if name == "ours" else
                json.dumps({"text": comment_text(0), "author": "First"}))
        status, _, _ = load.request_once(server.port, "POST", path, body.encode(), JSON_HEADERS)
        if status != 201:
            raise RuntimeError(f"first POST to {name}'s growing thread: {status}")
    rows: list[tuple[str, dict[str, load.Result], dict[str, float], list[float]]] = []
    size, turn = 1, 0
    for target in s.growth:
        stretch = f"{size if size > 1 else 0}-{target}"
        runs: dict[str, list[load.Result]] = {name: [] for name, _, _ in contenders}
        used: dict[str, list[float]] = {name: [] for name, _, _ in contenders}
        # Each stretch in GROWTH_PIECES runs per server, taking turns (the order flipping
        # every run), so that load from other work hits both sides of each ratio alike.
        bounds = [size + (target - size) * piece // GROWTH_PIECES
                  for piece in range(GROWTH_PIECES + 1)]
        for start, stop in itertools.pairwise(bounds):
            for name, server, plan in contenders if turn % 2 == 0 else reversed(contenders):
                runs[name].append(measure(
                    f"{name} POST, {start}-{stop}", server, plan, seconds=900,
                    requests=stop - start, connections=s.connections, problems=problems,
                    cpu=used[name]))
            turn += 1
        results = {name: pooled(results) for name, results in runs.items()}
        cpu_ms = {name: sum(used[name]) / max(results[name].requests, 1) * 1000
                  for name in runs}
        ratios = (paired_ratios(runs["ours"], runs["Isso"]) if "Isso" in runs else [])
        rows.append((stretch, results, cpu_ms, ratios))
        size = target
    final = count_ours(ours, "grow")[0]
    summary = [f"4. POST into one thread growing 0 -> {s.growth[-1]} comments, req/s over each "
               f"stretch ({s.connections} connections; ours / Isso is the median of the "
               f"{GROWTH_PIECES} paired runs' ratios; ours ends with {final} comments):",
               f"   {'comments':>10} {'ours':>8} {'Isso':>8} {'ours/Isso':>10} "
               f"{'ours p50':>9} {'Isso p50':>9} {'CPU ms/req ours':>16} {'Isso':>6}"]
    worst: float | None = None
    for stretch, results, cpu_ms, ratios in rows:
        mine = results["ours"]
        theirs = results.get("Isso")
        ratio = statistics.median(ratios) if ratios else None
        if ratio is not None:
            worst = ratio if worst is None else min(worst, ratio)
        summary.append(
            f"   {stretch:>10} {mine.rate:8.1f} "
            + (f"{theirs.rate:8.1f} {ratio:10.2f} " if theirs and ratio else f"{'-':>8} {'-':>10} ")
            + f"{mine.median * 1000:7.1f}ms "
            + (f"{theirs.median * 1000:7.1f}ms " if theirs else f"{'-':>9} ")
            + f"{cpu_ms['ours']:16.2f} " + (f"{cpu_ms['Isso']:6.2f}" if theirs else "-")
            + (f"   [runs: {', '.join(f'{value:.2f}' for value in ratios)}]" if ratios else ""))
    if worst is not None:
        summary.append(f"   lowest ours / Isso over the sizes: {worst:.2f}  "
                       f"{verdict(worst, 1.0, at_least=True)}")
    for server in (server for _, server, _ in contenders):
        server.stop()
        servers.remove(server)
    return summary


if __name__ == "__main__":
    sys.exit(main())
