"""Backups and restores of the whole store, and what the service does with a damaged one.

A backup is one JSON file in our export format (so `flask … import` reads its comments) with
the authors, the mail addresses and the outbox added. `flask --app comments_service backup`
writes one; the service writes one by itself on the first request of each UTC day; the
newest ``BACKUP_KEEP`` files in ``BACKUP_DIR`` are kept. `flask … restore BACKUP` builds a
fresh store from one and moves the old store aside (never deletes it). See docs/FAULTS.md.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from comments_service.config import ConfigError
from comments_service.models import Author, MailAddress, OutboxMessage
from comments_service.store import (
    SchemaMismatch,
    Store,
    StoreCorrupted,
    StoreDamaged,
    check_store_files,
    is_postgres_url,
    open_store,
)
from comments_service.store.transfer import ImportRefused, export_document, parse_export

logger = logging.getLogger(__name__)

CONFIG_DEFAULTS: dict[str, Any] = {
    # Folder of the backups; empty means "backups" in the instance folder.
    "BACKUP_DIR": "",
    # How many backups to keep (the oldest beyond this are removed after each new one).
    "BACKUP_KEEP": 7,
    # Write a backup on the first request of each UTC day (in a background thread).
    "BACKUP_DAILY": True,
}
BACKUP_NAME = re.compile(r"tellmemore-backup-(\d{8})T(\d{6})Z(-\d+)?\.json")
BACKUP_LOCK = ".backup.lock"
STALE_TEMP_SECONDS = 3600
# A gunicorn worker that exits with 3 makes the master stop ("Worker failed to boot") instead
# of starting a new worker that fails the same way, forever.
EXIT_STORE_DAMAGED = 3
RECOVERY_HINT = (
    "`flask --app comments_service check` lists the damaged files; "
    "`flask --app comments_service restore BACKUP` rebuilds the store from a backup "
    "(docs/FAULTS.md)"
)


POSTGRES_BACKUP_HINT = (
    "Backups and restore here work on the embedded store's files; with STORE_URL set, the "
    "comments are in PostgreSQL: back it up with pg_dump and restore it with pg_restore"
)


class BackupRefused(Exception):
    """The backup file cannot be used, or the store must not be replaced; nothing changed."""


def refuse_on_postgres(app: Flask) -> None:
    """Stop a file backup or restore when the store is PostgreSQL (pg_dump's job)."""
    if is_postgres_url(app.config.get("STORE_URL")):
        raise click.ClickException(POSTGRES_BACKUP_HINT)


# --- writing ----------------------------------------------------------------------------------


def backup_folder(app: Flask) -> Path:
    return Path(app.config["BACKUP_DIR"] or Path(app.instance_path) / "backups")


def backup_document(store: Store) -> dict[str, Any]:
    """Everything the store holds: comments (the export format), authors, addresses, outbox.

    Every file of the store is replaced whole by a rename, so each thread, the authors and
    each outbox day are read as one consistent version, while the service keeps running."""
    document = export_document(store.all_comments())
    document["backup"] = 1
    document["authors"] = [author.to_record() for author in store.list_authors()]
    document["mail_addresses"] = [address.to_record()
                                  for address in store.all_mail_addresses()]
    document["outbox"] = [message.to_record() for message in store.list_messages(
        None, limit=10**9)]
    return document


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_backups(folder: Path) -> list[Path]:
    """The backups in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted((path for path in folder.iterdir() if BACKUP_NAME.fullmatch(path.name)),
                  key=lambda path: (BACKUP_NAME.fullmatch(path.name).groups(""), path.name))


def write_backup(store: Store, folder: Path, keep: int, *, now: datetime | None = None) -> Path:
    """Write a backup file into ``folder`` (private: it holds emails and password hashes),
    atomically, then remove the oldest backups beyond ``keep``. Returns the new file."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _remove_stale_temp_files(folder)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target, number = folder / f"tellmemore-backup-{stamp}.json", 1
    while target.exists():
        number += 1
        target = folder / f"tellmemore-backup-{stamp}-{number}.json"
    payload = json.dumps(backup_document(store), ensure_ascii=False).encode("utf-8")
    fd, temp_name = tempfile.mkstemp(prefix=".tellmemore-backup.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(payload)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_folder(folder)
    for old in list_backups(folder)[: -max(keep, 1)]:
        with suppress(FileNotFoundError):
            old.unlink()
    return target


def _remove_stale_temp_files(folder: Path) -> None:
    cutoff = time.time() - STALE_TEMP_SECONDS
    for temp in folder.glob(".tellmemore-backup.*.tmp"):
        with suppress(OSError):
            if temp.stat().st_mtime < cutoff:
                temp.unlink()


class DailyBackup:
    """On the first request a process serves on a new UTC day, write that day's backup in a
    background thread (never on the request path) unless one exists. The check and the
    write happen under an flock of the backup folder, so workers write one between them."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.day: str | None = None
        self.thread: threading.Thread | None = None

    def before_request(self) -> None:
        today = datetime.now(UTC).strftime("%Y%m%d")
        if self.day == today:
            return
        self.day = today
        self.thread = threading.Thread(target=self.run, args=(today,),
                                       name="tellmemore-daily-backup", daemon=True)
        self.thread.start()

    def run(self, today: str) -> Path | None:
        try:
            folder = backup_folder(self.app)
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(folder / BACKUP_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return None  # another worker is writing it
                if any(BACKUP_NAME.fullmatch(path.name).group(1) == today
                       for path in list_backups(folder)):
                    return None
                written = write_backup(self.app.extensions["tellmemore.store"], folder,
                                       int(self.app.config["BACKUP_KEEP"]))
                logger.info("Wrote the daily backup %s", written)
                return written
            finally:
                os.close(fd)
        except Exception:
            logger.exception("The daily backup failed; the next day's first request tries again")
            return None


# --- reading and restoring --------------------------------------------------------------------


@dataclass
class Snapshot:
    comments: list
    authors: list[Author]
    addresses: list[MailAddress]
    messages: list[OutboxMessage]


def read_backup(path: Path) -> Snapshot:
    """The whole content of a backup (or of a plain export: comments only), checked before
    anything is written; BackupRefused names the first problem."""
    try:
        text = path.read_bytes()
    except OSError as error:
        raise BackupRefused(f"{path} cannot be read ({error.strerror})") from error
    try:
        comments = parse_export(text, str(path))
    except ImportRefused as error:
        raise BackupRefused(str(error)) from error
    document = json.loads(text)
    parts: dict[str, list] = {}
    for key, kind in (("authors", Author), ("mail_addresses", MailAddress),
                      ("outbox", OutboxMessage)):
        records = document.get(key, [])
        if not isinstance(records, list):
            raise BackupRefused(f"{path}: {key} is not a list")
        try:
            parts[key] = [kind.from_record(record) for record in records]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise BackupRefused(f"{path}: an entry of {key} is invalid ({error!r})") from error
    return Snapshot(comments, parts["authors"], parts["mail_addresses"], parts["outbox"])


def _fill(store: Store, snapshot: Snapshot) -> None:
    store.import_comments(snapshot.comments)
    for author in snapshot.authors:
        store.add_author(author)
    for address in snapshot.addresses:
        store.update_mail_address(address.address, lambda _old, new=address: new)
    for message in sorted(snapshot.messages, key=lambda message: message.created):
        store.add_message(message)


def restore_store(store_path: Path, backup: Path, *, force: bool = False) -> tuple[Path | None,
                                                                                   Snapshot]:
    """Build a fresh store from ``backup`` next to ``store_path``, then swap it in; the old
    store (damaged, or replaced with ``force``) is moved aside. Returns where it went."""
    snapshot = read_backup(backup)
    store_path = store_path.absolute()
    if store_path.exists():
        found = check_store_files(store_path, full=True)
        if not found.problems and not found.empty and not force:
            raise BackupRefused(
                f"The store {store_path} is healthy and holds {found.comments} comments; "
                "restore over it only with --force (it is then moved aside, not deleted)"
            )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    fresh = store_path.with_name(f"{store_path.name}.restoring-{stamp}")
    shutil.rmtree(fresh, ignore_errors=True)
    store = open_store(fresh)
    try:
        _fill(store, snapshot)
        store.rebuild_index()
    finally:
        store.close()
    problems = check_store_files(fresh, full=True).problems
    if problems:  # cannot happen unless the disk fails under us; keep the old store then
        raise BackupRefused(f"The restored store {fresh} does not check: {'; '.join(problems)}")
    aside = None
    if store_path.exists():
        aside = store_path.with_name(f"{store_path.name}.before-restore-{stamp}")
        store_path.rename(aside)
    fresh.rename(store_path)
    _fsync_folder(store_path.parent)
    return aside, snapshot


# --- a damaged store at start -----------------------------------------------------------------


class StoreRefused(StoreCorrupted, click.ClickException):
    """A damaged store used anyway: a 503 in a request, an `Error:` line in a command."""


class DamagedStore:
    """Stands in for the store in `flask` commands when the store is damaged, so that
    `check` and `restore` run; every other use raises StoreRefused."""

    def __init__(self, error: StoreCorrupted | SchemaMismatch) -> None:
        self.error = error

    def __getattr__(self, name: str) -> NoReturn:
        # A schema mismatch says itself what to do (init, or upgrade tellmemore).
        hint = "" if isinstance(self.error, SchemaMismatch) else f" — {RECOVERY_HINT}"
        raise StoreRefused(f"{self.error}{hint}")

    def close(self) -> None:
        """Nothing was opened."""


def refuse_damaged_store(error: StoreCorrupted | SchemaMismatch) -> DamagedStore:
    """Under a server: say what is damaged in one line and exit (status 3). Under a `flask`
    command: carry on with a DamagedStore, so that `check` and `restore` (or, for a database
    schema, `init`) can run."""
    if click.get_current_context(silent=True) is not None:
        return DamagedStore(error)
    if isinstance(error, SchemaMismatch):
        logger.critical("tellmemore refuses to start: %s", error)
        raise SystemExit(EXIT_STORE_DAMAGED)
    if isinstance(error, StoreDamaged):
        what = (f"the comment store {error.store_path} has damaged files: "
                + "; ".join(error.problems))
    else:
        what = str(error).replace("\n", " ")
    logger.critical("tellmemore refuses to start: %s. %s", what, RECOVERY_HINT)
    raise SystemExit(EXIT_STORE_DAMAGED)


def report_store(store_path: Path) -> list[str]:
    """For `flask … check`: echo what the store holds; return the damaged files."""
    found = check_store_files(store_path, full=True)
    click.echo(f"Store {store_path}: {found.comments} comments in {found.threads} threads, "
               f"{found.authors} authors, {found.messages} outbox messages")
    for problem in found.problems:
        click.echo(f"  damaged: {problem}", err=True)
    if found.unindexed:
        click.echo(f"  {len(found.unindexed)} comments are missing from the index (the "
                   "service rebuilds it when it starts)")
    if found.problems:
        return [f"{len(found.problems)} damaged files in the store; {RECOVERY_HINT}"]
    return []


# --- commands ---------------------------------------------------------------------------------


@click.command("backup")
@click.option("--to", "folder", type=click.Path(file_okay=False),
              help="Write into this folder instead of BACKUP_DIR.")
@with_appcontext
def backup_command(folder: str | None) -> None:
    """Write a backup of the whole store (comments, authors, addresses, outbox)."""
    refuse_on_postgres(current_app)
    target = Path(folder) if folder else backup_folder(current_app)
    written = write_backup(current_app.extensions["tellmemore.store"], target,
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
    store = current_app.extensions["tellmemore.store"]
    store.close()
    try:
        aside, snapshot = restore_store(Path(current_app.config["STORE_PATH"]), Path(backup),
                                        force=force)
    except BackupRefused as error:
        raise click.ClickException(str(error)) from error
    if aside is not None:
        click.echo(f"Moved the old store aside to {aside}")
    click.echo(f"Restored {len(snapshot.comments)} comments, {len(snapshot.authors)} authors, "
               f"{len(snapshot.addresses)} mail addresses and {len(snapshot.messages)} outbox "
               f"messages from {backup} into {current_app.config['STORE_PATH']}")


def init_app(app: Flask) -> None:
    for name, value in CONFIG_DEFAULTS.items():
        app.config.setdefault(name, value)
    try:
        app.config["BACKUP_KEEP"] = int(app.config["BACKUP_KEEP"])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"BACKUP_KEEP must be a number, not {app.config['BACKUP_KEEP']!r}"
                          ) from error
    if app.config["BACKUP_KEEP"] < 1:
        raise ConfigError("BACKUP_KEEP must be at least 1")
    daily = app.config["BACKUP_DAILY"]
    if isinstance(daily, str):
        daily = daily.strip().lower() in ("1", "true", "on", "yes")
    app.config["BACKUP_DAILY"] = bool(daily)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    # Not on PostgreSQL: the database is backed up by pg_dump, not by each instance.
    if app.config["BACKUP_DAILY"] and not is_postgres_url(app.config.get("STORE_URL")) and (
            not isinstance(app.extensions["tellmemore.store"], DamagedStore)):
        daily_backup = DailyBackup(app)
        app.extensions["tellmemore.daily_backup"] = daily_backup
        app.before_request(daily_backup.before_request)
