"""Copying everything from one store to another (issue 10): TinyDB → PostgreSQL when a site
outgrows one machine, PostgreSQL → TinyDB to come back, or any store to a fresh one.

    flask --app comments_service copy-store --from instance/store --to postgresql://…/blog

Only the public Store interface is used, so any two stores work. The copy is a sync: a record
missing from the destination is added, one that differs is overwritten with the source's
version, one that is equal is left alone, so running it twice changes nothing and running it
again after the service wrote more (stop it first for the last run) brings the rest over.
Nothing is ever deleted from the destination. At the end the two stores are counted side by
side and any difference is an error.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from comments_service.models import Comment, MailAddress, OutboxMessage
from comments_service.store import Store, StoreError, is_postgres_url, open_store
from comments_service.tally.state import tally_snapshot

# Comments handed to import_comments at once: big enough for few writes per thread, small
# enough that a million comments never sit in memory together.
BATCH = 2000
# list_messages pages through the outbox this many at a time.
MESSAGE_PAGE = 1000
Progress = Callable[[int], None]


@dataclass
class CopyReport:
    """What one copy did, per kind of record: added, updated (differed) and unchanged."""

    added: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)

    @property
    def changed_anything(self) -> bool:
        return bool(sum(self.added.values()) or sum(self.updated.values()))

    def lines(self) -> list[str]:
        kinds = sorted(set(self.added) | set(self.updated) | set(self.unchanged))
        return [f"{kind}: {self.added[kind]} added, {self.updated[kind]} updated, "
                f"{self.unchanged[kind]} unchanged" for kind in kinds]


def _fingerprint(record: dict[str, Any]) -> bytes:
    return hashlib.blake2b(json.dumps(record, sort_keys=True).encode(), digest_size=16).digest()


def _batches(items: Iterable[Comment], size: int) -> Iterator[list[Comment]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _replace_with(new: Any) -> Callable[[Any], Any]:
    return lambda _old: new


def copy_comments(source: Store, destination: Store, report: CopyReport,
                  progress: Progress = lambda _count: None) -> None:
    """Every comment, threads in name order; the destination's own are fingerprinted first
    (16 bytes each) so each source comment is compared without a read per comment."""
    have = {comment.id: _fingerprint(comment.to_record())
            for comment in destination.all_comments()}
    for batch in _batches(source.all_comments(), BATCH):
        new = [comment for comment in batch if comment.id not in have]
        if new:
            report.added["comments"] += destination.import_comments(new)
        for comment in batch:
            if comment.id not in have:
                continue
            if have[comment.id] == _fingerprint(comment.to_record()):
                report.unchanged["comments"] += 1
            else:
                destination.update_comment(comment.id, _replace_with(comment))
                report.updated["comments"] += 1
        progress(len(batch))


def _sync(kind: str, records: Iterable[Any], key: Callable[[Any], str],
          get: Callable[[str], Any], add: Callable[[Any], Any],
          update: Callable[[str, Callable[[Any], Any]], Any], report: CopyReport) -> None:
    """Add each record the destination lacks, overwrite one that differs, skip an equal one."""
    for record in records:
        present = get(key(record))
        if present is None:
            add(record)
            report.added[kind] += 1
        elif present != record:
            update(key(record), _replace_with(record))
            report.updated[kind] += 1
        else:
            report.unchanged[kind] += 1


def copy_authors(source: Store, destination: Store, report: CopyReport) -> None:
    _sync("authors", source.list_authors(), lambda author: author.id, destination.get_author,
          destination.add_author, destination.update_author, report)


def all_messages(store: Store) -> Iterator[OutboxMessage]:
    offset = 0
    while page := store.list_messages(None, limit=MESSAGE_PAGE, offset=offset):
        yield from page
        offset += len(page)


def copy_messages(source: Store, destination: Store, report: CopyReport) -> None:
    # Oldest first, so a dedupe key is taken by the same message as in the source.
    _sync("outbox messages", reversed(list(all_messages(source))), lambda message: message.id,
          destination.get_message, destination.add_message, destination.update_message, report)


def copy_mail_addresses(source: Store, destination: Store, report: CopyReport) -> None:
    def add(address: MailAddress) -> None:
        destination.update_mail_address(address.address, _replace_with(address))

    _sync("mail addresses", source.all_mail_addresses(), lambda address: address.address,
          destination.get_mail_address, add, destination.update_mail_address, report)


def copy_requests(source: Store, destination: Store, report: CopyReport) -> None:
    """The author's decisions about groups, and the grouper's state (so group ids, and the
    comments' ``request`` fields copied with them, keep meaning the same groups)."""
    groups = source.request_groups()
    if destination.request_groups() != groups:
        destination.replace_request_groups(groups.values())
        report.updated["request groups"] += len(groups)
    else:
        report.unchanged["request groups"] += len(groups)
    wanted = tally_snapshot(source)
    with destination.request_tally() as tally:
        assert tally is not None  # no timeout: the lock is waited for
        if wanted is None or tally_snapshot(destination, tally) == wanted:
            report.unchanged["request tally"] += 1
        else:
            tally.replace(wanted)
            report.updated["request tally"] += 1


def store_counts(store: Store) -> dict[str, Any]:
    """What must be equal in both stores after a copy."""
    messages = Counter(message.status.value for message in all_messages(store))
    return {
        "comments": store.count_comments(),
        "comments by state": {state.value: count
                              for state, count in sorted(store.state_counts().items())},
        "authors": len(store.list_authors()),
        "outbox messages by status": dict(sorted(messages.items())),
        "mail addresses": len(store.all_mail_addresses()),
        "request groups": len(store.request_groups()),
    }


def count_differences(source: Store, destination: Store) -> list[str]:
    """Counts that differ, as sentences; empty when the copy is complete. The destination may
    hold more (a copy never deletes), which is reported too: it is not the source's copy."""
    theirs, ours = store_counts(source), store_counts(destination)
    return [f"{name}: source {theirs[name]}, destination {ours[name]}"
            for name in theirs if theirs[name] != ours[name]]


def copy_store(source: Store, destination: Store,
               progress: Progress = lambda _count: None) -> CopyReport:
    """Copy every record from ``source`` into ``destination`` (see the module docstring)."""
    report = CopyReport()
    copy_authors(source, destination, report)
    copy_comments(source, destination, report, progress)
    copy_messages(source, destination, report)
    copy_mail_addresses(source, destination, report)
    copy_requests(source, destination, report)
    return report


def open_store_at(location: str, *, create: bool) -> Store:
    """The store at a folder (TinyDB) or a postgresql:// URL. A destination (``create``) is
    made ready first: its folder created, or its migrations applied; a source must exist."""
    if is_postgres_url(location):
        from comments_service.store.postgres import open_postgres_store
        from comments_service.store.postgres.schema import migrate

        if create:
            migrate(location)
        return open_postgres_store(location)
    folder = Path(location)
    if not create and not folder.is_dir():
        raise click.BadParameter(f"{location} is not a store folder", param_hint="--from")
    return open_store(folder, check=True)


def _copy_between(source_location: str, destination_location: str,
                  ) -> tuple[CopyReport, list[str]]:
    source = open_store_at(source_location, create=False)
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
