"""`flask … add-author`: an author who may sign in to the moderation pages."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from comments_service.extensions import STORE_EXTENSION
from comments_service.moderation.auth import MIN_PASSWORD_LENGTH, author_problems, new_author
from comments_service.store import DuplicateAuthor


@click.command("add-author")
@click.option("--name", prompt="Name", help="The name shown on the author's replies.")
@click.option("--email", prompt="Email", help="The email the author signs in with.")
@click.option("--password", prompt="Password", hide_input=True, confirmation_prompt=True,
              help=f"At least {MIN_PASSWORD_LENGTH} characters (prompted, hidden, if left out).")
@with_appcontext
def add_author_command(name: str, email: str, password: str) -> None:
    """Add an author who may sign in to the moderation pages."""
    problems = author_problems(name, email, password)
    if problems:
        raise click.ClickException(" ".join(problems) + " No author was added.")
    authors = current_app.extensions[STORE_EXTENSION]
    duplicate = f"An author with the email {email.strip()} exists already. No author was added."
    if authors.author_by_email(email.strip()) is not None:
        raise click.ClickException(duplicate)
    try:
        author = authors.add_author(new_author(name, email, password))
    except DuplicateAuthor as error:
        raise click.ClickException(duplicate) from error
    click.echo(f"Added author {author.name} <{author.email}> (id {author.id}).")
