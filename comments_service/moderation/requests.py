"""The tallied requests for the author: pages under /moderate/requests.

    GET  /moderate/requests                      groups asked for by two or more people, most
                                                 people first (?all=1: every group), a chart
    GET  /moderate/requests/themes               answers to each reflection question, in themes
    GET  /moderate/requests/<id>                 one group: every comment, move them
    POST /moderate/requests/<id>/rename          label (blank: back to the suggestion)
    POST /moderate/requests/<id>/merge           into: another group's id
    POST /moderate/requests/<id>/status          status open|planned|done, link (http/https)
    POST /moderate/requests/move                 comment, to: a group's id or blank (out)

A request counts the people whose comments the author filed under it (tally/filing.py); the
service's own guesses are listed apart, uncounted, to confirm or reject. The logic is tally/;
this module lays it out, as a blueprint nested in the moderation one (moderation/__init__.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from markupsafe import Markup

from comments_service.extensions import store
from comments_service.manifest import Manifest, ManifestError
from comments_service.models import RequestStatus
from comments_service.moderation.auth import login_required
from comments_service.moderation.queue import comment_views, page_number, waited
from comments_service.tally import actions as tally_actions
from comments_service.tally import themes as tally_themes
from comments_service.tally import views as tally_views
from comments_service.tally.embedders import lexical_fallback
from comments_service.tally.groups import GROUP_ID, RequestActionError
from comments_service.wording import plural, shorten

CHART_WIDTH = 640
CHART_ROWS = 12
ROW_HEIGHT = 26
LABEL_WIDTH = 250  # the bars start here; labels are clipped to fit
BAR_RIGHT = 600
LABEL_CHARS = 36
bp = Blueprint("requests", __name__, url_prefix="/requests")

STATUS_LABELS = {RequestStatus.OPEN: "open", RequestStatus.PLANNED: "planned",
                 RequestStatus.DONE: "done"}


def _manifest() -> Manifest | None:
    try:
        return current_app.extensions["tellmemore.manifest"].get()
    except ManifestError:
        return None


def people_chart(views: list[tally_views.RequestView]) -> dict[str, Any]:
    """Horizontal bars: people per group, for the first CHART_ROWS groups."""
    shown = views[:CHART_ROWS]
    top = max([1, *(view.people for view in shown)])
    rows = []
    for number, view in enumerate(shown):
        width = round((BAR_RIGHT - LABEL_WIDTH) * view.people / top, 1)
        rows.append({
            "y": 10 + number * ROW_HEIGHT, "label": shorten(view.label, LABEL_CHARS),
            "width": max(width, 2), "people": view.people,
            "title": f"{view.label}: {plural(view.people, 'person', 'people')}, "
                     f"{plural(view.count, 'comment')}",
        })
    if shown:
        description = (f"People asking for each of the {len(shown)} most asked-for requests. "
                       f"Most asked: {shown[0].label}, by "
                       f"{plural(shown[0].people, 'person', 'people')}.")
    else:
        description = "No request has been asked for by two people yet."
    return {"rows": rows, "width": CHART_WIDTH, "height": 20 + max(1, len(shown)) * ROW_HEIGHT,
            "left": LABEL_WIDTH, "description": description, "bar_height": ROW_HEIGHT - 8}


def merge_options(views: list[tally_views.RequestView]) -> dict[str, Markup]:
    """For each of ``views``, the <option>s of the others (what it may be merged into), each
    option rendered once: a list of n requests has n merge forms of n - 1 options."""
    options = [(view.id, str(Markup('<option value="{}">{} ({})</option>').format(
        view.id, view.label, view.people))) for view in views]
    # Each option is escaped once above; joined as plain text, then marked safe as a whole.
    return {view.id: Markup("".join(option for option_id, option in options  # noqa: S704
                                    if option_id != view.id)) for view in views}


@bp.get("", endpoint="index")
@login_required
def requests_page():
    """The tallied requests, most people first."""
    show_all = request.args.get("all") == "1"
    everything = tally_views.overview(store(), _manifest(), min_people=1)
    views = everything if show_all else [view for view in everything
                                         if view.people >= tally_views.MIN_PEOPLE]
    # Every listed request's label is in the merge forms; the shown ones' samples too.
    tally_views.read_shown(store(), everything)
    return render_template(
        "moderation/requests.html", views=views, show_all=show_all,
        hidden=len(everything) - len(views), chart=people_chart(views),
        merge_options=merge_options(everything), status_labels=STATUS_LABELS,
        statuses=list(RequestStatus),
        lexical_fallback=lexical_fallback(),
    )


@bp.get("/themes", endpoint="themes")
@login_required
def themes_page():
    """The answers to each reflection question, grouped into themes."""
    return render_template("moderation/request_themes.html",
                           themes=tally_themes.question_themes(store(), _manifest(),
                                                               page_number()))


@bp.get("/<group_id>", endpoint="detail")
@login_required
def request_detail(group_id: str):
    if not GROUP_ID.fullmatch(group_id):
        abort(404)
    view = tally_views.request_view(store(), group_id, _manifest())
    if view is None:
        abort(404)
    if view.id != group_id:
        return redirect(url_for("moderation.requests.detail", group_id=view.id), 303)
    others = [other for other in tally_views.overview(store(), None, min_people=1)
              if other.id != view.id]
    tally_views.read_shown(store(), others)  # their labels, in the merge form, in one read
    return render_template(
        "moderation/request.html", view=view, cards=comment_views(view.comments),
        maybe_cards=comment_views(view.maybe),
        others=others, merge_options=merge_options([view, *others]),
        status_labels=STATUS_LABELS, statuses=list(RequestStatus),
        waited=waited,
    )


def _back(group_id: str | None = None):
    target = request.form.get("back")
    if target == "detail" and group_id:
        return redirect(url_for("moderation.requests.detail", group_id=group_id), 303)
    return redirect(url_for("moderation.requests.index"), 303)


@bp.post("/<group_id>/rename", endpoint="rename")
@login_required
def rename_request(group_id: str):
    try:
        tally_actions.rename(store(), group_id, request.form.get("label"))
    except RequestActionError as error:
        flash(str(error), "error")
    else:
        flash("Label saved.", "success")
    return _back(group_id)


@bp.post("/<group_id>/merge", endpoint="merge")
@login_required
def merge_request(group_id: str):
    try:
        target = tally_actions.merge(store(), group_id, request.form.get("into", ""))
    except RequestActionError as error:
        flash(str(error), "error")
        return _back(group_id)
    flash("Merged.", "success")
    return _back(target)


@bp.post("/<group_id>/status", endpoint="status")
@login_required
def request_status(group_id: str):
    try:
        change = tally_actions.set_status(store(), group_id, request.form.get("status", ""),
                                          request.form.get("link"))
    except RequestActionError as error:
        flash(str(error), "error")
        return _back(group_id)
    message = f"Marked {STATUS_LABELS[change.group.status]}."
    if change.group.status is RequestStatus.DONE:
        message += (f" {change.follow_ups} reader{'s' if change.follow_ups != 1 else ''} who "
                    "asked for mail will be told (see the outbox).")
    flash(message, "success")
    return _back(group_id)


@bp.post("/move", endpoint="move")
@login_required
def move_comment():
    source = request.form.get("from", "")
    try:
        target = tally_actions.move(store(), request.form.get("comment", ""),
                                    request.form.get("to") or None)
    except RequestActionError as error:
        flash(str(error), "error")
    else:
        flash("Moved." if target else "Taken out of every request.", "success")
    return _back(source if GROUP_ID.fullmatch(source) else None)
