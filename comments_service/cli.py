"""Commands for `flask --app comments_service …`: init, check, export and import (the import
group, with Isso, Disqus and WordPress, lives in importers/commands.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .backup import report_store
from .config import write_secret_key
from .importers.commands import import_group
from .manifest import ManifestError
from .public import public_export_document
from .transfer import export_document


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
    """Check the settings, the manifest and every store file; exit 1 with the reasons when
    something is wrong."""
    try:
        manifest = current_app.extensions["tellmemore.manifest"].get()
    except ManifestError as error:
        problems = [str(error)]
    else:
        problems = []
        questions = sum(len(article.questions) for article in manifest.articles.values())
        click.echo(f"Manifest {manifest.location}: {len(manifest.articles)} articles, "
                   f"{questions} questions")
    problems += report_store(Path(current_app.config["STORE_PATH"]))
    click.echo(f"Publishing policy {current_app.config['PUBLISH_POLICY']}")
    if problems:
        raise click.ClickException("\n".join(problems))


def write_replacing(target: Path, text: str) -> Path:
    """Write beside the target, then rename: a reader of the file never sees half of it."""
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)
    return target


@click.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of standard output.")
@with_appcontext
def export_command(output: str | None) -> None:
    """Export every comment (with private fields) as JSON."""
    document = export_document(current_app.extensions["tellmemore.store"].all_comments())
    text = json.dumps(document, ensure_ascii=False, indent=1) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    target = write_replacing(Path(output), text)
    click.echo(f"Exported {len(document['comments'])} comments to {target}", err=True)


@click.command("export-public")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), required=True,
              help="The file the site build reads (COMMENTS_EXPORT in pelicanconf.py).")
@with_appcontext
def export_public_command(output: str) -> None:
    """Write every article's public thread for baking into the built pages."""
    document = public_export_document(
        current_app.extensions["tellmemore.manifest"].get(),
        current_app.extensions["tellmemore.store"],
    )
    target = write_replacing(Path(output), json.dumps(document, ensure_ascii=False))
    click.echo(f"Wrote the public threads of {len(document['threads'])} articles to {target}")


def init_app(app: Flask) -> None:
    for command in (init_command, check_command, export_command, export_public_command,
                    import_group):
        app.cli.add_command(command)
