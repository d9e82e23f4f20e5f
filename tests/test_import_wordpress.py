"""flask … import wordpress: a hand-written WXR 1.2 export (Tools → Export's format), and a
WXR 1.1 export of a blog on the default ?p=N permalinks, which only a map can place."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from comments_service.models import CommentState
from tests.conftest import SERVICE_MANIFEST
from tests.test_import_common import table_row

FIXTURE = Path(__file__).parent / "fixtures" / "wordpress-export.xml"
PLAIN = Path(__file__).parent / "fixtures" / "wordpress-default-permalinks.xml"
AUTHOR = ["--author-email", "ADA@blog.test"]


def run(app, *args):
    return app.test_cli_runner().invoke(args=["import", "wordpress", *args])


def stored(app):
    return {c.source: c for c in app.extensions["tellmemore.store"].all_comments()}


def test_dry_run_summary(app):
    result = run(app, str(FIXTURE), *AUTHOR, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "9 comments in 3 threads (2 matched to articles)" in result.output
    assert "matched by URL: 1, by post_name: 1" in result.output
    assert table_row(result.output, "skipped: deleted at the source") == (1, "12:36")
    assert table_row(result.output, "skipped: spam at the source") == (1, "12:35")
    assert table_row(result.output, "skipped: a pingback or trackback") == (1, "12:37")
    assert "       1  https://old.example.com/2017/03/dropped-post/ “A post the new site dropped”"\
        in result.output
    assert app.extensions["tellmemore.store"].count_comments() == 0


def test_import_keeps_the_conversation_and_sanitises(app):
    result = run(app, str(FIXTURE), *AUTHOR, "--answered-before", "2019-01-01")
    assert result.exit_code == 0, result.output
    assert "marked answered (written before 2019-01-01T00:00:00+00:00): 1" in result.output
    assert "3 entered the reply queue" not in result.output
    comments = stored(app)
    assert set(comments) == {"wordpress:12:31", "wordpress:12:32", "wordpress:12:33",
                             "wordpress:12:34", "wordpress:14:41"}
    renee, ada, omer = (comments[f"wordpress:12:{n}"] for n in (31, 32, 33))
    assert renee.thread == "hello"  # /2019/05/hello/ matched by its post_name
    assert renee.created == "2019-05-02T08:00:00.000000+00:00"  # comment_date_gmt
    assert renee.website == "https://renee.example"
    assert "First line<br>\nsecond line" in renee.html
    assert "<em>New</em> paragraph &amp; <strong>bold</strong>" in renee.html
    assert "<img" not in renee.html and "onerror" not in renee.html
    assert renee.state is CommentState.REPLIED and renee.replied_at == ada.created
    assert ada.is_author and ada.parent == renee.id
    assert omer.name == "Ömer" and omer.email is None and omer.parent == ada.id
    assert "<blockquote>" in omer.html and "teşekkür" in omer.html
    pat = comments["wordpress:12:34"]
    assert pat.state is CommentState.AWAITING_REPLY and not pat.public
    olga = comments["wordpress:14:41"]  # 2018, unanswered: marked answered, not queued
    assert olga.thread == "second" and olga.created.startswith("2018-01-02T09:00:00")
    assert olga.state is CommentState.REPLIED and olga.marked_answered
    assert app.extensions["tellmemore.store"].count_waiting() == 2
    assert "Imported 0 comments" in run(app, str(FIXTURE), *AUTHOR).output


def test_a_bad_comment_status_is_refused_whole(app, tmp_path):
    text = FIXTURE.read_text(encoding="utf-8").replace(
        "<![CDATA[0]]></wp:comment_approved>", "<![CDATA[maybe]]></wp:comment_approved>")
    path = tmp_path / "export.xml"
    path.write_text(text, encoding="utf-8")
    result = run(app, str(path))
    assert result.exit_code == 1
    assert "wp:comment_id 34: <wp:comment_approved> is 'maybe'" in result.output
    assert app.extensions["tellmemore.store"].count_comments() == 0


def test_not_a_wordpress_export(app, tmp_path):
    path = tmp_path / "export.xml"
    path.write_text("<rss version='2.0'><channel><item><link>x</link></item></channel></rss>")
    result = run(app, str(path))
    assert result.exit_code == 1
    assert "no wp: elements" in result.output


# --- default permalinks: ?p=N ------------------------------------------------------------------


def test_plain_permalinks_match_no_article_and_import_nothing(app):
    result = run(app, str(PLAIN), *AUTHOR)
    assert result.exit_code == 0, result.output
    output = result.output
    assert "12 comments in 5 threads (0 matched to articles; 1 without a link" in output
    assert table_row(output, "skipped: a pingback or trackback") == (2, "4:7, 4:8")
    assert table_row(output, "skipped: its id appears earlier in the file") == (1, "4:8")
    assert table_row(output, "skipped: its thread has no link") == (1, "12:13")
    assert table_row(output, "skipped: its page matches no article (listed below)") == (
        8, "4:2, 4:3, 4:5, 4:6, 6:9, …")
    listed = [line.split() for line in output.splitlines() if "http://old.example.net/" in line
              and "--map" not in line]
    assert [(words[0], words[1]) for words in listed] == [
        ("4", "http://old.example.net/?p=4"), ("2", "http://old.example.net/?p=6"),
        ("1", "http://old.example.net/?p=9"), ("1", "http://old.example.net/?page_id=2")]
    assert (f"flask --app comments_service import wordpress {PLAIN} --author-email "
            "ADA@blog.test --map 'http://old.example.net/?p=4=ARTICLE' --dry-run") in output
    assert (f"flask --app comments_service import wordpress {PLAIN} --author-email "
            "ADA@blog.test --map-file map.csv --dry-run") in output
    assert "The articles, with their thread keys and URLs: " in output
    assert output.split("The articles, with their thread keys and URLs: ")[1].startswith(
        app.config["MANIFEST"])
    assert "Imported 0 comments" in output
    assert app.extensions["tellmemore.store"].count_comments() == 0


def test_with_a_map_file_they_land_where_the_map_says(app, tmp_path):
    mapping = tmp_path / "map.csv"
    mapping.write_text(
        "\ufeffold,new\n"
        "# posts\n"
        "http://old.example.net/?p=4,hello\n"
        "/?p=6,http://blog.test/second/\n"
        "\n"
        "\"http://old.example.net/?page_id=2\",/second/\n", encoding="utf-8")
    result = run(app, str(PLAIN), *AUTHOR, "--map-file", str(mapping))
    assert result.exit_code == 0, result.output
    assert "matched by your map: 3" in result.output
    assert "Imported 7 comments (0 already present)" in result.output
    assert "       1  http://old.example.net/?p=9 “…”" in result.output  # still to map
    comments = stored(app)
    assert {key: c.thread for key, c in comments.items()} == {
        "wordpress:4:2": "hello", "wordpress:4:3": "hello", "wordpress:4:5": "hello",
        "wordpress:4:6": "hello", "wordpress:6:9": "second", "wordpress:6:10": "second",
        "wordpress:2:11": "second"}
    marta, ada, again = (comments[f"wordpress:4:{n}"] for n in (2, 3, 5))
    assert ada.parent == marta.id and again.parent == ada.id  # three deep, as it was
    assert ada.is_author and marta.state is CommentState.REPLIED
    assert marta.email == "marta@example.org" and marta.website == "http://marta.example/"
    assert "multiple lines:<br>\nWordPress exports it like this." in marta.html
    assert "“quotes” &amp; a heart &lt;3" in marta.html
    assert "Marta — glad" in ada.body
    nils = comments["wordpress:4:6"]  # awaiting moderation in WordPress
    assert not nils.public and nils.state is CommentState.AWAITING_REPLY
    # The same map with the one left added: the rest lands, nothing twice.
    with mapping.open("a", encoding="utf-8") as lines:
        lines.write("/?p=9,hello\n")
    again_result = run(app, str(PLAIN), *AUTHOR, "--map-file", str(mapping))
    assert "Imported 1 comment (7 already present)" in again_result.output
    assert stored(app)["wordpress:http://old.example.net/?p=9:11"].body == (
        "Leading spaces around me.")


@pytest.fixture
def site_with(service_config, tmp_path):
    """An app whose manifest has the test articles and these (thread, url) ones."""
    from comments_service import create_app

    apps = []

    def make(*articles: tuple[str, str]):
        manifest = copy.deepcopy(SERVICE_MANIFEST)
        for thread, url in articles:
            manifest["articles"].append({**manifest["articles"][0], "thread": thread,
                                         "title": thread, "url": url})
        path = tmp_path / f"manifest-{len(apps)}.json"
        path.write_text(json.dumps(manifest), encoding="utf-8")
        apps.append(create_app({**service_config, "MANIFEST": str(path)}))
        return apps[-1]

    yield make
    for made in apps:
        made.extensions["tellmemore.store"].close()


def test_a_query_that_names_a_page_is_part_of_its_address(site_with):
    # The article at /?p=6 takes ?p=6's comments, never ?p=4's (same path, another page).
    app = site_with(("six", "http://blog.test/?p=6"))
    result = run(app, str(PLAIN))
    assert result.exit_code == 0, result.output
    assert "matched by URL: 1" in result.output
    assert {c.source: c.thread for c in stored(app).values()} == {
        "wordpress:6:9": "six", "wordpress:6:10": "six"}
    assert "       4  http://old.example.net/?p=4 “Hello world!”" in result.output


def test_a_fallback_that_fits_several_articles_places_nothing(site_with):
    # Two articles end in "hello-world": the post_name fallback picks neither.
    app = site_with(("hello-world", "http://blog.test/2019/hello-world/"),
                    ("hello-world.fr", "http://blog.test/fr/2019/hello-world/"))
    result = run(app, str(PLAIN))
    assert "matched by post_name: 1" in result.output  # the thread key is the one exact name
    app = site_with(("greeting", "http://blog.test/2019/hello-world/"),
                    ("salut", "http://blog.test/fr/hello-world/"))
    result = run(app, str(PLAIN), "--dry-run")
    assert result.exit_code == 0, result.output
    assert ("       4  http://old.example.net/?p=4 “Hello world!” (fits several articles: "
            "greeting, salut)") in result.output
    why = "skipped: its page matches several articles (listed below)"
    assert table_row(result.output, why) == (4, "4:2, 4:3, 4:5, 4:6")
