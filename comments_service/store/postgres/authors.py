"""The authors of the PostgreSQL store (AuthorStore): the authors table, whose unique index
on the casefolded email keeps two authors from sharing one."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql

from comments_service.models import Author
from comments_service.store.errors import AuthorNotFound, DuplicateAuthor
from comments_service.store.postgres.connections import Connections
from comments_service.store.postgres.rows import locked_change, record_of
from comments_service.store.postgres.schema import json_text


class PostgresAuthors:
    """The authors table of one database."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def add_author(self, author: Author) -> Author:
        if not isinstance(author, Author):
            raise TypeError(f"add_author() takes an Author, not {type(author).__name__}")
        with self._connections.transaction() as cursor:
            try:
                cursor.execute(
                    "INSERT INTO authors (id, email_folded, created, record)"
                    " VALUES (%s, %s, %s, %s::json)",
                    (author.id, author.email.casefold(), author.created,
                     json_text(author.to_record())),
                )
            except psycopg.errors.UniqueViolation as error:
                raise self._duplicate_author(error, author) from error
        return author

    @staticmethod
    def _duplicate_author(error: psycopg.errors.UniqueViolation, author: Author) -> DuplicateAuthor:
        if error.diag.constraint_name == "authors_email_unique":
            return DuplicateAuthor(f"An author with the email {author.email} exists")
        return DuplicateAuthor(f"An author with the id {author.id} exists")

    def _authors(self, column: str | None = None, value: str | None = None) -> list[Author]:
        """The authors whose ``column`` holds ``value`` (None: all), oldest first."""
        where = sql.SQL("true") if column is None else sql.SQL("{} = %s").format(
            sql.Identifier(column))
        with self._connections.transaction() as cursor:
            rows = cursor.execute(sql.SQL("SELECT id, record FROM authors WHERE {}"
                                          " ORDER BY created, seq").format(where),
                                  () if column is None else (value,)).fetchall()
        return [record_of(Author, record, f"author {author_id}") for author_id, record in rows]

    def get_author(self, author_id: str) -> Author | None:
        return next(iter(self._authors("id", author_id)), None)

    def author_by_email(self, email: str) -> Author | None:
        return next(iter(self._authors("email_folded", email.casefold())), None)

    def list_authors(self) -> list[Author]:
        return self._authors()

    def update_author(self, author_id: str, change: Callable[[Author], Author]) -> Author:
        with self._connections.transaction() as cursor:
            old, new = locked_change(cursor, "authors", author_id, Author, change,
                                     AuthorNotFound(f"No author {author_id}"))
            if new != old:
                try:
                    cursor.execute(
                        "UPDATE authors SET email_folded = %s, created = %s, record = %s::json"
                        " WHERE id = %s",
                        (new.email.casefold(), new.created, json_text(new.to_record()), author_id),
                    )
                except psycopg.errors.UniqueViolation as error:
                    raise DuplicateAuthor(f"An author with the email {new.email} exists") from error
        return new
