"""The reader beside the reply box (#24): who this reader is to the author, from what they gave.

    GET /moderate/readers/<reader_key>   every comment of one reader, newest first, with the
                                         author's replies ("show all" from the panel)

The panel on a comment's page shows the reader's earlier comments (newest first, at most
PANEL_SIZE) with the author's replies, since when and how often they have written, the requests
their comments are filed under, and whether they asked to hear back by email. Readers are
told apart by their reader_key (their email when they gave one, else their browser's token:
comments/posting.reader_key); nothing is shown that the reader did not write or choose. It
costs one indexed lookup (CommentStore.reader_history), whatever the size of the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import Blueprint, abort, render_template

from comments_service.extensions import manifest, store
from comments_service.models import Comment, CommentState, parse_time
from comments_service.moderation.auth import login_required
from comments_service.store import ReaderHistory
from comments_service.tally.groups import MOVED_OUT, resolve

bp = Blueprint("readers", __name__, url_prefix="/readers")

PANEL_SIZE = 5
READER_KEY_LIMIT = 128


@dataclass(frozen=True)
class EarlierComment:
    """One of the reader's comments as the panel lists it."""

    comment: Comment
    article_title: str | None
    replies: list[Comment]


@dataclass(frozen=True)
class ReaderPanel:
    """What the comment page shows about its reader."""

    reader_key: str
    name: str
    earlier: list[EarlierComment]
    total: int  # every comment of the reader's, this one included
    since: datetime | None
    # Labels of the requests their newest comments are filed under.
    requests: list[str] = field(default_factory=list)
    follows_by_email: bool = False
    earlier_replies: list[Comment] = field(default_factory=list)  # for the nudge

    @property
    def more(self) -> bool:
        """Whether "show all" has more than the panel shows."""
        return self.total - 1 > len(self.earlier)


def _title(thread: str) -> str | None:
    article = manifest().article(thread)
    return article.title if article else None


def _earlier(history: ReaderHistory, skip: str | None, size: int | None) -> list[EarlierComment]:
    listed = [comment for comment in history.comments if comment.id != skip]
    return [EarlierComment(comment, _title(comment.thread), history.replies.get(comment.id, []))
            for comment in listed[:size]]


def reader_panel(comment: Comment) -> ReaderPanel | None:
    """The panel for a reader's comment; None for the author's, or a reader without a key."""
    if comment.is_author or not comment.reader_key:
        return None
    # One more than shown: the comment on the page is usually the newest of them.
    history = store().reader_history(comment.reader_key, limit=PANEL_SIZE + 1)
    groups = store().request_groups()
    requests = []
    for earlier in history.comments:
        if earlier.request_filed and earlier.request and earlier.request != MOVED_OUT:
            group = groups.get(resolve(groups, earlier.request))
            label = group.label if group and group.label else None
            if label and label not in requests:
                requests.append(label)
    replies = [reply for answered, answers in history.replies.items()
               if answered != comment.id for reply in answers]
    return ReaderPanel(
        reader_key=comment.reader_key, name=comment.name,
        earlier=_earlier(history, comment.id, PANEL_SIZE), total=history.total,
        since=parse_time(history.first) if history.first else None, requests=requests,
        follows_by_email=any(earlier.notify and earlier.email
                             and earlier.state is not CommentState.SPAM
                             for earlier in history.comments),
        earlier_replies=replies,
    )


@bp.get("/<reader_key>", endpoint="show")
@login_required
def show_reader(reader_key: str):
    """Every comment of one reader, newest first, with the author's replies."""
    if len(reader_key) > READER_KEY_LIMIT:
        abort(404)
    history = store().reader_history(reader_key, limit=10_000)
    if not history.comments:
        abort(404)
    return render_template("moderation/reader.html", history=history,
                           earlier=_earlier(history, None, None),
                           name=history.comments[0].name,
                           since=parse_time(history.first) if history.first else None)
