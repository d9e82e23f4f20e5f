"""Running a command's pass again and again (``--loop``) until a service manager stops it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def until_stopped(one_pass: Callable[[threading.Event], object], seconds: float) -> None:
    """Run ``one_pass(stop)`` every ``seconds`` until SIGTERM or Ctrl+C: a service manager
    stops the loop with SIGTERM, and the pass in progress ends first (a pass may read
    ``stop`` to end sooner)."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_args: stop.set())
    try:
        while not stop.is_set():
            one_pass(stop)
            stop.wait(seconds)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
