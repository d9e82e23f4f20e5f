"""Baking published comments into pages: read from a file or the service, never fail a build."""

from __future__ import annotations

import json
import logging
import re
from types import SimpleNamespace

from comments.baking import bake, read_public_export
from comments_service.listening import footer_fields
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


def test_the_listening_figures_are_baked_into_the_article_and_every_footer(tmp_path):
    """#22: the export's figures show on the article ("answered N of M", its numbers marked
    for the widget to keep current) and in the footer of every page; without them, nothing."""
    thread = {**THREAD, "thread": "a", "count": 0, "comments": [],
              "listening": {"received": 12, "answered": 11}}
    path = tmp_path / "public.json"
    path.write_text(json.dumps({
        "schema_version": 1, "generated": "x", "threads": {"a": thread},
        "listening": {"window_days": 90, "received": 40, "answered": 38,
                      "answered_share": 0.95, "median_reply_hours": 7.2}}))
    files = {"a.md": "Title: A\nDate: 2026-01-01\nSlug: a\n\n## Questions for reflection\n\n- Q?\n",
             "b.md": "Title: B\nDate: 2026-01-02\nSlug: b\n\nNo comments yet.\n"}
    output = build(tmp_path / "with", files, COMMENTS_EXPORT=str(path))
    article = (output / "a" / "index.html").read_text()
    assert ('The author has answered <span data-l="answered">11</span> of '
            '<span data-l="received">12</span> comments here.') in article
    footer = ('Replies individually: <span data-l="site_share">95</span> % of comments '
              'answered, median time to reply <span data-l="site_reply_h">7</span> h, '
              'last 90 days.')
    for page in ("a/index.html", "b/index.html", "index.html", "archives.html"):
        assert footer in (output / page).read_text(), page
    # The widget refreshes those spans from the service's numbers: the same ones, unchanged.
    site = footer_fields(json.loads(path.read_text())["listening"])
    built = dict(re.findall(r'data-l="(site_\w+)">(\d+)<', footer))
    assert built == {key: str(site[key]) for key in built}
    assert "has answered" not in (output / "b" / "index.html").read_text()
    quiet = build(tmp_path / "without", files, COMMENTS_EXPORT=None)
    assert "Replies individually" not in (quiet / "index.html").read_text()
