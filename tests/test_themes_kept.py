"""The themes page keeps each question's themes per process (tally/themes.py, KeptThemes) and
reads each question's newest answers' ids and versions (CommentStore.answer_versions), on both
backends: a page shown again works nothing out again, and the themes are right again as soon
as an answer is added, edited, withdrawn or marked spam, whichever store object (another
process) made the change; and the clustering itself gives the same themes as it always did."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from comments_service.models import Comment, CommentState
from comments_service.tally import themes

pytestmark = pytest.mark.both_stores

START = datetime(2026, 3, 1, tzinfo=UTC)
BODIES = ("Walking with the dog every morning", "Walking to work every morning",
          "Writing letters to old friends", "Letters to friends, written by hand")


def answer(store, number: int, body: str, *, question: str = "why", thread: str = "hello",
           state: CommentState = CommentState.AWAITING_REPLY) -> Comment:
    return store.add_comment(Comment(
        id=f"c{number:03d}", thread=thread, name=f"Reader {number}", body=body,
        html=f"<p>{body}</p>",
        created=(START + timedelta(hours=number)).isoformat(timespec="microseconds"),
        state=state, public=True, reader_key=f"key-{number}", question=question))


def shown(page: themes.ThemesPage) -> list[tuple[str, str, list[tuple[str, list[str]]]]]:
    """Each question's themes as the page shows them: label and answers (id and body)."""
    return [(q.thread, q.question_id, [
        (theme.label, [f"{a.id}:{a.body}:{a.state}" for a in theme.answers])
        for theme in q.themes]) for q in page.questions]


def worked_out_afresh(store) -> list[tuple[str, str, list[tuple[str, list[str]]]]]:
    """The page as a process that kept nothing works it out."""
    themes._KEPT_BY_STORE.pop(store, None)
    try:
        return shown(themes.question_themes(store, None))
    finally:
        themes._KEPT_BY_STORE.pop(store, None)


@pytest.fixture
def clusterings(monkeypatch) -> list[int]:
    """How many answers each clustering since the fixture was set up was given."""
    calls: list[int] = []
    original = themes.cluster_answers

    def counting(answers, *args, **kwargs):
        calls.append(len(answers))
        return original(answers, *args, **kwargs)

    monkeypatch.setattr(themes, "cluster_answers", counting)
    return calls


def test_answer_versions_list_each_questions_newest_answers(store) -> None:
    for number, body in enumerate(BODIES):
        answer(store, number, body, state=(CommentState.REPLIED if number % 2
                                           else CommentState.AWAITING_REPLY))
    answer(store, 4, "Spam", state=CommentState.SPAM)
    answer(store, 5, "Another question", question="how")
    versions = store.answer_versions([("hello", "why"), ("hello", "how"), ("nowhere", "why")],
                                     3)
    assert [comment_id for comment_id, _version in versions["hello", "why"]] == [
        "c001", "c002", "c003"]
    assert [comment_id for comment_id, _ in versions["hello", "how"]] == ["c005"]
    assert versions["nowhere", "why"] == []
    again = store.answer_versions([("hello", "why")], 3)["hello", "why"]
    assert again == versions["hello", "why"]
    store.update_comment("c002", lambda c: replace(c, body="Edited", edited_at="2026-04-01"))
    changed = store.answer_versions([("hello", "why")], 3)["hello", "why"]
    assert [version == before for (_, version), (_, before)
            in zip(changed, versions["hello", "why"], strict=True)] == [True, False, True]


def test_answer_versions_list_what_the_comments_say(store, open_test_store) -> None:
    """Many answers imported at once (the embedded store's index read in bulk by another
    process), then some changed: the ids are those the comments themselves give."""
    from comments_service.store import CommentStore

    states = (CommentState.AWAITING_REPLY, CommentState.REPLIED, CommentState.SPAM,
              CommentState.WITHDRAWN)
    store.import_comments(Comment(
        id=f"c{number:04d}", thread=f"t{number % 3}", name="R", body=f"Answer {number}",
        html=f"<p>Answer {number}</p>", public=True, state=states[number % 7 % 4],
        created=(START + timedelta(minutes=number * 37 % 1200)).isoformat(),
        question=("why", "how", None)[number % 5 % 3]) for number in range(1200))
    other = open_test_store()
    for number in range(0, 1200, 97):
        other.update_comment(f"c{number:04d}", lambda c: replace(c, state=CommentState.SPAM))
    questions = [(f"t{thread}", question) for thread in range(3) for question in ("why", "how")]
    for reader in (store, other):
        for limit in (1, 50, 300):
            found = reader.answer_versions(questions, limit)
            expected = CommentStore.answer_versions(reader, questions, limit)
            assert {key: [comment_id for comment_id, _ in listed]
                    for key, listed in found.items()} == {
                key: [comment_id for comment_id, _ in listed]
                for key, listed in expected.items()}
        assert reader.answer_counts() == CommentStore.answer_counts(reader)
        assert list(reader.answer_counts()) == sorted(reader.answer_counts())


def test_a_question_shown_again_is_not_clustered_again(store, clusterings) -> None:
    for number, body in enumerate(BODIES):
        answer(store, number, body)
    answer(store, 9, "Running", question="how", thread="second")
    first = shown(themes.question_themes(store, None))
    assert sorted(clusterings) == [1, 4]
    assert shown(themes.question_themes(store, None)) == first
    assert sorted(clusterings) == [1, 4]  # nothing worked out again
    answer(store, 10, "Walking in the rain", question="how", thread="second")
    assert shown(themes.question_themes(store, None)) == worked_out_afresh(store)
    assert sorted(clusterings[:3]) == [1, 2, 4]  # only the question that changed


@pytest.mark.parametrize("change", ["added", "edited", "withdrawn", "spam", "replied"])
@pytest.mark.parametrize("who", ["this process", "another process"])
def test_the_themes_follow_every_change_of_an_answer(store, open_test_store, change,
                                                      who) -> None:
    for number, body in enumerate(BODIES):
        answer(store, number, body)
    before = shown(themes.question_themes(store, None))
    writer = store if who == "this process" else open_test_store()
    if change == "added":
        answer(writer, 7, "Walking by the sea every morning")
    elif change == "edited":
        writer.update_comment("c002", lambda c: replace(
            c, body="Walking the dog", html="<p>Walking the dog</p>",
            edited_at="2026-04-01T00:00:00+00:00"))
    elif change == "replied":
        writer.update_comment("c002", lambda c: replace(
            c, state=CommentState.REPLIED, replied_at="2026-04-01T00:00:00+00:00"))
    else:
        state = CommentState.WITHDRAWN if change == "withdrawn" else CommentState.SPAM
        writer.update_comment("c002", lambda c: replace(c, state=state, public=False))
    after = shown(themes.question_themes(store, None))
    assert after != before
    assert after == worked_out_afresh(store)
    if change in ("withdrawn", "spam"):
        assert "c002" not in str(after)


@pytest.mark.tinydb_only("the embedded store's index file")
def test_an_index_from_before_the_request_field_is_rebuilt_then_themes_are_kept(
        store, open_test_store, clusterings) -> None:
    from tests.test_reader_history import without_index_fields

    for number, body in enumerate(BODIES):
        answer(store, number, body)
    index = without_index_fields(store.path, "request", "filed", "edited", "rejected")
    again = open_test_store()
    first = shown(themes.question_themes(again, None))
    assert shown(themes.question_themes(again, None)) == first
    assert clusterings == [4]  # kept once the index was rebuilt with every field
    assert '"request":null' in index.read_text()


def test_the_themes_kept_are_bounded() -> None:
    kept = themes.KeptThemes(size=5)
    for number in range(4):
        kept.put(("hello", f"q{number}"), [(f"c{number}-{n}", n) for n in range(2)], [])
    assert kept.get(("hello", "q0"), [("c0-0", 0), ("c0-1", 1)]) is None  # dropped
    assert kept.get(("hello", "q3"), [("c3-0", 0), ("c3-1", 1)]) == []
    assert kept.get(("hello", "q3"), [("c3-0", 0), ("c3-1", 2)]) is None  # another version


@pytest.mark.parametrize("threshold", [themes.THEME_THRESHOLD, 0.6, 1.0, 1.5])
def test_clustering_gives_the_themes_it_always_gave(threshold) -> None:
    """Scored by numpy, close calls summed again in Python: the same themes, labels and order
    as Python sums over every theme. Repeated answers make exact ties, and a threshold of 1
    a score on the threshold itself, both close calls."""
    words = ("walking morning letters friends dog garden coffee books music running sleep "
             "phone notebook family cooking").split()
    chance = random.Random(3)  # noqa: S311 - test data, not a secret
    answers = []
    for number in range(120):
        body = " ".join(chance.choice(words[:chance.randint(3, len(words))])
                        for _ in range(chance.randint(1, 12)))
        if number % 10 == 9:
            body = answers[number // 2].body  # said again
        answers.append(Comment(
            id=f"c{number:03d}", thread="hello", name="R", body=body, html=f"<p>{body}</p>",
            created=(START + timedelta(minutes=number)).isoformat(), public=True,
            state=CommentState.REPLIED, reader_key=f"key-{number % 17}", question="why"))
    assert [(theme.label, [a.id for a in theme.answers]) for theme in
            themes.cluster_answers(answers, threshold)] == [
        (theme.label, [a.id for a in theme.answers])
        for theme in every_theme(answers, threshold)]


def every_theme(answers: list[Comment], threshold: float) -> list[themes.Theme]:
    """The clustering as it was first written: each answer scored against every theme."""
    from comments_service.tally.grouper import LexicalEmbedder

    vectors = LexicalEmbedder().encode([a.body for a in answers])
    sums: list[dict[str, float]] = []
    members: list[list[Comment]] = []
    for one, vector in zip(answers, vectors, strict=True):
        best, best_score = None, 0.0
        for number, total in enumerate(sums):
            norm = sum(value * value for value in total.values()) ** 0.5 or 1.0
            score = sum(value * total.get(key, 0.0) for key, value in vector.items()) / norm
            if score > best_score:
                best, best_score = number, score
        if best is None or best_score < threshold or not vector:
            sums.append({})
            members.append([])
            best = len(sums) - 1
        for key, value in vector.items():
            sums[best][key] = sums[best].get(key, 0.0) + value
        members[best].append(one)
    found = [themes.Theme(themes._theme_label(group), group) for group in members]
    found.sort(key=lambda theme: (len(theme.answers), theme.people), reverse=True)
    return found
