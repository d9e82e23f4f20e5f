"""Spam checks that never drop a comment: they only decide whether it is stored as spam.

Two cheap signals (SPAM_CHECKS = "on"): a honeypot field that people never see and bots fill
in, and a signed form token saying when the form was handed out, which catches submissions made
faster than a person can type. A comment that trips either is stored in state ``spam`` with its
reasons, out of the queue and never public, for the author to restore.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

HONEYPOT_FIELD = "fax"
FORM_TOKEN_FIELD = "form_token"
FORM_TOKEN_SALT = "tellmemore.form-token"
MAX_LINKS = 8


def issue_form_token(secret_key: str) -> str:
    """A token that records when a comment form was shown."""
    return URLSafeTimedSerializer(secret_key, salt=FORM_TOKEN_SALT).dumps({"t": time.time()})


def spam_reasons(raw: Mapping[str, Any], body: str, secret_key: str,
                 min_seconds: float) -> tuple[str, ...]:
    """Why this submission looks like spam; empty when it does not. A form sent less than
    ``min_seconds`` after its token was issued was not written by a person."""
    reasons: list[str] = []
    honeypot = raw.get(HONEYPOT_FIELD)
    if honeypot not in (None, "", False):
        reasons.append("honeypot")
    token = raw.get(FORM_TOKEN_FIELD)
    if token not in (None, ""):
        # A missing token is not suspicious: a page without scripts has no fresh one.
        try:
            issued = URLSafeTimedSerializer(secret_key, salt=FORM_TOKEN_SALT).loads(str(token))
            issued_at = float(issued["t"])
        except (BadSignature, KeyError, TypeError, ValueError):
            reasons.append("bad_form_token")
        else:
            if time.time() - issued_at < min_seconds:
                reasons.append("too_fast")
    if body.count("http://") + body.count("https://") > MAX_LINKS:
        reasons.append("many_links")
    return tuple(reasons)
