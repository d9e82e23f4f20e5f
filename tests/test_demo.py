"""flask … demo-data: the demo author and sample comments, once, through the real posting path."""

from __future__ import annotations

from comments_service.cli.demo import DEMO_EMAIL, SAMPLE_COMMENTS
from comments_service.models import CommentState


def test_demo_data_creates_the_author_and_queues_the_samples_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo-data"])
    assert first.exit_code == 0, first.output
    store = app.extensions["tellmemore.store"]
    assert store.author_by_email(DEMO_EMAIL) is not None
    assert store.count_in_state(CommentState.AWAITING_REPLY) == len(SAMPLE_COMMENTS)
    again = runner.invoke(args=["demo-data"])
    assert again.exit_code == 0
    assert "no sample comments added" in again.output
    assert store.count_comments() == len(SAMPLE_COMMENTS)
    assert len(store.list_authors()) == 1


def test_the_two_readers_asking_for_the_same_post_share_a_request(app):
    app.test_cli_runner().invoke(args=["demo-data"])
    by_name = {c.name: c for c in app.extensions["tellmemore.store"].all_comments()}
    assert by_name["Priya"].request is not None
    assert by_name["Priya"].request == by_name["Sam"].request


def test_a_returning_reader_is_beside_the_reply_box_in_the_demo(app, auth):
    """Maya comments twice: on her newer comment the panel shows the earlier one (#24)."""
    app.test_cli_runner().invoke(args=["demo-data"])
    store = app.extensions["tellmemore.store"]
    mayas = sorted((c for c in store.all_comments() if c.name == "Maya"),
                   key=lambda c: c.created)
    assert len(mayas) == 2 and mayas[0].reader_key == mayas[1].reader_key
    page = auth.login().get(f"/moderate/comments/{mayas[1].id}").get_data(as_text=True)
    assert "Maya and you" in page and "2 comments" in page
    assert "every one ended with" in page  # her earlier comment, beside the reply box
