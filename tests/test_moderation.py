"""The author's pages: the queue, replying (with the nudge), approve, spam, replies, search."""

from __future__ import annotations

from bs4 import BeautifulSoup

from comments_service.models import CommentState


def token_of(page_html: str) -> str:
    return BeautifulSoup(page_html, "html.parser").find("input", {"name": "csrf_token"})["value"]


def csrf(client, path: str = "/moderate/") -> str:
    return token_of(client.get(path).get_data(as_text=True))


def post_reader(client, thread="hello", **fields):
    payload = {"name": "Rosa", "body": "The queue idea helped me a lot with my newsletter.",
               **fields}
    response = client.post(f"/api/threads/{thread}/comments", json=payload)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["comment"]["id"]


def store(app):
    return app.extensions["tellmemore.store"]


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def send_reply(client, comment_id, body, intent="reply", **extra):
    token = csrf(client, f"/moderate/comments/{comment_id}")
    return client.post(f"/moderate/comments/{comment_id}/reply",
                       data={"csrf_token": token, "body": body, "intent": intent, **extra})


SPECIFIC = "Rosa, a newsletter is a great place for a queue: which issue drew the most replies?"


# --- the queue -----------------------------------------------------------------------------------


def test_the_queue_lists_waiting_comments_oldest_first_with_their_context(author_client, app):
    first = post_reader(author_client, question="why")
    second = post_reader(author_client, thread="second", name="Tom", body="Second one")
    page = soup(author_client.get("/moderate/"))
    cards = page.select("article.card")
    assert [card["data-comment-id"] for card in cards] == [first, second]
    assert "Hello" in cards[0].get_text()  # the article's title, linked
    assert cards[0].find("a", href="http://blog.test/hello/")
    assert "Why?" in cards[0].get_text()  # the question it answers
    assert "waiting" in cards[0].get_text()
    assert page.find("h1").find(class_="count").get_text() == "2"


def test_the_queue_filters_by_article_and_question(author_client):
    post_reader(author_client, question="why")
    post_reader(author_client, question="what-next")
    post_reader(author_client, thread="second")
    assert len(soup(author_client.get("/moderate/?thread=hello")).select("article.card")) == 2
    filtered = soup(author_client.get("/moderate/?thread=hello&question=why"))
    assert len(filtered.select("article.card")) == 1
    assert filtered.find("select", id="filter-question")


def test_the_queue_is_paginated(author_client):
    for number in range(27):
        post_reader(author_client, body=f"Comment number {number}")
    first = soup(author_client.get("/moderate/"))
    assert len(first.select("article.card")) == 25
    assert first.find("a", rel="next")
    second = soup(author_client.get("/moderate/?page=2"))
    assert len(second.select("article.card")) == 2
    assert author_client.get("/moderate/?page=x").status_code == 400


def test_context_shows_the_messages_a_comment_answers(author_client, app):
    first = post_reader(author_client)
    assert send_reply(author_client, first, SPECIFIC).status_code == 303
    reply_id = next(c.id for c in store(app).all_comments() if c.is_author)
    answer = post_reader(author_client, parent=reply_id, body="The March one, about queues.")
    page = soup(author_client.get(f"/moderate/comments/{answer}"))
    context = page.select_one(".context").get_text()
    assert "The queue idea helped me" in context
    assert "which issue drew the most replies" in context


# --- replying ------------------------------------------------------------------------------------


def test_reply_stores_the_authors_reply_and_publishes_both(author_client, app, client):
    comment_id = post_reader(author_client)
    response = send_reply(author_client, comment_id, SPECIFIC)
    assert response.status_code == 303
    comment = store(app).get_comment(comment_id)
    assert comment.state is CommentState.REPLIED
    assert comment.replied_at and comment.public
    [reply] = [c for c in store(app).all_comments() if c.is_author]
    assert (reply.parent, reply.public, reply.name) == (comment_id, True, "Ada")
    thread = client.get("/api/threads/hello").get_json()
    assert thread["comments"][0]["replies"][0]["is_author"] is True
    assert store(app).count_waiting() == 0


def test_reply_and_next_moves_to_the_next_waiting_comment(author_client):
    first = post_reader(author_client)
    second = post_reader(author_client, name="Tom", body="Newsletter queues are new to me.")
    response = send_reply(author_client, first, SPECIFIC, intent="reply_next")
    # The next comment opens to be answered: the reply box has the focus (#24).
    assert response.headers["Location"].endswith(f"/moderate/comments/{second}?reply=1")
    arrived = soup(author_client.get(response.headers["Location"]))
    assert arrived.find("textarea", id="reply-body").has_attr("autofocus")
    assert "Control+Enter sends it" in arrived.find(id="arrival")["data-text"]
    assert not soup(author_client.get(f"/moderate/comments/{second}")).find(
        "textarea", id="reply-body").has_attr("autofocus")  # visited, not answering
    last = send_reply(author_client, second,
                      "Tom, newsletters are where queues shine: try one this week?",
                      intent="reply_next")
    assert last.headers["Location"].endswith("/moderate/")


def test_preview_renders_without_saving(author_client, app):
    comment_id = post_reader(author_client)
    response = send_reply(author_client, comment_id, "*hello* Rosa", intent="preview")
    assert response.status_code == 200
    assert "<em>hello</em>" in response.get_data(as_text=True)
    assert store(app).count_waiting() == 1


def test_the_nudge_warns_on_a_generic_reply_and_lets_the_author_send_anyway(author_client, app):
    comment_id = post_reader(author_client)
    warned = send_reply(author_client, comment_id, "Thanks!")
    assert warned.status_code == 200
    nudge = soup(warned).find(id="nudge")
    assert "could answer any comment" in nudge.get_text()
    assert store(app).count_waiting() == 1
    digest = soup(warned).find("input", {"name": "nudged"})["value"]
    sent = send_reply(author_client, comment_id, "Thanks!", nudged=digest)
    assert sent.status_code == 303
    assert store(app).count_waiting() == 0


def test_the_nudge_shows_the_earlier_reply_a_paste_matches(author_client):
    first = post_reader(author_client)
    send_reply(author_client, first, SPECIFIC)
    second = post_reader(author_client, name="Tom", body="The queue idea helped my newsletter.")
    warned = send_reply(author_client, second, SPECIFIC.replace("Rosa", "Tom"))
    nudge = soup(warned).find(id="nudge")
    assert "nearly the same" in nudge.get_text()
    assert "which issue drew the most replies" in nudge.select_one(".nudge__matches").get_text()


def test_an_edited_draft_is_checked_again(author_client, app):
    comment_id = post_reader(author_client)
    warned = send_reply(author_client, comment_id, "Thanks!")
    digest = soup(warned).find("input", {"name": "nudged"})["value"]
    again = send_reply(author_client, comment_id, "Thank you!", nudged=digest)
    assert again.status_code == 200
    assert store(app).count_waiting() == 1


def test_an_empty_reply_is_refused_and_nothing_changes(author_client, app):
    comment_id = post_reader(author_client)
    token = csrf(author_client, f"/moderate/comments/{comment_id}")
    response = author_client.post(f"/moderate/comments/{comment_id}/reply",
                                  data={"csrf_token": token, "body": "  ", "intent": "reply",
                                        "nudged": "x"})
    assert response.status_code in (200, 422)
    assert store(app).count_waiting() == 1
    assert not [c for c in store(app).all_comments() if c.is_author]


# --- other actions -------------------------------------------------------------------------------


def action(client, comment_id, name, **data):
    token = csrf(client, f"/moderate/comments/{comment_id}")
    return client.post(f"/moderate/comments/{comment_id}/{name}",
                       data={"csrf_token": token, **data})


def test_approve_publishes_but_keeps_the_comment_waiting(author_client, app, client):
    comment_id = post_reader(author_client)
    assert action(author_client, comment_id, "approve").status_code == 303
    comment = store(app).get_comment(comment_id)
    assert comment.public and comment.state is CommentState.AWAITING_REPLY
    assert client.get("/api/threads/hello").get_json()["count"] == 1


def test_spam_and_approve_with_next_open_the_next_comment_to_answer(author_client, app):
    """Spam & next and approve & next land where reply & next does: the next waiting comment,
    its reply box focused (#24); with nothing left, the queue."""
    first = post_reader(author_client)
    second = post_reader(author_client, name="Tom", body="Newsletter queues are new to me.")
    third = post_reader(author_client, name="Lu", body="I answer on Sundays.")
    spammed = action(author_client, first, "spam", return_to="next")
    assert spammed.headers["Location"].endswith(f"/moderate/comments/{second}?reply=1")
    approved = action(author_client, second, "approve", return_to="next")
    assert approved.headers["Location"].endswith(f"/moderate/comments/{third}?reply=1")
    assert store(app).get_comment(second).public
    last = action(author_client, third, "approve", return_to="next")
    assert last.headers["Location"].endswith(f"/moderate/comments/{second}?reply=1")


def test_spam_and_restore(author_client, app):
    comment_id = post_reader(author_client)
    assert action(author_client, comment_id, "spam").status_code == 303
    assert store(app).get_comment(comment_id).state is CommentState.SPAM
    assert store(app).count_waiting() == 0
    pile = soup(author_client.get("/moderate/spam"))
    assert [card["data-comment-id"] for card in pile.select("article.card")] == [comment_id]
    token = token_of(str(pile))
    author_client.post(f"/moderate/comments/{comment_id}/not-spam",
                       data={"csrf_token": token, "return_to": "spam"})
    assert store(app).get_comment(comment_id).state is CommentState.AWAITING_REPLY
    assert store(app).count_waiting() == 1


def test_spam_caught_on_arrival_is_restorable(author_client, app):
    comment_id = post_reader(author_client, fax="bot")
    assert "honeypot" in soup(author_client.get("/moderate/spam")).get_text()
    action(author_client, comment_id, "not-spam")
    assert store(app).get_comment(comment_id).spam_reasons == ()
    assert store(app).count_waiting() == 1


def test_edit_and_delete_replies(author_client, app):
    comment_id = post_reader(author_client)
    send_reply(author_client, comment_id, SPECIFIC)
    [reply] = [c for c in store(app).all_comments() if c.is_author]
    form = author_client.get(f"/moderate/replies/{reply.id}/edit")
    token = token_of(form.get_data(as_text=True))
    author_client.post(f"/moderate/replies/{reply.id}/edit",
                       data={"csrf_token": token, "body": "Rosa, *which* issue?"})
    assert store(app).get_comment(reply.id).html == "<p>Rosa, <em>which</em> issue?</p>"
    token = csrf(author_client, f"/moderate/comments/{comment_id}")
    author_client.post(f"/moderate/replies/{reply.id}/delete", data={"csrf_token": token})
    assert store(app).get_comment(reply.id).state is CommentState.WITHDRAWN
    assert store(app).get_comment(comment_id).state is CommentState.AWAITING_REPLY
    assert store(app).count_waiting() == 1


def test_deleting_one_of_two_replies_keeps_the_comment_replied(author_client, app):
    comment_id = post_reader(author_client)
    send_reply(author_client, comment_id, SPECIFIC)
    send_reply(author_client, comment_id, "Rosa, one more thought on newsletters: try a digest.")
    first_reply = next(c for c in store(app).all_comments() if c.is_author)
    token = csrf(author_client, f"/moderate/comments/{comment_id}")
    author_client.post(f"/moderate/replies/{first_reply.id}/delete", data={"csrf_token": token})
    assert store(app).get_comment(comment_id).state is CommentState.REPLIED


def test_all_comments_search_by_text_name_state_and_article(author_client):
    post_reader(author_client, name="Rosa", body="About queues")
    post_reader(author_client, name="Tom", body="About tallies")
    post_reader(author_client, thread="second", name="Lea", body="Queues again", fax="x")

    def found(query: str) -> list[str]:
        page = soup(author_client.get(f"/moderate/all?{query}"))
        return sorted(card.find(class_="card__title").get_text(" ", strip=True)
                      for card in page.select("article.card"))

    assert found("q=queues") == ["Lea", "Rosa"]
    assert found("q=tom") == ["Tom"]
    assert found("state=spam") == ["Lea"]
    assert found("thread=second") == ["Lea"]
    assert author_client.get("/moderate/all?state=lost").status_code == 400


def test_unknown_comment_is_404(author_client):
    assert author_client.get("/moderate/comments/nope").status_code == 404
    assert author_client.get("/moderate/replies/nope/edit").status_code == 404
