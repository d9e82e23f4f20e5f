"""What happens to a comment, announced to whoever listens (blinker, the signal library Flask
itself uses; Pelican's plugins work the same way).

A feature that reacts to a stored comment or reply subscribes a module-level function (blinker
keeps weak references) instead of being called by the code that stores it:

    comment_stored    sender: the store; comment=   a reader's comment was stored (any state)
    reply_stored      sender: the store; comment=, reply=   the author's reply was stored

The comment is stored before anyone hears of it, and :func:`announce` calls every receiver
even when one of them fails: a receiver's failure is logged and never loses the comment.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from blinker import Namespace, Signal

logger = logging.getLogger(__name__)

_events = Namespace()
comment_stored = _events.signal("comment-stored")
reply_stored = _events.signal("reply-stored")

_running = threading.local()


def running_receiver() -> str | None:
    """The name of the receiver this thread is running now, or None (tests use it to tell
    a receiver's logged errors from others)."""
    return getattr(_running, "name", None)


@contextmanager
def _running_as(name: str) -> Iterator[None]:
    outer = running_receiver()
    _running.name = name
    try:
        yield
    finally:
        _running.name = outer


def announce(signal: Signal, sender: Any, **data: Any) -> None:
    """Call every receiver of ``signal`` for ``sender`` with ``data``; one that raises is
    logged and the others still run."""
    for receiver in signal.receivers_for(sender):
        name = f"{getattr(receiver, '__module__', '?')}.{getattr(receiver, '__qualname__', '?')}"
        with _running_as(name):
            try:
                receiver(sender, **data)
            except Exception:
                logger.exception("%s failed on %s; the comment is stored all the same",
                                 name, signal.name)
