"""Backups and restores of the whole store.

A backup is one JSON file in our export format (so `flask … import` reads its comments) with
every other part of the store added (store/inventory.py: authors, mail addresses, the outbox,
request groups and the request tally). `flask --app comments_service backup`
writes one; the service writes one by itself on the first request of each UTC day; the
newest ``BACKUP_KEEP`` files in ``BACKUP_DIR`` are kept. `flask … restore BACKUP` builds a
fresh store from one and moves the old store aside (never deletes it). See docs/FAULTS.md.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from comments_service.models import Author, Comment, MailAddress, OutboxMessage
from comments_service.store import Store, check_store_files, open_store
from comments_service.store.files import atomic_write, fsync_folder, remove_stale_temp_files
from comments_service.store.inventory import InventoryRefused, dump_store, fill_store, parse_dump
from comments_service.store.transfer import ImportRefused, export_document, read_export_document

BACKUP_PREFIX = "tellmemore-backup-"
BACKUP_NAME = re.compile(r"tellmemore-backup-(\d{8})T(\d{6})Z(-\d+)?\.json")
BACKUP_LOCK = ".backup.lock"
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


# --- writing ----------------------------------------------------------------------------------


def backup_document(store: Store) -> dict[str, Any]:
    """Everything the store holds (every part of the inventory), in the export format.

    Every file of the store is replaced whole by a rename, so each thread, the authors and
    each outbox day are read as one consistent version, while the service keeps running."""
    document = export_document(())
    document["backup"] = 1
    document.update(dump_store(store))
    return document


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
    remove_stale_temp_files([folder], f".{BACKUP_PREFIX}*.tmp")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target, number = folder / f"{BACKUP_PREFIX}{stamp}.json", 1
    while target.exists():
        number += 1
        target = folder / f"{BACKUP_PREFIX}{stamp}-{number}.json"
    payload = json.dumps(backup_document(store), ensure_ascii=False).encode("utf-8")
    atomic_write(target, payload)
    for old in list_backups(folder)[: -max(keep, 1)]:
        with suppress(FileNotFoundError):
            old.unlink()
    return target


def write_daily_backup(store: Store, folder: Path, keep: int, today: str) -> Path | None:
    """Write ``today``'s backup (``today`` as YYYYMMDD) unless one exists or another process
    is writing it: the check and the write happen under an flock of the backup folder, so
    several workers write one between them. Returns the new file, or None."""
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
        return write_backup(store, folder, keep)
    finally:
        os.close(fd)


# --- reading and restoring --------------------------------------------------------------------


@dataclass
class Snapshot:
    """A backup's content, checked: every part of the inventory by its name."""

    parts: dict[str, Any]

    @property
    def comments(self) -> list[Comment]:
        return self.parts["comments"]

    @property
    def authors(self) -> list[Author]:
        return self.parts["authors"]

    @property
    def addresses(self) -> list[MailAddress]:
        return self.parts["mail_addresses"]

    @property
    def messages(self) -> list[OutboxMessage]:
        return self.parts["outbox"]


def read_backup(path: Path) -> Snapshot:
    """The whole content of a backup (or of a plain export: comments only), checked before
    anything is written; BackupRefused names the first problem."""
    try:
        text = path.read_bytes()
    except OSError as error:
        raise BackupRefused(f"{path} cannot be read ({error.strerror})") from error
    try:
        return Snapshot(parse_dump(read_export_document(text, str(path)), str(path)))
    except (ImportRefused, InventoryRefused) as error:
        raise BackupRefused(str(error)) from error


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
        fill_store(store, snapshot.parts)
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
    fsync_folder(store_path.parent)
    return aside, snapshot
