"""Real servers for tests: the comment service under gunicorn on a free loopback port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A loopback port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_environment(folder: Path, **settings: str) -> dict[str, str]:
    """This process's environment without TELLMEMORE_* variables, plus a private instance and
    store under ``folder`` and the given settings (names without the prefix)."""
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("TELLMEMORE_")}
    environment.update({
        "TELLMEMORE_INSTANCE_PATH": str(folder / "instance"),
        "TELLMEMORE_STORE_PATH": str(folder / "store"),
        "TELLMEMORE_SECRET_KEY": "test-service-secret",
    })
    environment.update({f"TELLMEMORE_{name}": value for name, value in settings.items()})
    return environment


def wait_for_json(url: str, process: subprocess.Popen, log: Path, seconds: float = 30) -> dict:
    """The JSON at ``url`` once the server answers 200; fails with the server's log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return json.load(response)
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise AssertionError(f"{url} did not answer:\n{log.read_text()}")


def stop_group(process: subprocess.Popen) -> None:
    """Stop a server started in its own session, with all its workers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def running_service(
    folder: Path, environment: dict[str, str], *, workers: int = 2, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """gunicorn -w ``workers`` serving the comment service; yields (base URL, process)."""
    port = port or free_port()
    log = folder / f"gunicorn-{port}.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
             "comments_service.wsgi:app"],
            cwd=folder, env=environment, stdout=log_file, stderr=log_file,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_json(f"{url}/healthz", process, log)
        yield url, process
    finally:
        stop_group(process)
