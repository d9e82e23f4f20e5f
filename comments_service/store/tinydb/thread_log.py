"""The byte formats of a thread's two files: the snapshot and the append-only log beside it.

<store>/threads/<thread>.json   the snapshot: a TinyDB file (table "comments"), plus a table
                                "log" whose one document names the snapshot (a random token)
<store>/threads/<thread>.log    the log: a header line, then one line per comment written
                                since the snapshot (the comment's whole record)

A log line is ``<crc32 of the JSON, 8 hex digits> <JSON>\\n``. The header, the first line, is
``{"log": <this log's random token>, "follows": <the token of the snapshot it extends, or
null>}``; every later line is ``{"put": <a comment's record>}``: that comment as it is now,
replacing any earlier record of the same id. Replaying a put is idempotent, so replaying a
log over a snapshot that already holds its records (a compaction cut short between its two
renames) changes nothing.

A crash can only leave the last line incomplete (no newline yet, or a torn page that fails
its checksum): readers ignore it, and the next writer cuts it off before appending. A line
that fails anywhere before the last is damage. This module only encodes and parses bytes;
threads.py reads and writes the files.
"""

from __future__ import annotations

import json
import re
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from comments_service.store.errors import StoreCorrupted

SNAPSHOT_SUFFIX = ".json"
LOG_SUFFIX = ".log"
COMMENTS_TABLE = "comments"
# The snapshot's own table: one document holding its token, written first in the file so a
# writer can read the token from the file's first bytes without parsing the rest.
SNAPSHOT_TABLE = "log"
SNAPSHOT_PREFIX = re.compile(rb'\{"log":\{"1":\{"token":"([0-9a-f]{32})"\}\}')
PREFIX_BYTES = 64

Corrupted = Callable[[Path, str], StoreCorrupted]


def new_token() -> str:
    """A random token naming one snapshot or one log (128 bits: never repeats)."""
    return secrets.token_hex(16)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def log_line(value: dict[str, Any]) -> bytes:
    """One framed line of a log: checksum, JSON, newline (JSON never holds a raw newline)."""
    payload = dumps(value)
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def header_line(log_token: str, follows: str | None) -> bytes:
    return log_line({"log": log_token, "follows": follows})


def put_lines(records: list[dict[str, Any]]) -> bytes:
    """The log lines that store these comment records."""
    return b"".join(log_line({"put": record}) for record in records)


def unframe(line: bytes) -> dict[str, Any] | None:
    """The JSON object of one complete framed line (without its newline), or None when the
    line is not one: torn by a crash, or damaged."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    payload = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class LogHeader:
    """What a log's first line says: its token, and the snapshot token it extends."""

    token: str
    follows: str | None


def parse_header(line: bytes) -> LogHeader | None:
    value = unframe(line)
    if value is None or not isinstance(value.get("log"), str):
        return None
    follows = value.get("follows")
    if follows is not None and not isinstance(follows, str):
        return None
    return LogHeader(value["log"], follows)


@dataclass
class LogTail:
    """The records of a stretch of a log, and where its last good line ends."""

    records: list[dict[str, Any]]
    end: int  # offset just after the last good line (where the next append belongs)
    last_line: bytes  # that line, with its newline (b"" when the stretch held none)


def parse_records(path: Path, chunk: bytes, start: int, corrupted: Corrupted) -> LogTail:
    """The put records of ``chunk``, the log's bytes from offset ``start`` (just after a
    newline). Bytes after the last newline are an append in flight or cut short by a crash;
    the last complete line may be torn too (it fails its checksum): both are ignored. Any
    other line that is not a record is damage (StoreCorrupted)."""
    records: list[dict[str, Any]] = []
    end, last_line = start, b""
    complete = chunk[: chunk.rfind(b"\n") + 1]
    lines = complete.split(b"\n")[:-1]
    for number, line in enumerate(lines):
        value = unframe(line)
        record = None if value is None else value.get("put")
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            if number == len(lines) - 1:
                break  # a torn last line: an append that never completed
            raise corrupted(path, f"the log line at byte {end} is not a comment record")
        records.append(record)
        last_line = line + b"\n"
        end += len(last_line)
    return LogTail(records, end, last_line)


def snapshot_token(prefix: bytes) -> str | None:
    """The snapshot's token from its first bytes (None: a file written before logs existed,
    or an empty one)."""
    found = SNAPSHOT_PREFIX.match(prefix)
    return found.group(1).decode("ascii") if found else None


def snapshot_bytes(token: str, records: list[dict[str, Any]]) -> bytes:
    """A snapshot holding these comment records as documents 1…n, in this order."""
    comments = {str(number): record for number, record in enumerate(records, start=1)}
    return dumps({SNAPSHOT_TABLE: {"1": {"token": token}}, COMMENTS_TABLE: comments})


def parse_snapshot(path: Path, raw: bytes, corrupted: Corrupted) -> list[tuple[int, dict]]:
    """The (document id, record) pairs of a snapshot's "comments" table, checked to be a
    TinyDB file (as written by this module or by the store before logs existed)."""
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise corrupted(path, f"not valid JSON ({error})") from error
    table = data.get(COMMENTS_TABLE, {}) if isinstance(data, dict) else None
    if not isinstance(table, dict) or not all(isinstance(doc, dict) for doc in table.values()):
        raise corrupted(path, f"not a TinyDB file with a {COMMENTS_TABLE!r} table")
    try:
        return [(int(doc_id), record) for doc_id, record in table.items()]
    except ValueError as error:
        raise corrupted(path, f"a document id is not a number ({error})") from error
