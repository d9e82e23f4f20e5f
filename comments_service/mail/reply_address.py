"""Reply addresses that say which comment a mail answers and cannot be forged (replies by email).

A notification to the author is sent with ``Reply-To: replies+<token>@example.org``, where
``replies@example.org`` is REPLY_MAIL_ADDRESS and the token is

    <kind><value in base32><"."><HMAC-SHA256 of kind and value under SECRET_KEY, 15 bytes, base32>

all lower case, because some mail systems change the case of an address's local part. Kinds:
``c`` (the value is a comment id: the reply answers that comment) and ``h`` (the value is the
key of a held reply: the author's "yes" sends it anyway). 120 bits of MAC cannot be guessed
through a mailbox, and the local part stays within RFC 5321's 64 characters for the service's
own comment ids. The token never expires: whether the comment still waits decides.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from email.utils import getaddresses
from typing import Any

REPLY_SALT = b"tellmemore.reply-by-mail"
COMMENT = "c"
HELD = "h"
KINDS = (COMMENT, HELD)
MAC_BYTES = 15  # 24 base32 characters, no padding bits (so no second spelling)
MAX_VALUE_BYTES = 64


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    padded = text.upper() + "=" * (-len(text) % 8)
    return base64.b32decode(padded)


def _mac(secret_key: str, kind: str, value: bytes) -> bytes:
    message = REPLY_SALT + b"\0" + kind.encode("ascii") + b"\0" + value
    return hmac.new(secret_key.encode("utf-8"), message, hashlib.sha256).digest()[:MAC_BYTES]


def _value_bytes(kind: str, value: str) -> bytes:
    return bytes.fromhex(value) if kind == HELD else value.encode("utf-8")


def reply_token(secret_key: str, kind: str, value: str) -> str:
    """The signed token for ``value`` (a comment id, or a held reply's hex key)."""
    if kind not in KINDS:
        raise ValueError(f"Unknown reply token kind {kind!r}")
    data = _value_bytes(kind, value)
    return f"{kind}{_b32(data)}.{_b32(_mac(secret_key, kind, data))}"


def read_reply_token(secret_key: str, token: str) -> tuple[str, str] | None:
    """(kind, value) of a genuine token; None when it is malformed or its MAC is wrong."""
    token = token.strip().lower()
    kind, encoded, mac = token[:1], *token[1:].partition(".")[::2]
    if kind not in KINDS or not encoded or not mac or len(encoded) > 2 * MAX_VALUE_BYTES:
        return None
    try:
        data = _unb32(encoded)
    except (binascii.Error, ValueError):
        return None
    # Compared as text in the one spelling reply_token writes, so no other spelling passes.
    if _b32(data) != encoded or not hmac.compare_digest(
            mac, _b32(_mac(secret_key, kind, data))):
        return None
    try:
        return kind, (data.hex() if kind == HELD else data.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def reply_address(config: Mapping[str, Any], kind: str, value: str) -> str | None:
    """replies+<token>@domain for REPLY_MAIL_ADDRESS; None when replies by email are off."""
    base = str(config.get("REPLY_MAIL_ADDRESS") or "")
    if not config.get("REPLY_MAIL_IMAP_URL") or "@" not in base:
        return None
    local, _, domain = base.rpartition("@")
    return f"{local}+{reply_token(str(config['SECRET_KEY']), kind, value)}@{domain}"


def tokens_addressed(config: Mapping[str, Any], header_values: Iterable[str]) -> list[str]:
    """The tokens of every address among ``header_values`` (To, Cc, Delivered-To…) of the
    form <REPLY_MAIL_ADDRESS's local part>+<token>@<its domain> (case-insensitive)."""
    base = str(config.get("REPLY_MAIL_ADDRESS") or "").casefold()
    local, _, domain = base.rpartition("@")
    found = []
    for _name, address in getaddresses(list(header_values)):
        mine, _, theirs = address.casefold().rpartition("@")
        if theirs == domain and mine.startswith(f"{local}+"):
            found.append(mine[len(local) + 1:])
    return list(dict.fromkeys(found))
