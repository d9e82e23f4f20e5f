"""``flask poll-replies``: read the author's mailbox for replies by email and post them, once
(for cron) or every REPLY_MAIL_POLL_SECONDS with --loop, instead of (or beside) the service's
reply worker threads. Exits 1 when the mailbox could not be read (cron mails the error)."""

from __future__ import annotations

import threading

import click
from flask import current_app
from flask.cli import with_appcontext

from comments_service import extensions
from comments_service.cli.looping import until_stopped
from comments_service.inbox.worker import poll_once


@click.command("poll-replies")
@click.option("--loop", is_flag=True,
              help="Keep running: poll every REPLY_MAIL_POLL_SECONDS until stopped.")
@with_appcontext
def poll_replies_command(loop: bool) -> None:
    """Post the author's replies by email waiting in the mailbox (REPLY_MAIL_IMAP_URL)."""
    config = current_app.config
    if not config["REPLY_MAIL_IMAP_URL"]:
        raise click.ClickException("REPLY_MAIL_IMAP_URL is not set: there is no mailbox to "
                                   "read (README, \"Replies by email\").")
    store = extensions.store()
    if not loop:
        report = poll_once(store, config)
        click.echo(f"Replies by email: {report}")
        if report.error:
            raise SystemExit(1)
        return

    def one_pass(_stop: threading.Event) -> None:
        report = poll_once(store, config)
        if report.read or report.posted or report.error:
            click.echo(f"Replies by email: {report}")

    until_stopped(one_pass, float(config["REPLY_MAIL_POLL_SECONDS"]))
