"""flask … import isso: a database written by a real Isso 0.14 (tests/fixtures/isso-0.14.db,
made by tests/fixtures/make_isso_fixture.py), matched to the test manifest's articles; and one
of an older schema (tests/fixtures/isso-schema-2.sql, built into a database by the test)."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from comments_service.models import CommentState
from tests.test_import_common import table_row

FIXTURES = Path(__file__).parent / "fixtures"
ISSO_DB = FIXTURES / "isso-0.14.db"
SCHEMA_2 = FIXTURES / "isso-schema-2.sql"
AUTHOR = ["--author-email", "ada@blog.test"]


def run(app, *args):
    return app.test_cli_runner().invoke(args=["import", *args])


def stored(app):
    return {comment.source: comment
            for comment in app.extensions["tellmemore.store"].all_comments()}


def isso_rows() -> dict[int, tuple]:
    with sqlite3.connect(ISSO_DB) as connection:
        return {row[0]: row for row in connection.execute(
            "SELECT id, created, modified, mode, author, email FROM comments")}


def test_dry_run_prints_the_summary_and_writes_nothing(app):
    result = run(app, "isso", str(ISSO_DB), *AUTHOR, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "9 comments in 3 threads (2 matched to articles)" in result.output
    assert "to import: 7 new (0 already present)" in result.output
    assert "entering the reply queue: 5" in result.output
    assert table_row(result.output, "skipped: deleted at the source") == (1, "5")
    assert table_row(result.output, "imported higher up: its parent is not imported") == (
        1, "6")
    assert "       1  /gone/ “A page that is not on the new site”\n" in result.output
    assert "--map /gone/=ARTICLE --dry-run" in result.output
    assert "Dry run: nothing was written." in result.output
    assert app.extensions["tellmemore.store"].count_comments() == 0


def test_import_keeps_dates_names_emails_threading_and_states(app, client):
    result = run(app, "isso", str(ISSO_DB), *AUTHOR)
    assert result.exit_code == 0, result.output
    assert "Imported 7 comments (0 already present)" in result.output
    assert "5 entered the reply queue" in result.output
    comments = stored(app)
    rows = isso_rows()
    assert set(comments) == {f"isso:{n}" for n in (1, 2, 3, 4, 6, 7, 9)}  # 5 deleted, 8 /gone/
    for source, comment in comments.items():
        created = datetime.fromtimestamp(rows[int(source[5:])][1], UTC)
        assert datetime.fromisoformat(comment.created) == created
    zoe, ada = comments["isso:1"], comments["isso:2"]
    assert (zoe.name, zoe.email, zoe.website) == ("Zoë Ünlü", "zoe@example.org",
                                                  "https://zoe.example")
    assert zoe.thread == "hello"
    assert "<em>loved</em>" in zoe.html and "<li>one</li>" in zoe.html
    assert 'href="https://example.org/more"' in zoe.html
    assert ada.is_author and ada.state is CommentState.POSTED and ada.parent == zoe.id
    assert zoe.state is CommentState.REPLIED and zoe.replied_at == ada.created
    bob = comments["isso:3"]
    assert bob.name == "Bob & <Co>"  # Isso stored it HTML-escaped
    assert "<script>" not in bob.html and "&lt;script&gt;" in bob.html
    assert "<code>code</code>" in bob.html
    assert comments["isso:4"].parent == bob.id and comments["isso:4"].email is None
    eve = comments["isso:6"]  # her parent was deleted in Isso: she moves to the top
    assert eve.parent is None and eve.state is CommentState.AWAITING_REPLY
    anonymous = comments["isso:7"]
    assert anonymous.thread == "second"  # /second/index.html
    assert anonymous.name == "Anonymous" and anonymous.edited_at is not None
    assert "(edited)" in anonymous.body
    pending = comments["isso:9"]
    assert pending.state is CommentState.AWAITING_REPLY and not pending.public
    assert all(comment.public for key, comment in comments.items() if key != "isso:9")
    # The public thread shows the conversation as it was.
    tree = client.get("/api/threads/hello").get_json()["comments"]
    first = next(node for node in tree if node["id"] == zoe.id)
    assert [reply["id"] for reply in first["replies"]] == [ada.id]
    assert app.extensions["tellmemore.store"].count_waiting() == 5


def test_importing_twice_adds_nothing(app):
    assert run(app, "isso", str(ISSO_DB)).exit_code == 0
    before = {c.id: c.to_record() for c in app.extensions["tellmemore.store"].all_comments()}
    again = run(app, "isso", str(ISSO_DB))
    assert again.exit_code == 0, again.output
    assert "to import: 0 new (7 already present)" in again.output
    assert "Imported 0 comments (7 already present)" in again.output
    after = {c.id: c.to_record() for c in app.extensions["tellmemore.store"].all_comments()}
    assert before == after


def test_answered_before_keeps_history_out_of_the_queue(app):
    result = run(app, "isso", str(ISSO_DB), *AUTHOR, "--answered-before", "2100-01-01")
    assert result.exit_code == 0, result.output
    assert "marked answered (written before 2100-01-01T00:00:00+00:00): 5" in result.output
    assert "entering the reply queue: 0" in result.output
    comments = stored(app)
    bob = comments["isso:3"]
    assert bob.state is CommentState.REPLIED and bob.marked_answered and bob.replied_at is None
    zoe = comments["isso:1"]  # really answered: keeps the reply's time, not marked
    assert zoe.replied_at is not None and not zoe.marked_answered
    assert app.extensions["tellmemore.store"].count_waiting() == 0


def test_author_by_name(app):
    assert run(app, "isso", str(ISSO_DB), "--author-name", "ada lovelace").exit_code == 0
    assert stored(app)["isso:2"].is_author


@pytest.fixture
def broken_copy(tmp_path):
    def make(sql: str) -> Path:
        target = tmp_path / "comments.db"
        shutil.copyfile(ISSO_DB, target)
        with sqlite3.connect(target) as connection:
            connection.executescript(sql)
        connection.close()
        return target
    return make


@pytest.mark.parametrize(("sql", "message"), [
    ("DROP TABLE comments;", "no table 'comments'"),
    ("ALTER TABLE comments DROP COLUMN mode;", "table 'comments' has no column 'mode'"),
    ("UPDATE comments SET mode = 7 WHERE id = 6;", "comments row id=6: mode 7 is not 1, 2 or 4"),
    ("UPDATE comments SET created = 'yesterday' WHERE id = 9;",
     "comments row id=9: created 'yesterday' is not a Unix time"),
])
def test_a_damaged_database_is_refused_whole(app, broken_copy, sql, message):
    path = broken_copy(sql)
    result = run(app, "isso", str(path))
    assert result.exit_code == 1
    assert message in result.output
    assert "Nothing was imported" in result.output
    assert app.extensions["tellmemore.store"].count_comments() == 0


def test_a_file_that_is_not_sqlite_is_refused(app, tmp_path):
    path = tmp_path / "comments.db"
    path.write_text("not a database at all, just text " * 20)
    result = run(app, "isso", str(path))
    assert result.exit_code == 1
    assert "not a readable Isso database" in result.output


def test_our_own_import_still_answers_to_import_file(app, tmp_path):
    path = tmp_path / "export.json"
    path.write_text('{"format": "tellmemore-export", "version": 1, "comments": []}')
    result = run(app, str(path))
    assert result.exit_code == 0, result.output
    assert "Imported 0 comments (0 already present)" in result.output


# --- older schemas ---------------------------------------------------------------------------


@pytest.fixture
def schema_2_db(tmp_path):
    def make(extra_sql: str = "") -> Path:
        target = tmp_path / "comments.db"
        connection = sqlite3.connect(target)
        with connection:
            connection.executescript(SCHEMA_2.read_text(encoding="utf-8") + extra_sql)
        connection.close()
        return target
    return make


def test_an_older_schema_keeps_deep_replies_and_names_what_it_skips(app, schema_2_db):
    result = run(app, "isso", str(schema_2_db()), *AUTHOR)
    assert result.exit_code == 0, result.output
    output = result.output
    assert "11 comments in 3 threads (2 matched to articles; 1 without a link" in output
    assert table_row(output, "skipped: deleted at the source") == (1, "10")
    assert table_row(output, "skipped: empty") == (1, "6")
    assert table_row(output, "skipped: its thread is not in the file") == (1, "7")
    assert table_row(output, "skipped: its thread has no link") == (1, "8")
    assert table_row(output, "imported at the top: its parent is not in the file") == (1, "5")
    assert table_row(output, "imported higher up: its parent is not imported") == (1, "11")
    assert "Imported 7 comments (0 already present)" in output
    comments = stored(app)
    assert set(comments) == {f"isso:{n}" for n in (1, 2, 3, 4, 5, 9, 11)}
    first, answer, follow_up, last = (comments[f"isso:{n}"] for n in (1, 2, 3, 4))
    assert (answer.parent, follow_up.parent, last.parent) == (first.id, answer.id, follow_up.id)
    assert first.name == "Zoë & co" and first.website == "https://zoe.example"
    assert first.created == "2014-05-13T16:53:20.000000+00:00"  # an integer time
    assert first.state is CommentState.REPLIED and follow_up.state is CommentState.REPLIED
    assert last.is_author and last.edited_at == "2014-05-13T17:00:00.500000+00:00"
    assert comments["isso:5"].parent is None and comments["isso:11"].parent is None
    pending = comments["isso:9"]
    assert pending.thread == "second" and not pending.public


def test_a_database_without_the_optional_columns_still_imports(app, schema_2_db):
    path = schema_2_db("ALTER TABLE comments DROP COLUMN website;"
                       "ALTER TABLE comments DROP COLUMN email;"
                       "ALTER TABLE comments DROP COLUMN modified;"
                       "ALTER TABLE threads DROP COLUMN title;")
    result = run(app, "isso", str(path), "--author-name", "Ada Lovelace")
    assert result.exit_code == 0, result.output
    assert "Imported 7 comments (0 already present)" in result.output
    comments = stored(app)
    assert comments["isso:1"].email is None and comments["isso:1"].website is None
    assert comments["isso:4"].is_author and comments["isso:4"].edited_at is None
