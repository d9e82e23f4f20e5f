"""Commands for `flask --app comments_service …`: init and check."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .config import write_secret_key
from .manifest import ManifestError


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create the instance folder, its secret key and the store folder."""
    Path(current_app.instance_path).mkdir(parents=True, exist_ok=True)
    key_path, created = write_secret_key(current_app)
    click.echo(f"{'Created' if created else 'Kept'} secret key {key_path}")
    store_path = Path(current_app.config["STORE_PATH"])
    store_path.mkdir(parents=True, exist_ok=True)
    click.echo(f"Store folder {store_path}")


@click.command("check")
@with_appcontext
def check_command() -> None:
    """Check the settings and the manifest; exit 1 with the reason when something is wrong."""
    try:
        manifest = current_app.extensions["tellmemore.manifest"].get()
    except ManifestError as error:
        raise click.ClickException(str(error)) from error
    questions = sum(len(article.questions) for article in manifest.articles.values())
    click.echo(
        f"Manifest {manifest.location}: {len(manifest.articles)} articles, {questions} questions"
    )
    click.echo(f"Store {current_app.config['STORE_PATH']}")
    click.echo(f"Publishing policy {current_app.config['PUBLISH_POLICY']}")


def init_app(app: Flask) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(check_command)
