"""Author accounts and sign-in for the moderation pages under /moderate.

    GET  /moderate/sign-in     the sign-in form (a signed-in author is sent on to ``next``)
    POST /moderate/sign-in     email + password → 303 to ``next`` (a local /moderate path only)
    POST /moderate/sign-out    end this session, every copy of its cookie → 303 to sign-in

(`flask … add-author` is cli/authors.py; the ``auth`` blueprint is a child of the moderation
blueprint, moderation/__init__.py.)

What :func:`init_app` installs on an app:

* CSRFProtect (extensions.csrf) for every POST/PUT/PATCH/DELETE except the blueprints that
  exempt themselves (the public API, the mail pages); failures answer 400 ``csrf_failed``
  through errors.error_response;
* the session cookie ``tellmemore_session``: HttpOnly, SameSite=Lax, Secure whenever the
  request came over https (or SESSION_COOKIE_SECURE), lasting SESSION_LIFETIME_HOURS;
* ``g.current_author`` (and ``current_author`` in templates), loaded from the store on each
  request under /moderate: an author removed from the store, or whose password changed, or
  whose sign-in is older than SESSION_LIFETIME_HOURS, or whose session was signed out (this
  one: ``ended_sessions``; all: ``session_version``, account.py), is signed out;
* a guard that refuses anonymous requests to every /moderate route but the sign-in form and
  sign-out, as :func:`login_required` does (a second line behind the decorator);
* failed sign-ins answered with growing waits per client address and per account, never a
  flat lock of the account, and the author's usual addresses exempt from the account's wait
  (sign_in_guard.py); an address past SIGN_IN_LIMIT_PER_ADDRESS failures gets 429.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from werkzeug.routing import BuildError
from werkzeug.security import check_password_hash, generate_password_hash

from comments_service.errors import error_response, wants_html
from comments_service.extensions import csrf, store
from comments_service.models import Author, utc_now
from comments_service.moderation import sign_in_guard as guard
from comments_service.security import rate_limit_key_prefix

bp = Blueprint("auth", __name__)

AUTHOR_AREA = "/moderate"
SIGN_IN_TEMPLATE = "moderation/sign_in.html"
LIMITER_EXTENSION = "tellmemore.limiter"
FAILURES_EXTENSION = "tellmemore.sign_in_failures"

FLASK_DEFAULT_COOKIE_NAME = "session"
SESSION_COOKIE_NAME = "tellmemore_session"

# Session keys.
AUTHOR_ID = "author_id"
SESSION_NONCE = "session_nonce"  # random per sign-in: no two sign-ins share a session value
SIGNED_IN_AT = "signed_in_at"  # seconds since the epoch; sign-ins older than the lifetime end
PASSWORD_CHECK = "password_check"  # ties the session to the password it was opened with
SESSION_VERSION = "session_version"  # the author's session_version when it was opened
# Past this many signed-out sessions still within their lifetime, the next sign-out ends every
# session instead (the list stays small; ending more than asked is the safe side).
MAX_ENDED_SESSIONS = 100

WRONG_CREDENTIALS = "Email or password is wrong."
MISSING_CREDENTIALS = "Enter your email and password."
TOO_MANY_FAILURES = "Too many failed sign-ins. Wait a few minutes, then try again."
TOO_SOON = "Too many failed sign-ins just now. Wait {seconds} seconds, then try again."
SIGN_IN_REQUIRED = "Sign in first (your sign-in may have ended), then try that again."
CSRF_FAILED = (
    "This form has expired or was not sent from this site's own page ({reason}). "
    "Reload the page and try again."
)

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 100
MAX_EMAIL_LENGTH = 254
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")

_dummy_hash_lock = threading.Lock()
_dummy_hash: str | None = None

View = TypeVar("View", bound=Callable[..., Any])


# --- who is signed in -------------------------------------------------------------------------


def current_author() -> Author | None:
    """The signed-in author of this request, or None (loaded once per request)."""
    if "current_author" not in g:
        g.current_author = _load_author()
    return g.current_author


def _password_check(author: Author) -> str:
    """A keyed digest of the author's password hash: changes when the password does."""
    key = str(current_app.secret_key).encode()
    return hmac.new(key, author.password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def _load_author() -> Author | None:
    author_id = session.get(AUTHOR_ID)
    if not author_id:
        return None
    author = store().get_author(str(author_id))
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    signed_in_at = session.get(SIGNED_IN_AT)
    if (
        author is None
        or not session.get(SESSION_NONCE)
        or not isinstance(signed_in_at, int | float)
        or time.time() - signed_in_at > lifetime
        or not hmac.compare_digest(str(session.get(PASSWORD_CHECK, "")), _password_check(author))
        or session.get(SESSION_VERSION, 0) != author.session_version
        or _session_mark(signed_in_at, str(session.get(SESSION_NONCE))) in author.ended_sessions
    ):
        session.clear()
        flash("Your sign-in has ended. Please sign in again.", "info")
        return None
    return author


def start_session(author: Author) -> None:
    """Sign in: a brand-new session (no value from before survives, CSRF token included)."""
    session.clear()
    session.permanent = True
    session[AUTHOR_ID] = author.id
    session[SESSION_NONCE] = secrets.token_urlsafe(16)
    session[SIGNED_IN_AT] = int(time.time())
    session[PASSWORD_CHECK] = _password_check(author)
    session[SESSION_VERSION] = author.session_version
    g.current_author = author


def _session_mark(signed_in_at: Any, nonce: str) -> str:
    """How a signed-out session is remembered on its author: its start (to prune by) and a
    digest of its nonce (the store never holds a session value itself)."""
    digest = hashlib.sha256(nonce.encode("utf-8", "replace")).hexdigest()[:24]
    return f"{int(signed_in_at)}:{digest}"


def end_every_session(author: Author) -> Author:
    """``author`` with every session ended (for update_author): sign out everywhere, a new
    password."""
    return replace(author, session_version=author.session_version + 1, ended_sessions=())


def _end_this_session() -> None:
    """Remember on the author that this session is over, so that every copy of its cookie is
    signed out too (the cookie is signed, not stored: clearing this browser's copy alone would
    leave a copied one working until it expires)."""
    author_id, signed_in_at = session.get(AUTHOR_ID), session.get(SIGNED_IN_AT)
    if current_author() is None or not isinstance(signed_in_at, int | float):
        return
    mark = _session_mark(signed_in_at, str(session.get(SESSION_NONCE)))
    oldest = time.time() - current_app.permanent_session_lifetime.total_seconds()

    def end(author: Author) -> Author:
        live = [kept for kept in author.ended_sessions if int(kept.split(":")[0]) >= oldest]
        if len(live) >= MAX_ENDED_SESSIONS:
            return end_every_session(author)
        return replace(author, ended_sessions=(*live, mark))

    store().update_author(str(author_id), end)


def in_author_area() -> bool:
    return request.path == AUTHOR_AREA or request.path.startswith(AUTHOR_AREA + "/")


def _load_for_author_area() -> None:
    """before_request: g.current_author for every page under /moderate."""
    if in_author_area():
        current_author()
    else:
        g.setdefault("current_author", None)


def _template_context() -> dict[str, Any]:
    return {"current_author": g.get("current_author")}


# --- refusing anonymous requests --------------------------------------------------------------


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a local path under /moderate, else None (no open redirects)."""
    if not target or len(target) > 2000:
        return None
    if "\\" in target or any(ord(char) < 33 or ord(char) == 127 for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    if parts.path != AUTHOR_AREA and not parts.path.startswith(AUTHOR_AREA + "/"):
        return None
    # Browsers resolve "." and ".." (also written %2e) before asking: /moderate/../x is /x.
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        return None
    return target


def _here() -> str:
    query = request.query_string.decode("latin-1")
    return f"{request.path}?{query}" if query else request.path


def _referring_page() -> str | None:
    """The /moderate page a form was sent from (same host only), to come back to."""
    parts = urlsplit(request.referrer or "")
    if parts.netloc != request.host:
        return None
    return safe_next(f"{parts.path}?{parts.query}" if parts.query else parts.path)


def _refusal() -> Response | tuple[Response, int] | tuple[str, int]:
    """What an anonymous request gets: GET/HEAD → 302 to sign-in; anything else → 401, for a
    browser as the sign-in form (sending it leads back to the page the form was on)."""
    if request.method in ("GET", "HEAD"):
        return redirect(url_for("moderation.auth.sign_in", next=safe_next(_here())), code=302)
    if wants_html():
        return _sign_in_page(SIGN_IN_REQUIRED, 401, next_path=_referring_page())
    return error_response(401, "sign_in_required", SIGN_IN_REQUIRED)


def login_required(view: View) -> View:
    """Let only a signed-in author in; anonymous GET → sign-in page, anonymous POST → 401."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_author() is None:
            return _refusal()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


OPEN_ENDPOINTS = frozenset({"moderation.auth.sign_in", "moderation.auth.sign_out"})


def _guard_author_area() -> Response | tuple[Response, int] | None:
    """before_request: the same refusal for any /moderate route a decorator was left off."""
    if (
        in_author_area()
        and request.endpoint is not None
        and request.endpoint not in OPEN_ENDPOINTS
        and current_author() is None
    ):
        return _refusal()
    return None


def _private_pages(response: Response) -> Response:
    """after_request: no cache may keep an author's page (or a page with a CSRF token)."""
    if in_author_area():
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _home() -> str:
    try:
        return url_for("moderation.queue.index")
    except BuildError:
        return AUTHOR_AREA + "/"


# --- the password check ---------------------------------------------------------------------


def _dummy_password_hash() -> str:
    """A hash to check unknown emails against, so they cost what a wrong password does."""
    global _dummy_hash
    with _dummy_hash_lock:
        if _dummy_hash is None:
            _dummy_hash = generate_password_hash(secrets.token_urlsafe(16))
        return _dummy_hash


def _password_matches(author: Author | None, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        password = password[:MAX_PASSWORD_LENGTH]  # still hashed: same cost, never a match
        author = None
    if author is None:
        check_password_hash(_dummy_password_hash(), password)
        return False
    return check_password_hash(author.password_hash, password)


# --- the pages ------------------------------------------------------------------------------------


def _sign_in_page(
    error: str | None, status: int, email: str = "", next_path: str | None = None,
    *, invalid: bool = False,
) -> tuple[str, int]:
    """The form; ``invalid`` marks the fields themselves as the problem."""
    page = render_template(
        SIGN_IN_TEMPLATE, error=error, email=email, next=next_path, invalid=invalid
    )
    return page, status


def _requested_next() -> str | None:
    return safe_next(request.form.get("next") or request.args.get("next"))


def _attempt_sign_in():
    """The sign-in form and its POST, behind the waits and limits of sign_in_guard.py."""
    next_path = _requested_next()
    if request.method != "POST":
        if current_author() is not None:
            return redirect(next_path or _home(), code=303)
        return _sign_in_page(None, 200, next_path=next_path)
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    if not email or not password:
        return _sign_in_page(MISSING_CREDENTIALS, 400, email, next_path, invalid=True)
    failures: guard.FailureLog = current_app.extensions[FAILURES_EXTENSION]
    locked = guard.address_lock_left(failures)
    if locked > 0:
        return _too_soon(locked, TOO_MANY_FAILURES, email, next_path)
    author = store().author_by_email(email) if len(email) <= MAX_EMAIL_LENGTH else None
    wait = guard.wait_before_checking(failures, email, author)
    if wait > 0:
        return _too_soon(wait, TOO_SOON, email, next_path)
    if not _password_matches(author, password):
        guard.record_failure(failures, email)
        return _sign_in_page(WRONG_CREDENTIALS, 401, email, next_path, invalid=True)
    assert author is not None
    guard.record_success(failures, email)
    start_session(store().update_author(author.id, guard.remember_address))
    return redirect(next_path or _home(), code=303)


def _too_soon(wait: float, message: str, email: str, next_path: str | None):
    """429 with Retry-After: recent failures of this address (or of this account, from an
    address its author does not usually sign in from) ask for a pause first."""
    seconds = max(1, math.ceil(wait))
    message = message.format(seconds=seconds)
    if wants_html():
        response = current_app.make_response(_sign_in_page(message, 429, email, next_path))
    else:
        response, _status = error_response(429, "too_many_requests", message)
        response.status_code = 429
    response.headers["Retry-After"] = str(seconds)
    return response


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    return _attempt_sign_in()


@bp.post("/sign-out")
def sign_out():
    _end_this_session()
    session.clear()
    g.current_author = None
    flash("You are signed out.", "info")
    return redirect(url_for("moderation.auth.sign_in"), code=303)


def _csrf_failed(error: CSRFError):
    message = CSRF_FAILED.format(reason=(error.description or "no token").rstrip("."))
    if request.endpoint == "moderation.auth.sign_in" and wants_html() and current_author() is None:
        # A fresh form (with a fresh token) is the most useful answer here.
        return _sign_in_page(message, 400, request.form.get("email", "").strip(),
                             _requested_next())
    return error_response(400, "csrf_failed", message)


# --- the session cookie -----------------------------------------------------------------------


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie Secure whenever the request was https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config["SESSION_COOKIE_SECURE"]:
            return True
        return has_request_context() and request.is_secure


def _configure_sessions(app: Flask) -> None:
    hours = app.config["SESSION_LIFETIME_HOURS"]  # checked by config.py
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=hours)
    if app.config["SESSION_COOKIE_NAME"] == FLASK_DEFAULT_COOKIE_NAME:
        app.config["SESSION_COOKIE_NAME"] = SESSION_COOKIE_NAME
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config.get("SESSION_COOKIE_SAMESITE") not in ("Lax", "Strict"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = SessionInterface()


# --- the add-author command -------------------------------------------------------------------


def author_problems(name: str, email: str, password: str) -> list[str]:
    """What is wrong with a new author's details (empty when nothing)."""
    problems = []
    if not name.strip():
        problems.append("The name must not be blank.")
    elif len(name.strip()) > MAX_NAME_LENGTH or any(ord(char) < 32 for char in name):
        problems.append(f"The name must be one line of at most {MAX_NAME_LENGTH} characters.")
    if len(email.strip()) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.fullmatch(email.strip()):
        problems.append(f"{email.strip()!r} is not an email address.")
    return problems + password_problems(password)


def password_problems(password: str) -> list[str]:
    """What is wrong with a new password (empty when nothing)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return [f"The password must have at least {MIN_PASSWORD_LENGTH} characters."]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [f"The password must have at most {MAX_PASSWORD_LENGTH} characters."]
    return []


def new_author(name: str, email: str, password: str) -> Author:
    """An Author with a fresh id and the password hashed (werkzeug's default, scrypt)."""
    return Author(
        id=secrets.token_urlsafe(9),
        name=name.strip(),
        email=email.strip(),
        password_hash=generate_password_hash(password),
        created=utc_now(),
    )


# --- installing -------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Install sign-in on ``app``; see the module docstring. Call once per app."""
    _configure_sessions(app)
    app.extensions[FAILURES_EXTENSION] = guard.FailureLog(
        lambda: app.extensions[LIMITER_EXTENSION].storage, rate_limit_key_prefix(app)
    )
    csrf.init_app(app)
    app.register_error_handler(CSRFError, _csrf_failed)
    app.before_request(_load_for_author_area)
    app.before_request(_guard_author_area)
    app.after_request(_private_pages)
    app.context_processor(_template_context)
