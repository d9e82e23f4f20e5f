"""The reply queue's pages under /moderate: the reply queue, one comment with its reply form, the
spam pile, all comments, and editing or deleting replies. Every route needs a signed-in author;
every change is a POST with a CSRF token (auth.py). Plain HTML forms; moderation.js only adds
keyboard shortcuts and a live preview.

    GET  /moderate/                                  the queue, oldest first (filters, pages)
    GET  /moderate/comments/<id>                     one comment, its context, the reply form
    POST /moderate/comments/<id>/reply               preview / reply / reply & next
    POST /moderate/comments/<id>/approve             public without a reply (still waiting)
    POST /moderate/comments/<id>/spam                to the spam pile
    POST /moderate/comments/<id>/not-spam            back to the queue
    GET  /moderate/spam                              the spam pile
    GET  /moderate/all                               every comment: search, state, article
    GET  /moderate/replies/<id>/edit                 edit one of the author's replies
    POST /moderate/replies/<id>/edit
    POST /moderate/replies/<id>/delete               delete it (the comment may re-enter the queue)
    POST /moderate/preview                           Markdown preview for the script
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from comments_service import metrics
from comments_service.comments import replying
from comments_service.comments.nudge import NudgeWarning, check_reply
from comments_service.comments.render import render_comment
from comments_service.comments.validation import ValidationFailed
from comments_service.errors import wants_json
from comments_service.extensions import manifest, store
from comments_service.manifest import ArticleEntry
from comments_service.models import Comment, CommentState, parse_time
from comments_service.moderation.auth import login_required
from comments_service.moderation.filing import comment_json, filing_choices, queue_filings
from comments_service.moderation.readers import ReaderPanel, reader_panel
from comments_service.tally import filing as tally_filing

bp = Blueprint("queue", __name__)

PER_PAGE = 25
# How many matches of a text search are counted before "more than" is shown instead.
SEARCH_COUNTED = 500
MAX_SEARCH = 200  # characters of a search's text: a longer one is refused, not cut short
STATE_LABELS = {
    CommentState.AWAITING_REPLY: "waiting for a reply",
    CommentState.REPLIED: "replied",
    CommentState.SPAM: "spam",
    CommentState.WITHDRAWN: "withdrawn",
    CommentState.POSTED: "your reply",
}
SHORTCUTS = (
    ("j / k", "next / previous comment"),
    ("r", "focus the reply box"),
    ("Ctrl+Enter or ⌘+Enter", "send: Reply & next"),
    ("s", "mark as spam"),
    ("a", "approve without replying"),
    ("?", "show these shortcuts"),
)


def moderation_context() -> dict[str, Any]:
    """Header counts, state labels and shortcuts for every moderation page."""
    if getattr(g, "current_author", None) is None:
        return {}
    counts = store().state_counts()
    return {
        "header_counts": {
            "waiting": counts[CommentState.AWAITING_REPLY],
            "spam": counts[CommentState.SPAM],
        },
        "state_labels": STATE_LABELS,
        "shortcuts": SHORTCUTS,
    }


# --- helpers ---------------------------------------------------------------------------------


def waited(created: str, now: datetime | None = None) -> str:
    """How long a comment has waited, for people: "5 min", "3 h", "2 days"."""
    seconds = ((now or datetime.now(UTC)) - parse_time(created)).total_seconds()
    if seconds < 90:
        return "just now"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def ancestors(comment: Comment) -> list[Comment]:
    """The earlier messages this comment answers, oldest first (one look-up per level)."""
    chain: list[Comment] = []
    parent_id = comment.parent
    while parent_id and all(earlier.id != parent_id for earlier in chain):
        parent = store().get_comment(parent_id)
        if parent is None:
            break
        chain.insert(0, parent)
        parent_id = parent.parent
    return chain


@dataclass(frozen=True)
class CommentView:
    """A comment as a moderation page shows it."""

    comment: Comment
    article: ArticleEntry | None
    question_text: str | None
    waited: str
    context: list[Comment]
    replies: list[Comment]


def comment_views(comments: list[Comment]) -> list[CommentView]:
    """Comments with article, question, waiting time, context and the author's replies, read
    through the store's indexes: no thread is read whole, whatever its size (#19)."""
    current = manifest()
    replies = store().author_replies_to(comment.id for comment in comments)
    views = []
    for comment in comments:
        article = current.article(comment.thread)
        question = article.question(comment.question) if article and comment.question else None
        standing = [reply for reply in replies.get(comment.id, [])
                    if reply.state is CommentState.POSTED]
        views.append(CommentView(
            comment, article, question.text if question else comment.question,
            waited(comment.created), ancestors(comment), standing,
        ))
    return views


def filters() -> dict[str, str]:
    """The queue filters of this request (kept across Reply & next)."""
    chosen = {}
    for name in ("thread", "question"):
        value = (request.values.get(name) or "").strip()
        if value:
            chosen[name] = value
    return chosen


# Far past any real page, and small enough for every slice the store takes (10^20 was a 500).
MAX_PAGE = 1_000_000


def page_number() -> int:
    """The ?page= of a list: a whole number from 1 to MAX_PAGE, else 400."""
    value = request.args.get("page", "1").strip()
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        abort(400, f"page must be a whole number from 1 to {MAX_PAGE:,}")
    return int(value)


def neighbours(comment: Comment, chosen: dict[str, str]) -> tuple[str | None, str | None]:
    """The previous and next waiting comments around ``comment`` in queue order."""
    return store().queue_neighbours(comment, thread=chosen.get("thread"),
                                    question=chosen.get("question"))


def first_waiting(chosen: dict[str, str]) -> str | None:
    head = store().comments_in_state(
        CommentState.AWAITING_REPLY, thread=chosen.get("thread"),
        question=chosen.get("question"), limit=1,
    )
    return head[0].id if head else None


def next_to_answer(comment_id: str, chosen: dict[str, str]) -> str:
    """The page of the next comment to answer, opened with the reply box focused (``reply=1``):
    one key a comment, the reply's text and Ctrl+Enter (#24)."""
    return url_for(".show_comment", comment_id=comment_id, reply=1, **chosen)


def draft_digest(draft: str) -> str:
    return hashlib.sha256(draft.strip().encode()).hexdigest()[:16]


def comment_or_404(comment_id: str) -> Comment:
    comment = store().get_comment(comment_id)
    if comment is None:
        abort(404, "No such comment.")
    return comment


# --- the queue -------------------------------------------------------------------------------


@bp.get("/", endpoint="index")
@login_required
def queue():
    """Comments waiting for a reply, oldest first."""
    chosen = filters()
    page = page_number()
    total = store().count_in_state(
        CommentState.AWAITING_REPLY, thread=chosen.get("thread"), question=chosen.get("question")
    )
    waiting = store().comments_in_state(
        CommentState.AWAITING_REPLY, thread=chosen.get("thread"),
        question=chosen.get("question"), limit=PER_PAGE, offset=(page - 1) * PER_PAGE,
    )
    current = manifest()
    selected = current.article(chosen["thread"]) if "thread" in chosen else None
    return render_template(
        "moderation/queue.html",
        items=comment_views(waiting), total=total, page=page,
        pages=max(1, -(-total // PER_PAGE)), chosen=chosen,
        articles=sorted(current.articles.values(), key=lambda article: article.title.casefold()),
        selected=selected, deadlines=metrics.deadlines(
            waiting, datetime.now(UTC), metrics.targets_from_config(current_app.config)),
        filings=queue_filings(waiting),
    )


# --- one comment and the reply ---------------------------------------------------------------


def render_comment_page(
    comment: Comment, *, draft: str = "", warnings: list[NudgeWarning] | None = None,
    preview: str | None = None, errors: dict[str, str] | None = None, status: int = 200,
    reader: ReaderPanel | None = None,
):
    """``reader``: the reader panel when the caller has it already (the nudge used it)."""
    chosen = filters()
    previous, following = neighbours(comment, chosen)
    [view] = comment_views([comment])
    posted = request.method == "POST"
    filing = filing_choices(comment, request.form.get("choice") if posted else None,
                            request.form.get("label") if posted else None)
    # Arriving to answer it (reply & next, the queue's "start replying"): the reply box has the
    # focus, with the browser's autofocus, so it works without the script too.
    focus_reply = not posted and request.args.get("reply") == "1"
    return render_template(
        "moderation/comment.html", view=view, draft=draft, warnings=warnings or [],
        draft_digest=draft_digest(draft),
        preview=preview, errors=errors or {}, chosen=chosen,
        previous_id=previous, next_id=following, filing=filing, focus_reply=focus_reply,
        reader=reader or reader_panel(comment),
        titles={thread: article.title for thread, article in manifest().articles.items()},
    ), status


@bp.get("/comments/<comment_id>")
@login_required
def show_comment(comment_id: str):
    """One comment with its context and the reply form (as JSON for scripts: its request
    suggestions and filing, moderation/filing.py)."""
    comment = comment_or_404(comment_id)
    if wants_json():
        return comment_json(comment)
    return render_comment_page(comment)


@bp.post("/comments/<comment_id>/reply")
@login_required
def reply(comment_id: str):
    """Preview, or send the reply (after the nudge, unless the author sends anyway)."""
    comment = comment_or_404(comment_id)
    draft = request.form.get("body", "")
    intent = request.form.get("intent", "reply")
    if intent == "preview":
        return render_comment_page(comment, draft=draft, preview=render_comment(draft))
    # The nudge lets through only the very text it warned about: an edited draft is checked
    # again. It runs on "send anyway" too, so the reply keeps what it was warned about.
    panel = reader_panel(comment)
    warnings = check_reply(draft, comment, store().author_replies(limit=2000),
                           panel.earlier_replies if panel else [])
    if warnings and request.form.get("nudged") != draft_digest(draft):
        return render_comment_page(
            comment, draft=draft, warnings=warnings, preview=render_comment(draft), reader=panel
        )
    # The reply form may file the comment under a request in the same submit (filing.py).
    choice, label = request.form.get("choice", ""), request.form.get("label")
    if choice:
        try:
            tally_filing.check_choice(store(), comment_id, choice, label)
        except tally_filing.FilingRefused as refused:
            return render_comment_page(comment, draft=draft, errors={refused.field: str(refused)},
                                       status=refused.status)
    try:
        replying.reply(store(), comment_id, g.current_author, draft,
                       tuple(warning.kind for warning in warnings))
    except ValidationFailed as failure:
        return render_comment_page(comment, draft=draft, errors=failure.fields, status=422)
    except replying.ActionRefused as refused:
        flash(str(refused), "error")
        return redirect(url_for(".show_comment", comment_id=comment_id, **filters()), code=303)
    flash(f"Replied to {comment.name}.", "success")
    if choice:
        try:
            tally_filing.file_comment(store(), comment_id, choice, label)
        except tally_filing.FilingRefused as refused:  # changed since the check: say so
            flash(f"Not filed: {refused}", "error")
    chosen = filters()
    if intent == "reply_next":
        following = neighbours(comment, chosen)[1] or first_waiting(chosen)
        if following:
            return redirect(next_to_answer(following, chosen), code=303)
        flash("The queue is empty: every comment has its reply.", "success")
    return redirect(url_for(".index", **chosen), code=303)


@bp.post("/preview")
@login_required
def preview():
    """The Markdown of a draft as the reader will see it (for the live preview)."""
    return jsonify(html=render_comment(request.form.get("body", "")))


def _after_action(comment_id: str, message: str):
    flash(message, "success")
    target = request.form.get("return_to")
    if target == "next":
        chosen = filters()
        following = (neighbours(comment_or_404(comment_id), chosen)[1]
                     or first_waiting(chosen))
        if following and following != comment_id:
            return redirect(next_to_answer(following, chosen), code=303)
        return redirect(url_for(".index", **chosen), code=303)
    if target == "queue":
        return redirect(url_for(".index", **filters()), code=303)
    if target == "spam":
        return redirect(url_for(".spam"), code=303)
    return redirect(url_for(".show_comment", comment_id=comment_id, **filters()), code=303)


def _refused(comment_id: str, refused: replying.ActionRefused):
    flash(str(refused), "error")
    return redirect(url_for(".show_comment", comment_id=comment_id), code=303)


@bp.post("/comments/<comment_id>/approve")
@login_required
def approve(comment_id: str):
    """Publish without replying; the comment keeps waiting for a reply."""
    try:
        comment = replying.approve(store(), comment_id)
    except replying.ActionRefused as refused:
        return _refused(comment_id, refused)
    return _after_action(comment_id, f"{comment.name}'s comment is public; it still waits for "
                                     "your reply.")


@bp.post("/comments/<comment_id>/spam")
@login_required
def mark_spam(comment_id: str):
    """Out of the queue and of public view; restorable from the spam pile."""
    chosen = filters()
    following = neighbours(comment_or_404(comment_id), chosen)[1]
    try:
        comment = replying.mark_spam(store(), comment_id)
    except replying.ActionRefused as refused:
        return _refused(comment_id, refused)
    flash(f"{comment.name}'s comment was moved to spam.", "success")
    if request.form.get("return_to") == "next" and following:
        return redirect(next_to_answer(following, chosen), code=303)
    return redirect(url_for(".index", **chosen), code=303)


@bp.post("/comments/<comment_id>/not-spam")
@login_required
def not_spam(comment_id: str):
    """Restore a comment from the spam pile."""
    immediately = current_app.config["PUBLISH_POLICY"] == "immediately"
    try:
        comment = replying.restore(store(), comment_id, immediately)
    except replying.ActionRefused as refused:
        return _refused(comment_id, refused)
    return _after_action(comment_id, f"{comment.name}'s comment is back in the queue.")


# --- the spam pile and all comments ----------------------------------------------------------


@bp.get("/spam")
@login_required
def spam():
    """Comments kept as spam, oldest first, each restorable."""
    page = page_number()
    total = store().count_in_state(CommentState.SPAM)
    comments = store().comments_in_state(
        CommentState.SPAM, limit=PER_PAGE, offset=(page - 1) * PER_PAGE
    )
    return render_template(
        "moderation/spam.html", items=comment_views(comments), total=total, page=page,
        pages=max(1, -(-total // PER_PAGE)),
    )


@bp.get("/all")
@login_required
def all_comments():
    """Every comment, newest first: search by text or name, filter by state and article."""
    text = (request.args.get("q") or "").strip() or None
    if text is not None and len(text) > MAX_SEARCH:
        abort(400, f"Search for at most {MAX_SEARCH} characters.")
    state_value = request.args.get("state") or None
    thread = request.args.get("thread") or None
    try:
        state = CommentState(state_value) if state_value else None
    except ValueError:
        abort(400, f"Unknown state {state_value!r}.")
    page = page_number()
    # A search counts its matches only up to SEARCH_COUNTED (or to the page asked for): a
    # common word then costs the pages it shows, not a check of every stored comment.
    counted = max(SEARCH_COUNTED, page * PER_PAGE) if text else None
    comments, total = store().find_comments(
        text=text, state=state, thread=thread, limit=PER_PAGE, offset=(page - 1) * PER_PAGE,
        count_up_to=counted,
    )
    more = counted is not None and total > counted
    if state is not CommentState.POSTED:
        comments = answered_instead_of_replies(comments)
    current = manifest()
    return render_template(
        "moderation/all.html", items=comment_views(comments), total=total, page=page,
        pages=max(1, -(-total // PER_PAGE)), query=text or "", state=state_value or "",
        thread=thread or "", states=list(CommentState), more=more, counted=counted,
        max_search=MAX_SEARCH,
        articles=sorted(current.articles.values(), key=lambda article: article.title.casefold()),
    )


def answered_instead_of_replies(comments: list[Comment]) -> list[Comment]:
    """The list with each author reply replaced by the comment it answers (once), so a reply
    shows only under that comment's card, where it is listed with its Edit and Delete."""
    shown: list[Comment] = []
    seen: set[str] = set()
    for comment in comments:
        if comment.is_author and comment.parent:
            comment = store().get_comment(comment.parent) or comment
        if comment.id not in seen:
            seen.add(comment.id)
            shown.append(comment)
    return shown


# --- the author's own replies ----------------------------------------------------------------


def reply_or_404(reply_id: str) -> Comment:
    comment = store().get_comment(reply_id)
    if comment is None or not comment.is_author or comment.state is CommentState.WITHDRAWN:
        abort(404, "No such reply.")
    return comment


@bp.get("/replies/<reply_id>/edit")
@login_required
def edit_reply_form(reply_id: str):
    """A form to change one of the author's replies."""
    answer = reply_or_404(reply_id)
    return render_template("moderation/edit_reply.html", reply=answer, draft=answer.body,
                           errors={})


@bp.post("/replies/<reply_id>/edit")
@login_required
def edit_reply(reply_id: str):
    """Save the changed reply."""
    answer = reply_or_404(reply_id)
    draft = request.form.get("body", "")
    # The metrics judge a reply as it stands: an edited reply is checked by the nudge again
    # (against the author's other replies) and keeps what it would now be warned about.
    answered = store().get_comment(answer.parent) if answer.parent else None
    warnings = [] if answered is None else check_reply(
        draft, answered, [other for other in store().author_replies(limit=2000)
                          if other.id != reply_id])
    try:
        replying.edit_reply(store(), reply_id, draft,
                            tuple(warning.kind for warning in warnings))
    except ValidationFailed as failure:
        page = render_template("moderation/edit_reply.html", reply=answer, draft=draft,
                               errors=failure.fields)
        return page, 422
    flash("Your reply was changed.", "success")
    return redirect(url_for(".show_comment", comment_id=answer.parent), code=303)


@bp.post("/replies/<reply_id>/delete")
@login_required
def delete_reply(reply_id: str):
    """Delete one of the author's replies."""
    answer = reply_or_404(reply_id)
    requeued = replying.delete_reply(store(), reply_id)
    if requeued is not None and requeued.state is CommentState.AWAITING_REPLY:
        flash("Reply deleted. The comment is back in the queue.", "success")
    else:
        flash("Reply deleted.", "success")
    return redirect(url_for(".show_comment", comment_id=answer.parent), code=303)
