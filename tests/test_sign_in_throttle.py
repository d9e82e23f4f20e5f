"""Failed sign-ins slow the next attempts with growing waits, per client address and per
account, and an attack from elsewhere never locks the author out of their usual address
(issue 20, item 4). The waits are measured on sign_in_guard's clock, which these tests move."""

from __future__ import annotations

import pytest

from comments_service import create_app
from comments_service.moderation import sign_in_guard
from tests.conftest import AUTHOR_EMAIL, AUTHOR_PASSWORD

pytestmark = pytest.mark.both_stores

HOME_ADDRESS = "198.51.100.7"
WRONG = "not the password!"


class Clock:
    def __init__(self, start: float) -> None:
        self.time = start

    def __call__(self) -> float:
        return self.time


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock(sign_in_guard.now())
    monkeypatch.setattr(sign_in_guard, "now", fake)
    return fake


@pytest.fixture
def throttled(service_config):
    app = create_app({**service_config, "SIGN_IN_DELAY_SECONDS": 1,
                      "SIGN_IN_MAX_DELAY_SECONDS": 8,
                      "SIGN_IN_LIMIT_PER_ADDRESS": "1000 per 15 minutes"})
    yield app
    app.extensions["tellmemore.store"].close()


def attempt(auth, app, address: str, password: str):
    return auth.for_app(app).submit(AUTHOR_EMAIL, password, environ={"REMOTE_ADDR": address})


def test_waits_double_with_each_failure_up_to_the_cap(throttled, auth, clock):
    auth.for_app(throttled).add_author()
    waits = []
    for _ in range(6):
        assert attempt(auth, throttled, "192.0.2.1", WRONG).status_code == 401
        refused = attempt(auth, throttled, "192.0.2.1", WRONG)
        assert refused.status_code == 429
        assert "Wait" in refused.get_data(as_text=True)
        waits.append(int(refused.headers["Retry-After"]))
        clock.time += waits[-1]
    assert waits == [1, 2, 4, 8, 8, 8]
    # Waiting out the pause is enough: the right password then opens a session.
    assert attempt(auth, throttled, "192.0.2.1", AUTHOR_PASSWORD).status_code == 303


def test_an_attack_from_elsewhere_never_locks_the_author_out(throttled, auth, clock):
    auth.for_app(throttled).add_author()
    assert attempt(auth, throttled, HOME_ADDRESS, AUTHOR_PASSWORD).status_code == 303
    # Forty guesses from forty addresses, each as soon as the account's wait allows.
    refused = 0
    for n in range(40):
        status = attempt(auth, throttled, f"203.0.113.{n + 1}", WRONG).status_code
        assert status in (401, 429)
        refused += status == 429
        if status == 429:
            clock.time += 8
    assert refused > 0, "the attacker is slowed on the account, whatever the address"
    # The author at home: straight in, with no wait and no lock.
    assert attempt(auth, throttled, HOME_ADDRESS, AUTHOR_PASSWORD).status_code == 303
    # Away from home the account's wait applies, bounded by the cap: never a flat lock.
    away = attempt(auth, throttled, "192.0.2.77", AUTHOR_PASSWORD)
    assert away.status_code in (303, 429)
    if away.status_code == 429:
        assert 0 < int(away.headers["Retry-After"]) <= 8
        clock.time += int(away.headers["Retry-After"])
        assert attempt(auth, throttled, "192.0.2.77", AUTHOR_PASSWORD).status_code == 303


def test_the_usual_addresses_are_kept_as_digests_and_only_the_latest_few(throttled, auth):
    author = auth.for_app(throttled).add_author()
    for n in range(8):
        assert attempt(auth, throttled, f"198.51.100.{n}", AUTHOR_PASSWORD).status_code == 303
    kept = throttled.extensions["tellmemore.store"].get_author(author.id).usual_addresses
    assert len(kept) == sign_in_guard.MAX_USUAL_ADDRESSES
    assert not any("198.51.100" in digest for digest in kept)
