"""Tallied requests in the TinyDB store (RequestStore): the grouper's log, the author's groups.

<store>/requests/log.jsonl             the grouper's log: a header line {"log_id", "snapshot"},
                                       then one JSON record per assignment (append-only)
<store>/requests/grouper-<log_id>.json the grouper's state the log starts from (a snapshot)
<store>/requests/groups.json           TinyDB file (table "groups"): the author's labels,
                                       statuses, links and merges, replaced whole
<store>/locks/_requests.lock           flock over every load-assign-save of the grouper
<store>/locks/_request-groups.lock     flock over every read-modify-write of groups.json

Which group a comment is in is the comment's own ``request`` field (its thread file). An
assignment appends one line to the log, so its cost does not grow with the store; the log is
folded into a new snapshot now and then (tally.service decides when). The log's header names
its snapshot, and a new log replaces the old one by a rename after its snapshot is written:
that rename is the commit point, so a crash leaves the old pair or the new pair, never a log
replayed over a snapshot that already holds it. A half-written last line (a crash during an
append) is ignored and cut off before the next append.

Lock order: the tally lock may be held while the groups lock or a thread lock is taken, never
the other way round.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tinydb.table import Document, Table

from comments_service.models import RequestGroup
from comments_service.store import files
from comments_service.store.base import RequestTally
from comments_service.store.errors import StoreCorrupted
from comments_service.store.tinydb.index import IndexEntry
from comments_service.store.tinydb.index_file import CommentIndex
from comments_service.store.tinydb.storage import TableFileStorage, next_doc_id, open_table
from comments_service.store.tinydb.threads import ThreadFiles

REQUESTS_FOLDER = "requests"
REQUEST_LOG = "log.jsonl"
REQUEST_GROUPS_FILE = "groups.json"
REQUEST_GROUPS_TABLE = "groups"
REQUEST_TALLY_LOCK = "_requests.lock"
REQUEST_GROUPS_LOCK = "_request-groups.lock"
REQUEST_LOG_ID = re.compile(r"[0-9a-f]{16}")
# How far back from the end a partial last line is looked for (a record is a few kB at most).
REQUEST_TAIL_BYTES = 1 << 16


def corrupted_requests(path: Path, problem: str) -> StoreCorrupted:
    """The error for a tally log or snapshot that cannot be read."""
    return StoreCorrupted(
        f"The request tally file {path} cannot be read: {problem}. Move the requests folder's "
        "log.jsonl aside and run `flask --app comments_service regroup` (groups are computed "
        "again from the comments)."
    )


def corrupted_request_groups(path: Path, problem: str) -> StoreCorrupted:
    """The error for a request groups file that cannot be read."""
    return StoreCorrupted(
        f"The request groups file {path} cannot be read: {problem}. Restore it from a backup "
        "(without it, labels, statuses and merges of requests are lost; groups are not)."
    )


class RequestGroupsStorage(TableFileStorage):
    """requests/groups.json: table "groups"."""

    table_name = REQUEST_GROUPS_TABLE
    corrupted = staticmethod(corrupted_request_groups)


def request_group_of(record: dict[str, Any], path: Path) -> RequestGroup:
    """The group record a document of ``path`` holds (StoreCorrupted if it holds none)."""
    try:
        return RequestGroup.from_record(record)
    except (KeyError, TypeError, ValueError) as error:
        raise corrupted_request_groups(path, f"a document is not a group ({error!r})") from error


class TinyDBRequestTally(RequestTally):
    """The log and snapshot files of one store; used only under the tally lock."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._log = folder / REQUEST_LOG
        header = self._header()
        self.log_id = header["log_id"] if header else ""
        self._has_snapshot = bool(header and header.get("snapshot"))
        self._start = 0  # byte offset of the first record, known once the header was read

    def _header(self) -> dict[str, Any] | None:
        try:
            with open(self._log, "rb") as file:
                line = file.readline(4096)
        except FileNotFoundError:
            return None
        try:
            header = json.loads(line)
        except ValueError as error:
            raise corrupted_requests(self._log, f"the header is not JSON ({error})") from error
        if (not isinstance(header, dict) or not line.endswith(b"\n")
                or not REQUEST_LOG_ID.fullmatch(str(header.get("log_id")))):
            raise corrupted_requests(self._log, "the first line is not a log header")
        return header

    def _snapshot_path(self, log_id: str) -> Path:
        return self._folder / f"grouper-{log_id}.json"

    def snapshot(self) -> dict[str, Any] | None:
        if not self._has_snapshot:
            return None
        path = self._snapshot_path(self.log_id)
        try:
            state = json.loads(path.read_bytes())
        except FileNotFoundError as error:
            raise corrupted_requests(path, "the log's snapshot is missing") from error
        except ValueError as error:
            raise corrupted_requests(path, f"not valid JSON ({error})") from error
        if not isinstance(state, dict):
            raise corrupted_requests(path, "not a grouper snapshot")
        return state

    def records(self, position: int | None = None) -> tuple[list[dict[str, Any]], int]:
        if not self.log_id:
            return [], 0
        with open(self._log, "rb") as file:
            if position is None:
                file.readline()
                position = file.tell()
            file.seek(position)
            data = file.read()
        complete = data[: data.rfind(b"\n") + 1]
        found = []
        for line in complete.splitlines():
            try:
                record = json.loads(line)
            except ValueError as error:
                raise corrupted_requests(self._log, f"a record is not JSON ({error})") from error
            if not isinstance(record, dict):
                raise corrupted_requests(self._log, "a record is not a JSON object")
            found.append(record)
        return found, position + len(complete)

    def _new_log(self, *, snapshot: bool) -> str:
        log_id = secrets.token_hex(8)
        header = json.dumps({"log_id": log_id, "snapshot": snapshot}) + "\n"
        files.atomic_write(self._log, header.encode("utf-8"))
        return log_id

    def append(self, record: dict[str, Any]) -> int:
        if not self.log_id:
            self.log_id, self._has_snapshot = self._new_log(snapshot=False), False
        payload = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with files.full_disk_as_unavailable(self._log), open(self._log, "r+b") as file:
            end = file.seek(0, os.SEEK_END)
            tail_start = max(0, end - REQUEST_TAIL_BYTES)
            file.seek(tail_start)
            tail = file.read()
            if tail and not tail.endswith(b"\n"):  # a crash cut the last record short
                cut = tail.rfind(b"\n")
                if cut < 0:
                    raise corrupted_requests(self._log, "its last line never ends")
                end = tail_start + cut + 1
                file.truncate(end)
            file.seek(end)
            files.write_all(file.fileno(), payload)
            os.fsync(file.fileno())
        return end + len(payload)

    def replace(self, snapshot: dict[str, Any] | None) -> None:
        log_id = secrets.token_hex(8)
        kept = self._snapshot_path(log_id).name if snapshot is not None else None
        if snapshot is not None:
            payload = json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")).encode()
            files.atomic_write(self._snapshot_path(log_id), payload)
        header = json.dumps({"log_id": log_id, "snapshot": snapshot is not None}) + "\n"
        files.atomic_write(self._log, header.encode("utf-8"))  # the commit point
        for old in self._folder.glob("grouper-*.json"):
            if old.name != kept:
                with suppress(OSError):
                    old.unlink()
        self.log_id, self._has_snapshot = log_id, snapshot is not None


class TinyDBRequests:
    """The request groups and the tally of one store; which group a comment is in is kept in
    its thread file, found through the index."""

    def __init__(self, store_path: Path, locks: Path, threads: ThreadFiles,
                 index: CommentIndex) -> None:
        self._store_path, self._locks = store_path, locks
        self._requests = store_path / REQUESTS_FOLDER
        self._threads, self._index = threads, index

    def _requests_folder(self) -> None:
        if not self._requests.is_dir():
            self._requests.mkdir(parents=True, exist_ok=True)
            files.fsync_folder(self._store_path)

    @contextmanager
    def request_tally(self, *, timeout: float | None = None) -> Iterator[RequestTally | None]:
        """Hold the tally lock (see Store.request_tally); with ``timeout``, poll for it that
        long and yield None if it stays taken."""
        self._requests_folder()
        lock = self._locks / REQUEST_TALLY_LOCK
        if timeout is None:
            with files.exclusive_lock(lock):
                yield TinyDBRequestTally(self._requests)
            return
        deadline = time.monotonic() + timeout
        while True:
            with files.exclusive_lock(lock, wait=False) as acquired:
                if acquired:
                    yield TinyDBRequestTally(self._requests)
                    return
            if time.monotonic() >= deadline:
                yield None
                return
            time.sleep(0.02)

    @contextmanager
    def _request_groups_table(self) -> Iterator[Table]:
        self._requests_folder()
        with open_table(self._requests / REQUEST_GROUPS_FILE, RequestGroupsStorage) as table:
            yield table

    def request_groups(self) -> dict[str, RequestGroup]:
        """Every group record by id (a small file: only groups the author touched)."""
        path = self._requests / REQUEST_GROUPS_FILE
        if not path.exists():
            return {}
        with self._request_groups_table() as table:
            groups = [request_group_of(document, path) for document in table.all()]
        return {group.id: group for group in groups}

    def update_request_group(
        self, group_id: str, change: Callable[[RequestGroup], RequestGroup]
    ) -> RequestGroup:
        """Compare-and-set under the groups lock; ``change`` must not call the store."""
        path = self._requests / REQUEST_GROUPS_FILE
        self._requests_folder()
        with files.exclusive_lock(self._locks / REQUEST_GROUPS_LOCK), \
                self._request_groups_table() as table:
            documents = table.all()
            found = next((document for document in documents
                          if document.get("id") == group_id), None)
            old = RequestGroup(group_id) if found is None else request_group_of(found, path)
            new = change(old)
            if not isinstance(new, RequestGroup):
                raise TypeError(f"change() returned {type(new).__name__}, not a RequestGroup")
            if new.id != group_id:
                raise ValueError("change() must not change a group's id")
            if new != old and found is None:
                table.insert(Document(new.to_record(), doc_id=next_doc_id(documents)))
            elif new != old:
                table.update(new.to_record(), doc_ids=[found.doc_id])
        return new

    def replace_request_groups(self, groups: Iterable[RequestGroup]) -> None:
        """Replace every group record in one write (regroup)."""
        path = self._requests / REQUEST_GROUPS_FILE
        self._requests_folder()
        payload = {REQUEST_GROUPS_TABLE: {str(number): group.to_record()
                                          for number, group in enumerate(groups, start=1)}}
        with files.exclusive_lock(self._locks / REQUEST_GROUPS_LOCK):
            RequestGroupsStorage(str(path)).write(payload)

    def set_comment_requests(self, requests: Mapping[str, str | None]) -> int:
        """Set the ``request`` field of many reader comments, one write per thread, then their
        index lines (the requests pages count from the index: a crash between the two leaves
        lines that disagree with the thread, which readers settle). Unknown ids and the
        author's own comments are skipped; returns how many comments changed."""
        by_thread = self._index.threads_of(requests)
        changed = 0
        for thread, wanted in sorted(by_thread.items()):
            with self._threads.lock(thread):
                state = self._threads.state(thread, locked=True)
                changes = [
                    dataclasses.replace(comment, request=requests[comment.id])
                    for comment in state.ordered()
                    if comment.id in wanted and not comment.is_author
                    and comment.request != requests[comment.id]
                ]
                # One append for the thread, however many of its comments change.
                self._threads.write(thread, changes, state)
                self._index.set_entries(
                    thread, {comment.id: IndexEntry.of(comment) for comment in changes})
                changed += len(changes)
        return changed
