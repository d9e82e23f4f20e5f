"""Timing one comment POST through a Flask test client, and the 95th percentile of a list of
timings: shared by the benches that compare kinds of POST side by side in one process."""

from __future__ import annotations

import time
from typing import Any

from flask.testing import FlaskClient


def post_ms(client: FlaskClient, payload: dict[str, Any], thread: str = "hello") -> float:
    """Milliseconds one POST of ``payload`` takes, answer included (it must be stored: 201)."""
    started = time.perf_counter()
    response = client.post(f"/api/threads/{thread}/comments", json=payload)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 201, response.get_json()
    return elapsed


def p95(samples: list[float]) -> float:
    """The 95th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
