"""The individual-reply nudge: repeated, generic and unreferenced replies are flagged."""

from __future__ import annotations

import pytest

from comments_service.comments.nudge import check_reply
from comments_service.models import Comment, CommentState


def comment(body: str, name: str = "Rosa", comment_id: str = "c1", author: bool = False):
    return Comment(
        id=comment_id, thread="hello", name=name, body=body, html=f"<p>{body}</p>",
        created="2026-11-01T00:00:00.000000+00:00",
        state=CommentState.POSTED if author else CommentState.AWAITING_REPLY,
        public=True, is_author=author,
    )


READER = comment("I tried keeping a reply queue but the queues kept growing every week.")
EARLIER = [
    comment("Thanks Sam, glad it helped you with your drafts!", "Ada", "r1", author=True),
    comment("Interesting: what did you try first with the newsletter?", "Ada", "r2", author=True),
]


def kinds(body: str, earlier=EARLIER, reader=READER) -> list[str]:
    return [warning.kind for warning in check_reply(body, reader, earlier)]


@pytest.mark.parametrize(
    "body",
    ["Thanks!", "Thank you so much :)", "Great point, thanks for reading", "Glad you liked it!",
     "thx"],
)
def test_short_generic_replies_are_flagged(body):
    assert "generic" in kinds(body, earlier=[])


def test_an_exact_or_name_swapped_copy_is_flagged_with_the_earlier_reply():
    [warning] = [w for w in check_reply("Thanks Rosa, glad it helped you with your drafts!",
                                        READER, EARLIER) if w.kind == "repeated"]
    assert [match.id for match in warning.matches] == ["r1"]
    assert "before" in warning.message


def test_a_reply_that_names_what_the_reader_said_passes():
    body = ("A queue that grows every week is a signal in itself: which comments were "
            "still waiting when you gave up?")
    assert kinds(body) == []


def test_a_short_reply_with_no_word_of_the_readers_is_flagged():
    assert kinds("Try a different notebook app instead.") == ["no_reference"]
    assert kinds("Maybe the queue needs a weekly limit?") == []


def test_empty_reply_gives_no_warning():
    assert kinds("   ") == []


def reply(text: str):
    return comment(text, "Ada", "r9", author=True)


def test_the_same_greeting_and_sign_off_are_a_habit_not_a_copy() -> None:
    reader = comment("My starter died twice this winter; the kitchen is cold.", "Maya")
    frame = ("Good morning Maya, thank you so much for writing again!\n{}\n"
             "With all my best wishes and see you soon, Ada")
    earlier = [reply(frame.format("The oven helps."))]
    assert kinds(frame.format("Rye flour helps."), earlier, reader) == []
    copied = kinds(frame.format("The oven helps!"), earlier, reader)
    assert "repeated" in copied


def test_a_reply_this_reader_was_sent_before_is_named_as_such_however_old() -> None:
    reader = comment("Back again with another starter question, sorry!", "Maya")
    old_reply = reply("Hi Maya,\n\nKeep it at room temperature and feed it twice a day "
                           "for a week before you bake.\n\nBest, Ada")
    again = ("Hello Maya!\n\nKeep it at room temperature and feed it twice a day for a week "
             "before you bake.\n\nCheers, Ada")
    # Not among the recent replies (older than the 2000 compared), but sent to this reader.
    [warning] = [w for w in check_reply(again, reader, [], [old_reply]) if w.kind == "repeated"]
    assert warning.message.startswith("This reply is nearly the same as one you sent Maya")
    assert warning.matches == (old_reply,)
