"""What the moderation pages read of the store, on both backends (issue 19: pages that do not
read the whole store): where readers' comments stand in the requests without their text
(request_filings), a few comments from anywhere (get_comments, and the copies the embedded
store keeps), the author's replies to a page's comments, the queue's neighbours of a comment,
answers per question and the themes page; an embedded store whose index predates the new
fields is rebuilt once and then answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from comments_service.models import Comment, CommentState
from comments_service.store import RequestFiling
from comments_service.tally import views as tally_views
from tests.test_reader_history import without_index_fields

pytestmark = pytest.mark.both_stores

START = datetime(2026, 3, 1, tzinfo=UTC)


def stored(store, number: int, *, request: str | None = None, filed: bool = False,
           reader: str | None = None, thread: str = "hello", question: str | None = None,
           state: CommentState = CommentState.AWAITING_REPLY) -> Comment:
    return store.add_comment(Comment(
        id=f"c{number:03d}", thread=thread, name="Rosa", body=f"Please write about {number}",
        html=f"<p>Please write about {number}</p>",
        created=(START + timedelta(hours=number)).isoformat(timespec="microseconds"),
        state=state, public=True, reader_key=reader, request=request, request_filed=filed,
        question=question))


def recording_reads(store) -> list[list[str]]:
    """From now on, the ids of each store.get_comments call, in a list (returned)."""
    calls: list[list[str]] = []
    original = store.get_comments

    def reading(ids):
        ids = list(ids)
        calls.append(ids)
        return original(ids)

    store.get_comments = reading
    return calls


def from_comments(store) -> set[RequestFiling]:
    return {RequestFiling(c.id, c.request or "", c.request_filed, c.reader_key, c.thread,
                          c.question, c.created, c.state)
            for c in store.all_comments() if c.request and not c.is_author}


def test_request_filings_are_what_the_comments_say(store) -> None:
    stored(store, 1, request="1-1", filed=True, reader="key-a", question="why")
    stored(store, 2, request="1-1", reader="key-b", thread="second")
    stored(store, 3, request="-", filed=True, state=CommentState.REPLIED)
    stored(store, 4)  # in no request
    stored(store, 5, request="1-2", filed=True, state=CommentState.SPAM)
    assert set(store.request_filings()) == from_comments(store)
    assert {f.id for f in store.request_filings()} == {"c001", "c002", "c003", "c005"}
    # Every way a comment's request changes reaches the filings.
    store.update_comment("c004", lambda c: replace(c, request="1-1", request_filed=True))
    store.update_comment("c001", lambda c: replace(c, request=None, request_filed=False))
    store.set_comment_requests({"c002": "1-2", "c003": None})
    assert set(store.request_filings()) == from_comments(store)
    assert {f.id: (f.request, f.filed) for f in store.request_filings()} == {
        "c002": ("1-2", False), "c004": ("1-1", True), "c005": ("1-2", True)}


def test_get_comments_reads_those_asked_for_only(store) -> None:
    made = [stored(store, number, thread=f"t{number % 3}") for number in range(7)]
    found = store.get_comments(["c005", "c001", "nope", "c005"])
    assert list(found) == ["c005", "c001"]
    assert found["c001"] == made[1] and found["c005"] == made[5]
    assert store.get_comments([]) == {}


def test_the_overview_counts_from_filings_and_reads_only_what_it_shows(store) -> None:
    for number in range(8):  # four people asked, twice each; one more comment is a guess
        stored(store, number, request="1-1", filed=True, reader=f"key-{number % 4}")
    stored(store, 8, request="1-1", reader="key-9")
    [view] = tally_views.overview(store)
    asked = recording_reads(store)
    assert (view.people, view.count, len(view.guessed)) == (4, 8, 1)
    assert asked == []  # counted without reading a comment
    assert [c.id for c in view.samples] == ["c000", "c001", "c002"]
    assert view.label == "Please write about 0"
    assert sorted(len(ids) for ids in asked) == [1, 3]
    assert [c.id for c in view.maybe] == ["c008"]


@pytest.mark.tinydb_only("the embedded store's index file")
def test_an_index_from_before_the_request_field_is_rebuilt_then_answers(store, open_test_store):
    stored(store, 1, request="1-1", filed=True, reader="key-a")
    stored(store, 2)
    index = without_index_fields(store.path, "request", "filed")
    again = open_test_store()
    assert [(f.id, f.request, f.filed) for f in again.request_filings()] == [("c001", "1-1", True)]
    assert '"request":"1-1","filed":true' in index.read_text()


def test_a_bad_request_field_in_the_index_is_reported_not_served(store, open_test_store):
    if not hasattr(store, "path"):
        pytest.skip("the embedded store's index file")
    stored(store, 1, request="1-1", filed=True)
    index = store.path / "index.jsonl"
    index.write_text(index.read_text().replace('"filed":true', '"filed":"yes"'))
    from comments_service.store.errors import StoreCorrupted

    with pytest.raises(StoreCorrupted, match="index"):
        open_test_store().request_filings()


def test_comments_kept_by_one_process_follow_another_process_s_changes(store, open_test_store):
    """A process answers get_comments from the copies it read while their index entry is
    unchanged: every change another process makes must still show (an edit, a rejected
    guess, a filing, a state change)."""
    for number in range(3):
        stored(store, number, request="1-1", reader=f"key-{number}")
    other = open_test_store()
    assert store.get_comments(["c000", "c001", "c002"])["c000"].body == "Please write about 0"
    other.update_comment("c000", lambda c: replace(c, body="Edited", edited_at="2026-03-02"))
    other.update_comment("c001", lambda c: replace(c, rejected_requests=("1-9",)))
    other.update_comment("c002", lambda c: replace(c, request_filed=True))
    found = store.get_comments(["c000", "c001", "c002"])
    assert found["c000"].body == "Edited"
    assert found["c001"].rejected_requests == ("1-9",)
    assert found["c002"].request_filed
    other.update_comment("c002", lambda c: replace(c, state=CommentState.SPAM, public=False))
    assert store.get_comments(["c002"])["c002"].state is CommentState.SPAM


def test_answer_counts_count_readers_answers_per_question(store) -> None:
    stored(store, 1, question="why")
    stored(store, 2, question="why", state=CommentState.REPLIED)
    stored(store, 3, question="why", state=CommentState.SPAM)
    stored(store, 4, question="how", thread="second")
    stored(store, 5)  # answers no question
    assert store.answer_counts() == {("hello", "why"): 2, ("second", "how"): 1}


def test_the_themes_page_shows_a_few_questions_and_their_newest_answers(store) -> None:
    from comments_service.tally import themes

    for number in range(14):  # seven questions, two answers each
        stored(store, number, question=f"q{number % 7}")
    first = themes.question_themes(store, None)
    assert (first.answered, first.pages, len(first.questions)) == (7, 2, 5)
    last = themes.question_themes(store, None, page=2)
    assert [q.question_id for q in last.questions] == ["q5", "q6"]
    newest = themes.newest_answers(store, "hello", "q0", limit=1)
    assert [answer.id for answer in newest] == ["c007"]


def test_the_authors_replies_to_a_pages_comments(store) -> None:
    asked = stored(store, 1)
    other = stored(store, 2, thread="second")
    reply = store.add_comment(Comment(
        id="r001", thread="hello", name="Ada", body="Thanks", html="<p>Thanks</p>",
        created=(START + timedelta(hours=5)).isoformat(timespec="microseconds"),
        state=CommentState.POSTED, public=True, is_author=True, parent=asked.id))
    gone = store.add_comment(replace(reply, id="r002", created=reply.created + "1"))
    store.update_comment(gone.id, lambda c: replace(c, state=CommentState.WITHDRAWN))
    assert store.author_replies_to([asked.id, other.id]) == {asked.id: [reply]}
    assert store.author_replies_to([]) == {}


def test_the_queue_neighbours_of_a_comment(store) -> None:
    made = [stored(store, number, thread="hello" if number % 2 else "second",
                   question="why" if number < 3 else None) for number in range(6)]
    store.update_comment(made[2].id, lambda c: replace(c, state=CommentState.REPLIED))
    assert store.queue_neighbours(made[3]) == (made[1].id, made[4].id)
    assert store.queue_neighbours(made[0]) == (None, made[1].id)
    assert store.queue_neighbours(made[5]) == (made[4].id, None)
    assert store.queue_neighbours(made[3], thread="hello") == (made[1].id, made[5].id)
    assert store.queue_neighbours(made[3], question="why") == (made[1].id, None)
    # A comment that no longer waits still has its place in the order.
    assert store.queue_neighbours(made[2]) == (made[1].id, made[3].id)


def test_the_overview_names_a_requests_top_places_and_the_page_every_one(store) -> None:
    for number in range(7):  # one comment from each of seven articles
        stored(store, number, request="1-1", filed=True, reader=f"key-{number}",
               thread=f"article-{number}")
    [view] = tally_views.overview(store)
    assert len(view.top_sources) == tally_views.TOP_SOURCES and view.more_sources == 2
    assert len(view.sources) == 7


def test_a_list_of_requests_reads_what_it_shows_in_one_call(store) -> None:
    for number in range(12):  # three requests of four people each
        stored(store, number, request=f"1-{number % 3}", filed=True, reader=f"key-{number}")
    lazy = {view.id: ([c.id for c in view.samples], view.label)
            for view in tally_views.overview(store)}
    views = tally_views.overview(store)
    calls = recording_reads(store)
    tally_views.read_shown(store, views)
    assert {view.id: ([c.id for c in view.samples], view.label) for view in views} == lazy
    assert len(calls) == 1 and len(calls[0]) == 9  # three samples a request, labels among them
