"""Commands for `flask --app comments_service …`: init, check, export and import (the import
group, with Isso, Disqus and WordPress, lives in importers/commands.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from comments_service.cli.mail import send_mail_command
from comments_service.comments.public import public_export_document
from comments_service.config import write_secret_key
from comments_service.importers.commands import import_group
from comments_service.manifest import ManifestError
from comments_service.store import StoreError, is_postgres_url
from comments_service.store.backup import report_store
from comments_service.store.copy import copy_store_command
from comments_service.store.transfer import export_document


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create the instance folder, its secret key and the store folder (or, with STORE_URL,
    apply the PostgreSQL migrations the database lacks)."""
    Path(current_app.instance_path).mkdir(parents=True, exist_ok=True)
    key_path, created = write_secret_key(current_app)
    click.echo(f"{'Created' if created else 'Kept'} secret key {key_path}")
    store_url = current_app.config.get("STORE_URL")
    if is_postgres_url(store_url):
        migrate_database(store_url)
        return
    store_path = Path(current_app.config["STORE_PATH"])
    store_path.mkdir(parents=True, exist_ok=True)
    click.echo(f"Store folder {store_path}")


def migrate_database(store_url: str) -> None:
    """Apply the missing migrations and say which (every one runs in its own transaction)."""
    from comments_service.store.postgres.schema import describe_url, latest_version, migrate

    try:
        applied = migrate(store_url)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    where = describe_url(store_url)
    for name in applied:
        click.echo(f"Applied migration {name} to PostgreSQL {where}")
    click.echo(f"PostgreSQL {where}: schema version {latest_version()}"
               f"{'' if applied else ', up to date'}")


def report_database(store_url: str) -> list[str]:
    """For `check` with STORE_URL: echo the connection, schema version and what the database
    holds; return the problems."""
    from comments_service.store.postgres.schema import database_summary, describe_url

    where = describe_url(store_url)
    try:
        found = database_summary(store_url)
    except StoreError as error:
        click.echo(f"Store PostgreSQL {where}: {error}", err=True)
        return [str(error)]
    click.echo(f"Store PostgreSQL {found.server_version} at {where}: schema version "
               f"{found.schema_version}, {found.comments} comments in {found.threads} threads, "
               f"{found.authors} authors, {found.outbox_messages} outbox messages")
    return []


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
    store_url = current_app.config.get("STORE_URL")
    if is_postgres_url(store_url):
        problems += report_database(store_url)
    else:
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
                    import_group, copy_store_command):
        app.cli.add_command(command)
    app.cli.add_command(send_mail_command)
