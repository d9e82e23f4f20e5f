"""importers/matching.py without an app: which article a thread's URL names, and when none or
several do (the rules in the module's docstring)."""

from __future__ import annotations

import pytest

from comments_service.importers.matching import (
    BY_ADDRESS,
    BY_LAST_PART,
    BY_MAP,
    BY_POST_NAME,
    ThreadMatcher,
    address_of,
    load_map,
)
from comments_service.importers.source import ImportRefused
from comments_service.manifest import ArticleEntry, Manifest


def manifest(*articles: tuple[str, str], site_url: str = "https://blog.test") -> Manifest:
    return Manifest("Test", site_url, {
        thread: ArticleEntry(thread, thread, url, "2026-01-01T00:00:00+00:00", ())
        for thread, url in articles}, "test")


SITE = manifest(
    ("hello", "https://blog.test/hello/"),
    ("hello.fr", "https://blog.test/fr/hello/"),
    ("second", "https://blog.test/2019/second/"),
    ("notes-2019", "https://blog.test/2019/notes/"),
    ("notes-2020", "https://blog.test/2020/notes/"),
    ("six", "https://blog.test/?p=6"),
    ("mirror", "https://mirror.example/hello/"),
)


@pytest.mark.parametrize(("url", "address"), [
    ("https://Blog.Test/hello/", ("blog.test", "/hello", "")),
    ("/hello/index.html", ("", "/hello", "")),
    ("http://old.example/?p=4", ("old.example", "/", "p=4")),
    ("http://old.example/index.php?p=4", ("old.example", "/", "p=4")),
    ("http://old.example/?page_id=2&utm_source=feed", ("old.example", "/", "page_id=2")),
    ("http://old.example/a/?utm_medium=rss&fbclid=x&replytocom=3#comment-3",
     ("old.example", "/a", "")),
    ("http://old.example/?b=2&a=1", ("old.example", "/", "a=1&b=2")),
    ("/caf%C3%A9/", ("", "/café", "")),
])
def test_the_address_of_a_url(url, address):
    found = address_of(url)
    assert (found.host, found.path, found.query) == address


@pytest.mark.parametrize(("url", "slug", "thread", "how"), [
    ("http://localhost:8000/hello/", None, "hello", BY_ADDRESS),  # an old origin, by path
    ("https://mirror.example/hello", None, "mirror", BY_ADDRESS),  # its own origin first
    ("http://old.example/hello/", None, "hello", BY_ADDRESS),  # else the site's
    ("/?p=6", None, "six", BY_ADDRESS),
    ("http://old.example/2018/05/second.html", None, "second", BY_LAST_PART),
    ("http://old.example/?p=9", "second", "second", BY_POST_NAME),
    ("http://old.example/blog/hello/", None, "hello", BY_LAST_PART),  # the key beats hello.fr
])
def test_a_thread_goes_to_the_one_article_that_fits(url, slug, thread, how):
    match = ThreadMatcher(SITE).match(url, slug)
    assert (match.thread, match.how) == (thread, how)


@pytest.mark.parametrize(("url", "slug", "candidates"), [
    ("/?p=4", None, ()),  # another page at the same path: not /?p=6
    ("/", None, ()),
    ("http://old.example/?page_id=2", None, ()),
    ("http://old.example/hello/?page_id=2", None, ()),  # the query names it, not the path
    ("http://old.example/old/notes/", None, ("notes-2019", "notes-2020")),
    ("http://old.example/?p=3", "notes", ("notes-2019", "notes-2020")),
    ("http://old.example/nothing-like-it/", "nor-this", ()),
])
def test_a_thread_that_fits_no_article_or_several_is_not_placed(url, slug, candidates):
    match = ThreadMatcher(SITE).match(url, slug)
    assert match.thread is None and match.candidates == candidates


def test_articles_that_share_an_address_on_other_origins_are_ambiguous():
    site = manifest(("one", "https://a.example/post/"), ("two", "https://b.example/post/"),
                    site_url="")
    assert ThreadMatcher(site).match("https://c.example/post/").candidates == ("one", "two")
    assert ThreadMatcher(site).match("https://b.example/post/").thread == "two"


def test_the_map_comes_first_and_names_articles_three_ways():
    matcher = ThreadMatcher(SITE)
    thread_map = load_map(matcher, ["http://old.example/?p=4=hello",
                                    "/?p=6=https://blog.test/2019/second/",
                                    "/2019/notes/=/2020/notes/"], [])
    match = matcher.match("http://old.example/?p=4")
    assert (match.thread, match.how) == ("hello", BY_MAP)
    assert matcher.match("http://other.example/?p=4").thread is None  # the map named its origin
    assert matcher.match("http://any.example/index.php?p=6").thread == "second"  # any origin
    assert matcher.match("https://blog.test/2019/notes/").thread == "notes-2020"  # before URL
    assert thread_map.unused() == []
    assert ThreadMatcher(SITE).match("https://blog.test/2019/notes/").thread == "notes-2019"


def test_a_map_names_an_article_or_is_refused():
    with pytest.raises(ImportRefused, match="'notes' is not an article of this site"):
        load_map(ThreadMatcher(SITE), ["/old/=notes"], [])
    with pytest.raises(ImportRefused, match="'/2019/' is not an article"):
        load_map(ThreadMatcher(SITE), ["/old/=/2019/"], [])
