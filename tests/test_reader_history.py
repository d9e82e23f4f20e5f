"""A reader's history beside the reply box (#24): CommentStore.reader_history on both
backends, one indexed lookup; an embedded store whose index predates the reader field is
rebuilt once and then answers."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup

from comments_service.models import Comment, CommentState

pytestmark = pytest.mark.both_stores

START = datetime(2026, 3, 1, tzinfo=UTC)


def stored(store, number: int, *, thread: str = "hello", reader: str | None = "key-rosa",
           parent: str | None = None, author: bool = False,
           state: CommentState = CommentState.AWAITING_REPLY) -> Comment:
    return store.add_comment(Comment(
        id=f"c{number:03d}", thread=thread, name="Ada" if author else "Rosa",
        body=f"Comment {number}", html=f"<p>Comment {number}</p>",
        created=(START + timedelta(hours=number)).isoformat(timespec="microseconds"),
        state=CommentState.POSTED if author else state, public=True, is_author=author,
        parent=parent, reader_key=None if author else reader))


def test_a_readers_comments_newest_first_with_the_authors_replies(store) -> None:
    for number, thread in enumerate(["hello", "second-post", "hello", "third", "second-post",
                                     "hello", "third"]):
        stored(store, number, thread=thread)
    stored(store, 20, reader="key-tom")  # someone else
    stored(store, 21, reader=None)  # a reader without a key
    stored(store, 30, author=True, parent="c006", thread="third")
    stored(store, 31, author=True, parent="c005", thread="hello")
    stored(store, 32, author=True, parent="c000", thread="hello")  # listed: the nudge
    withdrawn = stored(store, 33, author=True, parent="c006", thread="third")
    store.update_comment(withdrawn.id, lambda c: replace(c, state=CommentState.WITHDRAWN))
    stored(store, 34, author=True, parent="c004", thread="second-post")
    history = store.reader_history("key-rosa", limit=5)
    assert [comment.id for comment in history.comments] == ["c006", "c005", "c004", "c003",
                                                            "c002"]
    assert (history.total, history.first) == (7, stored_time(0))
    assert {key: [reply.id for reply in replies] for key, replies in history.replies.items()} \
        == {"c006": ["c030"], "c005": ["c031"], "c004": ["c034"], "c000": ["c032"]}
    assert store.reader_history("key-nobody").comments == []
    assert store.reader_history("key-tom", limit=0).total == 1


def without_index_fields(store_path, *fields: str):
    """Rewrite the embedded store's index.jsonl as a version before ``fields`` existed would
    have written it; returns its path."""
    index = store_path / "index.jsonl"
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    for line in lines:
        for name in fields:
            line.pop(name, None)
    index.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return index


def stored_time(number: int) -> str:
    return (START + timedelta(hours=number)).isoformat(timespec="microseconds")


@pytest.mark.tinydb_only("the embedded store's index file")
def test_an_index_from_before_the_reader_field_is_rebuilt_then_answers(store, open_test_store):
    for number in range(3):
        stored(store, number)
    stored(store, 9, author=True, parent="c001")
    index = without_index_fields(store.path, "reader", "parent")
    again = open_test_store()
    history = again.reader_history("key-rosa")
    assert history.total == 3 and list(history.replies) == ["c001"]
    assert '"reader":"key-rosa"' in index.read_text() and '"parent":"c001"' in index.read_text()


@pytest.fixture
def service_config(service_config):
    return {**service_config, "SPAM_CHECKS": "off"}


def post(client, body: str, thread: str = "hello", **fields) -> str:
    response = client.post(f"/api/threads/{thread}/comments", json={
        "name": "Maya", "body": body, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["comment"]["id"]


def reply_to(client, comment_id: str, text: str) -> None:
    page = client.get(f"/moderate/comments/{comment_id}").get_data(as_text=True)
    token = BeautifulSoup(page, "html.parser").find("input", {"name": "csrf_token"})["value"]
    answer = client.post(f"/moderate/comments/{comment_id}/reply",
                         data={"csrf_token": token, "body": text, "intent": "reply"})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:300]


def test_the_comment_page_shows_the_reader_beside_the_reply_box(author_client) -> None:
    email = {"email": "maya@reader.test", "notify": True}
    first = post(author_client, "Could you write about sourdough starters?", **email)
    reply_to(author_client, first, "Maya, a starters post is planned for spring.")
    post(author_client, "The cold kitchen killed my starter again.", **email)
    post(author_client, "Rye flour saved it, thank you!", "second", **email)
    current = post(author_client, "Now the bread is too sour.", **email)
    post(author_client, "Someone else entirely.", email="tom@reader.test")

    page = BeautifulSoup(author_client.get(f"/moderate/comments/{current}").get_data(
        as_text=True), "html.parser")
    panel = page.find("section", class_="reader")
    text = panel.get_text(" ", strip=True)
    assert "Maya and you" in text and "4 comments" in text and "writing since" in text
    assert "Asked to hear back by email." in text
    items = [item.find(class_="reader__text").get_text(strip=True)
             for item in panel.select(".reader__item")]
    assert items == ["Rye flour saved it, thank you!", "The cold kitchen killed my starter again.",
                     "Could you write about sourdough starters?"]
    assert "a starters post is planned for spring" in panel.select(".reader__item")[2].get_text()
    assert "maya@reader.test" not in str(page)  # never shown
    assert "Someone else" not in text


def test_a_first_comment_says_so_and_show_all_lists_every_comment(author_client) -> None:
    only = post(author_client, "Hello from a new reader.", email="new@reader.test")
    page = author_client.get(f"/moderate/comments/{only}").get_data(as_text=True)
    assert "First comment from this reader." in page
    ids = [post(author_client, f"Comment number {n} about bread.", email="many@reader.test")
           for n in range(8)]
    page = BeautifulSoup(author_client.get(f"/moderate/comments/{ids[-1]}").get_data(
        as_text=True), "html.parser")
    assert len(page.select(".reader__item")) == 5
    link = page.find("a", string=re.compile("Show all 8 comments"))
    listing = BeautifulSoup(author_client.get(link["href"]).get_data(as_text=True),
                            "html.parser")
    assert len(listing.select(".reader__item")) == 8
    assert author_client.get("/moderate/readers/" + "x" * 40).status_code == 404
    assert author_client.get("/moderate/readers/" + "x" * 500).status_code == 404


def test_the_nudge_compares_with_what_this_reader_was_sent_before(author_client) -> None:
    email = {"email": "maya@reader.test"}
    first = post(author_client, "Could you write about sourdough starters?", **email)
    reply_to(author_client, first, "Maya, keep your starter warm and feed it twice a day.")
    second = post(author_client, "My new starter is slow, any tips?", **email)
    page = author_client.get(f"/moderate/comments/{second}").get_data(as_text=True)
    token = BeautifulSoup(page, "html.parser").find("input", {"name": "csrf_token"})["value"]
    held = author_client.post(f"/moderate/comments/{second}/reply", data={
        "csrf_token": token, "intent": "reply",
        "body": "Maya, keep your starter warm and feed it twice a day!"})
    assert held.status_code == 200
    assert "You have sent Maya this same reply before." in held.get_data(as_text=True)
