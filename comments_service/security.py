"""Cross-origin access for the site's own pages, security headers, per-client rate limits, and
the proxies trusted to say who the client is."""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from comments_service.config import RATE_LIMIT_OFF

# Imported for its side effect as well: it registers the tellmemore-sqlite:// storage scheme.
from comments_service.store.rate_counts import counts_uri

CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
CORS_HEADERS = "Content-Type, X-Edit-Token, If-None-Match"
CORS_EXPOSED = "ETag, Retry-After, Location"
CORS_MAX_AGE = "600"
NEW_COMMENTS_SCOPE = "new-comments"

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self' {origins}"
)

# Flask-Limiter reads the limit before it asks exempt_when; with RATE_LIMIT off it gets this
# (never applied) instead of "off", which it would log as an error on every request.
UNUSED_LIMIT = "1/second"


def comment_rate_limit() -> str:
    """The configured limit on new comments per client (Flask-Limiter syntax)."""
    return UNUSED_LIMIT if rate_limit_is_off() else current_app.config["RATE_LIMIT"]


def rate_limit_is_off() -> bool:
    return current_app.config["RATE_LIMIT"] == RATE_LIMIT_OFF


def allowed_origin() -> str | None:
    origin = request.headers.get("Origin")
    if origin and origin in current_app.config["SITE_ORIGINS"]:
        return origin
    return None


def answer_preflight() -> Response | None:
    """before_request: answer CORS preflight requests for the API ourselves."""
    if request.method != "OPTIONS" or not request.path.startswith("/api/"):
        return None
    response = current_app.make_response(("", 204))
    if allowed_origin():
        response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    return response


def add_headers(response: Response) -> Response:
    """after_request: CORS for allowed origins and security headers on every response."""
    origin = allowed_origin()
    if origin and request.path.startswith("/api/"):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
    response.vary.add("Origin")
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if response.mimetype == "text/html":
        origins = " ".join(current_app.config["SITE_ORIGINS"])
        headers.setdefault("Content-Security-Policy", PAGE_CSP.format(origins=origins).strip())
    else:
        headers.setdefault("Content-Security-Policy", API_CSP)
    return response


def rate_limit_storage_uri(app: Flask) -> str:
    """RATE_LIMIT_STORAGE_URI, or by default the counters file in the instance folder, which
    every worker (and every instance sharing that folder) counts in: one budget per client
    on the machine, not one per process (store/rate_counts.py)."""
    return app.config["RATE_LIMIT_STORAGE_URI"] or counts_uri(app.instance_path)


def rate_limit_key_prefix(app: Flask) -> str:
    """The prefix of every key this app keeps in its rate-limit storage."""
    return app.config["RATE_LIMIT_KEY_PREFIX"]


def trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES reverse proxies or load balancers, take the client's address,
    scheme, host and path prefix from their X-Forwarded-* headers (werkzeug's ProxyFix): rate
    limits then count readers, not the proxy, and links and Secure cookies follow https. With
    0 (the default) those headers are ignored, so a client cannot forge its address."""
    count = app.config["TRUSTED_PROXIES"]  # checked by config.py
    if count:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_prefix=count
        )


def init_app(app: Flask, limited_endpoints: list[str]) -> None:
    """Install CORS, headers and a limiter of this app's own (no counts shared between apps).

    Call after the blueprints are registered: ``limited_endpoints`` are wrapped in place.
    """
    trust_proxies(app)
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        default_limits=[],
        headers_enabled=True,
        storage_uri=rate_limit_storage_uri(app),
        # Sites that share one Redis keep apart by giving each its own prefix.
        key_prefix=rate_limit_key_prefix(app),
    )
    # One budget per client for every posting route: a shared scope, so that switching
    # between the JSON API and the plain form gains nothing.
    limit = limiter.shared_limit(comment_rate_limit, scope=NEW_COMMENTS_SCOPE,
                                 exempt_when=rate_limit_is_off, methods=["POST"])
    for endpoint in limited_endpoints:
        app.view_functions[endpoint] = limit(app.view_functions[endpoint])
    app.extensions["tellmemore.limiter"] = limiter
    app.before_request(answer_preflight)
    app.after_request(add_headers)
