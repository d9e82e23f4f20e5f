"""Grouping on store: each reader's comment goes to a request group as it is stored, and, with
the model, a regroup runs by itself now and then to settle the groups.

- **On store** (:func:`comment_stored`, a receiver of signals.comment_stored): a reader's
  comment (not spam, not the author's) goes to the nearest group or starts one; a comment that
  asks for nothing gets no group. The comment's ``request`` field names its group.
- **One grouper per process, one lock for all** (state.py): each assignment takes the store's
  tally lock, brings this process's grouper in step with the log, assigns, appends one line and
  lets go; every ``TALLY_FOLD_EVERY`` records the log is folded into a new snapshot. So the
  cost of one assignment is the grouper's (centroids only, never stored comments) plus one
  appended line: it does not grow with the store. A reader's POST waits at most
  ``TALLY_LOCK_TIMEOUT_SECONDS`` for the lock; past that the comment is stored without a group
  until the next ``regroup``.
- **Group ids** are ``<generation>-<n>``: ``n`` is the grouper's own group number and the
  generation grows with each regroup, so ids of different regroups never mix.
- **Settling by itself**: with the model, a regroup (regrouping.py) runs in a background thread
  every ``TALLY_SETTLE_AFTER`` comments once ``TALLY_SETTLE_INTERVAL`` seconds have passed
  (:class:`_Settler`).

The embedder: ``TALLY_EMBEDDER`` = ``auto`` (the default: the sentence model when it is
installed, as ``make install`` does, else words), ``model`` or ``lexical``. Assignment runs in
the web workers; the model (run on numpy by encoder.py) costs ~0.5 s to load and ~180 MB in each
worker that assigns, then ~12 ms per new text (vectors are kept in the store, vectors.py): the
price of suggestions that meet issue 18's targets (docs/TALLY.md), where words do not. The
stored state names its embedder and is always used with it: the setting decides when the
state is first made and at each ``regroup``.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app, has_app_context

from comments_service import signals
from comments_service.config import DEFAULTS
from comments_service.models import Comment, parse_time, utc_now
from comments_service.tally.grouper import MAX_CHARS, request_topic
from comments_service.tally.groups import TallyStore, is_reader_request_candidate, resolve
from comments_service.tally.regrouping import regroup
from comments_service.tally.state import ProcessGrouper, fold, in_step

logger = logging.getLogger(__name__)



def _setting(name: str) -> Any:
    """A TALLY_* setting of the running app; its default outside the service (scripts,
    benches)."""
    return current_app.config[name] if has_app_context() else DEFAULTS[name]


# --- assignment on store ----------------------------------------------------------------------


def assign_comment(store: TallyStore, comment: Comment) -> str | None:
    """Put one stored comment in a group and record it on the comment; returns the group id,
    or None (it asks for nothing, does not count, has a group already, or the tally stayed
    locked longer than TALLY_LOCK_TIMEOUT_SECONDS)."""
    timeout = _setting("TALLY_LOCK_TIMEOUT_SECONDS")
    if not is_reader_request_candidate(comment) or comment.request is not None:
        return None
    if request_topic(comment.body, comment.question) is None:
        return None  # asks for nothing: no group, and no need to wait for the lock
    with store.request_tally(timeout=timeout) as tally:
        if tally is None:
            logger.warning("The request tally is busy (a regroup?); comment %s gets its group "
                           "at the next regroup", comment.id)
            return None
        current = in_step(store, tally)
        group = current.grouper.assign(comment.body, comment.question)
        if group is None:
            return None
        current.position = tally.append({
            "comment": comment.id, "text": comment.body[:MAX_CHARS],
            "question": comment.question, "group": group,
        })
        current.log_id = tally.log_id
        current.unfolded += 1
        current.since_settled += 1
        policy = SettlePolicy.configured()
        due = _settle_due(current, policy)
        if current.unfolded >= _setting("TALLY_FOLD_EVERY"):
            fold(tally, current)
        group_id = f"{current.generation}-{group}"
    group_id = resolve(store.request_groups(), group_id)

    def apply(stored: Comment) -> Comment:
        if stored.request is not None or stored.request_filed:
            return stored  # placed already, or the author filed it meanwhile
        return replace(stored, request=group_id)

    store.update_comment(comment.id, apply)
    if due:
        settler.start(store, policy)
    return group_id


# --- settling on its own, off the request path ----------------------------------------------

@dataclass(frozen=True)
class SettlePolicy:
    """When a regroup is due by itself (the TALLY_SETTLE_* settings)."""

    after: int  # comments assigned one at a time since the last regroup; 0: never
    interval: int  # seconds since the last regroup
    # How long the settle thread waits for the tally lock (it runs outside the app context).
    lock_timeout: float = 0.0

    @classmethod
    def configured(cls) -> SettlePolicy:
        """The running app's policy; never automatic outside the service (scripts, the CLI's
        own regroup)."""
        if not has_app_context():
            return cls(0, 0)
        return cls(current_app.config["TALLY_SETTLE_AFTER"],
                   current_app.config["TALLY_SETTLE_INTERVAL"],
                   current_app.config["TALLY_LOCK_TIMEOUT_SECONDS"])


def _settle_due(current: ProcessGrouper, policy: SettlePolicy) -> bool:
    """A regroup is due when the embedder's vectors can be settled (the model's), at least
    ``policy.after`` comments were assigned one at a time since the last one, and the last one
    is at least ``policy.interval`` seconds old."""
    if policy.after <= 0 or current.since_settled < policy.after:
        return False
    if getattr(current.grouper.embedder, "settle_calibration", None) is None:
        return False
    if current.settled is None:
        return True
    age = (parse_time(utc_now()) - parse_time(current.settled)).total_seconds()
    return age >= policy.interval


class _Settler:
    """Runs a due regroup in a background thread of this process, one at a time. The thread
    looks again under the tally lock first: another process may have settled meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    @property
    def running(self) -> bool:
        return (self._thread is not None and self._pid == os.getpid()
                and self._thread.is_alive())

    def start(self, store: TallyStore, policy: SettlePolicy) -> None:
        with self._lock:
            if self.running:
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, args=(store, policy),
                                            name="tellmemore-settle", daemon=True)
            self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            thread.join(timeout)

    @staticmethod
    def _run(store: TallyStore, policy: SettlePolicy) -> None:
        try:
            with store.request_tally(timeout=policy.lock_timeout) as tally:
                if tally is None:
                    return  # a regroup is running: it is the settle
                current = in_step(store, tally)
                embedder = current.grouper.embedder.name
                if not _settle_due(current, policy):
                    return
            result = regroup(store, embedder)
            logger.info("Settled the requests: %s comments in %s groups", result.grouped,
                        result.groups)
        except Exception:
            logger.exception("Settling the requests failed; the next grouped comment tries "
                             "again")


settler = _Settler()


def comment_stored(store: TallyStore, comment: Comment) -> None:
    """Hook after a reader's comment is stored (posting.py): group it. Never raises."""
    try:
        assign_comment(store, comment)
    except Exception:
        logger.exception("Could not group comment %s", comment.id)


def subscribe() -> None:
    """Group every reader comment as it is stored."""
    signals.comment_stored.connect(comment_stored)
