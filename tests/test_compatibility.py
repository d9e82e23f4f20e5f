"""Pelican's own varied test content builds with our plugins and theme as it does without them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pelican
import pytest

from tests.sitebuilder import ROOT

PELICAN_TEST_CONTENT = Path(pelican.__file__).parent / "tests" / "content"
# Pelican's test content reuses titles and basenames on purpose; slugs from unique basenames
# keep every article's page apart so both builds can finish and be compared.
SHARED_SETTINGS = [
    'ARTICLE_PATHS=[""]', 'PAGE_PATHS=["TestPages"]', "STATIC_PATHS=[]", 'TIMEZONE="UTC"',
    'SLUGIFY_SOURCE="basename"', 'SITEURL=""', "RELATIVE_URLS=true",
    'ARTICLE_URL="{slug}/"', 'ARTICLE_SAVE_AS="{slug}/index.html"',
    'ARTICLE_LANG_URL="{slug}-{lang}/"', 'ARTICLE_LANG_SAVE_AS="{slug}-{lang}/index.html"',
    "FEED_ALL_ATOM=null", "CATEGORY_FEED_ATOM=null", "TRANSLATION_FEED_ATOM=null",
    "AUTHOR_FEED_ATOM=null", "AUTHOR_FEED_RSS=null", "LOAD_CONTENT_CACHE=false",
]
OURS = [
    f'THEME="{ROOT / "theme"}"', f'PLUGIN_PATHS=["{ROOT / "plugins"}"]',
    'PLUGINS=["reflection", "comments", "strings"]', "REFLECTION_REQUIRED=false",
]


def unique_copy(source: Path, target: Path) -> Path:
    """Copy the content, giving every file a basename that no other file shares."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            relative = path.relative_to(source)
            name = f"{path.stem}-{path.suffix.lstrip('.')}{path.suffix}"
            destination = target / relative.parent / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
    return target


def run_pelican(content: Path, output: Path, extra: list[str]) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "pelican", str(content), "-o", str(output),
        "--log-handler", "plain", "-e", *SHARED_SETTINGS, *extra,
    ]
    return subprocess.run(command, cwd=output.parent, capture_output=True, text=True)


def messages(result: subprocess.CompletedProcess, build_root: Path) -> set[str]:
    """What Pelican said (warnings and errors), with the build's paths made comparable."""
    text = (result.stdout + result.stderr).replace(str(build_root), "<build>")
    return {
        line.strip() for line in text.splitlines()
        if line.strip() and not re.match(r"(Done: Processed|and \d+ draft pages)", line.strip())
    }


@pytest.mark.slow
def test_pelican_test_content_builds_the_same_with_our_plugins(tmp_path):
    content = unique_copy(PELICAN_TEST_CONTENT, tmp_path / "content")
    vanilla = run_pelican(content, tmp_path / "vanilla", [])
    ours = run_pelican(content, tmp_path / "ours", OURS)
    assert vanilla.returncode == 0, vanilla.stdout + vanilla.stderr
    assert ours.returncode == 0, ours.stdout + ours.stderr
    # Pelican skips some of its deliberately broken files with a message; we add none.
    vanilla_messages = messages(vanilla, tmp_path)
    assert any(line.startswith("Skipping") for line in vanilla_messages)
    assert messages(ours, tmp_path) == vanilla_messages

    vanilla_pages = {p.relative_to(tmp_path / "vanilla").parent for p in
                     (tmp_path / "vanilla").glob("*/index.html")}
    our_pages = {p.relative_to(tmp_path / "ours").parent for p in
                 (tmp_path / "ours").glob("*/index.html")}
    assert len(vanilla_pages) >= 10
    assert vanilla_pages <= our_pages | {Path("category"), Path("tag"), Path("author")}
    assert (tmp_path / "ours" / "comments-manifest.json").is_file()
