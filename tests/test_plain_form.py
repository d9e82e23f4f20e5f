"""The plain comment form on the service's side (issue 21, items 2 and 3): "Answer this" without
JavaScript opens it with its question chosen, and a refused form comes back in it, in the
site's own layout, with the article's fields in the article's order."""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup

from comments_service.api.layout import CONTENT_MARK, TITLE_MARK, parse_layout

LAYOUT = (
    "<!doctype html><html><head><title>" + TITLE_MARK + " | Blog</title>"
    '<link rel="stylesheet" href="http://blog.test/theme/css/main.css"></head><body>'
    '<header class="site-header">Blog</header><main>' + CONTENT_MARK
    + '</main><footer class="site-footer">Footer</footer></body></html>'
)
ARTICLE_ORDER = ["question", "body", "name", "email", "notify", "website"]


def page_of(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def controls(page: BeautifulSoup) -> list[str]:
    form = page.find("form", id="comment-form")
    return [tag["name"] for tag in form.find_all(["input", "select", "textarea"])
            if tag.get("type") != "hidden" and tag["name"] != "fax"]


def test_the_form_page_chooses_the_question_it_is_given(client):
    response = client.get("/threads/hello/comments?question=why")
    assert response.status_code == 200
    page = page_of(response)
    assert page.find("h1").get_text() == "Add a comment"
    assert page.select_one("#comment-question option[selected]")["value"] == "why"
    assert controls(page) == ARTICLE_ORDER
    assert page.find("input", {"name": "form_token"})["value"], "a fresh token for a new form"
    assert page.find("form")["action"] == "/threads/hello/comments"


def test_an_unknown_question_chooses_none_and_an_unknown_thread_is_404(client):
    page = page_of(client.get("/threads/hello/comments?question=nope"))
    assert page.select("#comment-question option[selected]") == []
    assert client.get("/threads/nope/comments?question=why").status_code == 404


def test_a_refused_form_keeps_every_field_in_the_articles_order(client, app):
    response = client.post("/threads/hello/comments", data={
        "name": "Ana", "body": "Kept", "email": "not-an-address", "notify": "true",
        "website": "https://ana.example.org/", "question": "why", "parent": "",
    })
    assert response.status_code == 422
    page = page_of(response)
    assert page.find("h1").get_text() == "Please check your comment"
    assert controls(page) == ARTICLE_ORDER
    assert page.find("input", id="comment-website")["value"] == "https://ana.example.org/"
    assert page.find("input", id="comment-notify").has_attr("checked")
    assert page.find("input", id="comment-email")["aria-invalid"] == "true"
    assert page.find(id="comment-email-error").get_text()
    assert page.find("input", {"name": "form_token"}) is None, "no token it did not have"


def test_the_page_wears_the_sites_layout_beside_the_manifest(client, app, service_config):
    plain = page_of(client.get("/threads/hello/comments"))
    assert plain.find("link", rel="stylesheet")["href"].endswith("service.css")
    (Path(service_config["MANIFEST"]).parent / "comments-layout.html").write_text(
        LAYOUT, encoding="utf-8")
    response = client.get("/threads/hello/comments")
    page = page_of(response)
    assert page.find("title").get_text() == "Add a comment · Hello | Blog"
    assert page.find("header", class_="site-header") and page.find("footer", class_="site-footer")
    assert page.find("main").find("form", id="comment-form")
    policy = response.headers["Content-Security-Policy"]
    assert "style-src 'self' http://blog.test" in policy and "script-src" not in policy


def test_a_layout_without_its_markers_is_not_used():
    assert parse_layout(LAYOUT) is not None
    assert parse_layout(LAYOUT.replace(TITLE_MARK, "")) is None
    assert parse_layout(LAYOUT + CONTENT_MARK) is None
    assert parse_layout(CONTENT_MARK + TITLE_MARK) is None
