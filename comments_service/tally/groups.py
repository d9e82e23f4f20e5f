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

from comments_service.models import Comment, CommentState, RequestGroup
from comments_service.store import CommentStore, RequestStore, VectorStore

MOVED_OUT = "-"  # Comment.request of a comment the author filed as "not a request"
# <generation>-<n>: the grouper's groups (generation 1, 2 … one per regroup); 0-<n>: requests
# the author started while filing a comment (filing.py).
GROUP_ID = re.compile(r"(?:0|[1-9][0-9]{0,8})-[0-9]{1,9}")
LIVE_STATES = (CommentState.AWAITING_REPLY, CommentState.REPLIED)
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


def group_members(store: RequestStore, groups: Mapping[str, RequestGroup] | None = None,
                  grouped: Iterable[Comment] | None = None) -> dict[str, list[Comment]]:
    """Group id (merges followed) → its reader comments, oldest first (from ``grouped``, the
    store's comments whose request is set, when the caller has read them already)."""
    groups = store.request_groups() if groups is None else groups
    members: dict[str, list[Comment]] = {}
    for comment in store.grouped_comments() if grouped is None else grouped:
        if (comment.request and comment.request != MOVED_OUT
                and is_reader_request_candidate(comment)):
            members.setdefault(resolve(groups, comment.request), []).append(comment)
    for comments in members.values():
        comments.sort(key=lambda comment: (comment.created, comment.id))
    return members


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
