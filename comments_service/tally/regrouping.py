"""Regroup: every reader comment grouped again from scratch, with a fresh grouper.

With the model, all comments are grouped at once (settle.py), which groups better than the
arrival-time assignment. A group the author acted on (it has a record: named, marked, merged
into, or a comment moved to it) stays together, may take new comments in and is never joined to
another such group; its record goes with it. Comments the author took out stay out. The last
generation's ids (and merged ones) redirect to their new groups, for pages open meanwhile.

Runs from ``flask … regroup`` (cli/tally.py) and, with the model, by itself in the settler
thread (service.py).
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from comments_service.models import Comment, RequestGroup, utc_now
from comments_service.store import RequestTally, StoreCorrupted
from comments_service.tally.embedders import configured_embedder, embedder_named
from comments_service.tally.grouper import RequestGrouper
from comments_service.tally.groups import (
    GROUP_ID,
    MOVED_OUT,
    TallyStore,
    is_reader_request_candidate,
    resolve,
)
from comments_service.tally.state import ProcessGrouper, start_over
from comments_service.tally.vectors import stored

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegroupResult:
    """What a regroup did, for the command's summary and the settler's log line."""

    comments: int  # reader comments looked at
    grouped: int  # of which ask for something (have a group)
    groups: int
    kept: int  # author's records carried to a new group
    embedder: str


# Wraps the comments being encoded (the command's progress bar); None: quietly.
Progress = Callable[[Sequence[Comment]], AbstractContextManager[Iterable[Comment]]]


def _regroupable(comment: Comment) -> bool:
    return is_reader_request_candidate(comment) and comment.request != MOVED_OUT


@dataclass
class _Plan:
    """A regroup worked out without the tally lock: what it read and what it decided."""

    old_groups: dict[str, RequestGroup]
    comments: list[Comment]
    grouper: RequestGrouper
    groups: list[int | None]  # the grouper's group of each comment, in order
    decided: dict[str, str]  # comment id -> the author's group it was kept with


def _plan(store: TallyStore, embedder: str | None, progress: Progress | None) -> _Plan:
    grouper = RequestGrouper(stored(embedder_named(embedder or configured_embedder()), store))
    old_groups = store.request_groups()
    comments = [comment for comment in store.all_comments() if _regroupable(comment)]
    decided = _decided_groups(old_groups, comments)
    with (progress or nullcontext)(comments) as items:
        groups = grouper.regroup_pairs(
            (comment.body, comment.question, decided.get(comment.id)) for comment in items)
    return _Plan(old_groups, comments, grouper, groups, decided)


def regroup(store: TallyStore, embedder: str | None = None,
            progress: Progress | None = None) -> RegroupResult:
    """Group every reader comment from scratch (see the module's docstring).

    The slow part (reading, encoding, settling) runs without the tally lock, so readers'
    comments keep being grouped meanwhile; the lock is held only to write the result. Comments
    stored or moved meanwhile are grouped then, one at a time. If the author named, marked or
    merged a group meanwhile, the work is done again, and the third time under the lock."""
    for _attempt in range(2):
        plan = _plan(store, embedder, progress)
        progress = None  # one progress bar: a repeat is quiet
        with store.request_tally() as tally:
            assert tally is not None  # no timeout: the lock is waited for
            if store.request_groups() == plan.old_groups:
                return _apply(store, tally, plan)
        logger.info("The author changed the requests while they were regrouped; again")
    with store.request_tally() as tally:
        assert tally is not None
        return _apply(store, tally, _plan(store, embedder, None))


def _apply(store: TallyStore, tally: RequestTally, plan: _Plan) -> RegroupResult:
    """Write a plan, under the tally lock, with what changed since it was made."""
    grouper, old_groups = plan.grouper, plan.old_groups
    now = {comment.id: comment for comment in store.all_comments()
           if _regroupable(comment)}
    generation = 1 + max([_stored_generation(tally), *(
        int(group_id.split("-")[0]) for group_id in
        itertools.chain(old_groups, (comment.request for comment in now.values()))
        if group_id and GROUP_ID.fullmatch(group_id))])
    new_of: dict[str, str | None] = {}
    kept_with: dict[str, str] = {}  # the author's old group -> its new group
    for comment, group in zip(plan.comments, plan.groups, strict=True):
        current = now.get(comment.id)
        if current is None or current.request != comment.request:
            continue  # withdrawn, taken out or moved meanwhile: see below
        new_of[comment.id] = None if group is None else f"{generation}-{group}"
        if group is not None and comment.id in plan.decided:
            kept_with[plan.decided[comment.id]] = f"{generation}-{group}"
    for comment in now.values():  # stored or moved while the plan was made
        if comment.id in new_of:
            continue
        old = resolve(old_groups, comment.request) if comment.request else None
        if old in kept_with:
            new_of[comment.id] = kept_with[old]
        else:
            group = grouper.assign(comment.body, comment.question)
            new_of[comment.id] = None if group is None else f"{generation}-{group}"
    _keep_filings(now.values(), old_groups, kept_with, new_of)
    comments = [now[comment_id] for comment_id in new_of]
    carried = _carried_over(old_groups, comments, new_of)
    records = carried + _redirects(old_groups, comments, new_of)
    placed = {record.id for record in records}
    # A request the author filed comments under stays, with its record, even when the machine
    # would place none of them (a bug report the author counts as a request, say).
    records += [old_groups[request] for request in sorted({
        value for comment_id, value in new_of.items() if now[comment_id].request_filed
    } - placed) if request in old_groups]
    start_over(store, tally, ProcessGrouper(grouper, generation, "", settled=utc_now(),
                                            since_settled=0))
    store.replace_request_groups(records)
    store.set_comment_requests(new_of)
    return RegroupResult(
        comments=len(comments), grouped=sum(1 for value in new_of.values() if value),
        groups=len(grouper.sizes), kept=len(carried), embedder=grouper.embedder.name,
    )


def _keep_filings(comments: Iterable[Comment], old_groups: Mapping[str, RequestGroup],
                  kept_with: Mapping[str, str], new_of: dict[str, str | None]) -> None:
    """A filed comment stays in its request, under the request's new id: the machine never
    takes it out (its grouper may find no request in the text the author filed)."""
    for comment in comments:
        if comment.request_filed and comment.request and comment.id in new_of:
            old = resolve(old_groups, comment.request)
            new_of[comment.id] = kept_with.get(old, old)


def _stored_generation(tally: RequestTally) -> int:
    """The generation of the saved state (0 when there is none, or it cannot be read: regroup
    is also how a damaged tally is recovered)."""
    try:
        snapshot = tally.snapshot()
    except StoreCorrupted as error:
        logger.warning("Regrouping over a damaged tally: %s", error)
        return 0
    return int(snapshot.get("generation", 1)) if snapshot else 1


def _redirects(old_groups: Mapping[str, RequestGroup], comments: Sequence[Comment],
               new_of: Mapping[str, str | None]) -> list[RequestGroup]:
    """A record per group id of the last generation (and each of the author's merged ones)
    pointing to the new group most of its comments went to, so a requests page open in the
    author's browser, or a form on it, still finds its group after a regroup. Only the last
    generation's ids are kept: older redirects are dropped, so records stay bounded."""
    overlap: dict[str, Counter[str]] = {}
    for comment in comments:
        new = new_of.get(comment.id)
        if new is not None and comment.request and comment.request != MOVED_OUT:
            overlap.setdefault(comment.request, Counter())[new] += 1
    target = {old: counted.most_common(1)[0][0] for old, counted in overlap.items()}
    for old, record in old_groups.items():
        final = resolve(old_groups, old)
        # The author's merges (within one generation) follow their group; an earlier regroup's
        # redirects (from an older generation) are not carried on.
        if (record.merged_into and old not in target and final in target
                and old.split("-")[0] == final.split("-")[0]):
            target[old] = target[final]
    now = utc_now()
    return [RequestGroup(id=old, merged_into=new, updated=now)
            for old, new in sorted(target.items()) if old != new]


def _decided_groups(old_groups: Mapping[str, RequestGroup],
                    comments: Sequence[Comment]) -> dict[str, str]:
    """comment id -> the group the author decided it belongs in: a group with a record (the
    author named it, set its status, merged another into it or moved a comment to it). Regroup
    keeps each such group together and apart from the others."""
    decided = {}
    for comment in comments:
        if comment.request and comment.request != MOVED_OUT:
            group = resolve(old_groups, comment.request)
            if group in old_groups:
                decided[comment.id] = group
    return decided


def _carried_over(old_groups: Mapping[str, RequestGroup], comments: Sequence[Comment],
                  new_of: Mapping[str, str | None]) -> list[RequestGroup]:
    """Each old record (label, status, link) goes to the new group holding most of its old
    group's members (all of them, as regroup keeps a decided group together), largest overlap
    first, each old record and each new group at most once."""
    members: dict[str, list[str | None]] = {}
    for comment in comments:
        new = new_of.get(comment.id)
        if new is not None:
            old = (resolve(old_groups, comment.request)
                   if comment.request and comment.request != MOVED_OUT else None)
            members.setdefault(new, []).append(old)
    candidates = []
    for new, olds in members.items():
        for old, overlap in Counter(old for old in olds if old in old_groups).items():
            candidates.append((-overlap, new, old))
    carried, used, taken = [], set(), set()
    for _overlap, new, old in sorted(candidates):
        if old not in used and new not in taken:
            used.add(old)
            taken.add(new)
            record = old_groups[old]
            carried.append(RequestGroup(id=new, label=record.label, status=record.status,
                                        link=record.link, updated=record.updated))
    return carried
