"""Commands about the store as a whole: `init`, `check`, `export`, `export-public`,
`backup`, `restore` and `copy-store`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from comments_service.comments.public import public_export_document
from comments_service.config import write_secret_key
from comments_service.daily_backup import backup_folder
from comments_service.extensions import MANIFEST_EXTENSION, STORE_EXTENSION
from comments_service.manifest import ManifestError
from comments_service.store import StoreError, check_store_files, is_postgres_url
from comments_service.store.backup import (
    POSTGRES_BACKUP_HINT,
    RECOVERY_HINT,
    BackupRefused,
    restore_store,
    write_backup,
)
from comments_service.store.copy import NotAStore, open_store_at
from comments_service.store.inventory import (
    PARTS,
    CopyReport,
    copy_store,
    count_differences,
    store_summary,
)
from comments_service.store.transfer import export_document
from comments_service.wording import plural


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
               f"{found.schema_version}, {plural(found.comments, 'comment')} in "
               f"{plural(found.threads, 'thread')}, {plural(found.authors, 'author')}, "
               f"{plural(found.outbox_messages, 'outbox message')}")
    return []


@click.command("check")
@with_appcontext
def check_command() -> None:
    """Check the settings, the manifest and every store file; exit 1 with the reasons when
    something is wrong."""
    try:
        manifest = current_app.extensions[MANIFEST_EXTENSION].get()
    except ManifestError as error:
        problems = [str(error)]
    else:
        problems = []
        questions = sum(len(article.questions) for article in manifest.articles.values())
        click.echo(f"Manifest {manifest.location}: {plural(len(manifest.articles), 'article')}, "
                   f"{plural(questions, 'question')}")
    store_url = current_app.config.get("STORE_URL")
    if is_postgres_url(store_url):
        problems += report_database(store_url)
        if not problems:
            problems += read_every_record()
    else:
        problems += report_store(Path(current_app.config["STORE_PATH"]))
    if not problems:
        problems += report_inventory()
    click.echo(f"Publishing policy {current_app.config['PUBLISH_POLICY']}")
    if problems:
        raise click.ClickException("\n".join(problems))


def read_every_record() -> list[str]:
    """For `check` with STORE_URL: read every record of every part, as a TinyDB check reads
    every file, so a record the service could not use (a field of the wrong type) is found
    here rather than by a page that needs it."""
    store = current_app.extensions[STORE_EXTENSION]
    try:
        for part in PARTS:
            try:
                for _record in part.records(store):
                    pass
            except NotImplementedError:
                continue  # a part kept whole rather than as records (the tally): summary reads it
    except StoreError as error:
        return [str(error)]
    return []


def report_inventory() -> list[str]:
    """For `check`: echo every part the store holds (store/inventory.py)."""
    try:
        summary = store_summary(current_app.extensions[STORE_EXTENSION])
    except StoreError as error:
        return [str(error)]
    click.echo("Holds: " + "; ".join(f"{label} {value}" for label, value in summary.items()))
    return []


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
    document = export_document(current_app.extensions[STORE_EXTENSION].all_comments())
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
        current_app.extensions[MANIFEST_EXTENSION].get(),
        current_app.extensions[STORE_EXTENSION],
        current_app.config["PUBLIC_LISTENING"] == "on",
    )
    target = write_replacing(Path(output), json.dumps(document, ensure_ascii=False))
    click.echo(f"Wrote the public threads of {len(document['threads'])} articles to {target}")


def report_store(store_path: Path) -> list[str]:
    """For `check`: echo what the store's files hold; return the damaged files."""
    found = check_store_files(store_path, full=True)
    click.echo(f"Store {store_path}: {plural(found.comments, 'comment')} in "
               f"{plural(found.threads, 'thread')}, {plural(found.authors, 'author')}, "
               f"{plural(found.messages, 'outbox message')}")
    for problem in found.problems:
        click.echo(f"  damaged: {problem}", err=True)
    if found.unindexed:
        click.echo(f"  {len(found.unindexed)} comments are missing from the index (the "
                   "service rebuilds it when it starts)")
    if found.problems:
        return [f"{len(found.problems)} damaged files in the store; {RECOVERY_HINT}"]
    return []


def refuse_on_postgres(app: Flask) -> None:
    """Stop a file backup or restore when the store is PostgreSQL (pg_dump's job)."""
    if is_postgres_url(app.config.get("STORE_URL")):
        raise click.ClickException(POSTGRES_BACKUP_HINT)


@click.command("backup")
@click.option("--to", "folder", type=click.Path(file_okay=False),
              help="Write into this folder instead of BACKUP_DIR.")
@with_appcontext
def backup_command(folder: str | None) -> None:
    """Write a backup of the whole store (comments, authors, addresses, outbox, requests)."""
    refuse_on_postgres(current_app)
    target = Path(folder) if folder else backup_folder(current_app)
    written = write_backup(current_app.extensions[STORE_EXTENSION], target,
                           int(current_app.config["BACKUP_KEEP"]))
    click.echo(f"Wrote {written}")


@click.command("restore")
@click.argument("backup", type=click.Path(dir_okay=False, exists=True))
@click.option("--force", is_flag=True,
              help="Replace a healthy store that holds data (it is moved aside, not deleted).")
@with_appcontext
def restore_command(backup: str, force: bool) -> None:
    """Rebuild the store from a backup; the old store is moved aside. Stop the service first."""
    refuse_on_postgres(current_app)
    store = current_app.extensions[STORE_EXTENSION]
    store.close()
    try:
        aside, snapshot = restore_store(Path(current_app.config["STORE_PATH"]), Path(backup),
                                        force=force)
    except BackupRefused as error:
        raise click.ClickException(str(error)) from error
    if aside is not None:
        click.echo(f"Moved the old store aside to {aside}")
    groups = len(snapshot.parts["request_groups"])
    click.echo(f"Restored {plural(len(snapshot.comments), 'comment')}, "
               f"{plural(len(snapshot.authors), 'author')}, "
               f"{plural(len(snapshot.addresses), 'mail address', 'mail addresses')}, "
               f"{plural(len(snapshot.messages), 'outbox message')} and "
               f"{plural(groups, 'request group')} from {backup} into "
               f"{current_app.config['STORE_PATH']}")


def _copy_between(source_location: str, destination_location: str,
                  ) -> tuple[CopyReport, list[str]]:
    try:
        source = open_store_at(source_location, create=False)
    except NotAStore as error:
        raise click.BadParameter(str(error), param_hint="--from") from error
    try:
        destination = open_store_at(destination_location, create=True)
        try:
            with click.progressbar(length=source.count_comments(), label="Copying comments",
                                   show_pos=True, file=sys.stderr) as bar:
                report = copy_store(source, destination, bar.update)
            for line in report.lines():
                click.echo(line)
            return report, count_differences(source, destination)
        finally:
            destination.close()
    finally:
        source.close()


@click.command("copy-store")
@click.option("--from", "source_location", required=True, metavar="STORE",
              help="Folder of a TinyDB store, or a postgresql:// URL.")
@click.option("--to", "destination_location", required=True, metavar="STORE",
              help="Folder of a TinyDB store (created), or a postgresql:// URL (its schema is "
                   "created or upgraded first).")
@with_appcontext
def copy_store_command(source_location: str, destination_location: str) -> None:
    """Copy comments, replies, authors, the outbox, mail addresses and requests from one store
    to another, then check both hold the same counts. Safe to run again."""
    if source_location == destination_location:
        raise click.BadParameter("--from and --to name the same store", param_hint="--to")
    try:
        report, differences = _copy_between(source_location, destination_location)
    except StoreError as error:  # unreachable database, damaged files, newer schema …
        raise click.ClickException(str(error)) from error
    if differences:
        raise click.ClickException("The stores differ after the copy:\n" + "\n".join(differences))
    click.echo("Counts match: " + ("copy complete." if report.changed_anything
                                   else "nothing to copy, the destination was up to date."))
