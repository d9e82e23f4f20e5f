"""The outbox of the TinyDB store (OutboxStore): one TinyDB file per UTC day of creation.

<store>/outbox/<YYYY-MM-DD>.json   one TinyDB file (table "messages") per UTC day of creation;
                                   a message id starts with that day, so the id names its file
<store>/outbox/open/<YYYY-MM-DD>   empty marker: that day may hold held/queued/sending messages
<store>/outbox/keys/<hash>         a dedupe key is taken: the file holds the message's id
<store>/locks/_outbox-<day>.lock   flock over every read-modify-write of that day's file
<store>/locks/_outbox-keys.lock    flock while a message with a dedupe key is added

Why per day: a TinyDB file is rewritten whole on every change, and a sender changes a message
two or three times (claimed, then sent or rescheduled). One file per day of creation keeps
each write to one day's messages, and old days are never written again once settled. The
sender reads only the days the open/ markers name. A marker is created (and made durable)
before a day's file first holds an open message and removed after a write leaves none, both
under the day's lock, so a crash can leave an extra marker (read once, then removed) but never
hide a message that still has to be sent.

Lock order: keys → one day at a time. These locks are never held together with a thread,
index, authors or addresses lock, and no two day locks are held at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import Any

from comments_service.models import OPEN_STATUSES, OutboxMessage, OutboxStatus
from comments_service.store import files
from comments_service.store.base import message_day
from comments_service.store.errors import DuplicateMessage, MessageNotFound, StoreCorrupted
from comments_service.store.tinydb.storage import TableFileStorage

OUTBOX_FOLDER = "outbox"
OUTBOX_OPEN_FOLDER = "open"
OUTBOX_KEYS_FOLDER = "keys"
OUTBOX_TABLE = "messages"
OUTBOX_KEYS_LOCK = "_outbox-keys.lock"
OUTBOX_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def corrupted_outbox(path: Path, problem: str) -> StoreCorrupted:
    """The error for an outbox day file that cannot be read."""
    return StoreCorrupted(
        f"The outbox file {path} cannot be read: {problem}. Move it aside (its messages are "
        "lost, nothing else is) or restore it from a backup."
    )


class OutboxDayStorage(TableFileStorage):
    """One day of the outbox: table "messages"."""

    table_name = OUTBOX_TABLE
    corrupted = staticmethod(corrupted_outbox)


def message_of(record: dict[str, Any], path: Path) -> OutboxMessage:
    """The message a document of ``path`` holds (StoreCorrupted if it holds none)."""
    try:
        return OutboxMessage.from_record(record)
    except (KeyError, TypeError, ValueError) as error:
        raise corrupted_outbox(path, f"a document is not a message ({error!r})") from error


class TinyDBOutbox:
    """The outbox of one store.

    A day's file is read and written whole through its TinyDB storage (the TinyDB file format,
    one table), because a claim changes several documents and must do so in one write."""

    def __init__(self, store_path: Path, locks: Path) -> None:
        self._outbox = store_path / OUTBOX_FOLDER
        self._locks = locks

    def _outbox_folders(self) -> None:
        for folder in (self._outbox, self._outbox / OUTBOX_OPEN_FOLDER,
                       self._outbox / OUTBOX_KEYS_FOLDER):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                files.fsync_folder(folder.parent)

    def _day_path(self, day: str) -> Path:
        return self._outbox / f"{day}.json"

    def _day_lock(self, day: str) -> AbstractContextManager[bool]:
        return files.exclusive_lock(self._locks / f"_outbox-{day}.lock")

    def _read_day(self, day: str) -> dict[int, OutboxMessage]:
        """doc id → message of one day (no lock needed: the file is only replaced whole)."""
        path = self._day_path(day)
        data = OutboxDayStorage(str(path)).read() or {}
        try:
            return {int(doc_id): message_of(record, path)
                    for doc_id, record in data.get(OUTBOX_TABLE, {}).items()}
        except ValueError as error:
            raise corrupted_outbox(path, f"a document id is not a number ({error})") from error

    def _write_day(self, day: str, messages: dict[int, OutboxMessage]) -> None:
        """Replace the day's file (the caller holds its lock), keeping its open marker true:
        made before a write that leaves an open message, removed after one that leaves none."""
        still_open = any(message.is_open for message in messages.values())
        if still_open:
            self._mark_open(day)
        payload = {OUTBOX_TABLE: {str(doc_id): message.to_record()
                                  for doc_id, message in sorted(messages.items())}}
        OutboxDayStorage(str(self._day_path(day))).write(payload)
        if not still_open:
            self._unmark_open(day)

    def _mark_open(self, day: str) -> None:
        marker = self._outbox / OUTBOX_OPEN_FOLDER / day
        if marker.exists():
            return
        with files.full_disk_as_unavailable(marker):
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            files.fsync_folder(marker.parent)

    def _unmark_open(self, day: str) -> None:
        with suppress(FileNotFoundError):
            (self._outbox / OUTBOX_OPEN_FOLDER / day).unlink()

    def _open_days(self) -> list[str]:
        try:
            names = os.listdir(self._outbox / OUTBOX_OPEN_FOLDER)
        except FileNotFoundError:
            return []
        return sorted(name for name in names if OUTBOX_DAY.fullmatch(name))

    def _all_days(self) -> list[str]:
        if not self._outbox.is_dir():
            return []
        return sorted(path.stem for path in self._outbox.glob("*.json")
                      if OUTBOX_DAY.fullmatch(path.stem))

    def add_message(self, message: OutboxMessage) -> OutboxMessage:
        """Store a new message (see Store.add_message). With a dedupe key the key file is
        written first, under the keys lock: a crash before the message lands leaves a key
        naming a message that does not exist, which the next add with that key takes over."""
        if not isinstance(message, OutboxMessage):
            raise TypeError(f"add_message() takes an OutboxMessage, not {type(message).__name__}")
        day = message_day(message.id)
        if day is None:
            raise ValueError(f"Invalid message id {message.id!r}")
        self._outbox_folders()
        if message.dedupe_key is None:
            self._insert_message(day, message)
            return message
        key_path = self._key_path(message.dedupe_key)
        with files.exclusive_lock(self._locks / OUTBOX_KEYS_LOCK):
            try:
                holder = key_path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                holder = None
            existing = self.get_message(holder) if holder else None
            if existing is not None:
                return existing
            files.atomic_write(key_path, message.id.encode("utf-8"))
            try:
                self._insert_message(day, message)
            except BaseException:
                with suppress(OSError):
                    key_path.unlink()
                raise
        return message

    def _key_path(self, dedupe_key: str) -> Path:
        digest = hashlib.blake2b(dedupe_key.encode("utf-8"), digest_size=16).hexdigest()
        return self._outbox / OUTBOX_KEYS_FOLDER / digest

    def _insert_message(self, day: str, message: OutboxMessage) -> None:
        with self._day_lock(day):
            messages = self._read_day(day)
            if any(stored.id == message.id for stored in messages.values()):
                raise DuplicateMessage(f"Message {message.id} is stored already")
            messages[max(messages, default=0) + 1] = message
            self._write_day(day, messages)

    def get_message(self, message_id: str) -> OutboxMessage | None:
        day = message_day(message_id)
        if day is None:
            return None
        return next((message for message in self._read_day(day).values()
                     if message.id == message_id), None)

    def update_message(
        self, message_id: str, change: Callable[[OutboxMessage], OutboxMessage]
    ) -> OutboxMessage:
        """Compare-and-set under the day's lock; ``change`` must not call the store."""
        day = message_day(message_id)
        if day is None:
            raise MessageNotFound(f"No message {message_id}")
        with self._day_lock(day):
            messages = self._read_day(day)
            found = next((doc_id for doc_id, message in messages.items()
                          if message.id == message_id), None)
            if found is None:
                raise MessageNotFound(f"No message {message_id}")
            old = messages[found]
            new = change(old)
            if not isinstance(new, OutboxMessage):
                raise TypeError(f"change() returned {type(new).__name__}, not an OutboxMessage")
            if new.id != old.id:
                raise ValueError("change() must not change a message's id")
            if new != old:
                messages[found] = new
                self._write_day(day, messages)
        return new

    def claim_messages(
        self, claimer: str, now: str, lease_until: str, limit: int
    ) -> list[OutboxMessage]:
        """Claim due messages day by day, each day under its lock: read, mark, write once.
        The flock makes the read and the write one step for every other claimer, so a due
        message goes to exactly one of them; the lease is the compare-and-set's condition."""
        claimed: list[OutboxMessage] = []
        for day in self._open_days():
            if len(claimed) >= limit:
                break
            with self._day_lock(day):
                messages = self._read_day(day)
                due = sorted(
                    (doc_id for doc_id, message in messages.items()
                     if (message.status is OutboxStatus.QUEUED and message.next_attempt_at <= now)
                     or (message.status is OutboxStatus.SENDING
                         and (message.claimed_until or "") <= now)),
                    key=lambda doc_id: (messages[doc_id].next_attempt_at,
                                        messages[doc_id].created, doc_id),
                )[: limit - len(claimed)]
                for doc_id in due:
                    old = messages[doc_id]
                    messages[doc_id] = dataclasses.replace(
                        old, status=OutboxStatus.SENDING, claimed_by=claimer,
                        claimed_until=lease_until, attempts=old.attempts + 1,
                    )
                    claimed.append(messages[doc_id])
                if due:
                    self._write_day(day, messages)
                elif not any(message.is_open for message in messages.values()):
                    self._unmark_open(day)  # left by a crash: nothing to do on that day
        return claimed

    def list_messages(
        self, statuses: Iterable[OutboxStatus] | None = None, *, limit: int = 50,
        offset: int = 0,
    ) -> list[OutboxMessage]:
        """Newest first. Only open statuses: reads the open days only. Otherwise it reads day
        files from the newest back until the page is full (the cost grows with ``offset``
        and, for rare statuses, with the outbox's history)."""
        wanted = None if statuses is None else {OutboxStatus(status) for status in statuses}
        if limit <= 0:
            return []
        days = self._open_days() if wanted is not None and wanted <= OPEN_STATUSES else (
            self._all_days())
        found: list[OutboxMessage] = []
        for day in reversed(days):
            matching = [message for message in self._read_day(day).values()
                        if wanted is None or message.status in wanted]
            found.extend(sorted(matching, key=lambda message: (message.created, message.id),
                                reverse=True))
            if len(found) >= offset + limit:
                break
        return found[max(offset, 0): max(offset, 0) + limit]

    def messages_to(
        self, address: str, *, since: str | None = None, open_only: bool = False
    ) -> list[OutboxMessage]:
        wanted = address.casefold()
        if open_only:
            days = self._open_days()
        else:
            first = (since or "")[:10]
            days = [day for day in self._all_days() if day >= first]
        found = [
            message for day in days for message in self._read_day(day).values()
            if message.to.casefold() == wanted
            and (since is None or message.created >= since)
            and (not open_only or message.is_open)
        ]
        return sorted(found, key=lambda message: (message.created, message.id))
