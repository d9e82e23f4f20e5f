"""The signed-in author's own account: ending every session and changing the password.

    POST /moderate/sign-out-everywhere   end every session of this author, on every device
    GET  /moderate/password              the form to change one's password
    POST /moderate/password              current + new password → every other session ends

Sessions are signed cookies, not stored: they end through the author's ``session_version``
(auth.end_every_session), which every request compares with the one its cookie was opened
under. A password change raises it too and opens a fresh session for the browser that made the
change, so the author stays signed in there and nowhere else.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from comments_service.extensions import store
from comments_service.models import Author
from comments_service.moderation.auth import (
    MAX_PASSWORD_LENGTH,
    current_author,
    end_every_session,
    login_required,
    password_problems,
    start_session,
)

bp = Blueprint("account", __name__)

PASSWORD_TEMPLATE = "moderation/password.html"
WRONG_PASSWORD = "Your current password is not that."
PASSWORDS_DIFFER = "The new password and its repetition differ."


@bp.post("/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    author = current_author()
    assert author is not None
    store().update_author(author.id, end_every_session)
    session.clear()
    g.current_author = None
    flash("You are signed out everywhere: every browser and device has to sign in again.", "info")
    return redirect(url_for("moderation.auth.sign_in"), code=303)


def _password_page(error: str | None, status: int):
    return render_template(PASSWORD_TEMPLATE, error=error), status


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    if request.method != "POST":
        return _password_page(None, 200)
    author = current_author()
    assert author is not None
    current = request.form.get("current_password", "")[:MAX_PASSWORD_LENGTH + 1]
    new = request.form.get("new_password", "")
    if not check_password_hash(author.password_hash, current):
        return _password_page(WRONG_PASSWORD, 401)
    problems = password_problems(new)
    if new != request.form.get("repeat_password", ""):
        problems.append(PASSWORDS_DIFFER)
    if problems:
        return _password_page(" ".join(problems), 400)
    new_hash = generate_password_hash(new)

    def change(stored: Author) -> Author:
        return end_every_session(replace(stored, password_hash=new_hash))

    start_session(store().update_author(author.id, change))
    flash("Your password is changed. Every other browser and device is signed out.", "info")
    return redirect(url_for("moderation.queue.index"), code=303)
