"""Atom feeds of a thread and of the author's replies: valid (feedparser), no emails, ETag and
Last-Modified, and linked from the article pages."""

from __future__ import annotations

import feedparser
from bs4 import BeautifulSoup

from comments_service.comments import replying
from comments_service.models import Author, utc_now


def post(client, **fields):
    payload = {"name": "Rosa", "body": "Hello *there*", "email": "rosa@example.org", **fields}
    response = client.post("/api/threads/hello/comments", json=payload)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["comment"]["id"]


def author_reply(app, comment_id, body="Thank you, Rosa."):
    store = app.extensions["tellmemore.store"]
    author = store.add_author(Author(id="a1", name="Ada", email="ada@blog.test",
                                     password_hash="x", created=utc_now()))
    with app.test_request_context():
        return replying.reply(store, comment_id, author, body)


def parsed(response):
    feed = feedparser.parse(response.data)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    return feed


def test_thread_feed_lists_public_comments_and_replies_without_emails(app, client):
    waiting = post(client)  # after_reply: not public until answered
    answered = post(client, name="Zoë", body="Ça va ? <b>bold</b>", email="zoe@example.org")
    reply = author_reply(app, answered)
    response = client.get("/feeds/threads/hello.atom")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    feed = parsed(response)
    assert feed.feed.title == "Comments on “Hello”"
    assert feed.feed.link == "http://blog.test/hello/"
    ids = [entry.link.rpartition("#comment-")[2] for entry in feed.entries]
    assert ids == [reply.id, answered]  # newest first; the waiting one is not public
    assert waiting not in ids
    first = feed.entries[0]
    assert first.title == "Ada replied to Zoë on “Hello”"
    assert first.author == "Ada"
    assert "Thank you" in first.content[0].value
    assert "&lt;b&gt;bold&lt;/b&gt;" in feed.entries[1].content[0].value
    assert b"@" not in response.data  # no email address anywhere


def test_replies_feed_has_only_the_authors_replies(app, client):
    reply = author_reply(app, post(client))
    feed = parsed(client.get("/feeds/replies.atom"))
    assert [entry.link for entry in feed.entries] == [f"http://blog.test/hello/#comment-{reply.id}"]
    assert feed.entries[0].title == "Ada replied on “Hello”"


def test_conditional_requests_and_unknown_threads(app, client):
    empty = client.get("/feeds/threads/hello.atom")
    assert not parsed(empty).entries
    etag, modified = empty.headers["ETag"], empty.headers["Last-Modified"]
    assert client.get("/feeds/threads/hello.atom",
                      headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/feeds/threads/hello.atom",
                      headers={"If-Modified-Since": modified}).status_code == 304
    author_reply(app, post(client))
    changed = client.get("/feeds/threads/hello.atom", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert client.get("/feeds/threads/nope.atom").status_code == 404


def test_article_pages_link_the_thread_feed(site_output):
    page = next(path for path in site_output.rglob("index.html")
                if "reply-to-every-comment" in str(path))
    soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
    links = {link["href"] for link in soup.find_all("link", rel="alternate",
                                                     type="application/atom+xml")}
    assert "http://127.0.0.1:5000/feeds/threads/reply-to-every-comment.atom" in links
    assert "http://127.0.0.1:5000/feeds/replies.atom" in links


# --- characters XML forbids (issue 20, item 7) --------------------------------------------------

FORBIDDEN = "\ufffe\uffff\x01\x0b"


def strictly_parsed(response):
    """The feed through expat, which refuses any character XML 1.0 forbids."""
    import xml.etree.ElementTree as ET

    return ET.fromstring(response.data)  # noqa: S314 - our own feed, in a test


def test_forbidden_characters_are_dropped_when_a_comment_comes_in(app, client):
    comment_id = post(client, name=f"Ro{FORBIDDEN}sa", body=f"Hel{FORBIDDEN}lo",
                      website="https://example.org/")
    stored = app.extensions["tellmemore.store"].get_comment(comment_id)
    assert stored.name == "Rosa" and stored.body == "Hello"


def test_feeds_stay_well_formed_whatever_text_was_stored(app, client):
    """Text stored before input dropped them (or imported) is cleaned on the way out."""
    from dataclasses import replace

    store = app.extensions["tellmemore.store"]
    comment_id = post(client)
    store.update_comment(comment_id, lambda c: replace(
        c, name=f"Ro{FORBIDDEN}sa", html=f"<p>Hel{FORBIDDEN}lo</p>", public=True))
    author_reply(app, comment_id, body="Thanks")
    reply = next(c for c in store.all_comments() if c.is_author)
    store.update_comment(reply.id, lambda c: replace(c, name=f"A{FORBIDDEN}da"))
    for path in ("/feeds/threads/hello.atom", "/feeds/replies.atom"):
        response = client.get(path)
        assert response.status_code == 200
        root = strictly_parsed(response)
        text = "".join(root.itertext())
        assert not any(char in text for char in FORBIDDEN), path
        parsed(response)
    assert "Rosa" in "".join(strictly_parsed(client.get("/feeds/threads/hello.atom")).itertext())
