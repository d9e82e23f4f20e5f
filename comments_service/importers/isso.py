"""Read an Isso database (SQLite, any schema version Isso has written) into SourceData.

Isso keeps ``threads(id, uri, title)`` and ``comments(tid, id, parent, created, modified, mode,
text, author, email, website, likes, …)``: times are Unix seconds (floats; older databases
hold integers), ``mode`` is 1 for public, 2 for pending moderation and 4 for deleted (a comment
deleted after someone replied to it stays, emptied), ``text`` is the Markdown the reader
typed, and Isso stored ``author`` HTML-escaped (``&amp;``), which is undone here. Likes are not
kept (tellmemore has none). The file is opened read-only; nothing in it is changed.

Older schemas (``PRAGMA user_version`` below 3) differ in ways that matter here: no
``notification`` column, and replies nested at any depth (Isso flattened them to one level
when it moved to version 3); both are read as they are. Only the columns in
``NEEDED_COLUMNS`` must exist; ``OPTIONAL_COLUMNS`` read as empty when a database lacks them.
What cannot be placed is handed on (source.py): a thread with an empty ``uri``, a comment whose
``tid`` is not in ``threads``, a reply whose parent row is gone. Refused whole: not SQLite, no
such tables or columns, a ``mode`` or time it cannot read, a text column holding a BLOB (or a
number), rows whose parents form a loop, ``threads`` or ``comments`` that are views rather
than tables (a view can run any query), and a read that takes longer than
READ_TIME_LIMIT_SECONDS; each refusal names the row or table, and comes before anything is
written, so nothing is imported half-way.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from comments_service.importers.source import (
    ImportRefused,
    SourceComment,
    SourceData,
    SourceThread,
    clean_email,
    clean_name,
    clean_website,
)

NEEDED_COLUMNS = {
    "threads": {"id", "uri"},
    "comments": {"tid", "id", "parent", "created", "mode", "text", "author"},
}
OPTIONAL_COLUMNS = {"threads": ("title",), "comments": ("modified", "email", "website")}
MODES = {1: "public", 2: "pending", 4: "deleted"}
# A real database of 100 000 comments reads in about a second; a hostile one must not hang.
READ_TIME_LIMIT_SECONDS = 60.0
# SQLite calls the progress handler every this many virtual machine steps.
PROGRESS_STEPS = 10_000


def _text_or_none(value: object, where: str, what: str) -> str | None:
    """A text column's value; a BLOB or a number there is refused, naming the row."""
    if value is None or isinstance(value, str):
        return value
    kind = "a BLOB" if isinstance(value, bytes) else f"a {type(value).__name__}"
    raise ImportRefused(f"{where}: {what} is {kind}, not text")


def _time(value: object, where: str, what: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ImportRefused(f"{where}: {what} {value!r} is not a Unix time")
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise ImportRefused(f"{where}: {what} {value!r} is not a Unix time") from error


def read_isso(path: str) -> SourceData:
    """Every thread and comment of the database, checked; ImportRefused names the problem."""
    if not Path(path).is_file():
        raise ImportRefused(f"{path}: no such file")
    try:
        connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise ImportRefused(f"{path}: cannot open it as SQLite ({error})") from error
    deadline = time.monotonic() + READ_TIME_LIMIT_SECONDS
    # A non-zero answer interrupts the statement running (sqlite3.OperationalError).
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), PROGRESS_STEPS)
    try:
        return _read(connection, path)
    except sqlite3.OperationalError as error:
        if time.monotonic() > deadline:
            raise ImportRefused(
                f"{path}: reading it took longer than {READ_TIME_LIMIT_SECONDS:g} s; "
                "is it a real Isso database?") from error
        raise ImportRefused(f"{path}: not a readable Isso database ({error})") from error
    except sqlite3.DatabaseError as error:
        raise ImportRefused(f"{path}: not a readable Isso database ({error})") from error
    finally:
        connection.close()


def _columns(connection: sqlite3.Connection, path: str, table: str) -> str:
    """The SELECT list for ``table``: needed columns checked, missing optional ones NULL."""
    kind = connection.execute("SELECT type FROM sqlite_master WHERE name = ?",
                              (table,)).fetchone()
    if kind is not None and kind[0] != "table":
        raise ImportRefused(f"{path}: {table!r} is a {kind[0]}, not a table; Isso writes tables")
    present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
    if not present:
        raise ImportRefused(f"{path}: no table {table!r}; is this an Isso comments.db?")
    missing = sorted(NEEDED_COLUMNS[table] - present)
    if missing:
        raise ImportRefused(f"{path}: table {table!r} has no column "
                            f"{', '.join(map(repr, missing))}; is this an Isso database?")
    return ", ".join(name if name in present else f"NULL AS {name}"
                     for name in OPTIONAL_COLUMNS[table])


def _read(connection: sqlite3.Connection, path: str) -> SourceData:
    thread_columns = _columns(connection, path, "threads")
    comment_columns = _columns(connection, path, "comments")
    threads: dict[str, SourceThread] = {}
    for thread_id, uri, title in connection.execute(
            f"SELECT id, uri, {thread_columns} FROM threads ORDER BY id"):  # noqa: S608
        where = f"{path}: threads row id={thread_id}"
        uri = _text_or_none(uri, where, "uri") or ""  # no uri: the thread cannot be placed
        title = _text_or_none(title, where, "title")
        threads[str(thread_id)] = SourceThread(str(thread_id), uri.strip(), title or "")
    comments: list[SourceComment] = []
    rows = connection.execute(
        "SELECT id, tid, parent, created, mode, text, author, "  # noqa: S608
        f"{comment_columns} FROM comments ORDER BY id")
    for (comment_id, tid, parent, created, mode, text, author, modified, email,
         website) in rows:
        where = f"{path}: comments row id={comment_id}"
        if mode not in MODES:
            raise ImportRefused(f"{where}: mode {mode!r} is not 1, 2 or 4")
        text = _text_or_none(text, where, "text")
        author = _text_or_none(author, where, "author")
        email = _text_or_none(email, where, "email")
        website = _text_or_none(website, where, "website")
        comments.append(SourceComment(
            key=str(comment_id), thread=str(tid),
            parent=str(parent) if parent not in (None, 0, "0") else None,
            name=clean_name(author), email=clean_email(email), website=clean_website(website),
            created=_time(created, where, "created"),
            edited=_time(modified, where, "modified") if modified is not None else None,
            body=text or "", status=MODES[mode],  # type: ignore[arg-type]
        ))
    _refuse_parent_loops(comments, path)
    return SourceData("isso", "Isso", path, threads, comments)


def _refuse_parent_loops(comments: list[SourceComment], path: str) -> None:
    """Isso only ever points a reply at an older row: rows whose parents lead back to
    themselves were written by hand, so the file is refused rather than guessed at."""
    parents = {comment.key: comment.parent for comment in comments}
    cleared: set[str] = set()
    for key in parents:
        trail: list[str] = []
        on_trail: set[str] = set()
        above: str | None = key
        while above is not None and above in parents and above not in cleared:
            if above in on_trail:
                loop = trail[trail.index(above):]
                rows = ", ".join(f"id={row}" for row in loop)
                raise ImportRefused(f"{path}: comments rows {rows} are each other's parents "
                                    "(a loop); Isso never writes that")
            trail.append(above)
            on_trail.add(above)
            above = parents[above]
        cleared.update(trail)
