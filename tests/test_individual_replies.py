"""The individual reply rate (issue 21, item 5): a reply the author sent anyway over the nudge's
"generic" or "repeated" warning is kept with those warnings and does not count as an individual
reply, in the figures, on the metrics page and in the target, with either store."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from comments_service import metrics
from comments_service.models import CommentState
from comments_service.store.transfer import ImportRefused, export_document, parse_export
from tests.test_metrics import NOW, author_reply, reader
from tests.test_moderation import post_reader, send_reply, soup, store

pytestmark = pytest.mark.both_stores

STOCK = "Thanks for your comment!"
PERSONAL = "Rosa, the newsletter queue is a lovely idea: which issue drew most answers?"


def send_anyway(client, comment_id: str, body: str):
    """Send ``body``, through the nudge's "send anyway" if it warns."""
    first = send_reply(client, comment_id, body)
    if first.status_code == 303:
        return first
    digest = soup(first).find("input", {"name": "nudged"})["value"]
    sent = send_reply(client, comment_id, body, nudged=digest)
    assert sent.status_code == 303
    return sent


def figures_of(page) -> dict[str, str]:
    return {div.dt.get_text(): div.dd.get_text(" ", strip=True)
            for div in page.select(".figures .figure")}


def test_stock_replies_do_not_count_as_individual_ones():
    answered = reader("r1", "hello", "10-20 08:00", CommentState.REPLIED,
                      replied_at="10-20 09:00")
    late_personal = reader("r2", "hello", "10-17 08:00", CommentState.REPLIED,
                           replied_at="10-17 09:00")
    only_stock = reader("r3", "hello", "10-20 10:00", CommentState.REPLIED,
                        replied_at="10-20 11:00")
    old_stock = reader("r4", "hello", "10-10 10:00", CommentState.REPLIED,
                       replied_at="10-10 11:00")
    no_reference = reader("r5", "hello", "10-20 12:00", CommentState.REPLIED,
                          replied_at="10-20 13:00")
    comments = [
        answered, late_personal, only_stock, old_stock, no_reference,
        author_reply("a1", answered, "10-20 09:00", PERSONAL),
        # A stock reply first, then after three days one of the author's own.
        replace(author_reply("a2", late_personal, "10-17 09:00", STOCK),
                nudge_warnings=("generic",)),
        author_reply("a3", late_personal, "10-20 09:00", PERSONAL),
        replace(author_reply("a4", only_stock, "10-20 11:00", STOCK),
                nudge_warnings=("repeated", "generic")),
        replace(author_reply("a5", old_stock, "10-10 11:00", STOCK),
                nudge_warnings=("repeated",)),
        # "No reference" alone is a hint, not a stock reply: it counts.
        replace(author_reply("a6", no_reference, "10-20 13:00", "A fine tale indeed."),
                nudge_warnings=("no_reference",)),
    ]
    report = metrics.compute(comments, NOW, metrics.Targets())
    overall = report.overall
    assert (overall.replied, overall.individually_replied) == (5, 3)
    assert overall.reply_rate == 1.0
    assert overall.individual_reply_rate == 3 / 5
    # r1 and r5 within 48 h; r2's first individual reply came after 72 h; r3 still has time;
    # r4 waited 11 days for an individual reply that never came.
    target = report.target
    assert (target.within, target.missed, target.pending) == (2, 2, 1)
    assert report.target_met is False
    assert metrics.individual_reply_times(comments) == {
        "r1": answered.replied_at, "r2": comments[7].created, "r5": no_reference.replied_at}


def test_replies_sent_over_the_nudge_keep_its_warnings_and_the_page_says_so(app, author_client):
    first = post_reader(author_client)
    second = post_reader(author_client, name="Tom", body="I tried the queue on my podcast.")
    send_anyway(author_client, first, STOCK)
    send_anyway(author_client, second, STOCK)
    replies = sorted((c for c in store(app).all_comments() if c.is_author),
                     key=lambda c: c.created)
    assert replies[0].nudge_warnings == ("generic",)
    assert set(replies[1].nudge_warnings) == {"repeated", "generic"}
    page = soup(author_client.get("/moderate/metrics"))
    figures = figures_of(page)
    assert figures["Reply rate"].startswith("100 %")
    assert figures["Individual reply rate"].startswith("0 %")
    assert "2 only with a reply you sent over the nudge" in figures["Individual reply rate"]
    assert "target met" not in page.get_text()  # both still wait for an individual reply
    assert page.find("meter", id="target-meter") is None

    send_reply(author_client, first, PERSONAL)  # a second reply, one of the author's own
    [personal] = [c for c in store(app).all_comments() if c.body == PERSONAL]
    assert personal.nudge_warnings == ()
    figures = figures_of(soup(author_client.get("/moderate/metrics")))
    assert figures["Individual reply rate"].startswith("50 %")


def test_the_warnings_survive_export_and_import_and_bad_ones_are_refused(app, author_client):
    comment_id = post_reader(author_client)
    send_anyway(author_client, comment_id, STOCK)
    document = export_document(store(app).all_comments())
    [reply] = [record for record in document["comments"] if record["is_author"]]
    assert reply["nudge_warnings"] == ["generic"]
    parsed = parse_export(json.dumps(document), "export.json")
    assert [c.nudge_warnings for c in parsed if c.is_author] == [("generic",)]
    reply["nudge_warnings"] = "generic"
    with pytest.raises(ImportRefused, match="nudge_warnings must be a list of text"):
        parse_export(json.dumps(document), "export.json")


def test_an_edited_reply_is_judged_as_it_now_stands(app, author_client):
    comment_id = post_reader(author_client)
    send_anyway(author_client, comment_id, STOCK)
    [reply] = [c for c in store(app).all_comments() if c.is_author]
    assert reply.nudge_warnings == ("generic",)
    page = soup(author_client.get(f"/moderate/replies/{reply.id}/edit"))
    token = page.find("input", {"name": "csrf_token"})["value"]
    edited = author_client.post(f"/moderate/replies/{reply.id}/edit",
                                data={"csrf_token": token, "body": PERSONAL})
    assert edited.status_code == 303
    assert store(app).get_comment(reply.id).nudge_warnings == ()
    figures = figures_of(soup(author_client.get("/moderate/metrics")))
    assert figures["Individual reply rate"].startswith("100 %")
    # And back: a stock text is a stock reply again, even without the warning shown.
    author_client.post(f"/moderate/replies/{reply.id}/edit",
                       data={"csrf_token": token, "body": "Thanks a lot!"})
    assert "generic" in store(app).get_comment(reply.id).nudge_warnings
