"""flask … import disqus: a hand-written export that follows Disqus's published schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from comments_service.models import CommentState

FIXTURE = Path(__file__).parent / "fixtures" / "disqus-export.xml"
AUTHOR = ["--author-email", "ada@blog.test"]


def run(app, *args):
    return app.test_cli_runner().invoke(args=["import", "disqus", *args])


def stored(app):
    return {c.source: c for c in app.extensions["tellmemore.store"].all_comments()}


def test_dry_run_summary(app):
    result = run(app, str(FIXTURE), *AUTHOR, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "8 comments in 3 threads (2 matched to articles)" in result.output
    assert "to import: 5 new" in result.output
    assert "not imported: 1 deleted, 1 spam" in result.output
    assert "https://old.example.com/about-me/ “About me”: 1 comment" in result.output
    assert "entering the reply queue: 3" in result.output
    assert app.extensions["tellmemore.store"].count_comments() == 0


def test_import_converts_html_safely_and_keeps_the_conversation(app):
    result = run(app, str(FIXTURE), *AUTHOR)
    assert result.exit_code == 0, result.output
    comments = stored(app)
    assert set(comments) == {f"disqus:{n}" for n in (5001, 5002, 5003, 5006, 5008)}
    zoe, ada, li = comments["disqus:5001"], comments["disqus:5002"], comments["disqus:5003"]
    assert zoe.thread == "hello"  # an old origin, matched by path
    assert zoe.name == "Zoë Ünlü" and zoe.email == "zoe@example.org"
    assert zoe.created == "2019-03-01T10:00:00.000000+00:00"
    assert "<strong>Merci</strong>" in zoe.html
    link = '<a href="https://example.org/more" rel="nofollow ugc noopener">this page</a>'
    assert link in zoe.html
    assert "javascript" not in zoe.html and "that one" in zoe.html
    assert "<script" not in zoe.html and "alert(2)" not in zoe.html
    assert zoe.state is CommentState.REPLIED and zoe.replied_at == ada.created
    assert ada.is_author and ada.parent == zoe.id
    assert li.name == "李雷" and li.email is None and li.parent == ada.id
    assert "追问" in li.html and "<br>" in li.html and "*stars*" in li.html
    assert li.state is CommentState.AWAITING_REPLY
    kim = comments["disqus:5006"]
    assert kim.thread == "second" and kim.email is None
    assert "<blockquote>" in kim.html and "<code>x*y</code>" in kim.html
    guest = comments["disqus:5008"]
    assert guest.parent == kim.id and "<li>one</li>" in guest.html
    again = run(app, str(FIXTURE), *AUTHOR)
    assert "Imported 0 comments (5 already present)" in again.output


BAD = {
    "not xml": ("<disqus xmlns='http://disqus.com'>\n<thread>\n</disqus>", "line 3"),
    "not disqus": ("<rss version='2.0'/>", "not a Disqus export"),
    "unknown thread": (
        "<disqus xmlns='http://disqus.com' xmlns:dsq='http://disqus.com/disqus-internals'>"
        "<post dsq:id='7'><message>x</message><createdAt>2019-01-01T00:00:00Z</createdAt>"
        "<thread dsq:id='99'/></post></disqus>",
        'post dsq:id="7">: thread 99 is not a <thread> of the file'),
    "bad date": (
        "<disqus xmlns='http://disqus.com' xmlns:dsq='http://disqus.com/disqus-internals'>"
        "<thread dsq:id='1'><link>http://blog.test/hello/</link></thread>"
        "<post dsq:id='8'><message>x</message><createdAt>last week</createdAt>"
        "<thread dsq:id='1'/></post></disqus>",
        "<createdAt> 'last week' is not a date"),
    "entities": (
        "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY a 'aaaa'>]><disqus>&a;</disqus>",
        "refused"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_export_is_refused_whole(app, tmp_path, case):
    text, message = BAD[case]
    good = FIXTURE.read_text(encoding="utf-8")
    # The bad part comes after good posts: nothing of the file may be written.
    path = tmp_path / "export.xml"
    path.write_text(text if case in ("not xml", "not disqus", "entities")
                    else good.replace("</disqus>", "") + text.split(">", 1)[1], encoding="utf-8")
    result = run(app, str(path))
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Nothing was imported" in result.output
    assert app.extensions["tellmemore.store"].count_comments() == 0
