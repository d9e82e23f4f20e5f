"""Repeated requests, tallied: readers' comments that ask for the same thing, grouped, so the
author sees "9 readers asked for a dark mode", answers them once and tells each of them.

tally.py does the grouping (docs/TALLY.md); this module keeps it going on the store:

- **On store** (:func:`comment_stored`, called by posting.py after ``add_comment``): a reader's
  comment (not spam, not the author's) goes to the nearest group or starts one; a comment that
  asks for nothing gets no group. The comment's ``request`` field names its group.
- **One grouper per process, one lock for all**: the grouper's state lives in the store (a
  snapshot plus an append-only log of assignments, store.py "Request groups"). Each assignment
  takes the store's tally lock, replays the records other processes appended since this process
  last looked (cheap: a few lines), assigns, appends one line and lets go. The snapshot is
  re-read only when another process folded the log into a new one (every ``FOLD_EVERY``
  records) or a regroup replaced it. So the cost of one assignment is the grouper's (centroids
  only, never stored comments) plus one appended line: it does not grow with the store. A
  reader's POST waits at most ``TALLY_LOCK_TIMEOUT`` for the lock; past that the comment is
  stored without a group until the next ``regroup``.
- **Group ids** are ``<generation>-<n>``: ``n`` is the grouper's own group number and the
  generation grows with each regroup, so ids of different regroups never mix.
- **The author's decisions** (label, status open/planned/done, link, merges) are
  ``RequestGroup`` records; a group nobody touched has none. A merge records ``merged_into`` on
  the absorbed group (later assignments to it follow the link) and moves its comments; a moved
  comment just gets another ``request``, or ``MOVED_OUT`` ("-": no group, and regroup leaves it
  out); merging into or moving to a group gives it a record, so regroup keeps it. Centroids
  are not changed by merges or moves until the next regroup.
- **Regroup** (:func:`regroup`, ``flask … regroup``) groups every reader comment again with a
  fresh grouper; with the model, all at once (tally_settle), which groups better than the
  arrival-time assignment. A group the author acted on (it has a record: named, marked, merged
  into, or a comment moved to it) stays together, may take new comments in and is never joined
  to another such group; its record goes with it. The last generation's ids (and merged ones)
  redirect to their new groups, for pages open meanwhile. With the model it also runs by
  itself, in a background thread, every ``TALLY_SETTLE_AFTER`` comments once
  ``TALLY_SETTLE_INTERVAL`` seconds have passed (:class:`_Settler`).
- **Closing the loop**: marking a group done with a link queues one mail per distinct opted-in
  address among its comments (notify.queue_message, deduplicated per address and link, so
  marking it again sends nothing) and a ``request.status_changed`` webhook.
- **Distinct people**: a group counts distinct ``reader_key`` values; a comment without one
  counts as one person.

The embedder: ``TALLY_EMBEDDER`` = ``lexical`` (the default), ``auto`` (the sentence model when
the ``tally-embeddings`` extra is installed) or ``model``. Assignment runs in the web workers,
and the model costs ~5 s to load and ~520 MB in each worker that assigns (docs/TALLY.md), so it
is a choice to make, not a default. The stored state names its embedder and is always used with
it: the setting decides when the state is first made and at each ``regroup``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from flask import current_app, has_app_context, render_template

from comments_service.config import ConfigError
from comments_service.extensions import manifest_or_none
from comments_service.mail import notify, webhook_events
from comments_service.manifest import Manifest
from comments_service.models import (
    Comment,
    CommentState,
    RequestGroup,
    RequestStatus,
    parse_time,
    utc_now,
)
from comments_service.outbox import webhooks
from comments_service.store import RequestTally, Store, StoreCorrupted
from comments_service.tally.grouper import (
    MAX_CHARS,
    LexicalEmbedder,
    MiniLMEmbedder,
    RequestGrouper,
    content_words,
    request_topic,
)

logger = logging.getLogger(__name__)

MOVED_OUT = "-"  # Comment.request of a comment the author took out of every group
EMBEDDER_CHOICES = ("lexical", "auto", "model")
TALLY_LOCK_TIMEOUT = 2.0  # seconds a reader's POST waits for the tally lock
FOLD_EVERY = 500  # log records after which the log is folded into a new snapshot
GROUP_ID = re.compile(r"[1-9][0-9]{0,8}-[0-9]{1,9}")
MIN_PEOPLE = 2  # the requests page lists groups asked for by at least this many people
LABEL_LIMIT = 120
SUGGESTED_LABEL_LIMIT = 80
LINK_LIMIT = 2000
SAMPLES = 3
THEME_THRESHOLD = 0.3  # lexical cosine for an answer to join a theme (answers share words)
THEME_ANSWERS_LIMIT = 2000  # newest answers per question clustered on the themes page
LIVE_STATES = (CommentState.AWAITING_REPLY, CommentState.REPLIED)
# With the model, a regroup runs by itself (in a background thread of the process that grouped
# the comment that made it due) once this many comments were grouped one at a time since the
# last one and it is at least this many seconds old; TALLY_SETTLE_AFTER = 0 turns it off.
SETTLE_DEFAULTS = {"TALLY_SETTLE_AFTER": 10, "TALLY_SETTLE_INTERVAL": 3600}


class RequestActionError(ValueError):
    """An author's action that cannot be done; the message says why (shown on the page)."""


def check_config(config: dict[str, Any]) -> None:
    config.setdefault("TALLY_EMBEDDER", "lexical")
    if config["TALLY_EMBEDDER"] not in EMBEDDER_CHOICES:
        raise ConfigError(f"TALLY_EMBEDDER must be one of {', '.join(EMBEDDER_CHOICES)}, "
                          f"not {config['TALLY_EMBEDDER']!r}")
    for name, default in SETTLE_DEFAULTS.items():
        value = config.setdefault(name, default)
        try:
            config[name] = int(value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{name} must be a whole number, not {value!r}") from error
        if config[name] < 0:
            raise ConfigError(f"{name} must be 0 or more, not {value!r}")


# --- embedders, one of each per process -------------------------------------------------------

_embedders: dict[str, Any] = {}
_embedders_lock = threading.Lock()


def embedder_named(name: str) -> Any:
    """The process's embedder: ``lexical``, ``minilm``/``model``, or ``auto``."""
    if name == "auto":
        name = "minilm" if MiniLMEmbedder.available() else "lexical"
    if name == "model":
        name = "minilm"
    if name == "minilm" and not MiniLMEmbedder.available():
        raise RequestActionError("The sentence model is not installed (extra tally-embeddings).")
    with _embedders_lock:
        if name not in _embedders:
            _embedders[name] = MiniLMEmbedder() if name == "minilm" else LexicalEmbedder()
        return _embedders[name]


def configured_embedder() -> str:
    return current_app.config.get("TALLY_EMBEDDER", "lexical") if has_app_context() else "lexical"


# --- the per-process grouper, kept in step with the store -------------------------------------


@dataclass
class _Grouper:
    grouper: RequestGrouper
    generation: int
    log_id: str
    position: int | None = None  # where this process stopped reading the log
    unfolded: int = 0  # records in the log since its snapshot
    settled: str | None = None  # when the last regroup ran (UTC ISO), None: never
    since_settled: int = 0  # comments assigned one at a time since then


# One per store object; only touched while the store's tally lock is held, which excludes the
# other threads of this process too (store.py takes a fresh flock each time).
_groupers: weakref.WeakKeyDictionary[Store, _Grouper] = weakref.WeakKeyDictionary()


def _in_step(store: Store, tally: RequestTally) -> _Grouper:
    """This process's grouper with every record of the log applied."""
    current = _groupers.get(store)
    if current is None or current.log_id != tally.log_id:
        snapshot = tally.snapshot()
        if snapshot is None:
            grouper = RequestGrouper(embedder_named(configured_embedder()))
            generation = 1
        else:
            state = snapshot["state"]
            grouper = RequestGrouper.from_state(state, embedder_named(state["embedder"]))
            generation = int(snapshot["generation"])
        current = _Grouper(grouper, generation, tally.log_id,
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


def _snapshot_of(current: _Grouper) -> dict[str, Any]:
    return {"version": 1, "generation": current.generation, "state": current.grouper.state(),
            "settled": current.settled, "since_settled": current.since_settled}


def _fold(tally: RequestTally, current: _Grouper) -> None:
    tally.replace(_snapshot_of(current))
    current.log_id, current.position, current.unfolded = tally.log_id, None, 0


def tally_snapshot(store: Store, tally: RequestTally | None = None) -> dict[str, Any] | None:
    """The grouper's whole state in the form RequestTally.replace takes (as it reads back from
    JSON, so two snapshots compare equal exactly when the groupers are the same), or None when
    nothing was ever grouped. Takes the tally lock unless ``tally`` is one already held."""
    if tally is None:
        with store.request_tally() as held:
            assert held is not None  # no timeout: the lock is waited for
            return tally_snapshot(store, held)
    if not tally.log_id:
        return None
    return json.loads(json.dumps(_snapshot_of(_in_step(store, tally))))


# --- assignment on store ----------------------------------------------------------------------


def is_reader_request_candidate(comment: Comment) -> bool:
    """A reader's comment that counts: not the author's, not spam, not withdrawn."""
    return not comment.is_author and comment.state in LIVE_STATES


def resolve(groups: Mapping[str, RequestGroup], group_id: str) -> str:
    """Follow merges: the group that ``group_id``'s comments belong to now."""
    seen: set[str] = set()
    while group_id in groups and groups[group_id].merged_into and group_id not in seen:
        seen.add(group_id)
        group_id = groups[group_id].merged_into  # type: ignore[assignment]
    return group_id


def assign_comment(store: Store, comment: Comment,
                   timeout: float | None = TALLY_LOCK_TIMEOUT) -> str | None:
    """Put one stored comment in a group and record it on the comment; returns the group id,
    or None (it asks for nothing, does not count, has a group already, or the tally stayed
    locked longer than ``timeout``)."""
    if not is_reader_request_candidate(comment) or comment.request is not None:
        return None
    if request_topic(comment.body, comment.question) is None:
        return None  # asks for nothing: no group, and no need to wait for the lock
    with store.request_tally(timeout=timeout) as tally:
        if tally is None:
            logger.warning("The request tally is busy (a regroup?); comment %s gets its group "
                           "at the next regroup", comment.id)
            return None
        current = _in_step(store, tally)
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
        if current.unfolded >= FOLD_EVERY:
            _fold(tally, current)
        group_id = f"{current.generation}-{group}"
    group_id = resolve(store.request_groups(), group_id)

    def apply(stored: Comment) -> Comment:
        return replace(stored, request=group_id) if stored.request is None else stored

    store.update_comment(comment.id, apply)
    if due:
        settler.start(store, policy)
    return group_id


# --- settling on its own, off the request path ----------------------------------------------

def _setting(name: str) -> int:
    if not has_app_context():
        return 0  # outside the service (scripts, the CLI's own regroup): never automatic
    return int(current_app.config.get(name, SETTLE_DEFAULTS[name]))


@dataclass(frozen=True)
class SettlePolicy:
    after: int  # comments assigned one at a time since the last regroup; 0: never
    interval: int  # seconds since the last regroup

    @classmethod
    def configured(cls) -> SettlePolicy:
        return cls(_setting("TALLY_SETTLE_AFTER"), _setting("TALLY_SETTLE_INTERVAL"))


def _settle_due(current: _Grouper, policy: SettlePolicy) -> bool:
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

    def start(self, store: Store, policy: SettlePolicy) -> None:
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
    def _run(store: Store, policy: SettlePolicy) -> None:
        try:
            with store.request_tally(timeout=TALLY_LOCK_TIMEOUT) as tally:
                if tally is None:
                    return  # a regroup is running: it is the settle
                current = _in_step(store, tally)
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


def comment_stored(store: Store, comment: Comment) -> None:
    """Hook after a reader's comment is stored (posting.py): group it. Never raises."""
    try:
        assign_comment(store, comment)
    except Exception:
        logger.exception("Could not group comment %s", comment.id)


# --- regroup ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegroupResult:
    comments: int  # reader comments looked at
    grouped: int  # of which ask for something (have a group)
    groups: int
    kept: int  # author's records carried to a new group
    embedder: str


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


def _plan(store: Store, embedder: str | None, progress: Progress | None) -> _Plan:
    grouper = RequestGrouper(embedder_named(embedder or configured_embedder()))
    old_groups = store.request_groups()
    comments = [comment for comment in store.all_comments() if _regroupable(comment)]
    decided = _decided_groups(old_groups, comments)
    with (progress or nullcontext)(comments) as items:
        groups = grouper.regroup_pairs(
            (comment.body, comment.question, decided.get(comment.id)) for comment in items)
    return _Plan(old_groups, comments, grouper, groups, decided)


def regroup(store: Store, embedder: str | None = None,
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


def _apply(store: Store, tally: RequestTally, plan: _Plan) -> RegroupResult:
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
    comments = [now[comment_id] for comment_id in new_of]
    carried = _carried_over(old_groups, comments, new_of)
    records = carried + _redirects(old_groups, comments, new_of)
    current = _Grouper(grouper, generation, "", settled=utc_now(), since_settled=0)
    tally.replace(_snapshot_of(current))
    current.log_id = tally.log_id
    _groupers[store] = current
    store.replace_request_groups(records)
    store.set_comment_requests(new_of)
    return RegroupResult(
        comments=len(comments), grouped=sum(1 for value in new_of.values() if value),
        groups=len(grouper.sizes), kept=len(carried), embedder=grouper.embedder.name,
    )


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


# --- what the requests page shows ------------------------------------------------------------


def count_people(comments: Iterable[Comment]) -> int:
    """Distinct readers: distinct reader_keys, plus one per comment without a key."""
    keys: set[str] = set()
    anonymous = 0
    for comment in comments:
        if comment.reader_key:
            keys.add(comment.reader_key)
        else:
            anonymous += 1
    return len(keys) + anonymous


def suggested_label(comments: Sequence[Comment]) -> str:
    """A short phrase: the first comment's request topic (tally.py), else its first words."""
    if not comments:
        return "(empty)"
    first = comments[0]
    text = request_topic(first.body, first.question) or first.body
    text = " ".join(text.split()).strip(" ?!.,;:-") or " ".join(first.body.split())
    if len(text) > SUGGESTED_LABEL_LIMIT:
        text = text[:SUGGESTED_LABEL_LIMIT].rsplit(" ", 1)[0] + "…"
    return text[:1].upper() + text[1:] if text else "(empty)"


@dataclass(frozen=True)
class Source:
    """Where a group's comments came from: an article, or one of its questions."""

    thread: str
    title: str
    url: str | None
    question: str | None  # the question's text
    count: int


@dataclass
class RequestView:
    id: str
    record: RequestGroup
    comments: list[Comment]  # oldest first
    people: int
    suggested: str
    sources: list[Source] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.record.label or self.suggested

    @property
    def first_seen(self) -> str:
        return self.comments[0].created

    @property
    def last_seen(self) -> str:
        return self.comments[-1].created

    @property
    def samples(self) -> list[Comment]:
        """Up to SAMPLES comments, one per person first."""
        picked, seen = [], set()
        for comment in self.comments:
            key = comment.reader_key or comment.id
            if key not in seen:
                seen.add(key)
                picked.append(comment)
            if len(picked) == SAMPLES:
                break
        return picked


def group_members(store: Store, groups: Mapping[str, RequestGroup] | None = None
                  ) -> dict[str, list[Comment]]:
    """Group id (merges followed) → its reader comments, oldest first."""
    groups = store.request_groups() if groups is None else groups
    members: dict[str, list[Comment]] = {}
    for comment in store.grouped_comments():
        if (comment.request and comment.request != MOVED_OUT
                and is_reader_request_candidate(comment)):
            members.setdefault(resolve(groups, comment.request), []).append(comment)
    for comments in members.values():
        comments.sort(key=lambda comment: (comment.created, comment.id))
    return members


def _sources(comments: Sequence[Comment], manifest: Manifest | None) -> list[Source]:
    counted = Counter((comment.thread, comment.question) for comment in comments)
    sources = []
    for (thread, question_id), count in counted.most_common():
        article = manifest.article(thread) if manifest is not None else None
        question = article.question(question_id) if article and question_id else None
        sources.append(Source(
            thread=thread, title=article.title if article else thread,
            url=article.url if article else None,
            question=(question.text if question else question_id) if question_id else None,
            count=count,
        ))
    return sources


def overview(store: Store, manifest: Manifest | None = None,
             min_people: int = MIN_PEOPLE) -> list[RequestView]:
    """Groups asked for by ``min_people`` or more, most people first, then most recent."""
    groups = store.request_groups()
    views = []
    for group_id, comments in group_members(store, groups).items():
        people = count_people(comments)
        if people >= min_people:
            views.append(RequestView(
                id=group_id, record=groups.get(group_id, RequestGroup(group_id)),
                comments=comments, people=people, suggested=suggested_label(comments),
                sources=_sources(comments, manifest),
            ))
    views.sort(key=lambda view: (view.people, view.last_seen), reverse=True)
    return views


def request_view(store: Store, group_id: str, manifest: Manifest | None = None
                 ) -> RequestView | None:
    """One group (merges followed), or None when it has no comments and no record."""
    groups = store.request_groups()
    group_id = resolve(groups, group_id)
    comments = group_members(store, groups).get(group_id, [])
    if not comments and group_id not in groups:
        return None
    return RequestView(
        id=group_id, record=groups.get(group_id, RequestGroup(group_id)), comments=comments,
        people=count_people(comments), suggested=suggested_label(comments),
        sources=_sources(comments, manifest),
    )


# --- the author's actions ---------------------------------------------------------------------


def _known_group(store: Store, group_id: str) -> str:
    if not isinstance(group_id, str) or not GROUP_ID.fullmatch(group_id):
        raise RequestActionError("No such request group.")
    groups = store.request_groups()
    resolved = resolve(groups, group_id)
    if resolved in groups or resolved in group_members(store, groups):
        return resolved
    raise RequestActionError("No such request group.")


def _decide(store: Store, group_id: str) -> None:
    """Give a group the author acted on a record (if it has none), so regroup keeps it."""
    store.update_request_group(group_id, lambda group: group if group.updated else replace(
        group, updated=utc_now()))


def rename(store: Store, group_id: str, label: str | None) -> RequestGroup:
    """Set the label the author sees (blank: back to the suggestion)."""
    group_id = _known_group(store, group_id)
    text = " ".join((label or "").split())
    if len(text) > LABEL_LIMIT:
        raise RequestActionError(f"A label has at most {LABEL_LIMIT} characters.")
    return store.update_request_group(
        group_id, lambda group: replace(group, label=text or None, updated=utc_now()))


def merge(store: Store, group_id: str, into: str) -> str:
    """Put every comment of ``group_id`` into ``into``; returns the group they are in now."""
    source = _known_group(store, group_id)
    target = _known_group(store, into)
    if source == target:
        raise RequestActionError("A group cannot be merged into itself.")
    store.update_request_group(
        source, lambda group: replace(group, merged_into=target, updated=utc_now()))
    _decide(store, target)
    moved = group_members(store).get(target, [])
    store.set_comment_requests({comment.id: target for comment in moved
                                if comment.request != target})
    return target


def move(store: Store, comment_id: str, to: str | None) -> str | None:
    """Move one comment to another group, or out of every group (``to`` empty)."""
    comment = store.get_comment(comment_id)
    if comment is None or not is_reader_request_candidate(comment):
        raise RequestActionError("Only readers' comments can be moved between requests.")
    target = _known_group(store, to) if to else MOVED_OUT
    store.update_comment(comment_id, lambda stored: replace(stored, request=target))
    if target != MOVED_OUT:
        _decide(store, target)
    return None if target == MOVED_OUT else target


def check_link(link: str | None) -> str | None:
    """An absolute http(s) URL without spaces, or None when blank; RequestActionError else."""
    text = (link or "").strip()
    if not text:
        return None
    parts = urlsplit(text)
    if (len(text) > LINK_LIMIT or parts.scheme not in ("http", "https") or not parts.hostname
            or any(character.isspace() or ord(character) < 32 for character in text)):
        raise RequestActionError("The link must be an http:// or https:// address.")
    return text


@dataclass(frozen=True)
class StatusChange:
    group: RequestGroup
    previous: RequestStatus
    follow_ups: int  # messages queued (or found queued already) for the readers


def set_status(store: Store, group_id: str, status: str, link: str | None) -> StatusChange:
    """Mark a group open, planned or done (done needs the link to what answers it). Done
    queues the readers' follow-ups; any change queues a ``request.status_changed`` webhook.
    Call it inside an app context (mail and webhooks need the settings)."""
    group_id = _known_group(store, group_id)
    try:
        wanted = RequestStatus(status)
    except ValueError:
        raise RequestActionError("The status must be open, planned or done.") from None
    checked = check_link(link)
    if wanted is RequestStatus.DONE and checked is None:
        raise RequestActionError("Give the link to what answers the request to mark it done.")
    previous: list[RequestGroup] = []

    def apply(group: RequestGroup) -> RequestGroup:
        previous.append(group)
        if group.status is wanted and group.link == checked:
            return group
        return replace(group, status=wanted, link=checked, updated=utc_now())

    new = store.update_request_group(group_id, apply)
    old = previous[-1]
    view = request_view(store, group_id, _manifest())
    comments = view.comments if view else []
    if new != old:
        try:
            webhooks.queue_webhook(webhook_events.REQUEST_STATUS_CHANGED, {"request": {
                "id": group_id, "label": view.label if view else group_id,
                "status": str(new.status), "previous_status": str(old.status),
                "link": new.link, "people": count_people(comments), "comments": len(comments),
            }}, store=store, dedupe_key=f"request:{group_id}:{new.updated}")
        except Exception:
            logger.exception("Could not queue the webhook for request %s", group_id)
    follow_ups = 0
    if new.status is RequestStatus.DONE and view is not None:
        follow_ups = len(queue_follow_ups(store, view, new))
    return StatusChange(new, old.status, follow_ups)


def _manifest() -> Manifest | None:
    return manifest_or_none()


def queue_follow_ups(store: Store, view: RequestView, group: RequestGroup) -> list[Any]:
    """One mail per distinct opted-in address (notify and an email) among the group's
    comments, saying the request is done and where. Deduplicated per address and link: marking
    it done again queues nothing new."""
    by_address: dict[str, Comment] = {}
    for comment in view.comments:
        if comment.notify and comment.email:
            by_address.setdefault(comment.email.strip().casefold(), comment)
    manifest = _manifest()
    queued = []
    for address, comment in by_address.items():
        article = manifest.article(comment.thread) if manifest is not None else None
        context = {
            "site_name": notify.site_name(manifest), "comment": comment, "label": view.label,
            "link": group.link, "title": article.title if article else comment.thread,
            "quoted_comment": notify.quoted(comment.body),
        }
        try:
            message = notify.queue_message(
                store, to=comment.email.strip(), kind="request_done", confirm_first=True,
                subject=f"You asked for it: {view.label}",
                text=render_template("notify/email/request_done.txt", **context),
                html=render_template("notify/email/request_done.html", **context),
                dedupe_key=f"request-done:{address}:{group.link}",
            )
        except notify.MailSetupError as error:
            logger.error("No follow-up for request %s: %s", view.id, error)
            break
        if message is not None:
            queued.append(message)
    return queued


# --- themes in the answers to each reflection question ---------------------------------------


@dataclass
class Theme:
    label: str  # the words the answers share
    answers: list[Comment]

    @property
    def people(self) -> int:
        return count_people(self.answers)


@dataclass
class QuestionThemes:
    thread: str
    article_title: str
    question: str  # the question's text
    question_id: str
    answers: int
    themes: list[Theme]


def cluster_answers(answers: Sequence[Comment], threshold: float = THEME_THRESHOLD
                    ) -> list[Theme]:
    """Answers grouped by the words they share (tally.py's lexical vectors, each answer to the
    most similar theme centroid at or above ``threshold``, else a theme of its own): for
    brainstorming, largest themes first."""
    vectors = LexicalEmbedder().encode([answer.body for answer in answers])
    sums: list[dict[str, float]] = []
    members: list[list[Comment]] = []
    for answer, vector in zip(answers, vectors, strict=True):
        best, best_score = None, 0.0
        for number, total in enumerate(sums):
            norm = sum(value * value for value in total.values()) ** 0.5 or 1.0
            score = sum(value * total.get(key, 0.0) for key, value in vector.items()) / norm
            if score > best_score:
                best, best_score = number, score
        if best is None or best_score < threshold or not vector:
            sums.append({})
            members.append([])
            best = len(sums) - 1
        for key, value in vector.items():
            sums[best][key] = sums[best].get(key, 0.0) + value
        members[best].append(answer)
    themes = [Theme(_theme_label(group), group) for group in members]
    themes.sort(key=lambda theme: (len(theme.answers), theme.people), reverse=True)
    return themes


def _theme_label(answers: Sequence[Comment]) -> str:
    """The content words most of the answers use (as written), else the first answer's start."""
    stems: Counter[str] = Counter()
    spelled: dict[str, Counter[str]] = {}
    for answer in answers:
        seen = set()
        for word in re.findall(r"[A-Za-z][A-Za-z'-]+", answer.body[:MAX_CHARS]):
            stem = next(iter(content_words(word)), None)
            if stem and len(stem) > 2:
                spelled.setdefault(stem, Counter())[word.lower()] += 1
                seen.add(stem)
        stems.update(seen)
    shared = [stem for stem, count in stems.most_common(3)
              if count >= max(2, (len(answers) + 1) // 2)]
    if shared:
        return ", ".join(spelled[stem].most_common(1)[0][0] for stem in shared)
    words = " ".join(answers[0].body.split())
    return words[:60] + ("…" if len(words) > 60 else "")


def question_themes(store: Store, manifest: Manifest | None) -> list[QuestionThemes]:
    """For every question with answers: its answers grouped into themes."""
    answers: dict[tuple[str, str], list[Comment]] = {}
    for comment in store.all_comments():
        if comment.question and is_reader_request_candidate(comment):
            answers.setdefault((comment.thread, comment.question), []).append(comment)
    found = []
    for (thread, question_id), comments in sorted(answers.items()):
        comments.sort(key=lambda comment: (comment.created, comment.id))
        comments = comments[-THEME_ANSWERS_LIMIT:]
        article = manifest.article(thread) if manifest is not None else None
        question = article.question(question_id) if article else None
        found.append(QuestionThemes(
            thread=thread, article_title=article.title if article else thread,
            question=question.text if question else question_id, question_id=question_id,
            answers=len(comments), themes=cluster_answers(comments),
        ))
    return found
