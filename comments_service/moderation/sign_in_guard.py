"""Throttling failed sign-ins without letting strangers lock the author out.

Two things are counted, in the app's rate-limit storage (so every worker and, with a shared
RATE_LIMIT_STORAGE_URI, every instance sees them): failures per client address and failures
per account (the email tried, hashed). After the n-th recent failure of a key, the next
attempt for that key must wait SIGN_IN_DELAY_SECONDS * 2^(n-1), at most
SIGN_IN_MAX_DELAY_SECONDS; an attempt that comes sooner gets 429 with Retry-After and no
password check. The request is refused at once rather than made to sleep, so that waiting
attempts never hold a worker.

The account's wait does not apply to the author's usual addresses (digests of the last few
addresses they signed in from, kept on the author): an attack on the account from elsewhere
slows the attacker but never the author at home. There is no flat lock of an account: from an
unfamiliar address the wait is bounded by SIGN_IN_MAX_DELAY_SECONDS. A client address is also
refused outright past SIGN_IN_LIMIT_PER_ADDRESS failures (auth.py, Flask-Limiter): that locks
out an attacker's address, not an account.

Flask-Limiter is not used here: it would add its own Retry-After (the limit's whole window)
to every answer of the route, success included.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import limits
from flask import current_app
from flask_limiter.util import get_remote_address

from comments_service.models import Author

FAILURE_WINDOW_SECONDS = 15 * 60
# Kept apart from Flask-Limiter's own keys in the same storage.
FAILURES_KEY = "sign-in-failures"
LAST_FAILURE_KEY = "sign-in-last-failure"
MAX_USUAL_ADDRESSES = 5


def now() -> float:
    """The clock the waits are measured by (tests move it)."""
    return time.time()


class FailureLog:
    """Recent failed sign-ins per key and the time of the latest, as two counters of the
    rate-limit storage (its only operations are counters: the time is kept as a count of
    milliseconds). A key's counts last FAILURE_WINDOW_SECONDS from its first failure."""

    def __init__(self, storage: Callable[[], Any], key_prefix: str,
                 window: float = FAILURE_WINDOW_SECONDS) -> None:
        self._storage, self._window = storage, window
        self._counts = f"{key_prefix}/{FAILURES_KEY}/"
        self._latest = f"{key_prefix}/{LAST_FAILURE_KEY}/"

    def count(self, key: str) -> int:
        return int(self._storage().get(self._counts + key) or 0)

    def add(self, key: str) -> None:
        storage = self._storage()
        storage.incr(self._counts + key, self._window)
        storage.clear(self._latest + key)
        storage.incr(self._latest + key, self._window, amount=int(now() * 1000))

    def add_within(self, key: str, window: float) -> None:
        """Count a failure in a window of its own (a limit's)."""
        self._storage().incr(self._counts + key, window)

    def expires_in(self, key: str) -> float:
        """Seconds until ``key``'s count runs out (the storage's own clock)."""
        return max(0.0, float(self._storage().get_expiry(self._counts + key)) - time.time())

    def forget(self, key: str) -> None:
        self._storage().clear(self._counts + key)
        self._storage().clear(self._latest + key)

    def wait_left(self, key: str, step: float, cap: float) -> float:
        """Seconds before the next attempt for ``key`` may be checked (0: now)."""
        failures = self.count(key)
        if failures == 0 or step <= 0:
            return 0.0
        latest = int(self._storage().get(self._latest + key) or 0) / 1000
        wait = min(step * 2 ** min(failures - 1, 30), cap)
        return max(0.0, latest + wait - now())


def address_key() -> str:
    return "sign-in-address:" + (get_remote_address() or "unknown")


def email_key(email: str) -> str:
    # Hashed: the counters (memory, files or Redis) keep neither addresses nor long strings.
    digest = hashlib.sha256(email.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]
    return "sign-in-email:" + digest


def _address_digest() -> str:
    key = str(current_app.secret_key).encode()
    address = (get_remote_address() or "unknown").encode()
    return hmac.new(key, b"usual-address:" + address, hashlib.sha256).hexdigest()[:24]


def from_usual_address(author: Author | None) -> bool:
    """Whether this request comes from an address ``author`` signed in from lately."""
    return author is not None and _address_digest() in author.usual_addresses


def remember_address(author: Author) -> Author:
    """``author`` (for update_author) with this request's address as the latest usual one."""
    digest = _address_digest()
    kept = [known for known in author.usual_addresses if known != digest]
    return replace(author, usual_addresses=(*kept, digest)[-MAX_USUAL_ADDRESSES:])


def wait_before_checking(failures: FailureLog, email: str, author: Author | None) -> float:
    """Seconds this attempt must still wait (0: check the password now)."""
    step = float(current_app.config["SIGN_IN_DELAY_SECONDS"])
    cap = float(current_app.config["SIGN_IN_MAX_DELAY_SECONDS"])
    keys = [address_key()]
    if not from_usual_address(author):
        keys.append(email_key(email))
    return max(failures.wait_left(key, step, cap) for key in keys)


def _address_limit() -> limits.RateLimitItem:
    return limits.parse(current_app.config["SIGN_IN_LIMIT_PER_ADDRESS"])


def address_lock_left(failures: FailureLog) -> float:
    """Seconds this client address stays refused (past SIGN_IN_LIMIT_PER_ADDRESS failures)."""
    key = "limit:" + address_key()
    if failures.count(key) < _address_limit().amount:
        return 0.0
    return max(failures.expires_in(key), 1.0)


def record_failure(failures: FailureLog, email: str) -> None:
    failures.add(address_key())
    failures.add(email_key(email))
    failures.add_within("limit:" + address_key(), _address_limit().get_expiry())


def record_success(failures: FailureLog, email: str) -> None:
    """The waits end with a success; the address's count towards its limit stays."""
    failures.forget(address_key())
    failures.forget(email_key(email))

