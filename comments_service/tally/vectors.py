"""Each text's sentence vector, encoded once and kept in the store (VectorStore).

:func:`stored` wraps an embedder so that what it encodes is looked up first: in this process's
memory (the most recently used), then in the store, by the embedder's model and a digest of
the text; only texts found in neither are encoded, and their vectors are stored for every
other process and every restart. Ranking a comment, grouping it and a whole regroup all encode
through it, so no text is encoded twice for one model. The lexical embedder's vectors cost
less to make than to read back; they are not kept.

Vectors are float32, little-endian, kept as bytes; the model's key names the weights
(``vector_key``), so vectors of another model are never mixed in.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from comments_service.store import VectorStore

MEMORY_SIZE = 20_000  # vectors kept in this process (1.5 KB each for the model's)
VECTOR_DTYPE = np.dtype("<f4")


def text_digest(text: str) -> str:
    """The key a text's vector is kept under."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class _Memory:
    """The most recently used vectors of one store object, by (model, digest)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._vectors: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        with self._lock:
            found = {}
            for key in keys:
                if key in self._vectors:
                    self._vectors.move_to_end(key)
                    found[key] = self._vectors[key]
            return found

    def put(self, found: dict[tuple[str, str], Any]) -> None:
        with self._lock:
            self._vectors.update(found)
            while len(self._vectors) > self._size:
                self._vectors.popitem(last=False)


# Per store object: a vector in memory is one this store holds (or has just been given).
_memories: weakref.WeakKeyDictionary[Any, _Memory] = weakref.WeakKeyDictionary()
_memories_lock = threading.Lock()


def _memory_of(store: Any) -> _Memory:
    with _memories_lock:
        if store not in _memories:
            _memories[store] = _Memory(MEMORY_SIZE)
        return _memories[store]


class StoredEmbedder:
    """``embedder`` with its vectors kept in ``store`` (see the module docstring). Every
    other attribute is the embedder's own (its name, its calibration for settle.py)."""

    def __init__(self, embedder: Any, store: VectorStore) -> None:
        self.embedder = embedder
        self.model = embedder.vector_key
        # Weak: groupers are cached per store (state.py), and must not keep it alive.
        self._store = weakref.ref(store)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.embedder, name)

    def encode(self, texts: Sequence[str]) -> list[Any]:
        """Each text's vector (numpy float32), encoding only those never encoded before."""
        keys = [(self.model, text_digest(text)) for text in texts]
        store = self._store()
        memory = _memory_of(store) if store is not None else _Memory(len(keys) or 1)
        found = memory.get(keys)
        missing = [key for key in dict.fromkeys(keys) if key not in found]
        if missing and store is not None:
            kept = store.text_vectors(self.model, [digest for _model, digest in missing])
            from_store = {(self.model, digest): np.frombuffer(vector, dtype=VECTOR_DTYPE)
                          for digest, vector in kept.items()}
            found.update(from_store)
            memory.put(from_store)
        unknown = [index for index, key in enumerate(keys) if key not in found]
        if unknown:
            encoded = self.embedder.encode([texts[index] for index in unknown])
            new = {keys[index]: np.asarray(vector, dtype=VECTOR_DTYPE)
                   for index, vector in zip(unknown, encoded, strict=True)}
            if store is not None:
                store.add_text_vectors(self.model, {digest: vector.tobytes()
                                                    for (_model, digest), vector in new.items()})
            found.update(new)
            memory.put(new)
        return [found[key] for key in keys]


def stored(embedder: Any, store: VectorStore) -> Any:
    """``embedder`` with its vectors kept in ``store``; a lexical embedder as it is."""
    if getattr(embedder, "vector_key", None) is None or isinstance(embedder, StoredEmbedder):
        return embedder
    return StoredEmbedder(embedder, store)


def forget_in_memory() -> None:
    """Drop this process's vectors (as a restart would): tests and benches."""
    with _memories_lock:
        _memories.clear()
