"""copy-store: everything from one store into another, verified by counts, safe to repeat."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from comments_service.comments import replying
from comments_service.models import CommentState
from comments_service.store import Store
from comments_service.store.copy import open_store_at
from comments_service.store.inventory import copy_store, count_differences
from comments_service.tally import actions as tally_actions
from comments_service.tally import state as tally_state
from comments_service.tally import views as tally_views
from tests.conftest import (
    NO_PG_REASON,
    PG_DSN_VARIABLE,
    demo_store_in_use,
    fresh_postgres_schema,
)


def everything(store: Store) -> dict[str, object]:
    """Every record a store holds, in a comparable form."""
    return {
        "comments": sorted((c.to_record() for c in store.all_comments()), key=lambda r: r["id"]),
        "authors": store.list_authors(),
        "messages": sorted(store.list_messages(None, limit=10_000), key=lambda m: m.id),
        "addresses": sorted(store.all_mail_addresses(), key=lambda a: a.address),
        "groups": store.request_groups(),
        "tally": tally_state.tally_snapshot(store),
    }


@pytest.fixture
def source(app, store_backend) -> Store:
    """The demo's data plus a reply, a spam verdict, an unsubscribe and a renamed request."""
    store = demo_store_in_use(app)
    with app.test_request_context():
        tallied = tally_views.overview(store, min_people=2)
        assert tallied, "the demo data holds one request asked by two readers"
        tally_actions.rename(store, tallied[0].id, "Tracking repeated requests")
    return store


pytestmark = pytest.mark.both_stores  # the source: the service's own store, on each backend


@pytest.fixture(params=["tinydb", "postgresql"])
def destination_location(request, tmp_path: Path) -> Iterator[str]:
    """Where the copy goes, on each backend: a new TinyDB folder or a new, empty schema."""
    if request.param == "tinydb":
        yield str(tmp_path / "copy")
        return
    if not os.environ.get(PG_DSN_VARIABLE):
        pytest.skip(NO_PG_REASON)
    with fresh_postgres_schema(migrated=False) as url:
        yield url


@pytest.fixture
def destination(destination_location: str) -> Iterator[Store]:
    store = open_store_at(destination_location, create=True)
    yield store
    store.close()


def test_a_copy_holds_every_record_and_the_counts_match(app, source, destination):
    with app.app_context():
        report = copy_store(source, destination)
        assert report.added["comments"] == source.count_comments() > 0
        assert report.added["authors"] == 1
        assert report.added["outbox messages"] > 0
        assert everything(destination) == everything(source)
        assert count_differences(source, destination) == []
        assert any(c.state is CommentState.SPAM for c in destination.all_comments())


def test_copying_twice_changes_nothing_the_second_time(app, source, destination):
    with app.app_context():
        copy_store(source, destination)
        before = everything(destination)
        again = copy_store(source, destination)
        assert not again.changed_anything, again.lines()
        assert everything(destination) == before


def test_a_second_copy_brings_over_what_changed_since(app, source, destination):
    with app.app_context():
        copy_store(source, destination)
        author = source.list_authors()[0]
        waiting = source.waiting_comments(limit=1)[0]
        with app.test_request_context():
            replying.reply(source, waiting.id, author, f"{waiting.name}, good point, noted.")
        report = copy_store(source, destination)
        assert report.added["comments"] == 1  # the reply
        assert report.updated["comments"] == 1  # the comment it answers changed state
        assert everything(destination) == everything(source)


def test_a_destination_holding_more_than_the_source_is_reported(app, source, destination):
    with app.app_context():
        copy_store(source, destination)
        extra = replace(next(destination.all_comments()), id="extra-comment")
        destination.import_comments([extra])
        assert count_differences(source, destination) == [
            f"comments: source {source.count_comments()}, "
            f"destination {source.count_comments() + 1}",
            f"comments by state: source {counts(source)}, destination {counts(destination)}",
        ]
        copy_store(source, destination)
        assert destination.get_comment("extra-comment") is not None  # a copy never deletes


def counts(store: Store) -> dict[str, int]:
    return {state.value: count for state, count in sorted(store.state_counts().items())}


def test_the_command_copies_checks_the_counts_and_changes_nothing_twice(
    app, source, destination_location
):
    runner = app.test_cli_runner()
    source_location = app.config["STORE_URL"] or app.config["STORE_PATH"]
    command = ["copy-store", "--from", source_location, "--to", destination_location]
    first = runner.invoke(args=command)
    assert first.exit_code == 0, first.output
    assert "Counts match: copy complete." in first.output
    assert f"comments: {source.count_comments()} added" in first.output
    second = runner.invoke(args=command)
    assert second.exit_code == 0, second.output
    assert "nothing to copy, the destination was up to date" in second.output


def test_the_command_refuses_a_missing_source_or_the_same_store_twice(app, tmp_path):
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["copy-store", "--from", str(tmp_path / "nothing-here"),
                                  "--to", str(tmp_path / "copy")])
    assert missing.exit_code == 2 and "is not a store folder" in missing.output
    assert not (tmp_path / "copy").exists()
    here = app.config["STORE_URL"] or app.config["STORE_PATH"]
    same = runner.invoke(args=["copy-store", "--from", here, "--to", here])
    assert same.exit_code == 2 and "the same store" in same.output
