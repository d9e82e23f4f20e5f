"""The public pages behind the links in mail: unsubscribe and confirm an address.

    GET  /unsubscribe/<token>   a page saying what the button does, with the button (a POST)
    POST /unsubscribe/<token>   unsubscribe: no confirmation asked (RFC 8058 one-click: mail
                                programs POST "List-Unsubscribe=One-Click" to this URL)
    GET  /confirm/<token>       a page with a button to confirm the address (double opt-in)
    POST /confirm/<token>       confirm it; its held notifications are released

A GET never changes anything: mail scanners and link previews open links. The POSTs are
exempt from CSRFProtect (a mail program's one-click POST carries no form token, and the person
has no session here): the signed token in the URL is the proof instead. It is made with
SECRET_KEY and a salt of its own (tokens.py), so a page elsewhere can only post to the link of
an address whose mail it has already seen, and all it can do is what that mail offers.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, render_template

from comments_service.extensions import csrf, manifest, store
from comments_service.mail.addresses import mask_address
from comments_service.mail.links import site_name
from comments_service.mail.notify import confirm_address, unsubscribe_address
from comments_service.mail.tokens import address_of_confirm_token, address_of_unsubscribe_token
from comments_service.manifest import ManifestError

bp = Blueprint("unsubscribe", __name__)


def _site_name() -> str:
    # Not manifest_or_none(): a reader stopping mail while the manifest is broken is no warning.
    try:
        return site_name(manifest())
    except ManifestError:
        return site_name(None)


def _page(template: str, status: int = 200, **context: object) -> Response:
    response = current_app.make_response(
        (render_template(template, site_name=_site_name(), **context), status))
    # The token in the URL must not leak to another site, nor stay in a cache.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _invalid() -> Response:
    return _page("notify/invalid_link.html", 404)


@bp.get("/unsubscribe/<token>")
def unsubscribe_form(token: str) -> Response:
    address = address_of_unsubscribe_token(current_app.config["SECRET_KEY"], token)
    if address is None:
        return _invalid()
    record = store().get_mail_address(address)
    return _page("notify/unsubscribe.html", address=mask_address(address),
                 done=record is not None and bool(record.unsubscribed_at))


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> Response:
    address = address_of_unsubscribe_token(current_app.config["SECRET_KEY"], token)
    if address is None:
        return _invalid()
    unsubscribe_address(store(), address)
    return _page("notify/unsubscribe.html", address=mask_address(address), done=True)


@bp.get("/confirm/<token>")
def confirm_form(token: str) -> Response:
    address = address_of_confirm_token(current_app.config["SECRET_KEY"], token)
    if address is None:
        return _invalid()
    record = store().get_mail_address(address)
    return _page("notify/confirm.html", address=mask_address(address),
                 unsubscribed=record is not None and bool(record.unsubscribed_at),
                 done=record is not None and bool(record.confirmed_at), released=None)


@bp.post("/confirm/<token>")
def confirm(token: str) -> Response:
    address = address_of_confirm_token(current_app.config["SECRET_KEY"], token)
    if address is None:
        return _invalid()
    record, released = confirm_address(store(), address)
    return _page("notify/confirm.html", address=mask_address(address),
                 unsubscribed=bool(record.unsubscribed_at), done=True, released=released)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    csrf.exempt(bp)

