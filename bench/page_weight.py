"""Page weight of an article with 20 comments: tellmemore vs a Pelican page with Isso's embed.

A real browser (Debian's Chromium driven by Playwright, headless, a fresh context and so an
empty cache for every page) loads each page from loopback servers, waits until all 20 comments
are on screen and the network has been quiet for a second, and counts every request the page
made and every byte it received (response headers + body as sent, from Playwright's
``request.sizes()``). Compared:

* ours: the sample site built with this theme and plugins, comments baked into the page from a
  public export and then loaded live by the widget (static/js/tellmemore.js) from our service
  (gunicorn), which holds the same 20 comments;
* Isso: the same content built by vanilla Pelican (no plugins, theme "notmyidea") with Isso's
  embed inserted before </body> as Isso's docs show, Isso 0.14 under gunicorn holding the same
  20 comments (12 top-level, 8 replies; 6 of the replies by the author).

CORS preflights (OPTIONS), which Playwright does not report, are taken from the DevTools
protocol and counted as requests of type "other" (Isso's XHRs send Content-Type:
application/json, so each of its API calls is preceded by one; our widget's GET needs none).
Chromium's own /favicon.ico request is not counted (it is the browser's, not the page's, and
is made once per origin, during an unrecorded warm-up load of each page).

Both sites are served by Python's http.server from the built folders. No server here
compresses (the run checks for Content-Encoding and says so), so next to the raw bytes a second
column gives what a compressing production server would send: headers as sent plus the gzip
(level 6) size of each text body (HTML, CSS, JS, JSON, SVG, XML) where that is smaller, plus a
"Content-Encoding: gzip" header line. Fonts and raster images count as sent.

Target: ours / Isso of total bytes < 1 (raw; the gzip column is printed as well). For context
the vanilla article without any comment machinery, and ours with scripts turned off (baked
comments only), are loaded too.

    .venv/bin/python bench/page_weight.py [--isso-venv DIR] [--chromium PATH]

Isso is installed into its own cached virtualenv when missing (see bench/api_vs_isso.py).
Everything runs on 127.0.0.1; temporary folders and every server started are removed and
stopped at the end, also on errors, Ctrl-C and SIGTERM. Takes about 15 s. Exit status 0 when
the target is met, 1 when missed, 2 when the run could not measure.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _http_load as load
from api_vs_isso import (
    HOST,
    JSON_HEADERS,
    Server,
    comment_text,
    default_isso_venv,
    ensure_isso,
    isso_config,
    log,
    ours_env,
    serving,
)

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
ARTICLE_PATH = "/2026/reply-to-every-comment/"
AUTHOR = "Ada Listener"
TOP_LEVEL = 12
# Replies, in the order they were written: (top-level comment number they answer, by author?).
REPLIES = [(1, True), (2, True), (1, False), (3, True), (5, True), (5, False), (7, True),
           (9, True)]
TOTAL = TOP_LEVEL + len(REPLIES)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
CATEGORIES = ["html", "css", "js", "json/api", "fonts/images", "other"]
GZIP_LEVEL = 6
GZIP_HEADER = len(b"Content-Encoding: gzip\r\n")
COMPRESSIBLE = ("text/", "json", "javascript", "xml", "svg")
PAGE_TIMEOUT_MS = 30_000
QUIET_SECONDS = 1.0


# --- the comments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    number: int  # 1..TOTAL, also the order they were written in
    name: str
    text: str
    parent: int | None  # number of the comment answered
    by_author: bool


def conversation() -> list[Entry]:
    entries = [Entry(number, f"Reader {number}", comment_text(number), None, False)
               for number in range(1, TOP_LEVEL + 1)]
    for offset, (parent, by_author) in enumerate(REPLIES, start=TOP_LEVEL + 1):
        name = AUTHOR if by_author else f"Reader {offset}"
        entries.append(Entry(offset, name, comment_text(offset), parent, by_author))
    return entries


def created_at(number: int) -> str:
    return f"2026-09-01T{number // 60:02d}:{number % 60:02d}:00+00:00"


def ours_records(thread: str) -> list[dict[str, Any]]:
    """The conversation as records of a tellmemore export (`flask import`)."""
    entries = conversation()
    answered = {entry.parent: entry.number for entry in entries if entry.by_author}
    records = []
    for entry in entries:
        if entry.by_author:
            state, replied_at = "posted", None
        elif entry.number in answered:
            state, replied_at = "replied", created_at(answered[entry.number])
        else:
            state, replied_at = "awaiting_reply", None
        records.append({
            "id": f"pw{entry.number:04d}", "thread": thread, "name": entry.name,
            "body": entry.text, "html": f"<p>{html.escape(entry.text)}</p>",
            "created": created_at(entry.number), "state": state, "public": True,
            "parent": f"pw{entry.parent:04d}" if entry.parent else None, "question": None,
            "email": None, "website": None, "is_author": entry.by_author, "notify": False,
            "replied_at": replied_at, "edited_at": None, "request": None, "reader_key": None,
            "spam_reasons": [],
        })
    return records


# --- servers -----------------------------------------------------------------------------------


class QuietFiles(SimpleHTTPRequestHandler):
    """Static files as http.server serves them (no compression), without a log line each."""

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def static_site(folder: Path) -> contextlib.AbstractContextManager[int]:
    return serving(functools.partial(QuietFiles, directory=str(folder)))


def pelican(output: Path, settings: dict[str, str]) -> None:
    # One -e with every pair: Pelican keeps only the last -e flag it is given.
    pairs = [f"{key}={value}" for key, value in settings.items()]
    done = subprocess.run(
        [sys.executable, "-m", "pelican", "content", "-s", "pelicanconf.py", "-o", str(output),
         "--fatal", "errors", "-e", *pairs],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pelican failed:\n{(done.stdout + done.stderr)[-1500:]}")


def flask(env: dict[str, str], *arguments: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "comments_service", *arguments],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask {arguments[0]} failed:\n{(done.stdout + done.stderr)[-1500:]}")
    return (done.stdout + done.stderr).strip()


def article_thread(manifest: Path) -> str:
    document = json.loads(manifest.read_text(encoding="utf-8"))
    for article in document["articles"]:
        if article["url"].endswith(ARTICLE_PATH):
            return article["thread"]
    raise RuntimeError(f"{ARTICLE_PATH} is not in {manifest}")


def prepare_ours(tmp: Path, site: Path, site_port: int, servers: list[Server]) -> str:
    """Store, public export, service and final build of our site; returns the thread key."""
    site_url = f"http://{HOST}:{site_port}"
    # A first build only for the manifest: the service and the export need to know the articles.
    pelican(site, {"SITEURL": json.dumps(site_url), "COMMENTS_EXPORT": "null"})
    manifest = site / "comments-manifest.json"
    thread = article_thread(manifest)

    folder = tmp / "service"
    folder.mkdir()
    env = ours_env(folder)
    env["TELLMEMORE_MANIFEST"] = str(manifest)
    env["TELLMEMORE_SITE_ORIGINS"] = site_url
    prefill = folder / "prefill.json"
    prefill.write_text(json.dumps({
        "format": "tellmemore-export", "version": 1,
        "exported_at": "2026-09-02T00:00:00+00:00", "comments": ours_records(thread),
    }), encoding="utf-8")
    log(f"  {flask(env, 'import', str(prefill))}")
    export = tmp / "public-export.json"
    log(f"  {flask(env, 'export-public', '-o', str(export))}")
    baked = json.loads(export.read_text(encoding="utf-8"))["threads"][thread]["count"]
    if baked != TOTAL:
        raise RuntimeError(f"the public export has {baked} comments in {thread}, not {TOTAL}")

    service = Server("our comment service", [str(VENV_BIN / "gunicorn"),
                                             "comments_service.wsgi:app"],
                     env, folder / "gunicorn.log", cwd=ROOT)
    servers.append(service)
    service.wait_ready("/healthz", timeout=60)
    status, body, _ = load.request_once(service.port, "GET", f"/api/threads/{thread}")
    if status != 200 or json.loads(body)["count"] != TOTAL:
        raise RuntimeError(f"our service answers {status} for {thread}: {body[:200]!r}")

    pelican(site, {
        "SITEURL": json.dumps(site_url),
        "COMMENTS_SERVICE_URL": json.dumps(f"http://{HOST}:{service.port}"),
        "COMMENTS_EXPORT": json.dumps(str(export)),
    })
    page = (site / ARTICLE_PATH.strip("/") / "index.html").read_text(encoding="utf-8")
    if f"http://{HOST}:{service.port}" not in page or page.count('class="comment') < TOTAL:
        raise RuntimeError("the built article lacks the service URL or the baked comments")
    return thread


def prepare_isso(tmp: Path, site: Path, site_port: int, venv: Path,
                 servers: list[Server]) -> None:
    """Vanilla Pelican build with Isso's embed, and Isso holding the same conversation."""
    # Pelican's default direct templates: notmyidea has no comments_layout, which
    # pelicanconf.py lists for our theme's form page.
    pelican(site, {"SITEURL": json.dumps(f"http://{HOST}:{site_port}"), "PLUGINS": "[]",
                   "THEME": '"notmyidea"',
                   "DIRECT_TEMPLATES": '["index", "tags", "categories", "authors", "archives"]'})
    folder = tmp / "isso"
    folder.mkdir()
    isso = Server("Isso", [str(venv / "bin" / "gunicorn"), "isso.run:application"],
                  dict(os.environ, ISSO_SETTINGS=str(isso_config(folder, site_port))),
                  folder / "gunicorn.log", cwd=folder)
    servers.append(isso)
    isso.wait_ready("/config", timeout=60)

    article = site / ARTICLE_PATH.strip("/") / "index.html"
    page = article.read_text(encoding="utf-8")
    # The article alone, for context (same folder, so its relative links still work).
    (article.parent / "plain.html").write_text(page, encoding="utf-8")
    endpoint = f"http://{HOST}:{isso.port}/"
    embed = (f'<script data-isso="{endpoint}" src="{endpoint}js/embed.min.js"></script>'
             f'<section id="isso-thread" data-isso-id="{ARTICLE_PATH}"></section>\n')
    at = page.rfind("</body>")
    if at < 0:
        raise RuntimeError(f"no </body> in {article}")
    article.write_text(page[:at] + embed + page[at:], encoding="utf-8")

    # One at a time: the first POST makes Isso fetch the page for the thread's title.
    ids: dict[int, int] = {}
    for entry in conversation():
        body = {"text": entry.text, "author": entry.name, "email": None, "website": None,
                "parent": ids[entry.parent] if entry.parent else None}
        status, answer, _ = load.request_once(
            isso.port, "POST", f"/new?uri={ARTICLE_PATH}", json.dumps(body).encode(),
            JSON_HEADERS)
        if status != 201:
            raise RuntimeError(f"Isso answered {status} to comment {entry.number}: "
                               f"{answer[:300]!r}\n{isso.log_tail()}")
        ids[entry.number] = json.loads(answer)["id"]


# --- measuring in the browser --------------------------------------------------------------------


@dataclass
class Fetch:
    url: str
    method: str
    category: str
    status: int | None
    content_type: str
    encoding: str
    header_bytes: int
    body_bytes: int
    gzip_bytes: int  # what a compressing server would send: headers + gzip body

    @property
    def raw(self) -> int:
        return self.header_bytes + self.body_bytes


@dataclass
class Load:
    label: str
    fetches: list[Fetch] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    devtools_bytes: int = 0  # CDP encodedDataLength of every request, for a cross-check
    seconds: float = 0.0
    comments: int = 0

    def total(self, attribute: str, category: str | None = None) -> int:
        return sum(getattr(fetch, attribute) for fetch in self.fetches
                   if category is None or fetch.category == category)

    def count(self, category: str | None = None) -> int:
        return sum(1 for fetch in self.fetches if category is None or fetch.category == category)


def category_of(resource_type: str, content_type: str) -> str:
    if resource_type == "document":
        return "html"
    if resource_type == "stylesheet":
        return "css"
    if resource_type == "script":
        return "js"
    if resource_type in ("fetch", "xhr"):
        return "json/api"
    if resource_type in ("font", "image") or content_type.startswith(("font/", "image/")):
        return "fonts/images"
    return "other"


def gzip_equivalent(header_bytes: int, body: bytes, content_type: str, encoding: str) -> int:
    if encoding or not any(marker in content_type for marker in COMPRESSIBLE):
        return header_bytes + len(body)
    packed = len(gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0))
    if packed + GZIP_HEADER >= len(body):
        return header_bytes + len(body)
    return header_bytes + packed + GZIP_HEADER


class Tracker:
    """Requests of one page: Playwright's view (sizes, bodies), and the DevTools protocol's,
    which also sees CORS preflights (Playwright does not report them)."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.inflight: set[Any] = set()
        self.failed: list[str] = []
        self.last_event = time.monotonic()
        self.cdp_bytes: dict[str, int] = {}  # requestId -> bytes received, headers included
        self.preflights: dict[str, tuple[str, int]] = {}  # requestId -> (url, status)

    def started(self, request: Any) -> None:
        self.requests.append(request)
        self.inflight.add(request)
        self.last_event = time.monotonic()

    def finished(self, request: Any) -> None:
        self.inflight.discard(request)
        self.last_event = time.monotonic()

    def failed_request(self, request: Any) -> None:
        self.finished(request)
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def cdp_count(self, request_id: str, length: float) -> None:
        # A preflight's loadingFinished says 0: its bytes are those of responseReceived.
        self.cdp_bytes[request_id] = max(self.cdp_bytes.get(request_id, 0), int(length))
        self.last_event = time.monotonic()

    def cdp_received(self, event: dict[str, Any]) -> None:
        response = event["response"]
        if event.get("type") == "Preflight":
            self.preflights[event["requestId"]] = (response["url"], response["status"])
        self.cdp_count(event["requestId"], response.get("encodedDataLength", 0))

    def cdp_finished(self, event: dict[str, Any]) -> None:
        self.cdp_count(event["requestId"], event.get("encodedDataLength", 0))

    def settle(self, page: Any, deadline: float) -> None:
        """Until nothing is in flight and nothing happened for QUIET_SECONDS."""
        while time.monotonic() < deadline:
            if not self.inflight and time.monotonic() - self.last_event >= QUIET_SECONDS:
                return
            page.wait_for_timeout(100)
        raise RuntimeError(f"the network did not go quiet; in flight: "
                           f"{[request.url for request in self.inflight]}")


def measure(browser: Any, label: str, url: str, ready: str | None, count: str | None,
            scripts: bool = True) -> Load:
    """Load ``url`` in a fresh context; ``ready`` is a JS expression true once rendered and
    ``count`` one giving the number of comments shown."""
    context = browser.new_context(java_script_enabled=scripts)
    result = Load(label)
    try:
        page = context.new_page()
        tracker = Tracker()
        page.on("request", tracker.started)
        page.on("requestfinished", tracker.finished)
        page.on("requestfailed", tracker.failed_request)
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"page error: {error}"))
        cdp = context.new_cdp_session(page)
        cdp.on("Network.responseReceived", tracker.cdp_received)
        cdp.on("Network.loadingFinished", tracker.cdp_finished)
        cdp.send("Network.enable")
        started = time.monotonic()
        page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        if ready:
            try:
                page.wait_for_function(ready, timeout=PAGE_TIMEOUT_MS)
            except PlaywrightError as error:
                shown = page.evaluate(count) if count else "?"
                raise RuntimeError(
                    f"{label}: not rendered ({error.message.splitlines()[0]}); comments shown:"
                    f" {shown}; requests: {[short_url(r.url) for r in tracker.requests]}; "
                    f"failed: {tracker.failed}; console: {console[-5:]}") from None
        tracker.settle(page, started + PAGE_TIMEOUT_MS / 1000)
        result.seconds = tracker.last_event - started
        result.comments = page.evaluate(count) if count else 0
        for request in tracker.requests:
            response = request.response()
            if response is None or request in tracker.inflight:
                continue
            sizes = request.sizes()
            headers = response.headers
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            encoding = headers.get("content-encoding", "")
            header_bytes = sizes["responseHeadersSize"]
            try:
                body = response.body()
                gzip_bytes = gzip_equivalent(header_bytes, body, content_type, encoding)
            except PlaywrightError:  # a body Chromium did not keep: counted as sent
                gzip_bytes = header_bytes + sizes["responseBodySize"]
            result.fetches.append(Fetch(
                url=request.url, method=request.method,
                category=category_of(request.resource_type, content_type),
                status=response.status, content_type=content_type, encoding=encoding,
                header_bytes=header_bytes, body_bytes=sizes["responseBodySize"],
                gzip_bytes=gzip_bytes,
            ))
        for request_id, (url, status) in tracker.preflights.items():
            length = tracker.cdp_bytes.get(request_id, 0)
            result.fetches.append(Fetch(
                url=url, method="OPTIONS", category="other", status=status,
                content_type="(CORS preflight)", encoding="", header_bytes=length, body_bytes=0,
                gzip_bytes=length))
        result.failed = tracker.failed
        result.devtools_bytes = sum(tracker.cdp_bytes.values())
        cdp.detach()
    finally:
        context.close()
    return result


# --- report ------------------------------------------------------------------------------------


def short_url(url: str) -> str:
    return url.replace(f"http://{HOST}:", ":")


def print_table(loads: list[Load]) -> None:
    head = f"{'':<13}" + "".join(f"| {item.label:^27} " for item in loads)
    sub = f"{'type':<13}" + "| requests     raw B  gzip B " * len(loads)
    log(head)
    log(sub)
    log("-" * len(sub))
    for category in [*CATEGORIES, None]:
        name = category or "total"
        if category is None:
            log("-" * len(sub))
        cells = "".join(
            f"| {item.count(category):>8} {item.total('raw', category):>9} "
            f"{item.total('gzip_bytes', category):>7} " for item in loads)
        log(f"{name:<13}{cells}")


def print_requests(item: Load) -> None:
    log(f"{item.label}: {item.count()} requests, {item.total('raw')} B "
        f"({item.total('gzip_bytes')} B gzip-equivalent), last network event "
        f"{item.seconds:.2f} s after navigation started")
    for fetch in item.fetches:
        log(f"  {fetch.category:<12} {fetch.status} {fetch.method:<4} {fetch.raw:>7} B "
            f"(headers {fetch.header_bytes:>4}) {fetch.gzip_bytes:>7} B gz  "
            f"{fetch.content_type:<24} {short_url(fetch.url)}")
    for failure in item.failed:
        log(f"  FAILED {failure}")


def report(ours: Load, isso: Load, context: list[Load]) -> bool:
    log("")
    log("== Page weight of the article with 20 comments (fresh browser context, empty cache) " +
        "=" * 10)
    print_table([ours, isso])
    raw_ratio = ours.total("raw") / isso.total("raw")
    gzip_ratio = ours.total("gzip_bytes") / isso.total("gzip_bytes")
    met = raw_ratio < 1
    log("")
    log(f"ours / Isso, total bytes: {raw_ratio:.2f} raw, {gzip_ratio:.2f} gzip-equivalent  "
        f"{'met' if met else 'MISSED'} (target < 1 on raw bytes)")
    log(f"ours / Isso, requests: {ours.count()} / {isso.count()}")
    log(f"Cross-check, DevTools encodedDataLength totals: ours {ours.devtools_bytes} B, Isso "
        f"{isso.devtools_bytes} B")
    log(f"Comments on screen when measured: ours {ours.comments}, Isso {isso.comments}")
    log("")
    log("For context (same servers, same browser):")
    print_table(context)
    alone, baked_only = context
    log(f"Isso's embed adds {isso.total('raw') - alone.total('raw')} B raw "
        f"({isso.total('gzip_bytes') - alone.total('gzip_bytes')} B gzip) and "
        f"{isso.count() - alone.count()} requests to the vanilla article; our widget and its API "
        f"call add {ours.total('raw') - baked_only.total('raw')} B raw "
        f"({ours.total('gzip_bytes') - baked_only.total('gzip_bytes')} B gzip) and "
        f"{ours.count() - baked_only.count()} requests to our page, which already shows the 20 "
        "comments (baked) and the form without scripts.")
    log("")
    log("Requests:")
    for item in [ours, isso, *context]:
        print_requests(item)
    return met


def compression_note(loads: list[Load]) -> str:
    encoded = sorted({f"{short_url(fetch.url)} ({fetch.encoding})" for item in loads
                      for fetch in item.fetches if fetch.encoding})
    if not encoded:
        return ("Compression: none of the servers (http.server for both sites, gunicorn for our"
                " service and Isso) compressed any response; 'gzip B' is computed here: headers "
                f"as sent + gzip level {GZIP_LEVEL} of text bodies + a Content-Encoding line.")
    return "Compressed on the wire: " + ", ".join(encoded)


# --- main --------------------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path, servers: list[Server]) -> int:
    ours_site = tmp / "ours"
    isso_site = tmp / "isso-site"
    ours_site.mkdir()
    isso_site.mkdir()
    with static_site(ours_site) as ours_port, static_site(isso_site) as isso_port:
        log("Ours: build, import 20 comments, public export, service, build with them baked ...")
        prepare_ours(tmp, ours_site, ours_port, servers)
        log("Isso: vanilla Pelican build with the embed, Isso, POST the same 20 comments ...")
        prepare_isso(tmp, isso_site, isso_port, args.isso_venv, servers)

        ours_url = f"http://{HOST}:{ours_port}{ARTICLE_PATH}"
        isso_url = f"http://{HOST}:{isso_port}{ARTICLE_PATH}"
        ours_count = "document.querySelectorAll('#comment-list li.comment').length"
        ours_ready = (f"document.getElementById('comments').dataset.state === 'live' && "
                      f"{ours_count} === {TOTAL}")
        isso_count = "document.querySelectorAll(\"#isso-thread .isso-comment[id^='isso-']\").length"
        log("Loading the pages in Chromium ...")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, headless=True,
                                                 args=CHROMIUM_ARGS)
            try:
                # A first load of each, not recorded: servers warm, same conditions for both.
                measure(browser, "warm-up", ours_url, ours_ready, ours_count)
                measure(browser, "warm-up", isso_url, f"{isso_count} === {TOTAL}", isso_count)
                ours = measure(browser, "ours", ours_url, ours_ready, ours_count)
                isso = measure(browser, "Isso", isso_url, f"{isso_count} === {TOTAL}",
                               isso_count)
                context = [
                    measure(browser, "article alone (notmyidea)",
                            f"http://{HOST}:{isso_port}{ARTICLE_PATH}plain.html", None, None),
                    measure(browser, "ours, scripts off", ours_url, None, ours_count,
                            scripts=False),
                ]
            finally:
                browser.close()
    log(compression_note([ours, isso, *context]))
    met = report(ours, isso, context)
    external = [fetch.url for item in [ours, isso, *context] for fetch in item.fetches
                if not fetch.url.startswith(f"http://{HOST}:")]
    if external or ours.failed or isso.failed:
        log(f"PROBLEM: requests off loopback {external} or failed requests (see above)")
        return 2
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isso-venv", type=Path, default=default_isso_venv(),
                        help="virtualenv for Isso 0.14 (created when missing; default %(default)s)")
    parser.add_argument("--chromium", default="/usr/bin/chromium",
                        help="the Chromium binary (default %(default)s)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    # A plain `kill` must still stop the servers (they run in their own sessions).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if not Path(args.chromium).exists():
        log(f"No Chromium at {args.chromium} (apt-get install chromium, or --chromium PATH)")
        return 2
    version, note = ensure_isso(args.isso_venv)
    if version is None:
        log(f"Isso is not available: {note}")
        return 2
    log(f"Isso {version}: {note}")
    tmp = Path(tempfile.mkdtemp(prefix="tellmemore-page-weight-"))
    servers: list[Server] = []
    try:
        status = run(args, tmp, servers)
    except KeyboardInterrupt:
        log("Interrupted.")
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError, PlaywrightError) as error:
        log(f"FAILED: {error}")
        for server in servers:
            log(f"--- {server.name} log:\n{server.log_tail()}")
        return 2
    finally:
        while servers:
            servers.pop().stop()
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"Total time {time.monotonic() - started:.0f} s.")
    return status


if __name__ == "__main__":
    sys.exit(main())
