"""The signed tokens in the links mail carries, and the links themselves: unsubscribe (never
expires, so an old mail's link keeps working) and confirm an address (double opt-in, works as
long as a held message waits for it). Each kind has a salt of its own, so one kind of token is
never accepted as the other."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from comments_service.mail.addresses import is_mail_address
from comments_service.mail.links import service_link
from comments_service.outbox.queue import HELD_DAYS

UNSUBSCRIBE_SALT = "tellmemore.unsubscribe"
CONFIRM_SALT = "tellmemore.confirm-address"
UNSUBSCRIBE_ENDPOINT = "unsubscribe.unsubscribe"
CONFIRM_ENDPOINT = "unsubscribe.confirm"
CONFIRM_LINK_DAYS = HELD_DAYS  # a confirmation link works as long as a message is held


def unsubscribe_token(secret_key: str, address: str) -> str:
    """Signed, never expires: an unsubscribe link in an old mail must keep working."""
    return URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT).dumps(address.casefold())


def address_of_unsubscribe_token(secret_key: str, token: str) -> str | None:
    """The address an unsubscribe link was made for; None when forged."""
    try:
        address = URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT).loads(token)
    except BadSignature:
        return None
    return address if is_mail_address(address) else None


def confirm_token(secret_key: str, address: str) -> str:
    """Signed and dated: it stops working after CONFIRM_LINK_DAYS."""
    return URLSafeTimedSerializer(secret_key, salt=CONFIRM_SALT).dumps(address.casefold())


def address_of_confirm_token(secret_key: str, token: str) -> str | None:
    """The address a confirmation link was made for; None when forged or too old."""
    try:
        address = URLSafeTimedSerializer(secret_key, salt=CONFIRM_SALT).loads(
            token, max_age=CONFIRM_LINK_DAYS * 86400)
    except (SignatureExpired, BadSignature):
        return None
    return address if is_mail_address(address) else None


def unsubscribe_link(base: str, secret_key: str, address: str) -> str:
    """The absolute unsubscribe link for an address (mail/pages.py serves it)."""
    return service_link(base, UNSUBSCRIBE_ENDPOINT, token=unsubscribe_token(secret_key, address))


def confirm_link(base: str, secret_key: str, address: str) -> str:
    """The absolute confirmation link for an address (mail/pages.py serves it)."""
    return service_link(base, CONFIRM_ENDPOINT, token=confirm_token(secret_key, address))
