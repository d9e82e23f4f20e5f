"""Export and import of the whole store as one JSON document (``flask … export`` / ``import``).

An import is checked completely before anything is written, so a bad file changes nothing, and
it skips comments whose ids are already stored, so running it twice imports nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from comments_service.manifest import THREAD_KEY_RE
from comments_service.models import Comment, CommentState, utc_now
from comments_service.store import Store

EXPORT_FORMAT = "tellmemore-export"
EXPORT_VERSION = 1
REQUIRED_TEXT = ("id", "thread", "name", "body", "html", "created", "state")
OPTIONAL_TEXT = ("parent", "question", "email", "website", "replied_at", "edited_at",
                 "request", "reader_key", "source")
BOOLEANS = ("public", "is_author", "notify", "marked_answered")


class ImportRefused(Exception):
    """The file is not a tellmemore export, or an entry in it is invalid; nothing was written."""


def export_document(comments: Iterable[Comment]) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utc_now(),
        "comments": [comment.to_record() for comment in comments],
    }


def _check_record(record: Any, where: str) -> Comment:
    if not isinstance(record, dict):
        raise ImportRefused(f"{where}: not an object")
    for name in REQUIRED_TEXT:
        if not isinstance(record.get(name), str) or not record[name]:
            raise ImportRefused(f"{where}: {name} is missing or not text")
    for name in OPTIONAL_TEXT:
        if record.get(name) is not None and not isinstance(record[name], str):
            raise ImportRefused(f"{where}: {name} must be text or null")
    for name in BOOLEANS:
        if not isinstance(record.get(name, False), bool):
            raise ImportRefused(f"{where}: {name} must be true or false")
    if "public" not in record:
        raise ImportRefused(f"{where}: public is missing")
    if not THREAD_KEY_RE.match(record["thread"]):
        raise ImportRefused(f"{where}: thread {record['thread']!r} is not a valid thread key")
    if record["state"] not in {state.value for state in CommentState}:
        raise ImportRefused(f"{where}: state {record['state']!r} is unknown")
    for name in ("created", "replied_at", "edited_at"):
        if record.get(name) is not None:
            try:
                datetime.fromisoformat(record[name])
            except ValueError as error:
                raise ImportRefused(f"{where}: {name} is not an ISO 8601 time") from error
    for name in ("spam_reasons", "nudge_warnings"):
        items = record.get(name, [])
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ImportRefused(f"{where}: {name} must be a list of text")
    return Comment.from_record(record)


def parse_export(text: str | bytes, source: str) -> list[Comment]:
    """Every comment of an export file, or ImportRefused naming the first problem."""
    document = read_export_document(text, source)
    return check_comment_records(document.get("comments"), source)


def read_export_document(text: str | bytes, source: str) -> dict[str, Any]:
    """The JSON document of an export (or backup) file whose format and version this code
    reads, or ImportRefused; its parts are not checked yet."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ImportRefused(f"{source} is not JSON ({error})") from error
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise ImportRefused(
            f"{source} is not a tellmemore export (no \"format\": \"{EXPORT_FORMAT}\")"
        )
    if document.get("version") != EXPORT_VERSION:
        raise ImportRefused(
            f"{source} is export version {document.get('version')!r}; this tellmemore reads "
            f"version {EXPORT_VERSION}"
        )
    return document


def check_comment_records(records: Any, source: str) -> list[Comment]:
    """The comments of an export's ``comments`` list, each checked, ids unique; or
    ImportRefused naming the first problem."""
    if not isinstance(records, list):
        raise ImportRefused(f"{source}: comments is missing or not a list")
    comments = [_check_record(record, f"{source}: comments[{index}]")
                for index, record in enumerate(records)]
    seen: set[str] = set()
    for index, comment in enumerate(comments):
        if comment.id in seen:
            raise ImportRefused(f"{source}: comments[{index}]: id {comment.id!r} appears twice")
        seen.add(comment.id)
    return comments


def import_comments(store: Store, comments: list[Comment]) -> tuple[int, int]:
    """Store the comments not stored yet; returns (added, already present)."""
    added = store.import_comments(comments)
    return added, len(comments) - added
