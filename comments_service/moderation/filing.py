"""Filing a reader's comment under a request, from the moderation pages or a script.

    GET  /moderate/comments/<id>          with Accept: application/json: the comment, its
                                          ranked request suggestions, the preselected one, the
                                          request it is filed under, and a CSRF token
    POST /moderate/comments/<id>/request  choice = a request id, "new" (with label) or "none";
                                          with Accept: application/json answers
                                          {"request": {"id", "label", "people"} | null};
                                          reject = a request id: not that machine guess

The same ``choice``/``label`` fields work on the reply form (queue.py files the comment with
the reply). The logic is tally/filing.py and tally/ranking.py; this module speaks HTTP. Errors
are JSON or a page (errors.error_response): an unknown request id or an empty label for "new"
is 422 naming the field, a spam or withdrawn comment 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask_wtf.csrf import generate_csrf

from comments_service.errors import error_response, wants_json
from comments_service.extensions import store
from comments_service.models import Comment
from comments_service.moderation.auth import login_required, safe_next
from comments_service.tally import filing as tally_filing
from comments_service.tally import ranking
from comments_service.tally.embedders import lexical_fallback
from comments_service.tally.groups import MOVED_OUT, resolve
from comments_service.tally.views import request_view, suggested_label

bp = Blueprint("filing", __name__)


def filed_request(comment: Comment) -> dict[str, Any] | None:
    """The request the author filed ``comment`` under, as {id, label, people}; None when it
    is not filed, or filed as not a request."""
    if not comment.request_filed or not comment.request or comment.request == MOVED_OUT:
        return None
    view = request_view(store(), comment.request)
    return None if view is None else filed_answer(view.id, view.label, view.people)


def filed_answer(request_id: str, label: str, people: int) -> dict[str, Any]:
    """A request a comment is filed under, as pages and scripts are told it."""
    return {"id": request_id, "label": label, "people": people}


def comment_json(comment: Comment) -> dict[str, Any]:
    """The JSON view of one comment for the author: what to file it under."""
    ranked = ranking.rank(store(), comment)
    return {
        "comment": {"id": comment.id, "thread": comment.thread, "name": comment.name,
                    "body": comment.body, "state": comment.state.value,
                    "question": comment.question, "created": comment.created,
                    "request_filed": comment.request_filed},
        "request_suggestions": [
            {"id": suggestion.id, "label": suggestion.label, "people": suggestion.people,
             "score": suggestion.score} for suggestion in ranked.suggestions],
        "suggested_choice": ranked.preselected,
        "request": filed_request(comment),
        "csrf_token": generate_csrf(),
    }


@dataclass(frozen=True)
class FilingChoices:
    """What the reply form offers to file a comment under, and what is checked."""

    suggestions: list[ranking.Suggestion]
    checked: str  # a request id, "new", "none", or "" (decide later)
    new_label: str
    filed: dict[str, Any] | None
    lexical_fallback: str | None  # why suggestions compare words only, if they do


def filing_choices(comment: Comment, chosen: str | None = None,
                   label: str | None = None) -> FilingChoices | None:
    """The filing part of a reader comment's page (None for the author's own comments)."""
    if comment.is_author or comment.state.value not in ("awaiting_reply", "replied"):
        return None
    ranked = ranking.rank(store(), comment)
    filed = filed_request(comment)
    if chosen is None:
        if comment.request_filed:
            chosen = filed["id"] if filed else tally_filing.NONE
        else:
            chosen = ranked.preselected or ""
    return FilingChoices(ranked.suggestions, chosen,
                         label if label is not None else suggested_label([comment]), filed,
                         lexical_fallback())


def queue_filings(comments: list[Comment]) -> dict[str, FilingChoices]:
    """The filing form of each reader comment on a page of the queue, by comment id: its
    suggestions and preselection, ranked together (ranking.rank_many), and the request it is
    filed under, from the same look at the site's requests."""
    fileable = [comment for comment in comments if not comment.is_author
                and comment.state.value in ("awaiting_reply", "replied")]
    fallback = lexical_fallback()
    groups = store().request_groups()
    site = ranking.site_requests(store(), groups)
    filings = {}
    ranked_all = ranking.rank_many(store(), fileable, site=site, groups=groups)
    for comment, ranked in zip(fileable, ranked_all, strict=True):
        filed = None
        if comment.request_filed and comment.request and comment.request != MOVED_OUT:
            request_id = resolve(groups, comment.request)
            if request_id in site.people:
                filed = filed_answer(request_id, site.labels[request_id],
                                     site.people[request_id])
        checked = ((filed["id"] if filed else tally_filing.NONE) if comment.request_filed
                   else ranked.preselected or "")
        filings[comment.id] = FilingChoices(ranked.suggestions, checked,
                                            suggested_label([comment]), filed, fallback)
    return filings


def refusal(error: tally_filing.FilingRefused):
    """The HTTP answer to a filing that cannot be done (JSON for a script, else a page)."""
    code = {404: "not_found", 409: "conflict"}.get(error.status, "invalid_filing")
    fields = {error.field: str(error)}
    if wants_json():
        return {"error": code, "message": str(error), "fields": fields}, error.status
    return error_response(error.status, code, str(error), fields)


def _reject(comment_id: str, request_id: str):
    """The machine's guess ``request_id`` is wrong for this comment (the "maybe also" list)."""
    try:
        tally_filing.reject_suggestion(store(), comment_id, request_id)
    except tally_filing.FilingRefused as error:
        return refusal(error)
    if wants_json():
        return {"request": None}
    flash("Taken out of the request's guesses.", "success")
    return redirect(safe_next(request.form.get("next")) or url_for(
        "moderation.queue.show_comment", comment_id=comment_id), code=303)


@bp.post("/comments/<comment_id>/request")
@login_required
def file_comment(comment_id: str):
    """File the comment under a request, a new one, or none (the form's ``choice``)."""
    choice = request.form.get("choice", "")
    if request.form.get("reject"):
        return _reject(comment_id, request.form["reject"])
    try:
        filed = tally_filing.file_comment(store(), comment_id, choice, request.form.get("label"))
    except tally_filing.FilingRefused as error:
        if not wants_json() and error.status == 422:
            flash(str(error), "error")
            return redirect(url_for("moderation.queue.show_comment", comment_id=comment_id),
                            code=303)
        return refusal(error)
    answer = filed_request(filed.comment)
    if wants_json():
        return {"request": answer}
    # From a list (the queue), say whose comment it was; on its own page, that is plain.
    what = f"{filed.comment.name}\u2019s comment filed" if request.form.get("next") else "Filed"
    flash(f"{what} under “{answer['label']}”." if answer else f"{what} as not a request.",
          "success")
    return redirect(safe_next(request.form.get("next")) or url_for(
        "moderation.queue.show_comment", comment_id=comment_id), code=303)
