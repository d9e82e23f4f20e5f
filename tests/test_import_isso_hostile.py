"""A hostile Isso database (issue 20, item 9): BLOBs where text belongs, rows that are each
other's parents, views instead of tables and a read that never ends are refused with a message
naming the row or table, before anything is written; and a second database whose row ids
overlap an earlier import's is imported, not taken for comments already present."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from comments_service.importers import isso
from tests.test_import_isso import ISSO_DB, run

pytestmark = pytest.mark.both_stores


@pytest.fixture
def copy_with(tmp_path):
    def make(sql: str, name: str = "comments.db") -> Path:
        target = tmp_path / name
        shutil.copyfile(ISSO_DB, target)
        with sqlite3.connect(target) as connection:
            connection.executescript(sql)
        connection.close()
        return target
    return make


def count(app) -> int:
    return app.extensions["tellmemore.store"].count_comments()


@pytest.mark.parametrize(("sql", "message"), [
    ("UPDATE comments SET text = X'00FF10' WHERE id = 4;", "comments row id=4: text is a BLOB"),
    ("UPDATE comments SET author = X'41' WHERE id = 3;", "comments row id=3: author is a BLOB"),
    ("UPDATE comments SET email = X'41' WHERE id = 9;", "comments row id=9: email is a BLOB"),
    ("UPDATE comments SET website = X'41' WHERE id = 1;", "comments row id=1: website is a BLOB"),
    ("UPDATE threads SET title = X'41' WHERE id = 2;", "threads row id=2: title is a BLOB"),
    ("UPDATE threads SET uri = X'2F' WHERE id = 1;", "threads row id=1: uri is a BLOB"),
    ("UPDATE comments SET parent = 4 WHERE id = 3;", "rows id=3, id=4 are each other's parents"),
    ("UPDATE comments SET parent = 7 WHERE id = 7;", "rows id=7 are each other's parents"),
    ("ALTER TABLE comments RENAME TO real_comments;"
     " CREATE VIEW comments AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n)"
     " SELECT * FROM real_comments, n;", "'comments' is a view, not a table"),
])
def test_a_hostile_database_is_refused_naming_the_row_and_nothing_is_written(
    app, copy_with, sql, message
):
    result = run(app, "isso", str(copy_with(sql)))
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Nothing was imported" in result.output
    assert count(app) == 0


def test_a_read_over_the_time_limit_is_refused(app, monkeypatch):
    monkeypatch.setattr(isso, "READ_TIME_LIMIT_SECONDS", 0)
    monkeypatch.setattr(isso, "PROGRESS_STEPS", 1)
    result = run(app, "isso", str(ISSO_DB))
    assert result.exit_code == 1
    assert "took longer than 0 s" in result.output
    assert count(app) == 0


def test_a_second_database_with_the_same_row_ids_is_imported_too(app, copy_with):
    assert run(app, "isso", str(ISSO_DB)).exit_code == 0
    first = count(app)
    # The same site's other Isso instance: rows numbered from 1 again, other comments.
    other = copy_with("UPDATE comments SET created = created + 86400,"
                      " text = 'From the other database: ' || text;", "other.db")
    result = run(app, "isso", str(other))
    assert result.exit_code == 0, result.output
    assert count(app) == 2 * first
    bodies = [c.body for c in app.extensions["tellmemore.store"].all_comments()]
    assert sum(body.startswith("From the other database") for body in bodies) == first
    # Replies of the second database hang under its own comments, not the first one's.
    store = app.extensions["tellmemore.store"]
    for comment in store.all_comments():
        if comment.parent and comment.body.startswith("From the other"):
            assert store.get_comment(comment.parent).body.startswith("From the other")
    # And each import run again adds nothing.
    assert run(app, "isso", str(other)).exit_code == 0
    assert run(app, "isso", str(ISSO_DB)).exit_code == 0
    assert count(app) == 2 * first
