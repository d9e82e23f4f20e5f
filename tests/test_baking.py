"""Baking published comments into pages: read from a file or the service, never fail a build."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

from comments.baking import bake, read_public_export
from tests.sitebuilder import build

THREAD = {"thread": "hello", "title": "Hello", "url": "/hello/", "questions": [], "count": 1,
          "waiting": 0, "comments": [{"id": "c1", "name": "Rosa", "html": "<p>Hi</p>"}]}


def export_file(tmp_path, threads):
    path = tmp_path / "public.json"
    path.write_text(json.dumps({"schema_version": 1, "generated": "x", "threads": threads}))
    return path


def article(thread):
    return SimpleNamespace(comment_thread=thread)


def test_each_article_gets_its_thread_or_none(tmp_path):
    path = export_file(tmp_path, {"hello": THREAD})
    hello, other = article("hello"), article("other")
    bake([hello, other], {"COMMENTS_EXPORT": str(path)})
    assert hello.comments_export == THREAD
    assert other.comments_export is None


def test_no_setting_bakes_nothing(tmp_path):
    hello = article("hello")
    bake([hello], {})
    assert hello.comments_export is None


def test_unreadable_or_wrong_exports_warn_and_bake_nothing(tmp_path, caplog):
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "other.json").write_text(json.dumps({"comments": []}))
    with caplog.at_level(logging.WARNING):
        assert read_public_export(str(tmp_path / "missing.json"), 1) is None
        assert read_public_export(str(tmp_path / "bad.json"), 1) is None
        assert read_public_export(str(tmp_path / "other.json"), 1) is None
        assert read_public_export("http://127.0.0.1:9/api/public-export", 1) is None
    assert caplog.text.count("comments:") == 4
    malformed = export_file(tmp_path, {"hello": {"comments": "not a list"}})
    hello = article("hello")
    bake([hello], {"COMMENTS_EXPORT": str(malformed)})
    assert hello.comments_export is None


def test_a_build_goes_on_when_the_service_is_away(tmp_path):
    # (The warning itself is checked above: Pelican's log de-duplication swallows repeats.)
    files = {"a.md": "Title: A\nDate: 2026-01-01\nSlug: a\n\n## Questions for reflection\n\n- Q?\n"}
    output = build(tmp_path, files, COMMENTS_EXPORT="http://127.0.0.1:9/api/public-export",
                   COMMENTS_EXPORT_TIMEOUT=1)
    assert (output / "a" / "index.html").is_file()
    assert (output / "comments-manifest.json").is_file()
