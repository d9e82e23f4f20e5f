"""One app's polling thread in one process: the mail sender (outbox/sender.py) and the reply
worker (inbox/worker.py) are each one.

It starts with the first request the process serves (``ensure_started`` runs before each
request and costs a comparison once running), not in create_app: so commands such as
``flask init`` never start one, and under ``gunicorn --preload`` the master (which forks the
workers after create_app) runs none while each worker starts exactly one of its own. A thread
copied by a fork does not run in the child, so the process id is checked too. It is a daemon
thread; ``stop`` (also run at exit) ends it between two passes.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from flask import Flask

logger = logging.getLogger(__name__)


class PollingThread:
    """Runs :meth:`pass_once` inside an app context every ``poll_setting`` seconds (sooner
    after :meth:`wake`); a pass that fails is logged and the next one tries again."""

    thread_name = "tellmemore-background"
    poll_setting = ""  # the setting that holds the seconds between two passes
    what = "The background thread"  # who failed, in the log

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._exit_hook = False

    def pass_once(self) -> None:
        """One pass of the work, in an app context."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return (self._thread is not None and self._pid == os.getpid()
                and self._thread.is_alive())

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was asked for (a long pass may end early)."""
        return self._stop.is_set()

    def ensure_started(self) -> None:
        if self.running:
            return
        with self._lock:
            if self.running:
                return
            self._pid = os.getpid()
            self._stop = threading.Event()
            self._wake = threading.Event()
            self._thread = threading.Thread(target=self._run, name=self.thread_name,
                                            daemon=True)
            self._thread.start()
            if not self._exit_hook:
                atexit.register(self.stop)
                self._exit_hook = True

    def wake(self) -> None:
        """Make the next pass now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            thread.join(timeout)

    def _run(self) -> None:
        stop, wake = self._stop, self._wake
        poll = float(self.app.config[self.poll_setting])
        while not stop.is_set():
            wake.clear()
            try:
                with self.app.app_context():
                    self.pass_once()
            except Exception:
                logger.exception("%s's pass failed; it tries again in %g s", self.what, poll)
            wake.wait(poll)
