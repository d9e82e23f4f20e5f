"""Every `flask --app comments_service …` command, registered in one place."""

from __future__ import annotations

from flask import Flask

from comments_service.cli.authors import add_author_command
from comments_service.cli.demo import demo_data_command
from comments_service.cli.mail import send_mail_command
from comments_service.cli.replies import poll_replies_command
from comments_service.cli.stats import stats_command
from comments_service.cli.store import (
    backup_command,
    check_command,
    copy_store_command,
    export_command,
    export_public_command,
    init_command,
    restore_command,
)
from comments_service.cli.tally import regroup_command
from comments_service.importers.commands import import_group

COMMANDS = (init_command, check_command, export_command, export_public_command, import_group,
            copy_store_command, backup_command, restore_command, demo_data_command,
            add_author_command, stats_command, regroup_command, send_mail_command,
            poll_replies_command)


def init_app(app: Flask) -> None:
    """Add every command to the app's `flask` group."""
    for command in COMMANDS:
        app.cli.add_command(command)
