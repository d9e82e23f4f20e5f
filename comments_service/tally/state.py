"""This process's grouper, kept in step with the tally state in the store.

The grouper's state lives in the store: a snapshot plus an append-only log of assignments
(``RequestStore.request_tally``). Each process keeps one grouper per store object and, while
it holds the tally lock, replays the records other processes appended since it last looked
(cheap: a few lines). The snapshot is re-read only when another process folded the log into a
new one or a regroup replaced it. A snapshot also carries the generation (the first part of
every group id) and when the last regroup ran, for the settle policy (service.py).
"""

from __future__ import annotations

import json
import logging
import weakref
from dataclasses import dataclass
from typing import Any

from comments_service.store import RequestStore, RequestTally
from comments_service.tally.embedders import configured_embedder, embedder_named
from comments_service.tally.grouper import RequestGrouper
from comments_service.tally.vectors import stored

logger = logging.getLogger(__name__)


@dataclass
class ProcessGrouper:
    """A grouper and where this process stands in the store's tally."""

    grouper: RequestGrouper
    generation: int
    log_id: str
    position: int | None = None  # where this process stopped reading the log
    unfolded: int = 0  # records in the log since its snapshot
    settled: str | None = None  # when the last regroup ran (UTC ISO), None: never
    since_settled: int = 0  # comments assigned one at a time since then


# One per store object; only touched while the store's tally lock is held, which excludes the
# other threads of this process too (the store takes a fresh flock each time).
_groupers: weakref.WeakKeyDictionary[RequestStore, ProcessGrouper] = weakref.WeakKeyDictionary()


def in_step(store: RequestStore, tally: RequestTally) -> ProcessGrouper:
    """This process's grouper with every record of the log applied."""
    current = _groupers.get(store)
    if current is None or current.log_id != tally.log_id:
        snapshot = tally.snapshot()
        if snapshot is None:
            grouper = RequestGrouper(stored(embedder_named(configured_embedder()), store))
            generation = 1
        else:
            state = snapshot["state"]
            grouper = RequestGrouper.from_state(
                state, stored(embedder_named(state["embedder"]), store))
            generation = int(snapshot["generation"])
        current = ProcessGrouper(grouper, generation, tally.log_id,
                                 settled=(snapshot or {}).get("settled"),
                                 since_settled=int((snapshot or {}).get("since_settled", 0)))
        _groupers[store] = current
    records, current.position = tally.records(current.position)
    for record in records:
        group = current.grouper.assign(record.get("text") or "", record.get("question"))
        if group != record.get("group"):
            logger.warning("Replaying comment %s gave group %s, not %s (the embedder is not "
                           "deterministic here); run `regroup` to settle the groups",
                           record.get("comment"), group, record.get("group"))
    current.unfolded += len(records)
    current.since_settled += len(records)
    return current


def snapshot_of(current: ProcessGrouper) -> dict[str, Any]:
    """What RequestTally.replace stores for ``current``."""
    return {"version": 1, "generation": current.generation, "state": current.grouper.state(),
            "settled": current.settled, "since_settled": current.since_settled}


def fold(tally: RequestTally, current: ProcessGrouper) -> None:
    """Replace the log by a snapshot of ``current``, so the next process reads less."""
    tally.replace(snapshot_of(current))
    current.log_id, current.position, current.unfolded = tally.log_id, None, 0


def start_over(store: RequestStore, tally: RequestTally, current: ProcessGrouper) -> None:
    """Replace the store's whole tally by ``current`` (a regroup's new grouper), which becomes
    this process's grouper for ``store``."""
    tally.replace(snapshot_of(current))
    current.log_id = tally.log_id
    _groupers[store] = current


def tally_snapshot(store: RequestStore, tally: RequestTally | None = None) -> dict[str, Any] | None:
    """The grouper's whole state in the form RequestTally.replace takes (as it reads back from
    JSON, so two snapshots compare equal exactly when the groupers are the same), or None when
    nothing was ever grouped. Takes the tally lock unless ``tally`` is one already held."""
    if tally is None:
        with store.request_tally() as held:
            assert held is not None  # no timeout: the lock is waited for
            return tally_snapshot(store, held)
    if not tally.log_id:
        return None
    return json.loads(json.dumps(snapshot_of(in_step(store, tally))))
