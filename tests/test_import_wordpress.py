"""flask … import wordpress: a hand-written WXR 1.2 export (Tools → Export's format)."""

from __future__ import annotations

from pathlib import Path

from comments_service.models import CommentState

FIXTURE = Path(__file__).parent / "fixtures" / "wordpress-export.xml"
AUTHOR = ["--author-email", "ADA@blog.test"]


def run(app, *args):
    return app.test_cli_runner().invoke(args=["import", "wordpress", *args])


def stored(app):
    return {c.source: c for c in app.extensions["tellmemore.store"].all_comments()}


def test_dry_run_summary(app):
    result = run(app, str(FIXTURE), *AUTHOR, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "9 comments in 3 threads (2 matched to articles)" in result.output
    assert "not imported: 1 deleted, 1 pingbacks or trackbacks, 1 spam" in result.output
    assert "dropped-post/ “A post the new site dropped”: 1 comment" in result.output
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
