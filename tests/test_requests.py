"""Repeated requests, tallied (tally/): grouping on store, distinct people, the author's
actions, follow-ups, the pages and `regroup`. Every example is one the lexical grouper handles:
nothing here needs the sentence model (these tests set TALLY_EMBEDDER to lexical)."""

from __future__ import annotations

import json

import pytest
from bs4 import BeautifulSoup

from comments_service import create_app
from comments_service.comments import replying
from comments_service.config import ConfigError
from comments_service.models import (
    Comment,
    CommentState,
    RequestStatus,
    new_comment_id,
    utc_now,
)
from comments_service.store import TinyDBStore, open_configured_store
from comments_service.tally import actions as tally_actions
from comments_service.tally import groups as tally_groups
from comments_service.tally import service as tally_service
from comments_service.tally import state as tally_state
from comments_service.tally import views as tally_views
from tests.conftest import file_as_suggested

RSS_1 = "Could you add per-tag RSS feeds?"
RSS_2 = "Please make separate RSS feeds for each tag."
DARK_SITE = "Please add a dark mode for the whole site."
DARK_CODE = "Please use a dark syntax theme for the code blocks only."

# Every test that makes the service runs on both stores (conftest.py).
pytestmark = pytest.mark.both_stores


@pytest.fixture
def service_config(service_config):
    # The lexical grouper, placing each comment as it comes (the model's background regroups
    # would renumber the groups these tests follow).
    return {**service_config, "SPAM_CHECKS": "off", "WEBHOOK_URLS": ["http://hooks.test/in"],
            "TALLY_EMBEDDER": "lexical"}


@pytest.fixture
def store(app):
    return app.extensions["tellmemore.store"]


def token(client, path: str = "/moderate/requests") -> str:
    page = BeautifulSoup(client.get(path).get_data(as_text=True), "html.parser")
    return page.find("input", {"name": "csrf_token"})["value"]


def post(client, body: str, thread: str = "hello", **fields) -> str:
    response = client.post(f"/api/threads/{thread}/comments",
                           json={"name": fields.pop("name", "Rosa"), "body": body, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["comment"]["id"]


def group_of(store, comment_id: str) -> str | None:
    return store.get_comment(comment_id).request


def reader_comment(body: str, **fields) -> Comment:
    fields.setdefault("state", CommentState.AWAITING_REPLY)
    return Comment(id=new_comment_id(), thread="hello", name="Rosa", body=body,
                   html=f"<p>{body}</p>", created=utc_now(), public=False, **fields)


# --- grouping on store ---------------------------------------------------------------------------


def test_the_same_request_in_other_words_joins_and_near_misses_stay_apart(client, store):
    rss_1, rss_2 = post(client, RSS_1), post(client, RSS_2, thread="second")
    site, code = post(client, DARK_SITE), post(client, DARK_CODE)
    assert group_of(store, rss_1) is not None
    assert group_of(store, rss_1) == group_of(store, rss_2)
    assert len({group_of(store, rss_1), group_of(store, site), group_of(store, code)}) == 3


def test_comments_that_ask_nothing_spam_and_the_authors_get_no_group(client, store):
    assert group_of(store, post(client, "Lovely post, thank you.")) is None
    spam = reader_comment(RSS_1, state=CommentState.SPAM)
    author = reader_comment(RSS_1, is_author=True, state=CommentState.POSTED)
    for comment in (spam, author):
        store.add_comment(comment)
        assert tally_service.assign_comment(store, comment) is None
        assert group_of(store, comment.id) is None


def test_empty_and_huge_comments(client, store):
    empty = store.add_comment(reader_comment(""))
    assert tally_service.assign_comment(store, empty) is None
    huge = "Could you write about burnout? " + "So much to say about it here. " * 330
    assert len(huge) > 9_900
    first = post(client, huge)  # its time is measured by bench/huge_comment_post.py
    assert group_of(store, first) is not None
    assert group_of(store, post(client, "x" * 10_000)) is None
    with store.request_tally() as tally:
        records, _position = tally.records()
    assert max(len(json.dumps(record)) for record in records) < 3_000  # the text is clipped


def test_distinct_people_are_counted_once(client, store):
    post(client, RSS_1, email="kim@reader.test")
    post(client, RSS_2, email="KIM@reader.test", name="Kim again")  # same person
    post(client, "Could we get RSS feeds per tag?")  # no email, no browser token: one person
    post(client, "Please, RSS feeds per tag!", reader_token="browser-token-1234567890")
    assert tally_views.overview(store) == []  # the machine's guesses count for nothing
    file_as_suggested(store)
    [view] = tally_views.overview(store)
    assert (len(view.comments), view.people) == (4, 3)


def test_processes_share_one_grouper_through_the_store(app, store, tmp_path):
    other = open_configured_store(app.config)  # another process's store object
    try:
        first = store.add_comment(reader_comment(RSS_1))
        second = other.add_comment(reader_comment(RSS_2))
        assert (tally_service.assign_comment(store, first)
                == tally_service.assign_comment(other, second))
        third = store.add_comment(reader_comment("Could we get RSS feeds per tag?"))
        assert tally_service.assign_comment(store, third) == group_of(store, first.id)
    finally:
        other.close()


def test_the_log_is_folded_into_a_snapshot(app, store, monkeypatch):
    monkeypatch.setitem(app.config, "TALLY_FOLD_EVERY", 2)
    ids = []
    with app.app_context():
        for body in (RSS_1, DARK_SITE, RSS_2):
            comment = store.add_comment(reader_comment(body))
            ids.append(tally_service.assign_comment(store, comment))
    with store.request_tally() as tally:
        assert tally.snapshot() is not None  # folded after the second record
        assert len(tally.records()[0]) == 1  # the third, appended after the snapshot
    if isinstance(store, TinyDBStore):
        folder = store.path / "requests"
        assert len(list(folder.glob("grouper-*.json"))) == 1
        header = json.loads((folder / "log.jsonl").read_text().splitlines()[0])
        assert header["snapshot"] is True
    other = open_configured_store(app.config)
    try:
        late = other.add_comment(reader_comment("Could we get RSS feeds per tag?"))
        assert tally_service.assign_comment(other, late) == ids[0] == ids[2] != ids[1]
    finally:
        other.close()


@pytest.mark.tinydb_only("a log file cut short by a crash")
def test_a_half_written_record_is_ignored_then_cut(store):
    first = store.add_comment(reader_comment(RSS_1))
    group = tally_service.assign_comment(store, first)
    log = store.path / "requests" / "log.jsonl"
    with open(log, "ab") as file:
        file.write(b'{"comment":"x","text":"Could you')
    tally_state._groupers.clear()  # a new process reads it all
    second = store.add_comment(reader_comment(RSS_2))
    assert tally_service.assign_comment(store, second) == group
    assert all(json.loads(line) for line in log.read_text().splitlines())


@pytest.mark.receiver_errors_expected
def test_a_busy_or_broken_tally_never_fails_the_post(client, store, monkeypatch):
    monkeypatch.setitem(client.application.config, "TALLY_LOCK_TIMEOUT_SECONDS", 0.05)
    with store.request_tally():
        waiting = post(client, RSS_1)
    assert group_of(store, waiting) is None

    def broken(*args, **kwargs):
        raise RuntimeError("grouper exploded")

    monkeypatch.setattr(tally_service, "assign_comment", broken)
    assert group_of(store, post(client, RSS_2)) is None


def test_assigning_never_reads_the_whole_store(store, monkeypatch):
    """The cost of one assignment must not grow with the store: no scan of every comment."""
    def scan(self):
        raise AssertionError("assignment read every comment")

    monkeypatch.setattr(type(store), "all_comments", scan)
    for body in (RSS_1, RSS_2, DARK_SITE):
        comment = store.add_comment(reader_comment(body))
        assert tally_service.assign_comment(store, comment) is not None


@pytest.mark.tinydb_only("a damaged log file")
@pytest.mark.receiver_errors_expected
def test_a_damaged_tally_is_logged_and_regroup_recovers_it(app, client, store):
    first = post(client, RSS_1)
    log = store.path / "requests" / "log.jsonl"
    log.write_bytes(b"not json\n")
    tally_state._groupers.clear()
    assert group_of(store, post(client, RSS_2)) is None  # stored; grouped later
    log.rename(log.with_suffix(".damaged"))  # what the error message says to do
    result = app.test_cli_runner().invoke(args=["regroup"])
    assert result.exit_code == 0, result.output
    assert group_of(store, first) is not None
    assert group_of(store, first) == group_of(store, next(
        comment.id for comment in store.all_comments() if comment.body == RSS_2))


def test_the_embedder_setting_is_checked(service_config):
    with pytest.raises(ConfigError, match="TALLY_EMBEDDER"):
        create_app({**service_config, "TALLY_EMBEDDER": "magic"})


# --- the author's actions ------------------------------------------------------------------------


def two_groups(client, store) -> tuple[str, str, list[str]]:
    rss = [post(client, RSS_1, email="kim@reader.test", notify=True),
           post(client, RSS_2, email="lou@reader.test", notify=False),
           post(client, "Could we get RSS feeds per tag?", email="max@reader.test", notify=True),
           post(client, "Please, RSS feeds per tag!", email="KIM@reader.test", notify=True)]
    dark = [post(client, DARK_SITE), post(client, "Please add a dark mode for the site.")]
    file_as_suggested(store)
    return group_of(store, rss[0]), group_of(store, dark[0]), rss + dark


def act(client, path: str, **form):
    return client.post(path, data={"csrf_token": token(client), **form})


def test_rename_merge_and_move(author_client, store):
    rss, dark, ids = two_groups(author_client, store)
    assert act(author_client, f"/moderate/requests/{rss}/rename",
               label="  Per-tag\nfeeds ").status_code == 303
    assert store.request_groups()[rss].label == "Per-tag feeds"
    assert act(author_client, f"/moderate/requests/{rss}/rename", label="x" * 121
               ).status_code == 303
    assert store.request_groups()[rss].label == "Per-tag feeds"

    response = act(author_client, "/moderate/requests/move", comment=ids[1], to=dark,
                   **{"from": rss, "back": "detail"})
    assert response.headers["Location"].endswith(f"/moderate/requests/{rss}")
    assert group_of(store, ids[1]) == dark
    act(author_client, "/moderate/requests/move", comment=ids[2], to="")
    assert group_of(store, ids[2]) == tally_groups.MOVED_OUT

    assert act(author_client, f"/moderate/requests/{dark}/merge", into=rss).status_code == 303
    assert {group_of(store, comment_id) for comment_id in ids if comment_id != ids[2]} == {rss}
    # A comment the grouper still puts in the absorbed group lands in the merged one.
    assert tally_service.assign_comment(
        store, store.add_comment(reader_comment("Please add a dark mode for the whole site!"))
    ) == rss
    assert author_client.get(f"/moderate/requests/{dark}").status_code == 303
    assert act(author_client, f"/moderate/requests/{rss}/merge", into=rss).status_code == 303
    assert store.request_groups()[rss].merged_into is None
    assert act(author_client, "/moderate/requests/9-9/merge", into=rss).status_code == 303
    assert "9-9" not in store.request_groups()


def outbox(store, kind: str) -> list:
    return [message for message in store.list_messages(limit=500) if message.kind == kind
            and (kind != "webhook" or message.subject == "request.status_changed")]


def test_done_with_a_link_tells_each_opted_in_reader_once(author_client, store):
    rss, _dark, _ids = two_groups(author_client, store)
    link = "https://blog.test/2026/tag-feeds/"
    filed = store.request_groups()[rss]  # filing gave the request a record, open
    for bad in ("javascript:alert(1)", "ftp://blog.test/x", "https://", "https://a b.test/"):
        act(author_client, f"/moderate/requests/{rss}/status", status="done", link=bad)
        assert store.request_groups()[rss] == filed
    act(author_client, f"/moderate/requests/{rss}/status", status="done", link="")
    assert store.request_groups()[rss] == filed  # done needs its link

    response = act(author_client, f"/moderate/requests/{rss}/status", status="done", link=link)
    assert response.status_code == 303
    assert store.request_groups()[rss].status is RequestStatus.DONE
    mails = outbox(store, "request_done")
    # kim (twice, in two cases) and max asked for mail; lou did not.
    assert sorted(message.to.casefold() for message in mails) == ["kim@reader.test",
                                                                  "max@reader.test"]
    assert link in mails[0].text and "<script" not in mails[0].html
    hooks = outbox(store, "webhook")
    assert len(hooks) == 1
    body = json.loads(hooks[0].text)
    assert body["event"] == "request.status_changed"
    assert body["data"]["request"]["status"] == "done"
    assert body["data"]["request"]["people"] == 3
    assert "kim@reader.test" not in hooks[0].text

    act(author_client, f"/moderate/requests/{rss}/status", status="done", link=link)
    assert len(outbox(store, "request_done")) == 2  # marking it again sends nothing
    assert len(outbox(store, "webhook")) == 1  # and nothing changed
    act(author_client, f"/moderate/requests/{rss}/status", status="planned", link="")
    act(author_client, f"/moderate/requests/{rss}/status", status="done", link=link)
    assert len(outbox(store, "request_done")) == 2
    assert len(outbox(store, "webhook")) == 3
    page = author_client.get("/moderate/outbox/").get_data(as_text=True)
    assert page.count("You asked for it: Add per-tag RSS feeds") >= 2  # waiting, visible


# --- the pages -----------------------------------------------------------------------------------


def test_the_requests_page_ranks_by_people_with_a_chart_and_a_table(author_client, store):
    rss, dark, _ids = two_groups(author_client, store)
    post(author_client, "Could you write about async Rust?", question="why")
    file_as_suggested(store)
    page = BeautifulSoup(author_client.get("/moderate/requests").get_data(as_text=True),
                         "html.parser")
    cards = page.select("article[data-request-id]")
    assert [card["data-request-id"] for card in cards] == [rss, dark]  # 3 people, then 2
    svg = page.find("svg")
    assert svg.find("title").get_text() and "Add per-tag RSS feeds" in svg.find("desc").get_text()
    rows = page.select("details.chart__data tbody tr")
    assert [row.find("td").get_text() for row in rows] == ["3", "2"]
    text = cards[0].get_text()
    assert "Add per-tag RSS feeds" in text and "Hello" in text and "first" in text
    assert len(cards[0].select(".samples li")) == 3  # one per person
    assert page.find("a", string="Requests")["aria-current"] == "page"
    assert "1 more asked for by one person" in page.get_text()
    everything = author_client.get("/moderate/requests?all=1").get_data(as_text=True)
    assert "Async Rust" in everything and "Why?" in everything

    detail = BeautifulSoup(author_client.get(f"/moderate/requests/{rss}").get_data(as_text=True),
                           "html.parser")
    assert len(detail.select("article.card")) == 4
    assert detail.find("select", {"name": "to"})
    assert author_client.get("/moderate/requests/nope").status_code == 404
    assert author_client.get("/moderate/requests/7-7").status_code == 404


def test_the_requests_page_when_nothing_was_asked(author_client):
    page = author_client.get("/moderate/requests").get_data(as_text=True)
    assert "No request has been asked for by two people yet" in page
    assert "No reader has answered" in author_client.get("/moderate/requests/themes").get_data(
        as_text=True)


def test_the_themes_page_refuses_a_page_that_is_not_a_number(author_client):
    for page in ("0", "abc", "-1", "10000000"):
        response = author_client.get(f"/moderate/requests/themes?page={page}")
        assert response.status_code == 400, page
    assert author_client.get("/moderate/requests/themes?page=7").status_code == 200  # past the end


def test_answers_to_each_question_are_grouped_into_themes(author_client):
    for body in ("Writing letters to old friends by hand.", "Letters to friends, by hand.",
                 "I write letters to my friends every week.", "Long walks in the forest.",
                 "Walks in the forest with the dog."):
        post(author_client, body, question="why")
    post(author_client, "Nothing to do with it", question="how", thread="second")
    page = BeautifulSoup(author_client.get("/moderate/requests/themes").get_data(as_text=True),
                         "html.parser")
    why = page.find("h2", string=lambda text: text and "Why?" in text) or page.find("h2")
    table = why.find_next("table")
    counts = [int(row.find("td").get_text()) for row in table.select("tbody tr")]
    assert counts == [3, 2]
    assert "letters" in table.select("tbody tr th")[0].get_text()


# --- regroup -------------------------------------------------------------------------------------


def test_regroup_recomputes_groups_and_keeps_the_authors_decisions(app, author_client, store):
    rss, dark, ids = two_groups(author_client, store)
    tally_actions.rename(store, rss, "Tag feeds")
    with app.test_request_context():
        tally_actions.set_status(store, dark, "planned", "https://blog.test/roadmap/")
    tally_actions.move(store, ids[2], None)
    late = store.add_comment(reader_comment(RSS_1))  # stored while the tally was down
    result = app.test_cli_runner().invoke(args=["regroup"])
    assert result.exit_code == 0, result.output
    assert "Grouping comments" in result.output
    assert "2 groups the author decided on kept" in result.output
    new_rss, new_dark = group_of(store, ids[0]), group_of(store, ids[4])
    assert new_rss.startswith("2-") and new_rss != rss
    assert group_of(store, late.id) == new_rss
    assert group_of(store, ids[2]) == tally_groups.MOVED_OUT  # the author's move is kept
    groups = store.request_groups()
    assert groups[new_rss].label == "Tag feeds"
    assert groups[new_dark].status is RequestStatus.PLANNED
    assert groups[new_dark].link == "https://blog.test/roadmap/"
    # New comments join the regrouped groups.
    assert group_of(store, post(author_client, "Could we get RSS feeds per tag?")) == new_rss


def test_regroup_keeps_the_authors_merges_and_moves_into_groups(app, author_client, store):
    rss, dark, ids = two_groups(author_client, store)
    thanks = post(author_client, "Lovely post, thank you.")  # asks nothing: no group
    code = post(author_client, DARK_CODE)
    tally_actions.move(store, thanks, rss)  # the author reads it as part of the RSS request
    code_group = group_of(store, code)
    tally_actions.merge(store, code_group, dark)  # and the code theme in the dark one
    tally_actions.rename(store, dark, "Dark colours")
    # A labelled group that takes in more new comments than it had keeps its label.
    more = [store.add_comment(reader_comment(DARK_SITE, reader_key=f"reader-{n}")).id
            for n in range(4)]
    result = app.test_cli_runner().invoke(args=["regroup"])
    assert result.exit_code == 0, result.output
    assert group_of(store, thanks) == group_of(store, ids[0])
    new_dark = group_of(store, ids[4])
    assert group_of(store, code) == group_of(store, ids[5]) == new_dark
    assert {group_of(store, comment) for comment in more} == {new_dark}
    assert store.request_groups()[new_dark].label == "Dark colours"
    assert group_of(store, ids[0]) != new_dark  # two decided groups are never joined
    # Pages open on the old ids, the merged one included, find the new groups.
    assert tally_views.request_view(store, dark).id == new_dark
    assert tally_views.request_view(store, code_group).id == new_dark
    assert tally_views.request_view(store, rss).id == group_of(store, ids[0])


def test_a_request_page_shows_members_the_author_has_answered(app, author_client, store,
                                                              author):
    """The page of a request rendered its comment cards without the page's context, so it
    answered 500 once one of its comments had a reply (the card shows the comment's state)."""
    rss, _dark, ids = two_groups(author_client, store)
    with app.test_request_context():
        replying.reply(store, ids[0], author, "Kim, per-tag feeds are planned: thank you.")
    page = author_client.get(f"/moderate/requests/{rss}")
    assert page.status_code == 200
    assert "replied" in page.get_data(as_text=True)
