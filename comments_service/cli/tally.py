"""`flask … regroup`: group every reader comment's request again, from scratch (tally/)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager

import click
from flask import current_app
from flask.cli import with_appcontext

from comments_service.config import TALLY_EMBEDDERS
from comments_service.models import Comment
from comments_service.tally import regrouping
from comments_service.tally.groups import RequestActionError


@click.command("regroup")
@click.option("--embedder", type=click.Choice(TALLY_EMBEDDERS), default=None,
              help="Which vectors to group with (default: the TALLY_EMBEDDER setting).")
@with_appcontext
def regroup_command(embedder: str | None) -> None:
    """Group every reader comment's request again, from scratch. Groups the author acted on
    (named, marked, merged into, moved a comment to) stay together with their label, status
    and link; comments the author took out stay out."""
    def progress(comments: Sequence[Comment]) -> AbstractContextManager[Iterable[Comment]]:
        return click.progressbar(comments, label="Grouping comments", show_pos=True)

    try:
        result = regrouping.regroup(current_app.extensions["tellmemore.store"], embedder,
                                    progress)
    except RequestActionError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{result.comments} reader comments, {result.grouped} asking for something, "
               f"in {result.groups} groups ({result.embedder}); {result.kept} groups the "
               "author decided on kept.")
