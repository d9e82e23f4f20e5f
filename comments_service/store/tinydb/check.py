"""Checking the TinyDB store's files without changing them (start-up and `flask … check`).

Every file is read as the store would read it; each one that cannot be read is one problem
("file: reason"); a thread is its snapshot and its log read together (threads.py), and a
log's torn last line is what a crash leaves, not damage. The index is also compared with the
thread files: comments a thread file
holds that the index lacks are only reported (a rebuild of the index puts them back), and a
thread file that is missing, or lacks comments the index shows it once held, is a problem,
since those comments are lost (docs/FAULTS.md).
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydb.table import Document

from comments_service.store.base import is_thread_key
from comments_service.store.errors import StoreCorrupted
from comments_service.store.tinydb.addresses import (
    ADDRESSES_FILE,
    AddressesFileStorage,
    address_of,
)
from comments_service.store.tinydb.authors import AUTHORS_FILE, AuthorsFileStorage, author_of
from comments_service.store.tinydb.inbox import INCOMING_FILE, IncomingFileStorage, incoming_of
from comments_service.store.tinydb.index import IndexEntry, parse_index_line
from comments_service.store.tinydb.index_file import INDEX_FILE
from comments_service.store.tinydb.outbox import (
    OUTBOX_DAY,
    OUTBOX_FOLDER,
    OUTBOX_OPEN_FOLDER,
    OutboxDayStorage,
    message_of,
)
from comments_service.store.tinydb.storage import TableFileStorage
from comments_service.store.tinydb.thread_log import LOG_SUFFIX, SNAPSHOT_SUFFIX, parse_header
from comments_service.store.tinydb.threads import THREADS_FOLDER, comments_of_files


@dataclass
class StoreCheck:
    """What a check of the store's files found: the damaged files, and what was read."""

    problems: list[str] = dataclasses.field(default_factory=list)
    threads: int = 0
    comments: int = 0
    authors: int = 0
    messages: int = 0
    # Comments in thread files that the index does not list (a rebuild puts them back).
    unindexed: set[str] = dataclasses.field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (self.threads or self.authors or self.messages)


def short_reason(error: StoreCorrupted) -> str:
    """"not valid JSON (…)" out of "The … file X cannot be read: not valid JSON (…). Hint"."""
    return str(error).partition("cannot be read: ")[2].split(". ", 1)[0] or str(error)


@dataclass
class IndexRead:
    """What the index says: each comment's latest entry (None: gone), and how many lines
    speak of it since it was last added (an add writes one; each later change one more)."""

    entries: dict[str, IndexEntry | None] = dataclasses.field(default_factory=dict)
    lines: Counter[str] = dataclasses.field(default_factory=Counter)

    def apply(self, comment_id: str, entry: IndexEntry | None) -> None:
        self.entries[comment_id] = entry
        if entry is None:
            self.lines.pop(comment_id, None)
        else:
            self.lines[comment_id] += 1


def lost_comments(
    index: IndexRead, stored: dict[str, set[str]], unreadable: set[str]
) -> dict[str, list[str]]:
    """Per thread, the comments the index lists that its file (``stored``: thread → ids,
    for the files that could be read) does not hold, where the file must have held them.

    An add writes its index line before the thread file (the file is the commit point), so a
    crash in between leaves a listed comment its file lacks, with a single index line: an add
    that never happened, harmless, and not reported. Several workers killed one after another
    leave several of those in one thread, so in a file that holds comments only a lacking
    comment whose index lines include a later change (which the store writes only after
    reading the comment from the file) shows a loss. A file that is missing or holds no
    comment at all while the index lists two or more in it (or one changed since) lost them:
    no crash empties a file. Threads whose file is damaged are reported as such already."""
    missing: dict[str, list[str]] = {}
    for comment_id, entry in index.entries.items():
        if entry is None or entry.thread in unreadable:
            continue
        if comment_id not in stored.get(entry.thread, ()):
            missing.setdefault(entry.thread, []).append(comment_id)
    lost: dict[str, list[str]] = {}
    for thread, comment_ids in missing.items():
        changed = [comment_id for comment_id in comment_ids if index.lines[comment_id] > 1]
        if stored.get(thread):
            if changed:
                lost[thread] = sorted(changed)
        elif len(comment_ids) > 1 or changed:
            lost[thread] = sorted(comment_ids)
    return lost


def log_follows_a_snapshot(log_raw: bytes) -> bool:
    """Whether a log's header names a snapshot (so the thread had a snapshot file)."""
    header = parse_header(log_raw[: log_raw.find(b"\n")])
    return header is not None and header.follows is not None


def check_store_files(store_path: str | os.PathLike[str], *, full: bool = False) -> StoreCheck:
    """Read every file of the store without changing anything: thread files (each comment),
    the index (each complete line), authors, mail addresses, incoming mail and the outbox days
    still open; with ``full`` every outbox day. Each file that cannot be read is one problem,
    and so is each thread file that lost comments the index lists (see lost_comments)."""
    root = Path(store_path)
    check = StoreCheck()

    def read(path: Path, parse: Callable[[Path, bytes], int]) -> int:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as error:
            check.problems.append(f"{path.relative_to(root)}: cannot be read ({error.strerror})")
            return 0
        try:
            return parse(path, raw)
        except StoreCorrupted as error:
            check.problems.append(f"{path.relative_to(root)}: {short_reason(error)}")
            return 0

    stored: dict[str, set[str]] = {}
    unreadable: set[str] = set()
    lost_snapshots: set[str] = set()
    folder = root / THREADS_FOLDER
    names = sorted({path.stem for pattern in (f"*{SNAPSHOT_SUFFIX}", f"*{LOG_SUFFIX}")
                    for path in folder.glob(pattern) if is_thread_key(path.stem)})
    for name in names:
        check.threads += 1
        snapshot, log = folder / f"{name}{SNAPSHOT_SUFFIX}", folder / f"{name}{LOG_SUFFIX}"
        raws: list[bytes | None] = []
        for path in (snapshot, log):
            try:
                raws.append(path.read_bytes())
            except FileNotFoundError:
                raws.append(None)
            except OSError as error:
                check.problems.append(
                    f"{path.relative_to(root)}: cannot be read ({error.strerror})")
                break
        if len(raws) < 2:
            unreadable.add(name)
            continue
        try:
            comments = comments_of_files(snapshot, raws[0], log, raws[1])
        except StoreCorrupted as error:
            damaged = log if str(log) in str(error) else snapshot
            check.problems.append(f"{damaged.relative_to(root)}: {short_reason(error)}")
            unreadable.add(name)
            continue
        check.comments += len(comments)
        if raws[0] is None and raws[1] is not None and log_follows_a_snapshot(raws[1]):
            # The snapshot is gone and the log holds only what came after it: a missing file.
            lost_snapshots.add(name)
        else:
            stored[name] = {comment.id for comment in comments}

    index_read = IndexRead()

    def index(path: Path, raw: bytes) -> int:
        for number, line in enumerate(raw[: raw.rfind(b"\n") + 1].splitlines(), start=1):
            if line.strip():
                try:
                    comment_id, entry = parse_index_line(line)
                except (ValueError, KeyError, TypeError) as error:
                    raise StoreCorrupted(
                        f"The index cannot be read: line {number} is not an index record "
                        f"({error}). Move it aside"
                    ) from error
                index_read.apply(comment_id, entry)
        return 1

    reported: set[str] = set()
    if read(root / INDEX_FILE, index):
        check.unindexed = {comment_id for comment_ids in stored.values()
                           for comment_id in comment_ids
                           if index_read.entries.get(comment_id) is None}
        for name, comment_ids in sorted(lost_comments(index_read, stored, unreadable).items()):
            path = (root / THREADS_FOLDER / f"{name}.json").relative_to(root)
            count = f"{len(comment_ids)} comment{'' if len(comment_ids) == 1 else 's'}"
            what = (f"missing, but the index lists {count} in it" if name not in stored
                    else f"lacks {count} the index lists in it")
            check.problems.append(f"{path}: {what} (e.g. {comment_ids[0]})")
            reported.add(name)
    for name in sorted(lost_snapshots - reported):
        check.problems.append(f"{THREADS_FOLDER}/{name}{SNAPSHOT_SUFFIX}: missing, but its log "
                              f"{name}{LOG_SUFFIX} extends it")

    def records(kind: type[TableFileStorage], of: Callable[[Any, Path], Any]) -> Callable:
        def parse(path: Path, raw: bytes) -> int:
            table = kind(str(path)).parse(raw).get(kind.table_name, {})
            for doc_id, record in table.items():
                of(Document(record, doc_id=int(doc_id) if doc_id.isdigit() else 0), path)
            return len(table)
        return parse

    check.authors = read(root / AUTHORS_FILE, records(AuthorsFileStorage, author_of))
    read(root / ADDRESSES_FILE, records(AddressesFileStorage, address_of))
    read(root / INCOMING_FILE, records(IncomingFileStorage, incoming_of))
    outbox = root / OUTBOX_FOLDER
    days = ({path.stem for path in outbox.glob("*.json")} if full
            else {path.name for path in (outbox / OUTBOX_OPEN_FOLDER).glob("*")})
    for day in sorted(day for day in days if OUTBOX_DAY.fullmatch(day)):
        check.messages += read(outbox / f"{day}.json", records(OutboxDayStorage, message_of))
    return check
