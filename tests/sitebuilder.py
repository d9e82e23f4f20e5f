"""Build small throwaway Pelican sites in-process, with our plugins and theme, for plugin tests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from pelican import Pelican
from pelican.settings import read_settings

ROOT = Path(__file__).resolve().parent.parent


def write_articles(content: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = content / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def build(tmp_path: Path, files: dict[str, str], **settings: Any) -> Path:
    """Build ``files`` (name → source) with our plugins and theme; returns the output folder."""
    content, output = tmp_path / "content", tmp_path / "output"
    write_articles(content, files)
    override = {
        "PATH": str(content),
        "OUTPUT_PATH": str(output),
        "THEME": str(ROOT / "theme"),
        "PLUGIN_PATHS": [str(ROOT / "plugins")],
        "PLUGINS": ["reflection", "comments", "strings"],
        "SITEURL": "",
        "TIMEZONE": "UTC",
        "RELATIVE_URLS": True,
        "FEED_ALL_ATOM": None,
        "CATEGORY_FEED_ATOM": None,
        "TRANSLATION_FEED_ATOM": None,
        "AUTHOR_FEED_ATOM": None,
        "AUTHOR_FEED_RSS": None,
        "ARTICLE_URL": "{slug}/",
        "ARTICLE_SAVE_AS": "{slug}/index.html",
        "CACHE_CONTENT": False,
        "LOAD_CONTENT_CACHE": False,
        **settings,
    }
    Pelican(read_settings(path=None, override=override)).run()
    return output


def manifest(output: Path) -> dict[str, Any]:
    return json.loads((output / "comments-manifest.json").read_text(encoding="utf-8"))


def questions_of(output: Path, thread: str) -> list[dict[str, str]]:
    for article in manifest(output)["articles"]:
        if article["thread"] == thread:
            return article["questions"]
    raise KeyError(thread)
