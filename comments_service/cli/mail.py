"""``flask send-mail``: send the outbox's due messages from a command, for cron or for a
process of its own, instead of (or beside) the service's sender threads."""

from __future__ import annotations

import threading

import click
from flask import current_app
from flask.cli import with_appcontext

from comments_service import extensions
from comments_service.cli.looping import until_stopped
from comments_service.outbox.sender import send_due


@click.command("send-mail")
@click.option("--loop", is_flag=True,
              help="Keep running: look for due messages every MAIL_POLL_SECONDS until stopped.")
@with_appcontext
def send_mail_command(loop: bool) -> None:
    """Send the outbox's due messages once (for cron), or keep doing so with --loop."""
    store = extensions.store()
    config = current_app.config
    if not loop:
        click.echo(f"Mail: {send_due(store, config)}")
        return

    def one_pass(stop: threading.Event) -> None:
        # Stopped, it ends after the message being sent.
        report = send_due(store, config, should_stop=stop.is_set)
        if report.total:
            click.echo(f"Mail: {report}")

    until_stopped(one_pass, float(config["MAIL_POLL_SECONDS"]))
