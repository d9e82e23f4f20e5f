"""Sentence vectors in the PostgreSQL store (VectorStore): the text_vectors table
(migrations/0002), keyed by model and text digest. A vector is inserted once; a second insert
of the same digest (another worker encoded it at the same time) is ignored."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from comments_service.store.base import check_vector_key
from comments_service.store.postgres.connections import Connections


class PostgresVectors:
    """The text_vectors table of one database."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def text_vectors(self, model: str, digests: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(digests))
        for digest in wanted:
            check_vector_key(model, digest)
        if not wanted:
            return {}
        with self._connections.transaction() as cursor:
            rows = cursor.execute(
                "SELECT digest, vector FROM text_vectors WHERE model = %s AND digest = ANY(%s)",
                (model, wanted)).fetchall()
        return {digest: bytes(vector) for digest, vector in rows}

    def add_text_vectors(self, model: str, vectors: Mapping[str, bytes]) -> None:
        for digest, vector in vectors.items():
            check_vector_key(model, digest)
            if not isinstance(vector, bytes):
                raise ValueError("A vector is bytes")
        if not vectors:
            return
        with self._connections.transaction() as cursor:
            cursor.executemany(
                "INSERT INTO text_vectors (model, digest, vector) VALUES (%s, %s, %s)"
                " ON CONFLICT (model, digest) DO NOTHING",
                [(model, digest, vector) for digest, vector in sorted(vectors.items())])
