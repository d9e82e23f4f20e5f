"""Filing a reader's comment under a request: the author's decision, taken while answering it.

The machine only ranks (ranking.py); a comment counts towards a request once the author filed
it there. A filing is one of:

    <request id>   an existing request (a merged one's comments go where it was merged)
    new            a new request, with the author's label
    none           not a request (``request`` = MOVED_OUT; regroup and the ranker leave it be)

It sets the comment's ``request`` and ``request_filed`` in one compare-and-set of the comment,
so two tabs filing the same comment end with the last filing, and no member is lost or counted
twice (a comment is in one request at most). Every filing is a labelled example the ranking
learns from: the filed comments themselves are the examples.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from comments_service.models import Comment, CommentState, RequestGroup, utc_now
from comments_service.tally.groups import (
    GROUP_ID,
    LABEL_LIMIT,
    MOVED_OUT,
    RequestActionError,
    TallyStore,
    group_members,
    resolve,
    under_tally_lock,
)

NEW = "new"
NONE = "none"


class FilingRefused(RequestActionError):
    """The filing cannot be done; ``status`` is the HTTP status that says why (422: a bad
    choice or label, 409: the comment cannot be filed in its state)."""

    def __init__(self, message: str, status: int = 422, field: str = "choice") -> None:
        super().__init__(message)
        self.status, self.field = status, field


@dataclass(frozen=True)
class Filing:
    """Where a comment was filed: its request (None: "not a request")."""

    comment: Comment
    request: RequestGroup | None


def clean_label(label: str | None) -> str:
    """The label on one line, at most LABEL_LIMIT characters; FilingRefused when empty or long."""
    text = " ".join((label or "").split())
    if not text:
        raise FilingRefused("Give the new request a label.", field="label")
    if len(text) > LABEL_LIMIT:
        raise FilingRefused(f"A label has at most {LABEL_LIMIT} characters.", field="label")
    return text


def fileable(store: TallyStore, comment_id: str) -> Comment:
    """The reader's comment to file; FilingRefused (404-like 422, or 409) when it cannot be."""
    comment = store.get_comment(comment_id)
    if comment is None:
        raise FilingRefused(f"There is no comment {comment_id!r}.", status=404, field="comment")
    if comment.is_author:
        raise FilingRefused("Only readers' comments are filed under requests.", status=409,
                            field="comment")
    if comment.state in (CommentState.SPAM, CommentState.WITHDRAWN):
        raise FilingRefused(f"A comment that is {comment.state.value} is not filed under a "
                            "request; restore it first.", status=409, field="comment")
    return comment


def known_request(store: TallyStore, request_id: str) -> str:
    """``request_id`` with merges followed, when such a request exists; FilingRefused else."""
    if not isinstance(request_id, str) or not GROUP_ID.fullmatch(request_id):
        raise FilingRefused(f"There is no request {request_id!r}.")
    groups = store.request_groups()
    resolved = resolve(groups, request_id)
    if resolved in groups or group_members(store, groups, resolved):
        return resolved
    raise FilingRefused(f"There is no request {request_id!r}.")


def new_request(store: TallyStore, label: str) -> RequestGroup:
    """A new request the author started, with its label (ids 0-<n>, see groups.GROUP_ID)."""
    groups = store.request_groups()
    while (request_id := f"0-{secrets.randbelow(10**9)}") in groups:
        pass  # a clash among a billion ids: draw again
    return store.update_request_group(
        request_id, lambda group: replace(group, label=label, updated=utc_now()))


@under_tally_lock
def reject_suggestion(store: TallyStore, comment_id: str, request_id: str) -> Comment:
    """The author says the machine's guess is wrong: the comment leaves that request, unfiled
    (it may be suggested elsewhere, and still waits to be filed), and the request is never
    suggested for it again. A filed comment is left as the author filed it."""
    fileable(store, comment_id)

    def reject(stored: Comment) -> Comment:
        rejected = tuple(dict.fromkeys((*stored.rejected_requests, request_id)))
        if stored.request_filed or stored.request != request_id:
            return replace(stored, rejected_requests=rejected)
        return replace(stored, request=None, rejected_requests=rejected)

    return store.update_comment(comment_id, reject)


def check_choice(store: TallyStore, comment_id: str, choice: str, label: str | None) -> None:
    """FilingRefused unless filing ``comment_id`` as ``choice`` can be done (changes nothing:
    the reply form checks before it replies, so a bad choice sends no reply)."""
    fileable(store, comment_id)
    if choice == NEW:
        clean_label(label)
    elif choice != NONE:
        known_request(store, choice)


@under_tally_lock
def file_comment(store: TallyStore, comment_id: str, choice: str,
                 label: str | None = None) -> Filing:
    """File a reader's comment (see the module docstring); FilingRefused says why not."""
    fileable(store, comment_id)
    if choice == NONE:
        target: str = MOVED_OUT
    elif choice == NEW:
        target = new_request(store, clean_label(label)).id
    else:
        target = known_request(store, choice)
        # A request the author filed into is theirs: regroup keeps it together.
        store.update_request_group(target, lambda group: group if group.updated
                                   else replace(group, updated=utc_now()))

    def file(stored: Comment) -> Comment:
        return replace(stored, request=target, request_filed=True)

    filed = store.update_comment(comment_id, file)
    request = None if target == MOVED_OUT else store.request_groups().get(target)
    return Filing(filed, request or (None if target == MOVED_OUT else RequestGroup(id=target)))
