"""The author's pages under /moderate: one blueprint with a child blueprint per page family.

    moderation.auth.*       sign-in and sign-out (auth.py; the guard of the whole area is an
                            app-wide hook installed by auth.init_app)
    moderation.account.*    sign out everywhere, change the password
    moderation.queue.*      the reply queue, a comment and its reply form, spam, all comments
    moderation.filing.*     filing a comment under a request (and its JSON view)
    moderation.readers.*    the reader beside the reply box; every comment of one reader
    moderation.requests.*   the tallied requests and the answers' themes
    moderation.metrics.*    the listening figures
    moderation.outbox.*     mail and webhooks waiting, sent or failed
    moderation.mailbox.*    the demo's mailbox (only with DEMO_MAILBOX)

Every page of the area gets the header counts, state labels and shortcuts (one context
processor on the parent).
"""

from __future__ import annotations

from flask import Blueprint

from comments_service.moderation import (
    account,
    auth,
    filing,
    mailbox,
    metrics,
    outbox,
    queue,
    readers,
    requests,
)

bp = Blueprint("moderation", __name__, url_prefix="/moderate")
# App-wide, so an error page of the area (a 404 under /moderate) shows the counts too; it
# adds nothing where no author is signed in.
bp.app_context_processor(queue.moderation_context)
for child in (auth.bp, account.bp, queue.bp, filing.bp, readers.bp, requests.bp, metrics.bp,
              outbox.bp, mailbox.bp):
    bp.register_blueprint(child)
