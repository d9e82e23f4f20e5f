"""flask … import disqus: a hand-written export that follows Disqus's published schema, and one
with what real exports carry (tests/fixtures/disqus-real-export.xml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from comments_service.models import CommentState
from tests.test_import_common import table_row

FIXTURE = Path(__file__).parent / "fixtures" / "disqus-export.xml"
REAL = Path(__file__).parent / "fixtures" / "disqus-real-export.xml"
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
    assert table_row(result.output, "skipped: deleted at the source") == (1, "5004")
    assert table_row(result.output, "skipped: spam at the source") == (1, "5005")
    assert "       1  https://old.example.com/about-me/ “About me”\n" in result.output
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
    "bad flag": (
        "<disqus xmlns='http://disqus.com' xmlns:dsq='http://disqus.com/disqus-internals'>"
        "<post dsq:id='7'><message>x</message><createdAt>2019-01-01T00:00:00Z</createdAt>"
        "<isSpam>maybe</isSpam><thread dsq:id='1001'/></post></disqus>",
        'post dsq:id="7">: <isSpam> is \'maybe\', not true or false'),
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


# --- what real exports carry ------------------------------------------------------------------


def test_a_real_export_imports_what_can_be_placed_and_names_the_rest(app):
    result = run(app, str(REAL), *AUTHOR)
    assert result.exit_code == 0, result.output
    output = result.output
    assert "17 comments in 8 threads (3 matched to articles; 4 without a link or id" in output
    rows = {
        "skipped: deleted at the source": (1, "7003"),
        "skipped: spam at the source": (1, "7005"),
        "skipped: empty": (1, "7015"),
        "skipped: it has no id": (1, "<post> #15"),
        "skipped: its id appears earlier in the file": (1, "7001"),
        "skipped: its thread is not in the file": (1, "7008"),
        "skipped: its thread has no link": (2, "7006, 7007"),
        "skipped: its thread's id appears twice, with different links": (1, "7012"),
        "skipped: its page matches no article (listed below)": (1, "7013"),
        "imported at the top: its parent is not in the file": (1, "7014"),
        "imported at the top: its parent is on another page": (1, "7011"),
        "imported higher up: its parent is not imported": (1, "7004"),
    }
    for why, row in rows.items():
        assert table_row(output, why) == row, why
    assert "https://old-blog.example/archive/2015/gone.html “A page that is gone”" in output
    assert "Imported 7 comments (0 already present)" in output
    comments = stored(app)
    assert set(comments) == {f"disqus:{n}" for n in
                             (7001, 7002, 7004, 7009, 7010, 7011, 7014)}
    zoe, ada = comments["disqus:7001"], comments["disqus:7002"]
    assert zoe.body == "Loved it & shared it."  # the first 7001, not the repeated one
    assert ada.parent == zoe.id and zoe.state is CommentState.REPLIED
    eve = comments["disqus:7004"]  # under a deleted post: to the top of its thread
    assert eve.thread == "hello" and eve.parent is None
    kim, lou = comments["disqus:7009"], comments["disqus:7010"]
    # Two Disqus threads of one article (the second through a feed link with utm_ parameters
    # on the old domain): the reply stays below its parent.
    assert kim.thread == lou.thread == "second" and lou.parent == kim.id
    assert "2 &lt; 3" in kim.html
    max_ = comments["disqus:7011"]  # its parent is on /second/: the top of /hello/
    assert max_.thread == "hello" and max_.parent is None
    pia = comments["disqus:7014"]
    assert pia.thread == "hello" and pia.parent is None


def test_the_dry_run_of_a_real_export_says_the_same_and_writes_nothing(app):
    dry = run(app, str(REAL), *AUTHOR, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "to import: 7 new (0 already present)" in dry.output
    assert table_row(dry.output, "skipped: its thread has no link") == (2, "7006, 7007")
    assert "Dry run: nothing was written." in dry.output
    assert app.extensions["tellmemore.store"].count_comments() == 0
    real = run(app, str(REAL), *AUTHOR)
    summary = dry.output.removesuffix("Dry run: nothing was written.\n")
    assert real.output.startswith(summary)


def test_a_thread_without_a_link_names_its_posts_even_when_alone(app, tmp_path):
    # The shape of Isso's own Disqus fixture: an empty thread without a link, a post on a
    # thread that does not exist, and posts that can be placed.
    path = tmp_path / "export.xml"
    path.write_text(
        "<disqus xmlns='http://disqus.com' xmlns:dsq='http://disqus.com/disqus-internals'>"
        "<thread dsq:id='2'><id>x</id><link>http://blog.test/hello/</link></thread>"
        "<thread dsq:id='3'><id/></thread>"
        "<post dsq:id='4'><message>...</message><createdAt>2013-10-10T19:20:29Z</createdAt>"
        "<thread dsq:id='2'/></post>"
        "<post dsq:id='5'><message><![CDATA[<p>Hello, World.</p>]]></message>"
        "<createdAt>2013-10-11T06:51:33Z</createdAt><thread dsq:id='2'/>"
        "<parent dsq:id='4'/></post>"
        "<post dsq:id='6'><message>...</message><createdAt>2013-10-10T19:20:29Z</createdAt>"
        "<thread dsq:id='1337'/></post></disqus>", encoding="utf-8")
    result = run(app, str(path))
    assert result.exit_code == 0, result.output
    assert "3 comments in 2 threads (1 matched to articles; 1 without a link" in result.output
    assert table_row(result.output, "skipped: its thread is not in the file") == (1, "6")
    comments = stored(app)
    assert set(comments) == {"disqus:4", "disqus:5"}
    assert comments["disqus:5"].parent == comments["disqus:4"].id
