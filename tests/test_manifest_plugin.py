"""The comments plugin's manifest, checked against the built sample site's pages."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from bs4 import BeautifulSoup

from tests.sitebuilder import build, manifest


def load(site_output: Path) -> dict:
    return json.loads((site_output / "comments-manifest.json").read_text(encoding="utf-8"))


def page_for(site_output: Path, url: str) -> BeautifulSoup:
    path = urlsplit(url).path.lstrip("/")
    target = site_output / path
    if path.endswith("/") or not path:
        target = target / "index.html"
    return BeautifulSoup(target.read_text(encoding="utf-8"), "html.parser")


def test_manifest_lists_every_article_with_its_page_and_questions(site_output):
    data = load(site_output)
    assert data["schema_version"] == 1
    assert data["site_url"] == "http://127.0.0.1:8000"
    threads = [article["thread"] for article in data["articles"]]
    assert threads == sorted(threads)
    assert len(threads) >= 6
    for article in data["articles"]:
        assert article["url"].startswith(data["site_url"] + "/")
        page = page_for(site_output, article["url"])
        assert page.find("h1").get_text(" ", strip=True) == article["title"]
        on_page = [
            item["data-question-id"]
            for item in page.select("#reflection [data-question-id]")
            if item.name == "li"
        ]
        assert on_page == [question["id"] for question in article["questions"]]
        assert article["questions"], f"{article['thread']} has no reflection questions"
        assert page.find(id="comments")["data-thread"] == article["thread"]


def test_manifest_keys_are_the_contract_and_nothing_more(site_output):
    for article in load(site_output)["articles"]:
        assert set(article) == {"thread", "title", "url", "date", "lang", "questions"}
        for question in article["questions"]:
            assert set(question) == {"id", "text"}


def test_drafts_are_left_out_and_duplicate_slugs_are_reported(tmp_path, caplog):
    files = {
        "a.md": "Title: A\nDate: 2026-01-01\nSlug: same\n\n## Questions for reflection\n\n- A?\n",
        "b.md": "Title: B\nDate: 2026-02-01\nSlug: other\nStatus: draft\n\nDraft.\n",
        "c/c.md": "Title: C\nDate: 2026-03-01\nSlug: same\nLang: en\n\nAgain.\n",
    }
    output = build(tmp_path, files, ARTICLE_SAVE_AS="{date:%Y%m}/{slug}/index.html",
                   ARTICLE_URL="{date:%Y%m}/{slug}/")
    data = manifest(output)
    assert [article["thread"] for article in data["articles"]] == ["same"]
    assert data["articles"][0]["title"] == "A"
    assert "share the thread key 'same'" in caplog.text


def test_manifest_is_written_whole(tmp_path):
    output = build(tmp_path, {"a.md": "Title: A & <em>B</em>\nDate: 2026-01-01\n\nText.\n"})
    data = manifest(output)
    assert data["articles"][0]["title"] == "A & B"
    assert not [p for p in output.iterdir() if p.name.startswith(".comments-manifest")]


def test_each_article_keeps_its_url_worked_out_once(tmp_path):
    """``article.cached_url`` (the lists and the manifest read it instead of building Pelican's
    ``url`` again for each use, issue 19) is the article's ``url``, translations and drafts
    included."""
    from pelican import signals

    seen: list[tuple[str, str]] = []

    def record(generators):  # after every generator's own finalized signal
        for generator in generators:
            for article in [*getattr(generator, "articles", []),
                            *getattr(generator, "translations", []),
                            *getattr(generator, "drafts", [])]:
                if hasattr(article, "comment_thread"):  # an article, not a page
                    seen.append((article.cached_url, article.url))

    files = {
        "a.md": "Title: A\nDate: 2026-01-01\nSlug: a\n\nText.\n",
        "a-fr.md": "Title: A\nDate: 2026-01-01\nSlug: a\nLang: fr\n\nTexte.\n",
        "b.md": "Title: B\nDate: 2026-02-01\nSlug: b\nStatus: draft\n\nDraft.\n",
    }
    signals.all_generators_finalized.connect(record)
    try:
        output = build(tmp_path, files, ARTICLE_URL="{date:%Y}/{slug}/",
                       ARTICLE_SAVE_AS="{date:%Y}/{slug}/index.html")
    finally:
        signals.all_generators_finalized.disconnect(record)
    assert len(seen) == 3 and all(cached == url for cached, url in seen), seen
    assert ("2026/a/", "2026/a/") in seen
    assert 'href="./2026/a/"' in (output / "index.html").read_text(encoding="utf-8")
