"""What every `flask … import isso|disqus|wordpress` shares, on both stores: the dry run changes
nothing, a broken map refuses the whole run, a store that fails part way leaves whole threads
and a run that completes them, and a progress bar on stderr above a thousand comments.

`table_row` (the summary table's row for a reason) is used by the other test_import_* modules.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from comments_service.store import StoreUnavailable

pytestmark = pytest.mark.both_stores

FIXTURES = Path(__file__).parent / "fixtures"
DISQUS = FIXTURES / "disqus-export.xml"
PLAIN_PERMALINKS = FIXTURES / "wordpress-default-permalinks.xml"


def table_row(output: str, why: str) -> tuple[int, str] | None:
    """(count, first source ids) of the summary table's row for ``why``, or None."""
    for line in output.splitlines():
        count, _, rest = line.strip().partition("  ")
        if count.isdigit() and rest.strip().startswith(why):
            return int(count), rest.strip()[len(why):].strip()
    return None


def run(app, *args):
    return app.test_cli_runner().invoke(args=["import", *args])


def all_records(app) -> dict[str, dict]:
    return {c.id: c.to_record() for c in app.extensions["tellmemore.store"].all_comments()}


def store_files(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


# --- the dry run -------------------------------------------------------------------------------


@pytest.mark.tinydb_only("compares the store's files byte for byte")
def test_the_dry_run_changes_no_file_of_the_store(app, store_config):
    assert run(app, "disqus", str(DISQUS)).exit_code == 0
    folder = Path(store_config["STORE_PATH"])
    before = store_files(folder)
    for args in (["disqus", str(DISQUS)], ["wordpress", str(PLAIN_PERMALINKS), "--map",
                                            "/?p=4=hello", "--map", "/?p=6=second"]):
        result = run(app, *args, "--dry-run")
        assert result.exit_code == 0, result.output
        assert "Dry run: nothing was written." in result.output
    assert store_files(folder) == before


def test_the_dry_run_stores_nothing(app):
    assert run(app, "disqus", str(DISQUS)).exit_code == 0
    before = all_records(app)
    result = run(app, "wordpress", str(PLAIN_PERMALINKS), "--map", "/?p=4=hello", "--dry-run")
    assert "to import: 4 new (0 already present)" in result.output
    assert all_records(app) == before


# --- a second run ------------------------------------------------------------------------------


def test_a_second_run_reads_each_article_once_not_each_comment(app, monkeypatch):
    # One look-up per comment re-read a whole thread file each time: 20 000 comments took
    # more than ten minutes. Comments their article has are found in one read per article.
    assert run(app, "disqus", str(DISQUS)).exit_code == 0
    store = app.extensions["tellmemore.store"]
    looked_up = []
    real_get = store.get_comment
    monkeypatch.setattr(store, "get_comment", lambda i: looked_up.append(i) or real_get(i))
    again = run(app, "disqus", str(DISQUS), "--dry-run")
    assert "to import: 0 new (5 already present)" in again.output
    assert looked_up == []


def test_a_comment_stored_under_another_article_is_present_not_new(app):
    first = run(app, "wordpress", str(PLAIN_PERMALINKS), "--map", "/?p=4=hello")
    assert "Imported 4 comments (0 already present)" in first.output
    moved = run(app, "wordpress", str(PLAIN_PERMALINKS), "--map", "/?p=4=second")
    assert "to import: 0 new (4 already present)" in moved.output
    assert ("already present under another article (an earlier run placed them; this run "
            "moves nothing): 4, 4:2, 4:3, 4:5, 4:6"
            ) in moved.output
    assert {c.thread for c in app.extensions["tellmemore.store"].all_comments()} == {"hello"}


# --- the map -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--map", "/?p=4=no-such-article"],
     "--map '/?p=4=no-such-article': 'no-such-article' is not an article of this site"),
    (["--map", "/?p=4"], "--map '/?p=4': '4' is not an article of this site"),
    (["--map", "/?p=4"], 'OLD=NEW is split at the last "="'),
    (["--map", "hello"], "--map 'hello': write OLD=NEW"),
    (["--map", "=hello"], "write OLD=NEW, an old URL or path and an article"),
    (["--map", "/?p=4=hello", "--map", "http://elsewhere.example/index.php?p=4=second"], None),
    (["--map", "/?p=4=hello", "--map", "/index.php?p=4=second"],
     "'/index.php?p=4' is mapped twice, to 'hello' (--map '/?p=4=hello') and to 'second'"),
])
def test_a_bad_map_refuses_the_whole_run(app, args, message):
    result = run(app, "wordpress", str(PLAIN_PERMALINKS), *args)
    if message is None:  # another origin, written with it: a different page, no conflict
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Nothing was imported." in result.output
    assert app.extensions["tellmemore.store"].count_comments() == 0


def test_a_map_file_with_a_bad_line_refuses_the_whole_run(app, tmp_path):
    path = tmp_path / "map.csv"
    path.write_text("old,new\nhttp://old.example.net/?p=4,hello\n/?p=6,second,extra\n",
                    encoding="utf-8")
    result = run(app, "wordpress", str(PLAIN_PERMALINKS), "--map-file", str(path))
    assert result.exit_code == 1, result.output
    assert f"--map-file {path}, line 3: 3 columns" in result.output
    assert "Nothing was imported." in result.output
    assert app.extensions["tellmemore.store"].count_comments() == 0


def test_a_map_entry_that_matches_nothing_is_named(app):
    result = run(app, "wordpress", str(PLAIN_PERMALINKS), "--map", "/?p=404=hello",
                 "--dry-run")
    assert result.exit_code == 0, result.output
    assert ("map entries that match no thread of this file (check them): "
            "--map '/?p=404=hello'") in result.output


# --- a store that fails part way -------------------------------------------------------------


def test_a_store_failure_leaves_whole_threads_and_the_same_command_completes(
        app, monkeypatch):
    store = app.extensions["tellmemore.store"]
    real_import = store.import_comments
    calls = []

    def fail_on_the_second_thread(comments):
        calls.append(comments)
        if len(calls) == 2:
            raise StoreUnavailable("No space left on device")
        return real_import(comments)

    monkeypatch.setattr(store, "import_comments", fail_on_the_second_thread)
    result = run(app, "disqus", str(DISQUS))
    assert result.exit_code == 1, result.output
    assert ("the store failed after 3 of 5 new comments were written (No space left on "
            "device). 1 thread written is complete") in result.output
    assert "run the same command again: it adds the rest and nothing twice" in result.output
    assert {c.thread for c in store.all_comments()} == {"hello"}
    assert store.count_comments() == 3
    monkeypatch.setattr(store, "import_comments", real_import)
    again = run(app, "disqus", str(DISQUS))
    assert again.exit_code == 0, again.output
    assert "Imported 2 comments (3 already present)" in again.output
    assert store.count_comments() == 5


# --- the progress bar --------------------------------------------------------------------------


def many_comments(path: Path, count: int) -> Path:
    """A WXR export with ``count`` comments on /hello/ (replies to one another in tens)."""
    comments = "".join(
        f"<wp:comment><wp:comment_id>{n}</wp:comment_id>"
        f"<wp:comment_author>Reader {n}</wp:comment_author>"
        f"<wp:comment_date_gmt>2019-01-01 {n // 3600 % 24:02}:{n // 60 % 60:02}:{n % 60:02}"
        f"</wp:comment_date_gmt><wp:comment_content>Comment number {n}.</wp:comment_content>"
        f"<wp:comment_approved>1</wp:comment_approved>"
        f"<wp:comment_parent>{n - 1 if n % 10 else 0}</wp:comment_parent></wp:comment>"
        for n in range(1, count + 1))
    path.write_text(
        "<rss version='2.0' xmlns:wp='http://wordpress.org/export/1.2/'><channel>"
        "<item><title>Hello</title><link>http://blog.test/hello/</link>"
        f"<wp:post_id>1</wp:post_id>{comments}</item></channel></rss>", encoding="utf-8")
    return path


@pytest.mark.tinydb_only("the bar is the command's, whatever the store")
@pytest.mark.parametrize(("count", "bar"), [(1000, False), (1001, True)])
def test_a_progress_bar_on_stderr_above_a_thousand_comments(app, tmp_path, count, bar):
    path = many_comments(tmp_path / "export.xml", count)
    result = run(app, "wordpress", str(path))
    assert result.exit_code == 0, result.output
    assert f"Imported {count} comments (0 already present)" in result.stdout
    assert ("Preparing" in result.stderr) is bar and ("Importing" in result.stderr) is bar
    assert "Preparing" not in result.stdout and "Importing" not in result.stdout
    assert app.extensions["tellmemore.store"].count_comments() == count
