"""The author's actions on request groups: rename, merge, move a comment, set the status; and
closing the loop, the follow-up mail to the readers who asked once a group is done.

A group nobody touched has no ``RequestGroup`` record; any action gives it one, so a regroup
keeps it together (regrouping.py). A merge records ``merged_into`` on the absorbed group (later
assignments to it follow the link) and moves its comments; a moved comment is filed by the
author (filing.py) under another ``request``, or ``MOVED_OUT`` (not a request). Centroids are
not changed by merges or moves until the next regroup.

Marking a group done with a link queues one mail per distinct opted-in address among its
comments (``notify.queue_message``, deduplicated per address and link, so marking it again sends
nothing); any change of status queues a ``request.status_changed`` webhook.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from flask import render_template

from comments_service.extensions import manifest_or_none
from comments_service.mail import notify, webhook_events
from comments_service.mail.links import MailSetupError, site_name
from comments_service.models import Comment, RequestGroup, RequestStatus, utc_now
from comments_service.outbox import webhooks
from comments_service.tally.groups import (
    GROUP_ID,
    LABEL_LIMIT,
    MOVED_OUT,
    RequestActionError,
    TallyStore,
    group_members,
    is_reader_request_candidate,
    resolve,
    under_tally_lock,
)
from comments_service.tally.views import RequestView, count_people, request_view

logger = logging.getLogger(__name__)

LINK_LIMIT = 2000


def _known_group(store: TallyStore, group_id: str) -> str:
    if not isinstance(group_id, str) or not GROUP_ID.fullmatch(group_id):
        raise RequestActionError("No such request group.")
    groups = store.request_groups()
    resolved = resolve(groups, group_id)
    if resolved in groups or group_members(store, groups, resolved):
        return resolved
    raise RequestActionError("No such request group.")


def _decide(store: TallyStore, group_id: str) -> None:
    """Give a group the author acted on a record (if it has none), so regroup keeps it."""
    store.update_request_group(group_id, lambda group: group if group.updated else replace(
        group, updated=utc_now()))


@under_tally_lock
def rename(store: TallyStore, group_id: str, label: str | None) -> RequestGroup:
    """Set the label the author sees (blank: back to the suggestion)."""
    group_id = _known_group(store, group_id)
    text = " ".join((label or "").split())
    if len(text) > LABEL_LIMIT:
        raise RequestActionError(f"A label has at most {LABEL_LIMIT} characters.")
    return store.update_request_group(
        group_id, lambda group: replace(group, label=text or None, updated=utc_now()))


@under_tally_lock
def merge(store: TallyStore, group_id: str, into: str) -> str:
    """Put every comment of ``group_id`` into ``into``; returns the group they are in now."""
    source = _known_group(store, group_id)
    target = _known_group(store, into)
    if source == target:
        raise RequestActionError("A group cannot be merged into itself.")
    store.update_request_group(
        source, lambda group: replace(group, merged_into=target, updated=utc_now()))
    _decide(store, target)
    moved = group_members(store, store.request_groups(), target)
    store.set_comment_requests({filing.id: target for filing in moved
                                if filing.request != target})
    return target


@under_tally_lock
def move(store: TallyStore, comment_id: str, to: str | None) -> str | None:
    """Move one comment to another group, or out of every group (``to`` empty)."""
    comment = store.get_comment(comment_id)
    if comment is None or not is_reader_request_candidate(comment):
        raise RequestActionError("Only readers' comments can be moved between requests.")
    target = _known_group(store, to) if to else MOVED_OUT
    store.update_comment(comment_id, lambda stored: replace(stored, request=target,
                                                            request_filed=True))
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


@under_tally_lock
def set_status(store: TallyStore, group_id: str, status: str, link: str | None) -> StatusChange:
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
    view = request_view(store, group_id, manifest_or_none())
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


def queue_follow_ups(store: TallyStore, view: RequestView, group: RequestGroup) -> list[Any]:
    """One mail per distinct opted-in address (notify and an email) among the group's
    comments, saying the request is done and where. Deduplicated per address and link: marking
    it done again queues nothing new."""
    by_address: dict[str, Comment] = {}
    for comment in view.comments:
        if comment.notify and comment.email:
            by_address.setdefault(comment.email.strip().casefold(), comment)
    manifest = manifest_or_none()
    queued = []
    for address, comment in by_address.items():
        article = manifest.article(comment.thread) if manifest is not None else None
        context = {
            "site_name": site_name(manifest), "comment": comment, "label": view.label,
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
        except MailSetupError as error:
            logger.error("No follow-up for request %s: %s", view.id, error)
            break
        if message is not None:
            queued.append(message)
    return queued

