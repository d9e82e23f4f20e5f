"""Request groups as the store holds them: what a group id looks like, which comments count,
how merges are followed, and which comments are in which group.

Every other module of the service side of the tally (service, regrouping, actions, views,
themes) reads groups through these few names, so they agree on what "in a group" means.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from comments_service.models import LIVE_STATES, Comment, RequestGroup
from comments_service.store import CommentStore, RequestFiling, RequestStore, VectorStore

# MOVED_OUT: the request of a comment the author filed as "not a request"
from comments_service.store.request_summaries import MOVED_OUT

# <generation>-<n>: the grouper's groups (generation 1, 2 … one per regroup); 0-<n>: requests
# the author started while filing a comment (filing.py).
GROUP_ID = re.compile(r"(?:0|[1-9][0-9]{0,8})-[0-9]{1,9}")
LABEL_LIMIT = 120  # characters of a request's label


class TallyStore(CommentStore, RequestStore, VectorStore, Protocol):
    """What the tally uses of a store: the comments, the requests' own records, and the
    comments' sentence vectors."""


class RequestActionError(ValueError):
    """An author's action that cannot be done; the message says why (shown on the page)."""


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


def is_counted_filing(filing: RequestFiling) -> bool:
    """A filing in a request group that counts: a live reader comment, not "not a request"."""
    return filing.request != MOVED_OUT and filing.state in LIVE_STATES


def group_filings(store: RequestStore, groups: Mapping[str, RequestGroup] | None = None,
                  filings: Iterable[RequestFiling] | None = None
                  ) -> dict[str, list[RequestFiling]]:
    """Group id (merges followed) → where its reader comments stand, oldest first, without
    their text (``filings``: the store's request_filings, when the caller has them)."""
    groups = store.request_groups() if groups is None else groups
    members: dict[str, list[RequestFiling]] = {}
    for filing in store.request_filings() if filings is None else filings:
        if filing.request and is_counted_filing(filing):
            members.setdefault(resolve(groups, filing.request), []).append(filing)
    for listed in members.values():
        listed.sort(key=lambda filing: (filing.created, filing.id))
    return members


def merged_ids(groups: Mapping[str, RequestGroup]) -> dict[str, str]:
    """Each merged group's id → the group its comments belong to now (what the stores'
    request_summaries count them under)."""
    return {group_id: resolve(groups, group_id) for group_id, group in groups.items()
            if group.merged_into}


def group_members(store: RequestStore, groups: Mapping[str, RequestGroup], group_id: str
                  ) -> list[RequestFiling]:
    """Where the reader comments of one group (merges followed) stand, oldest first: its
    entry of :func:`group_filings`, reading only the filings of the ids merged into it."""
    stored_as = [group_id, *(merged for merged, target in merged_ids(groups).items()
                             if target == group_id)]
    return group_filings(store, groups, store.request_filings(stored_as)).get(group_id, [])


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=RequestStore)


def under_tally_lock(decision: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run an author's decision (filing, moving, merging, naming…) holding the request tally's
    lock. A regroup writes its result under that lock, from what it read under it: a decision
    written in the middle would be undone (a filed comment put back in a machine group, a new
    request's label dropped). Decisions are quick, so the wait is short; they must not be
    nested (the lock is not re-entrant)."""

    @wraps(decision)
    def locked(store: S, *args: P.args, **kwargs: P.kwargs) -> R:
        with store.request_tally():
            return decision(store, *args, **kwargs)

    return locked
