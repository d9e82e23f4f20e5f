"""The public API under /api/ and the plain-form endpoint. Every route is listed here.

    GET    /api/threads/<thread>            public thread as a tree (ETag / 304)
    POST   /api/threads/<thread>/comments   new comment (JSON) → 201 + edit token
    GET    /threads/<thread>/comments       the plain form (?question= chosen), for no-JS readers
    POST   /threads/<thread>/comments       new comment (HTML form) → 303 back to the article
    GET    /api/counts?thread=…             comment counts of several threads (public, waiting)
    GET    /api/public-export               every article's public thread (for baking pages)
    GET    /api/listening                   the site's public listening figures (listening.py)
    PATCH  /api/comments/<id>               edit one's own comment (X-Edit-Token, 15 minutes)
    DELETE /api/comments/<id>               withdraw one's own comment (same token)
    GET    /api/form-token                  a signed "form shown at" token for the spam check
    GET    /api/openapi.json                the OpenAPI document of all of the above
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request

from comments_service.api.layout import site_layout
from comments_service.api.openapi import openapi_document
from comments_service.comments.posting import (
    edit_reader_comment,
    post_reader_comment,
    withdraw_reader_comment,
)
from comments_service.comments.public import (
    own_comment,
    public_export_document,
    site_listening_figures,
    thread_payload,
)
from comments_service.comments.spam import issue_form_token
from comments_service.comments.validation import ValidationFailed
from comments_service.errors import ApiError
from comments_service.extensions import csrf, manifest, store
from comments_service.listening import footer_fields
from comments_service.manifest import ArticleEntry
from comments_service.models import CommentState

bp = Blueprint("api", __name__)
# The site's pages call the API cross-origin, with no session: CSRF tokens do not apply.
csrf.exempt(bp)

MAX_COUNT_THREADS = 100
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
RECEIVED_ANCHOR = "comment-received"


def article_or_404(thread: str) -> ArticleEntry:
    article = manifest().article(thread)
    if article is None:
        raise ApiError(404, "unknown_thread", f"There is no article {thread!r} on this site.")
    return article


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    if request.mimetype != "application/json":
        raise ApiError(400, "bad_content_type", "Send the comment as application/json.")
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(400, "invalid_utf8", "The request body is not valid UTF-8.") from error
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ApiError(400, "malformed_json", f"The request body is not JSON ({error}).") from error
    except RecursionError as error:
        # json.loads recurses per level: ~1000 nested arrays exhaust the stack (was a 500).
        raise ApiError(400, "malformed_json", "The request body is nested too deeply."
                       ) from error
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "The request body must be a JSON object.")
    if _holds_lone_surrogate(data):
        raise ApiError(400, "invalid_text", "The request body holds a lone surrogate "
                       "(\\ud800-\\udfff escaped alone), which is not text.")
    return data


def _holds_lone_surrogate(data: Any) -> bool:
    """Whether any key or string in ``data`` holds a lone surrogate: JSON's \\ud800 escapes
    decode to one, and no UTF-8 file or database can store it (it was a 500 at the write).
    A loop, not recursion: the data may be nested as deep as json.loads allowed."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if LONE_SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def form_fields() -> dict[str, str]:
    """A urlencoded form body, decoded strictly (invalid UTF-8 is a 400, not mojibake)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise ApiError(
            400, "bad_content_type", "Send the form as application/x-www-form-urlencoded."
        )
    raw = request.get_data(cache=True)
    try:
        parsed = parse_qs(raw.decode("ascii"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as error:
        raise ApiError(400, "invalid_utf8", "The form is not valid UTF-8.") from error
    return {name: values[-1] for name, values in parsed.items()}


# --- reading a thread ------------------------------------------------------------------------


class ThreadCache:
    """Serialised thread responses by (thread, store version, article digest, the site's
    figures), per process."""

    def __init__(self, size: int) -> None:
        self._entries: OrderedDict[str, tuple[str, str, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, thread: str, version: str) -> tuple[str, bytes] | None:
        with self._lock:
            entry = self._entries.get(thread)
            if entry is None or entry[0] != version:
                return None
            self._entries.move_to_end(thread)
            return entry[1], entry[2]

    def put(self, thread: str, version: str, etag: str, body: bytes) -> None:
        with self._lock:
            self._entries[thread] = (version, etag, body)
            self._entries.move_to_end(thread)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


@lru_cache(maxsize=1024)
def article_digest(article: ArticleEntry) -> str:
    text = json.dumps([article.title, article.url, [(q.id, q.text) for q in article.questions]])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@bp.get("/api/threads/<thread>")
def get_thread(thread: str):
    """The public thread as a tree; answers 304 when the reader's copy is current."""
    article = article_or_404(thread)
    cache: ThreadCache = current_app.extensions["tellmemore.thread_cache"]
    # The body carries the site's figures for the footer (listening.footer_fields): they are
    # part of the version, so a cached body, and the reader's ETag, never hold figures older
    # than the minute-old site_figures(); when nothing changed the ETag stays and 304 holds.
    site = footer_fields(site_figures())
    version = (f"{store().thread_version(thread)}|{article_digest(article)}"
               f"|{json.dumps(site, sort_keys=True)}")
    cached = cache.get(thread, version)
    if cached is None:
        body = json.dumps(
            thread_payload(article, store().thread_comments(thread), listening_on(), site),
            ensure_ascii=False
        ).encode()
        etag = hashlib.sha256(body).hexdigest()[:32]
        cache.put(thread, version, etag, body)
    else:
        etag, body = cached
    response = Response(body, mimetype="application/json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = "no-cache"
    return response.make_conditional(request)


@bp.get("/api/counts")
def counts():
    """Public comment counts for up to 100 threads (?thread=a&thread=b); null for unknown."""
    threads = request.args.getlist("thread")
    if not threads:
        raise ApiError(422, "invalid_query", "Name at least one thread.", {"thread": "missing"})
    if len(threads) > MAX_COUNT_THREADS:
        raise ApiError(
            422, "invalid_query", f"At most {MAX_COUNT_THREADS} threads at once.",
            {"thread": "too many"},
        )
    known = [thread for thread in threads if manifest().article(thread) is not None]
    public = store().public_counts(known)
    counts: dict[str, dict[str, int] | None] = {}
    for thread in threads:
        counts[thread] = None if thread not in known else {
            "comments": public.get(thread, 0),
            "waiting": store().count_in_state(CommentState.AWAITING_REPLY, thread=thread),
        }
    return jsonify(counts=counts)


@bp.get("/api/public-export")
def public_export():
    """Every article's public thread, as GET /api/threads/<thread> gives it: what the site's
    build bakes into the pages so they read well without scripts."""
    return jsonify(public_export_document(manifest(), store(), listening_on()))


def listening_on() -> bool:
    """Whether the public listening figures are given (the PUBLIC_LISTENING setting)."""
    return current_app.config["PUBLIC_LISTENING"] == "on"


# Held by the one request that works the site's figures out again (site_figures).
_site_figures_lock = threading.Lock()


def site_figures() -> dict[str, Any] | None:
    """The site's listening figures (listening.py), or None when off or too few comments.

    Worked out at most once every LISTENING_CACHE_SECONDS per process: it reads every
    article's comments, which no thread GET should pay each time. While one request works
    them out, the others of this process keep the value they have rather than all reading
    every article at once; only the first ever waits."""
    kept = current_app.extensions.setdefault("tellmemore.listening", {})
    seconds = current_app.config["LISTENING_CACHE_SECONDS"]
    cached = kept.get("figures")
    if cached is not None and time.monotonic() - cached[0] <= seconds:
        return cached[1]
    if not _site_figures_lock.acquire(blocking=cached is None):
        return cached[1]
    try:
        cached = kept.get("figures")
        now = time.monotonic()  # before reading: the age counts from what was read
        if cached is None or now - cached[0] > seconds:
            figures = site_listening_figures(manifest(), store()) if listening_on() else None
            kept["figures"] = cached = (now, figures)
        return cached[1]
    finally:
        _site_figures_lock.release()


@bp.get("/api/listening")
def listening():
    """The site's listening figures (listening.py), or null, as the footer shows them; the
    widget has the same in each thread payload (footer_fields)."""
    return jsonify(listening=site_figures())


# --- posting -------------------------------------------------------------------------------


@bp.post("/api/threads/<thread>/comments")
def create_comment(thread: str):
    """A new comment from the widget: 201 with the stored comment, its state and edit token."""
    article = article_or_404(thread)
    posted = post_reader_comment(store(), article, json_object(), current_app.config)
    response = jsonify(
        comment=own_comment(posted.comment),
        edit_token=posted.edit_token,
        editable_until=posted.editable_until,
    )
    response.status_code = 201
    response.headers["Location"] = f"/api/comments/{posted.comment.id}"
    return response


def form_page(article: ArticleEntry, values: dict[str, str], fields: dict[str, str],
              status: int = 200) -> Response:
    """The plain comment form in the site's own layout (api/layout.py), with ``values`` filled
    in and the ``fields`` refused marked."""
    # A fresh "form shown at" token only for a new form: a refused one keeps its own, so
    # fixing a field quickly is never taken for a bot's speed.
    token = None if fields else issue_form_token(current_app.config["SECRET_KEY"])
    page = render_template(
        "comment_form.html", article=article, fields=fields, values=values, form_token=token,
        layout=site_layout(str(current_app.config["MANIFEST"])), site=manifest(),
    )
    response = current_app.make_response((page, status))
    # The site's stylesheet and images come from the site's origins.
    origins = " ".join(current_app.config["SITE_ORIGINS"])
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'self' {origins}; img-src 'self' data: {origins}; "
        f"font-src 'self' {origins}; frame-ancestors 'none'; base-uri 'none'; "
        f"form-action 'self' {origins}"
    )
    return response


@bp.get("/threads/<thread>/comments")
def comment_form(thread: str):
    """The plain form on its own page, with ``?question=`` chosen: where "Answer this" leads
    a reader without JavaScript (a static article cannot read its query string)."""
    article = article_or_404(thread)
    question = request.args.get("question", "")
    return form_page(article, {"question": question} if article.question(question) else {}, {})


@bp.post("/threads/<thread>/comments")
def create_comment_from_form(thread: str):
    """A new comment from the plain HTML form: 303 back to the article with a notice."""
    article = article_or_404(thread)
    fields = form_fields()
    try:
        post_reader_comment(store(), article, fields, current_app.config)
    except ValidationFailed as failure:
        return form_page(article, fields, failure.fields, status=422)
    # Only ever back to the article's own address from the manifest: never a URL from the form.
    return redirect(f"{article.url}#{RECEIVED_ANCHOR}", code=303)


# --- one's own comment ------------------------------------------------------------------------


def edit_token(body: dict[str, Any] | None) -> str | None:
    """The edit token from the X-Edit-Token header or the JSON body's ``edit_token``; never
    from the URL, which ends up in access logs and browser histories (a 400 says so)."""
    if any(name in request.args for name in ("token", "edit_token")):
        raise ApiError(400, "token_in_url", "Send the edit token in the X-Edit-Token header "
                       "or the JSON body, never in the URL (URLs end up in logs).")
    header = request.headers.get("X-Edit-Token")
    if header:
        return header
    token = (body or {}).get("edit_token")
    return token if isinstance(token, str) else None


@bp.patch("/api/comments/<comment_id>")
def edit_comment(comment_id: str):
    """Change the body of one's own comment within the edit window (EDIT_WINDOW_MINUTES)."""
    body = json_object()
    updated = edit_reader_comment(
        store(), comment_id, edit_token(body), body, current_app.config
    )
    return jsonify(comment=own_comment(updated))


@bp.delete("/api/comments/<comment_id>")
def withdraw_comment(comment_id: str):
    """Withdraw one's own comment within the edit window (EDIT_WINDOW_MINUTES)."""
    body = json_object() if request.content_length else None
    updated = withdraw_reader_comment(store(), comment_id, edit_token(body), current_app.config)
    return jsonify(comment=own_comment(updated))


@bp.get("/api/form-token")
def form_token():
    """A fresh signed token for the form's timing check."""
    response = jsonify(form_token=issue_form_token(current_app.config["SECRET_KEY"]))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/openapi.json")
def openapi():
    """This API, described as OpenAPI 3.1."""
    return jsonify(openapi_document())
