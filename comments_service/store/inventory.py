"""Everything a store holds, named once.

Backup, restore, copy-store, `check` and the copy's final comparison all walk :data:`PARTS`,
so a part of the store added later is added here and every one of them carries it. A part
knows how to read its records out of a store as JSON-ready values (a backup), how to put
records into a store (a restore), how to bring one store up to date with another (a copy,
which never deletes), and how to summarise itself (what must be equal after a copy, what
`check` prints).

Only the public store interfaces are used, so any two stores work, and nothing here imports
Flask.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from comments_service.models import (
    Author,
    Comment,
    IncomingMail,
    MailAddress,
    OutboxMessage,
    RequestGroup,
)
from comments_service.store import Store
from comments_service.store.transfer import ImportRefused, check_comment_records

# Comments handed to import_comments at once: big enough for few writes per thread, small
# enough that a million comments never sit in memory together.
COMMENT_BATCH = 2000
# list_messages pages through the outbox this many at a time.
MESSAGE_PAGE = 1000
# Every incoming mail record at once: one per message the author's mailbox ever held.
INCOMING_LIMIT = 10**9

Progress = Callable[[int], None]


class InventoryRefused(ValueError):
    """A record of a part cannot be read back; nothing of that part was written."""


@dataclass
class CopyReport:
    """What one copy did, per part: records added, updated (they differed) and unchanged."""

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


def _replace_with(new: Any) -> Callable[[Any], Any]:
    return lambda _old: new


def _fingerprint(record: dict[str, Any]) -> bytes:
    return hashlib.blake2b(json.dumps(record, sort_keys=True).encode(), digest_size=16).digest()


def _batches(items: Iterable[Comment], size: int) -> Iterator[list[Comment]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _records_of(kind: type, records: Any, where: str) -> list[Any]:
    if not isinstance(records, list):
        raise InventoryRefused(f"{where} is not a list")
    try:
        return [kind.from_record(record) for record in records]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InventoryRefused(f"an entry of {where} is invalid ({error!r})") from error


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


class Part:
    """One kind of record a store holds. ``name`` is its key in a backup document, ``label``
    its name in what a person reads."""

    name: str = ""
    label: str = ""
    model: type = object

    def records(self, store: Store) -> Iterable[Any]:
        """Every record of this part, as model objects, in the order a copy writes them."""
        raise NotImplementedError

    def dump(self, store: Store) -> Any:
        """This part of ``store`` as JSON-ready values (a backup)."""
        return [record.to_record() for record in self.records(store)]

    def parse(self, dumped: Any, source: str) -> Any:
        """Check ``dumped`` (from :meth:`dump`, read from ``source``) completely;
        InventoryRefused names the first problem."""
        return _records_of(self.model, dumped, f"{source}: {self.name}")

    def fill(self, store: Store, parsed: Any) -> None:
        """Write what :meth:`parse` returned into ``store`` (a restore, into a fresh store)."""
        raise NotImplementedError

    def copy(self, source: Store, destination: Store, report: CopyReport,
             progress: Progress) -> None:
        """Bring ``destination`` up to date with ``source``; never deletes."""
        raise NotImplementedError

    def summary(self, store: Store) -> dict[str, Any]:
        """What must be equal in two stores that hold the same, by label: counts."""
        return {self.label: sum(1 for _record in self.records(store))}


class CommentsPart(Part):
    """Threads and their comments, the author's replies included (the export format)."""

    name, label, model = "comments", "comments", Comment

    def records(self, store: Store) -> Iterable[Comment]:
        return store.all_comments()

    def parse(self, dumped: Any, source: str) -> list[Comment]:
        try:
            return check_comment_records(dumped, source)
        except ImportRefused as error:
            raise InventoryRefused(str(error)) from error

    def fill(self, store: Store, parsed: list[Comment]) -> None:
        store.import_comments(parsed)

    def copy(self, source: Store, destination: Store, report: CopyReport,
             progress: Progress) -> None:
        # The destination's own comments are fingerprinted first (16 bytes each), so each
        # source comment is compared without a read per comment.
        have = {comment.id: _fingerprint(comment.to_record())
                for comment in destination.all_comments()}
        for batch in _batches(source.all_comments(), COMMENT_BATCH):
            new = [comment for comment in batch if comment.id not in have]
            if new:
                report.added[self.label] += destination.import_comments(new)
            for comment in batch:
                if comment.id not in have:
                    continue
                if have[comment.id] == _fingerprint(comment.to_record()):
                    report.unchanged[self.label] += 1
                else:
                    destination.update_comment(comment.id, _replace_with(comment))
                    report.updated[self.label] += 1
            progress(len(batch))

    def summary(self, store: Store) -> dict[str, Any]:
        return {self.label: store.count_comments(),
                f"{self.label} by state": {
                    state.value: count for state, count in sorted(store.state_counts().items())}}


class AuthorsPart(Part):
    """The authors who sign in to the moderation pages (with their password hashes)."""

    name, label, model = "authors", "authors", Author

    def records(self, store: Store) -> Iterable[Author]:
        return store.list_authors()

    def fill(self, store: Store, parsed: list[Author]) -> None:
        for author in parsed:
            store.add_author(author)

    def copy(self, source: Store, destination: Store, report: CopyReport,
             progress: Progress) -> None:
        _sync(self.label, self.records(source), lambda author: author.id,
              destination.get_author, destination.add_author, destination.update_author, report)


class MailAddressesPart(Part):
    """Each reader address's confirmation and unsubscription."""

    name, label, model = "mail_addresses", "mail addresses", MailAddress

    def records(self, store: Store) -> Iterable[MailAddress]:
        return store.all_mail_addresses()

    def fill(self, store: Store, parsed: list[MailAddress]) -> None:
        for address in parsed:
            store.update_mail_address(address.address, _replace_with(address))

    def copy(self, source: Store, destination: Store, report: CopyReport,
             progress: Progress) -> None:
        _sync(self.label, self.records(source), lambda address: address.address,
              destination.get_mail_address, lambda address: self.fill(destination, [address]),
              destination.update_mail_address, report)


class IncomingMailPart(Part):
    """Each message the reply worker read from the author's mailbox (replies by email): kept,
    so that a restored or copied store never posts one again."""

    name, label, model = "incoming_mail", "incoming mail", IncomingMail

    def records(self, store: Store) -> Iterable[IncomingMail]:
        return reversed(store.list_incoming_mail(limit=INCOMING_LIMIT))

    def fill(self, store: Store, parsed: list[IncomingMail]) -> None:
        for mail in parsed:
            store.add_incoming_mail(mail)

    def copy(self, source: Store, destination: Store, report: CopyReport,
             progress: Progress) -> None:
        _sync(self.label, self.records(source), lambda mail: mail.key,
              destination.get_incoming_mail, destination.add_incoming_mail,
              destination.update_incoming_mail, report)


class OutboxPart(Part):
    """Every message ever queued (mail and webhooks), sent or not."""

    name, label, model = "outbox", "outbox messages", OutboxMessage

    def records(self, store: Store) -> Iterator[OutboxMessage]:
        """Oldest first, so a dedupe key is taken by the same message as in the source."""
        newest_first: list[OutboxMessage] = []
        offset = 0
        while page := store.list_messages(None, limit=MESSAGE_PAGE, offset=offset):
            newest_first.extend(page)
            offset += len(page)
        return reversed(newest_first)

    def fill(self, store: Store, parsed: list[OutboxMessage]) -> None:
        for message in sorted(parsed, key=lambda message: message.created):
            store.add_message(message)

    def copy(self, source: Store, destination: Store, report: CopyReport,
             progress: Progress) -> None:
        _sync(self.label, self.records(source), lambda message: message.id,
              destination.get_message, destination.add_message, destination.update_message,
              report)

    def summary(self, store: Store) -> dict[str, Any]:
        statuses = Counter(message.status.value for message in self.records(store))
        return {f"{self.label} by status": dict(sorted(statuses.items()))}


class RequestGroupsPart(Part):
    """The author's decisions about requests: labels, statuses, links, merges."""

    name, label, model = "request_groups", "request groups", RequestGroup

    def records(self, store: Store) -> Iterable[RequestGroup]:
        return sorted(store.request_groups().values(), key=lambda group: group.id)

    def fill(self, store: Store, parsed: list[RequestGroup]) -> None:
        if parsed:
            store.replace_request_groups(parsed)

    def copy(self, source: Store, destination: Store, report: CopyReport,
             progress: Progress) -> None:
        groups = source.request_groups()
        if destination.request_groups() != groups:
            destination.replace_request_groups(groups.values())
            report.updated[self.label] += len(groups)
        else:
            report.unchanged[self.label] += len(groups)


class RequestTallyPart(Part):
    """The grouper's saved state: a snapshot and the records appended since, kept as the store
    holds them (so group ids, and the comments' ``request`` fields, keep meaning the same
    groups). The position of a record is the store's own business and is not kept."""

    name, label = "request_tally", "request tally"

    def dump(self, store: Store) -> Any:
        with store.request_tally() as tally:
            assert tally is not None  # no timeout: the lock is waited for
            if not tally.log_id:
                return None
            return json.loads(json.dumps({"snapshot": tally.snapshot(),
                                          "records": tally.records()[0]}))

    def parse(self, dumped: Any, source: str) -> Any:
        if dumped is None:
            return None
        if (not isinstance(dumped, dict) or not isinstance(dumped.get("records"), list)
                or not isinstance(dumped.get("snapshot"), dict | None)
                or not all(isinstance(record, dict) for record in dumped["records"])):
            raise InventoryRefused(
                f"{source}: {self.name} must be null or an object with a snapshot and a list "
                "of records")
        return dumped

    def fill(self, store: Store, parsed: Any) -> None:
        if not parsed:
            return
        with store.request_tally() as tally:
            assert tally is not None
            tally.replace(parsed["snapshot"])
            for record in parsed["records"]:
                tally.append(record)

    def copy(self, source: Store, destination: Store, report: CopyReport,
             progress: Progress) -> None:
        wanted = self.dump(source)
        if wanted is None or self.dump(destination) == wanted:
            report.unchanged[self.label] += 1
        else:
            self.fill(destination, wanted)
            report.updated[self.label] += 1

    def summary(self, store: Store) -> dict[str, Any]:
        dumped = self.dump(store)
        return {self.label: "empty" if dumped is None
                else f"a snapshot and {len(dumped['records'])} records"}


# Authors first (a copy that stops early has the people who can sign in); the tally last, after
# the comments its groups hold.
PARTS: tuple[Part, ...] = (AuthorsPart(), CommentsPart(), OutboxPart(), MailAddressesPart(),
                           IncomingMailPart(), RequestGroupsPart(), RequestTallyPart())


def dump_store(store: Store) -> dict[str, Any]:
    """Every part of ``store``, by part name."""
    return {part.name: part.dump(store) for part in PARTS}


def parse_dump(document: dict[str, Any], source: str) -> dict[str, Any]:
    """Every part of a dump read from ``source``, checked before anything is written; a part
    missing from the document (an older backup, or a plain export) is empty."""
    parsed = {}
    for part in PARTS:
        default: Any = None if isinstance(part, RequestTallyPart) else []
        parsed[part.name] = part.parse(document.get(part.name, default), source)
    return parsed


def fill_store(store: Store, parsed: dict[str, Any]) -> None:
    """Write every parsed part into ``store`` (a fresh one)."""
    for part in PARTS:
        part.fill(store, parsed.get(part.name, []))


def copy_store(source: Store, destination: Store,
               progress: Progress = lambda _count: None) -> CopyReport:
    """Copy every part from ``source`` into ``destination`` (a sync that never deletes)."""
    report = CopyReport()
    for part in PARTS:
        part.copy(source, destination, report, progress)
    return report


def store_summary(store: Store) -> dict[str, Any]:
    """Every part's summary, by label: what `check` prints and a copy compares."""
    return {label: value for part in PARTS for label, value in part.summary(store).items()}


def count_differences(source: Store, destination: Store) -> list[str]:
    """Parts whose summaries differ, as sentences; empty when the two hold the same. The
    destination may hold more (a copy never deletes), which is reported too."""
    theirs, ours = store_summary(source), store_summary(destination)
    return [f"{name}: source {theirs[name]}, destination {ours[name]}"
            for name in theirs if theirs[name] != ours[name]]
