"""Admin pages that tell the truth (issue 21, item 6): All comments says "waiting" only on
comments that wait and shows each reply once, under the comment it answers; the themes page
renders Markdown and names themes between words; the nudge names the article by its title;
the merge select starts empty; every author page has the navigation's counts; counts read
"1 author", "2 authors"."""

from __future__ import annotations

from bs4 import BeautifulSoup

from comments_service.models import Author, utc_now
from comments_service.wording import plural, shorten
from tests.conftest import file_as_suggested
from tests.test_moderation import SPECIFIC, post_reader, send_reply, soup, store
from tests.test_requests import RSS_1, RSS_2, act, token

REPLY = "Rosa, a queue for the newsletter: which issue drew the most answers so far?"


def cards_by_name(page: BeautifulSoup) -> dict[str, BeautifulSoup]:
    return {card.select_one(".card__title").get_text(" ", strip=True).split(" ")[0]: card
            for card in page.select("ol.queue > li > article.card")}


def test_all_comments_says_waiting_only_on_waiting_comments_and_shows_a_reply_once(
        author_client, app):
    answered = post_reader(author_client)
    post_reader(author_client, name="Tom", body="Newsletter queues are new to me.")
    assert send_reply(author_client, answered, REPLY).status_code == 303
    page = soup(author_client.get("/moderate/all"))
    cards = cards_by_name(page)
    assert set(cards) == {"Rosa", "Tom"}, "the reply is no card of its own"
    assert "waiting" in cards["Tom"].select_one(".card__meta").get_text()
    rosa = cards["Rosa"].select_one(".card__meta").get_text(" ", strip=True)
    assert "waiting" not in rosa and "written just now" in rosa and "replied" in rosa
    assert page.get_text().count("which issue drew the most answers") == 1
    assert "which issue drew" in cards["Rosa"].select_one(".replies").get_text()
    # Found by its text, a reply shows under the comment it answers.
    found = cards_by_name(soup(author_client.get("/moderate/all?q=drew+the+most")))
    assert list(found) == ["Rosa"] and found["Rosa"].select_one(".replies")
    # Asked for the author's replies alone, they are listed as they are.
    own = soup(author_client.get("/moderate/all?state=posted"))
    assert len(own.select("ol.queue > li")) == 1


def test_the_nudge_names_the_earlier_replys_article_by_its_title(author_client):
    first = post_reader(author_client)
    send_reply(author_client, first, SPECIFIC)
    second = post_reader(author_client, thread="second", name="Tom",
                         body="The queue idea helped my newsletter.")
    warned = soup(send_reply(author_client, second, SPECIFIC.replace("Rosa", "Tom")))
    where = warned.select_one(".nudge__where").get_text(" ", strip=True)
    assert where.startswith("to a comment on “Hello”,"), where
    assert warned.select_one(".nudge__where code") is None


def test_themes_render_markdown_and_are_named_between_words(author_client):
    long_answer = ("Reading **aloud** to my daughter every evening, chapter after chapter, "
                   "until she falls asleep.")
    post_reader(author_client, body=long_answer, question="why")
    page = soup(author_client.get("/moderate/requests/themes"))
    row = page.select_one("table.data tbody tr")
    label = row.th.get_text()
    assert label.endswith("…") and "**" not in label
    assert "Reading aloud to my daughter every evening, chapter after".startswith(
        label.removesuffix("…")), label
    assert row.select_one(".theme__answer strong").get_text() == "aloud"
    assert "**" not in row.select_one("td ul").get_text()


def test_the_merge_select_starts_empty_and_an_empty_choice_merges_nothing(
        author_client, app):
    for name, body in (("Rosa", RSS_1), ("Tom", RSS_2), ("Ana", "Please add a dark mode."),
                       ("Bo", "Please add a dark mode for the whole site.")):
        author_client.post("/api/threads/hello/comments", json={"name": name, "body": body})
    file_as_suggested(store(app))
    page = soup(author_client.get("/moderate/requests?all=1"))
    select = page.select_one("select[name=into]")
    first = select.find("option")
    assert (first["value"], first.get_text()) == ("", "Choose a request")
    assert first.has_attr("selected") and select.has_attr("required")
    groups = dict(store(app).request_groups())
    group_id = page.select_one("ol.requests article.card")["data-request-id"]
    response = act(author_client, f"/moderate/requests/{group_id}/merge", into="")
    assert response.status_code == 303
    assert dict(store(app).request_groups()) == groups
    assert token(author_client)  # the page still answers


def test_every_author_page_has_the_counts_even_an_error_page(author_client):
    post_reader(author_client)
    response = author_client.get("/moderate/comments/nope", headers={"Accept": "text/html"})
    assert response.status_code == 404
    nav = soup(response).find("nav", attrs={"aria-label": "Moderation"})
    assert nav is not None and nav.select_one("a .count").get_text() == "1"
    stranger = author_client.application.test_client()
    assert stranger.get("/moderate/comments/nope").status_code in (302, 303)


def test_counts_are_said_in_the_right_number(app):
    assert [plural(1, "author"), plural(2, "author"), plural(0, "comment"),
            plural(1, "person", "people"), plural(3, "person", "people")] == [
        "1 author", "2 authors", "0 comments", "1 person", "3 people"]
    assert shorten("Keeping track of requests that readers repeat", 30) == (
        "Keeping track of requests…")
    assert shorten("short", 30) == "short"
    assert shorten("x" * 40, 10) == "x" * 9 + "…"
    store(app).add_author(Author(id="a1", name="Ada", email="ada@blog.test",
                                 password_hash="x", created=utc_now()))
    output = app.test_cli_runner().invoke(args=["check"]).output
    assert "1 author," in output and "1 authors" not in output
    assert "2 articles, 3 questions" in output
