"""The demo's Mailbox under /moderate/mailbox: the messages `invoke demo`'s mail sink kept
(demo_mailbox.py), so the whole loop can be tried on one machine: the reader's address
confirmation, the reply notification and its unsubscribe link, the author's digest. Only when
the setting DEMO_MAILBOX names the sink's folder; 404 otherwise. Signed-in authors only.

    GET  /moderate/mailbox/            every kept message, newest first
    GET  /moderate/mailbox/<mail_id>   one message: its headers and text, links clickable
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, render_template
from markupsafe import Markup, escape

from comments_service.demo_mailbox import MailboxFolder, text_of
from comments_service.moderation.auth import login_required

bp = Blueprint("mailbox", __name__, url_prefix="/mailbox")

LINK_RE = re.compile(r"https?://[^\s<>\"']+")
SHOWN_HEADERS = ("From", "To", "Subject", "Date", "List-Unsubscribe")


def folder() -> MailboxFolder:
    """The demo's mailbox folder; 404 when the service does not run as the demo."""
    path = current_app.config.get("DEMO_MAILBOX")
    if not path:
        abort(404)
    return MailboxFolder(path)


def linked(text: str) -> Markup:
    """The text, escaped, with every web address a link (the confirm, unsubscribe and reply
    links of the demo's mail)."""
    out, last = [], 0
    for found in LINK_RE.finditer(text):
        address = found.group(0).rstrip(".,;:)>")
        out.append(escape(text[last:found.start()]))
        out.append(Markup('<a href="{0}">{0}</a>').format(address))
        last = found.start() + len(address)
    out.append(escape(text[last:]))
    return Markup("").join(out)


@bp.get("/")
@login_required
def index():
    """Every message the demo's mail sink kept, newest first."""
    return render_template("moderation/mailbox.html", entries=folder().entries())


@bp.get("/<mail_id>")
@login_required
def show(mail_id: str):
    """One kept message as its recipient would read it (the plain-text part)."""
    message = folder().get(mail_id)
    if message is None:
        abort(404)
    headers = [(name, str(message[name])) for name in SHOWN_HEADERS if message[name]]
    return render_template(
        "moderation/mailbox_message.html", mail_id=mail_id, headers=headers,
        subject=str(message.get("Subject", "")), body=linked(text_of(message)),
        unsubscribe=LINK_RE.findall(str(message.get("List-Unsubscribe", ""))),
    )
