"""Crash-safe file writing and locking, for anything that keeps data in files.

The rules every file the store (or a backup) writes follows, in one place:

- :func:`atomic_write` replaces a file so that a crash at any instant leaves the old content
  or the new, never a mix, and the new content survives a power cut once it returns.
- :func:`exclusive_lock` holds a blocking ``fcntl.flock``, which excludes other processes and
  other threads of this one alike, and is released by the kernel if the holder dies.
- :func:`fsync_folder` makes a new or renamed name in a folder durable.
- :func:`write_all` is the one place data bytes are written, so tests can make it fail the way
  a full disk does.
- :func:`remove_stale_temp_files` clears the temporary files a crash left behind.

A write that fails because the disk cannot take it now (full, read-only, over quota) raises
StoreUnavailable, which the service answers with 503; any other OSError propagates as is.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from comments_service.store.errors import StoreUnavailable

# Write errors that mean "the disk cannot take this now", not "the code is wrong".
UNAVAILABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})
# Temporary files older than this are leftovers of a crash (a write takes milliseconds).
STALE_TEMP_SECONDS = 3600
# What atomic_write names its temporary files: ".<target name>.<writer>.<random>.tmp", where
# <writer> is "<host digest>-<pid>", so that a file left by a process that died (a worker
# SIGKILLed mid-write) is known for one at the next start, however young it is.
TEMP_PATTERN = ".*.tmp"


def _host_digest() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_prefix(path: Path) -> str:
    """The start of the name of a temporary file standing in for ``path`` in this process."""
    return f".{path.name}.{_host_digest()}-{os.getpid()}."


def _writer_is_gone(temp_path: Path) -> bool:
    """Whether the temporary file was made by a process of this machine that has ended."""
    parts = temp_path.name[: -len(".tmp")].rsplit(".", 2)
    if len(parts) != 3 or "-" not in parts[1]:
        return False  # an older name without the writer: only its age tells
    host, _, pid = parts[1].partition("-")
    if host != _host_digest() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, someone else's
    return False


def unavailable(error: OSError, path: Path) -> StoreUnavailable:
    """The StoreUnavailable to raise when writing ``path`` failed with ``error``."""
    reason = os.strerror(error.errno) if error.errno is not None else str(error)
    return StoreUnavailable(
        f"The comment store cannot write {path}: {reason}. Nothing was changed; "
        "free space (or make the store writable) and try again."
    )


@contextmanager
def full_disk_as_unavailable(path: Path) -> Iterator[None]:
    """Turn an OSError that means "the disk cannot take this now" into StoreUnavailable
    naming ``path``; other errors pass unchanged."""
    try:
        yield
    except OSError as error:
        if error.errno in UNAVAILABLE_ERRNOS:
            raise unavailable(error, path) from error
        raise


def write_all(fd: int, payload: bytes) -> None:
    """Write every byte of ``payload`` to ``fd`` (os.write may write fewer than asked)."""
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def append_durably(fd: int, payload: bytes, end: int) -> None:
    """Write ``payload`` at ``end``, the end of ``fd`` (opened to append), and fsync it; if
    that fails, cut the file back to ``end`` so that no partial record stays behind, and
    raise."""
    try:
        write_all(fd, payload)
        os.fsync(fd)
    except OSError:
        with suppress(OSError):
            os.ftruncate(fd, end)
        raise


def fsync_folder(folder: Path) -> None:
    """Make a new or renamed entry in ``folder`` durable: the name lives in the folder."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, payload: bytes) -> None:
    """Replace ``path`` by ``payload``: a crash at any instant leaves the old or the new file.

    The new content goes to a temporary file in the same folder (a rename is atomic only
    within one file system), is fsynced, renamed over the old one, and the folder is fsynced
    so that the rename itself survives a power cut. The temporary file is created private
    (mode 0600) and removed if anything fails. StoreUnavailable when the disk is full.
    """
    temp_name: str | None = None
    try:
        with full_disk_as_unavailable(path):
            fd, temp_name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp",
                                             dir=path.parent)
            try:
                write_all(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp_name, path)
            temp_name = None
            fsync_folder(path.parent)
    finally:
        if temp_name is not None:
            with suppress(OSError):
                os.unlink(temp_name)


@contextmanager
def exclusive_lock(lock_path: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing); yields whether it
    was acquired, which is always True unless ``wait`` is False and another holds it.

    The lock file is opened afresh on every acquisition: flock locks belong to the open file
    description, so a new one also excludes other threads of this process, not only other
    processes. Closing the descriptor releases the lock, also when the process dies.
    """
    with full_disk_as_unavailable(lock_path):
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def remove_stale_temp_files(
    folders: Iterable[Path], pattern: str = TEMP_PATTERN,
    older_than: float = STALE_TEMP_SECONDS,
) -> None:
    """Remove the files matching ``pattern`` in ``folders`` whose writer has ended (a process
    of this machine that no longer runs), or not modified for ``older_than`` seconds:
    temporary files of writes a crash cut short (a live write is far younger, and its
    process alive)."""
    cutoff = time.time() - older_than
    for folder in folders:
        for temp_path in folder.glob(pattern):
            with suppress(OSError):
                if _writer_is_gone(temp_path) or temp_path.stat().st_mtime < cutoff:
                    temp_path.unlink()
