"""Sentence vectors on the embedded store (VectorStore): one append-only file per model.

<store>/vectors/<model>.bin is a run of records, each

    digest (16 bytes) · length (4 bytes, little-endian) · vector (length bytes) · CRC-32 (4 bytes)

A vector is written once and never changed, so the file only grows: each process keeps, in
memory, where each digest's record starts (a few dozen bytes a text, not the vectors) and reads
a vector with one ``pread`` when asked. Appends hold the file's flock and go in one write; a
record cut short by a crash, or damaged, ends what is read (the next append, under the lock,
cuts the file back to the last whole record first). Vectors are derived data: nothing is
fsynced, and a vector lost to a crash is encoded again.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from comments_service.store import files
from comments_service.store.base import check_vector_key

VECTORS_FOLDER = "vectors"
HEADER = struct.Struct("<16sI")
CRC = struct.Struct("<I")
MAX_VECTOR_BYTES = 1 << 20  # a length beyond this is damage, not a vector


def _record(digest: str, vector: bytes) -> bytes:
    key = bytes.fromhex(digest)
    body = HEADER.pack(key, len(vector)) + vector
    return body + CRC.pack(zlib.crc32(body))


class _ModelFile:
    """One model's file, and where each record this process has read starts."""

    def __init__(self, path: Path, lock_path: Path) -> None:
        self.path, self.lock_path = path, lock_path
        self.offsets: dict[str, tuple[int, int]] = {}  # digest → (vector's offset, length)
        self.read_up_to = 0  # the end of the last whole record read
        self.lock = threading.Lock()

    def catch_up(self) -> None:
        """Read the records appended since the last look (by any process)."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.read_up_to)
                data = handle.read()
        except FileNotFoundError:
            return
        position = 0
        while len(data) - position >= HEADER.size:
            key, length = HEADER.unpack_from(data, position)
            end = position + HEADER.size + length + CRC.size
            if length > MAX_VECTOR_BYTES or end > len(data):
                break
            body = data[position:end - CRC.size]
            if CRC.unpack_from(data, end - CRC.size)[0] != zlib.crc32(body):
                break
            self.offsets.setdefault(key.hex(), (self.read_up_to + position + HEADER.size,
                                                length))
            position = end
        self.read_up_to += position

    def read(self, digests: list[str]) -> dict[str, bytes]:
        found = {}
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            for digest in digests:
                offset, length = self.offsets[digest]
                found[digest] = os.pread(fd, length, offset)
        finally:
            os.close(fd)
        return found


class TinyDBVectors:
    """VectorStore on files: <store>/vectors/<model>.bin (module docstring)."""

    def __init__(self, store_path: Path, locks: Path) -> None:
        self.folder = store_path / VECTORS_FOLDER
        self._locks = locks
        self._models: dict[str, _ModelFile] = {}
        self._models_lock = threading.Lock()

    def _model(self, model: str) -> _ModelFile:
        check_vector_key(model)
        with self._models_lock:
            if model not in self._models:
                self._models[model] = _ModelFile(self.folder / f"{model}.bin",
                                                 self._locks / f"vectors-{model}.lock")
            return self._models[model]

    def text_vectors(self, model: str, digests: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(digests))
        for digest in wanted:
            check_vector_key(model, digest)
        kept = self._model(model)
        with kept.lock:
            if any(digest not in kept.offsets for digest in wanted):
                kept.catch_up()
            present = [digest for digest in wanted if digest in kept.offsets]
            return kept.read(present) if present else {}

    def add_text_vectors(self, model: str, vectors: Mapping[str, bytes]) -> None:
        for digest, vector in vectors.items():
            check_vector_key(model, digest)
            if not isinstance(vector, bytes) or len(vector) > MAX_VECTOR_BYTES:
                raise ValueError(f"A vector is at most {MAX_VECTOR_BYTES} bytes")
        if not vectors:
            return
        kept = self._model(model)
        with files.full_disk_as_unavailable(kept.path):
            self.folder.mkdir(parents=True, exist_ok=True)
            with kept.lock, files.exclusive_lock(kept.lock_path):
                kept.catch_up()
                new = b"".join(_record(digest, vector) for digest, vector in vectors.items()
                               if digest not in kept.offsets)
                if not new:
                    return
                fd = os.open(kept.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    # Whatever follows the last whole record is a cut-off append: drop it, so
                    # that the new records follow whole ones.
                    os.ftruncate(fd, kept.read_up_to)
                    os.lseek(fd, kept.read_up_to, os.SEEK_SET)
                    files.write_all(fd, new)
                finally:
                    os.close(fd)
                kept.catch_up()
