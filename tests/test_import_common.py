"""What every `flask … import isso|disqus|wordpress` shares, on both stores: the dry run changes
nothing, and a broken map refuses the whole run.

`table_row` (the summary table's row for a reason) is used by the other test_import_* modules.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

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
