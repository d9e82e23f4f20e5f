"""A small closed-loop HTTP load generator for the benchmarks in this folder.

Each connection is its own process (so the client is not held back by one GIL) that sends one
request, reads the whole response, and sends the next, with ``http.client`` reusing the
connection whenever the server keeps it open (gunicorn's sync workers close it after every
response, so there every request pays for a new TCP connection, as with any client).

A run stops after ``max_requests`` requests in all or after ``max_seconds``, whichever comes
first; requests already sent when time runs out are still awaited. Loopback addresses only.
"""

from __future__ import annotations

import http.client
import ipaddress
import multiprocessing
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CONNECT_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Plan:
    """What to send. Request number n (counted over the whole run) goes to
    ``paths[n % len(paths)]`` with ``body`` in which every ``{n}`` is replaced by n."""

    method: str
    paths: tuple[str, ...]
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expected: tuple[int, ...] = (200,)

    def request(self, number: int) -> tuple[str, bytes | None]:
        path = self.paths[number % len(self.paths)]
        if self.body is None:
            return path, None
        return path, self.body.replace("{n}", str(number)).encode("utf-8")


@dataclass
class Result:
    """What a run measured. Latencies are in seconds, from sending to the last byte read."""

    requests: int
    seconds: float
    latencies: list[float]
    statuses: Counter[int]
    errors: int
    unexpected: int
    client_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """The latency below which ``fraction`` of the requests finished (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(1, round(fraction * len(ordered)))
        return ordered[min(rank, len(ordered)) - 1]

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")

    @property
    def client_cpu_share(self) -> float:
        """Client CPU seconds per wall-clock second (1.0 = one core busy)."""
        return self.client_cpu_seconds / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        codes = ", ".join(f"{code}: {count}" for code, count in sorted(self.statuses.items()))
        return (
            f"{self.rate:8.1f} req/s  p50 {self.median * 1000:7.1f} ms  "
            f"p95 {self.percentile(0.95) * 1000:7.1f} ms  ({self.requests} requests in "
            f"{self.seconds:.1f} s; status {codes or 'none'}; unexpected {self.unexpected}; "
            f"connection errors {self.errors}; client CPU {self.client_cpu_share:.2f} cores)"
        )


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host} is not a loopback address; this client only loads loopback")


def _worker(
    host: str, port: int, plan: Plan, max_seconds: float, max_requests: int,
    counter: Any, barrier: Any, results: Any,
) -> None:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    first_start: float | None = None
    last_end: float | None = None
    headers = dict(plan.headers)
    connection = http.client.HTTPConnection(host, port, timeout=CONNECT_TIMEOUT_SECONDS)
    barrier.wait()
    cpu_before = os.times()
    deadline = time.perf_counter() + max_seconds
    try:
        while True:
            with counter.get_lock():
                number = counter.value
                if number >= max_requests:
                    break
                counter.value = number + 1
            path, body = plan.request(number)
            started = time.perf_counter()
            if started >= deadline:
                break
            if first_start is None:
                first_start = started
            try:
                connection.request(plan.method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                last_end = time.perf_counter()
                continue
            last_end = time.perf_counter()
            latencies.append(last_end - started)
            statuses[response.status] += 1
    finally:
        connection.close()
        cpu_after = os.times()
        cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        results.put((latencies, dict(statuses), errors, first_start, last_end, cpu))


def run(
    port: int | Sequence[int], plan: Plan, *, connections: int = 8, max_requests: int = 10_000,
    max_seconds: float = 10.0, host: str = "127.0.0.1",
) -> Result:
    """Load ``host:port`` with ``connections`` concurrent connections; see the module doc.
    Given several ports (instances behind no load balancer), connection i goes to port
    i mod len(ports), so the connections are spread evenly."""
    _check_loopback(host)
    ports = [port] if isinstance(port, int) else list(port)
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    barrier = context.Barrier(connections)
    results = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(host, ports[number % len(ports)], plan, max_seconds, max_requests, counter,
                  barrier, results),
            daemon=True,
        )
        for number in range(connections)
    ]
    for worker in workers:
        worker.start()
    collected = []
    try:
        # Generous: the slowest request still running at the deadline is awaited.
        wait_until = time.monotonic() + max_seconds + CONNECT_TIMEOUT_SECONDS + 30
        for _ in workers:
            collected.append(results.get(timeout=max(1.0, wait_until - time.monotonic())))
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()
                worker.join()
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0
    cpu = 0.0
    starts: list[float] = []
    ends: list[float] = []
    for worker_latencies, worker_statuses, worker_errors, start, end, worker_cpu in collected:
        latencies.extend(worker_latencies)
        statuses.update(worker_statuses)
        errors += worker_errors
        cpu += worker_cpu
        if start is not None and end is not None:
            starts.append(start)
            ends.append(end)
    seconds = (max(ends) - min(starts)) if starts else 0.0
    unexpected = sum(count for code, count in statuses.items() if code not in plan.expected)
    return Result(
        requests=len(latencies), seconds=seconds, latencies=latencies, statuses=statuses,
        errors=errors, unexpected=unexpected, client_cpu_seconds=cpu,
    )


def request_once(
    port: int, method: str, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None, host: str = "127.0.0.1", timeout: float = 120.0,
) -> tuple[int, bytes, float]:
    """One request on a fresh connection: (status, body, seconds taken)."""
    _check_loopback(host)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        started = time.perf_counter()
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
        return response.status, payload, time.perf_counter() - started
    finally:
        connection.close()
