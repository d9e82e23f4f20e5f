"""The store inventory (store/inventory.py): every part of a store goes through a backup and
restore, and through a copy to the other backend and back, the author's request groups
(labels, statuses, links, merges) and the request tally included."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from comments_service.models import (
    Comment,
    CommentState,
    IncomingMail,
    IncomingStatus,
    RequestStatus,
    new_comment_id,
    utc_now,
)
from comments_service.store import Store, open_store
from comments_service.store.backup import read_backup, restore_store, write_backup
from comments_service.store.copy import open_store_at
from comments_service.store.inventory import (
    PARTS,
    InventoryRefused,
    copy_store,
    count_differences,
    dump_store,
    fill_store,
    parse_dump,
)
from comments_service.tally import actions as tally_actions
from comments_service.tally import views as tally_views
from comments_service.tally.service import assign_comment
from tests.conftest import (
    NO_PG_REASON,
    PG_DSN_VARIABLE,
    demo_store_in_use,
    fresh_postgres_schema,
)

pytestmark = pytest.mark.both_stores

EVERY_PART = {"comments", "authors", "outbox", "mail_addresses", "incoming_mail",
              "request_groups", "request_tally"}


def comparable(store: Store) -> dict[str, Any]:
    """Every part of the store, in an order that does not depend on the backend."""
    dumped = dump_store(store)
    for name, key in (("comments", "id"), ("outbox", "id"), ("mail_addresses", "address"),
                      ("authors", "id"), ("incoming_mail", "key")):
        dumped[name] = sorted(dumped[name], key=lambda record, key=key: record[key])
    return dumped


@pytest.fixture
def full_store(app) -> Store:
    """A store holding something in every part: the demo's comments and author, a reply and
    its notification, a spam verdict, an unsubscribed address, and requests the author
    renamed, marked planned with a link, and merged."""
    store = demo_store_in_use(app)
    with app.test_request_context():
        groups = tally_views.overview(store, min_people=1)
        assert len(groups) >= 2, "the demo data asks for several things"
        tally_actions.rename(store, groups[0].id, "Tracking repeated requests")
        tally_actions.set_status(store, groups[0].id, "planned", "https://blog.test/next")
        tally_actions.merge(store, groups[1].id, groups[0].id)
    # A reply by email, read and posted (inbox/).
    store.add_incoming_mail(IncomingMail(
        key="0123456789abcdef" * 2, message_id="<reply@mail.test>", received=utc_now(),
        status=IncomingStatus.POSTED, sender="ada@example.org", body="By mail."))
    return store


def test_the_inventory_names_every_part_of_a_store(full_store):
    assert {part.name for part in PARTS} == EVERY_PART
    dumped = dump_store(full_store)
    assert all(dumped[name] for name in EVERY_PART), "every part holds something"
    groups = {group["id"]: group for group in dumped["request_groups"]}
    assert any(group["label"] == "Tracking repeated requests"
               and group["status"] == RequestStatus.PLANNED.value
               and group["link"] == "https://blog.test/next" for group in groups.values())
    assert any(group["merged_into"] for group in groups.values())


def test_a_dump_filled_into_a_fresh_store_holds_the_same(full_store, open_test_store, app):
    """The backup round trip on this backend: dump, check, fill a fresh store, dump again."""
    before = comparable(full_store)
    document = json.loads(json.dumps(before))  # as a backup file holds it
    with fresh_store_like(app.config) as fresh:
        fill_store(fresh, parse_dump(document, "backup"))
        assert comparable(fresh) == before
        assert count_differences(full_store, fresh) == []


@pytest.mark.tinydb_only("restore writes a TinyDB store's files")
def test_backup_then_restore_gives_back_every_part(full_store, app, tmp_path):
    before = comparable(full_store)
    written = write_backup(full_store, tmp_path / "backups", keep=3)
    assert read_backup(written).parts["request_groups"], "the backup holds the groups"
    full_store.close()
    aside, snapshot = restore_store(Path(app.config["STORE_PATH"]), written, force=True)
    assert aside is not None and aside.exists()  # the old store is moved aside, not deleted
    restored = open_store(app.config["STORE_PATH"])
    try:
        assert comparable(restored) == before
        assert len(snapshot.comments) == len(before["comments"])
    finally:
        restored.close()


def test_a_copy_to_the_other_backend_and_back_holds_every_part(full_store, tmp_path,
                                                               store_backend):
    if not os.environ.get(PG_DSN_VARIABLE):
        pytest.skip(NO_PG_REASON)
    before = comparable(full_store)
    with fresh_postgres_schema() as postgres_url:
        middle = (open_store_at(str(tmp_path / "middle"), create=True)
                  if store_backend == "postgresql" else open_store_at(postgres_url, create=True))
        try:
            copy_store(full_store, middle)
            assert comparable(middle) == before
            back = open_store_at(str(tmp_path / "back"), create=True)
            try:
                copy_store(middle, back)
                assert comparable(back) == before
                assert count_differences(full_store, back) == []
            finally:
                back.close()
        finally:
            middle.close()


def test_a_second_copy_after_more_requests_brings_the_tally_over(full_store, tmp_path, app):
    copy = open_store_at(str(tmp_path / "copy"), create=True)
    try:
        copy_store(full_store, copy)
        with app.test_request_context():
            newer = full_store.add_comment(
                another_request(full_store, "Could you write a post about request tallies?"))
            assign_comment(full_store, newer)
        report = copy_store(full_store, copy)
        assert report.updated["request tally"] == 1
        assert comparable(copy) == comparable(full_store)
    finally:
        copy.close()


@pytest.mark.parametrize(("part", "value", "message"), [
    ("authors", {"not": "a list"}, "authors is not a list"),
    ("outbox", [{"id": 3}], "an entry of backup: outbox is invalid"),
    ("request_groups", [{"label": "no id"}], "an entry of backup: request_groups is invalid"),
    ("request_tally", {"records": "x"}, "request_tally must be null or an object"),
])
def test_a_bad_part_is_refused_before_anything_is_written(full_store, part, value, message):
    document = json.loads(json.dumps(dump_store(full_store)))
    document[part] = value
    with pytest.raises(InventoryRefused, match=message):
        parse_dump(document, "backup")


# --- helpers ----------------------------------------------------------------------------------


def another_request(store: Store, body: str) -> Comment:
    """A new reader comment like one of the store's, with its own id and body."""
    model = next(comment for comment in store.all_comments() if not comment.is_author)
    return replace(model, id=new_comment_id(), body=body, request=None, parent=None,
                   state=CommentState.AWAITING_REPLY, replied_at=None)


@contextmanager
def fresh_store_like(config: Mapping[str, Any]) -> Iterator[Store]:
    """A fresh, empty store of the backend ``config`` chooses."""
    if config["STORE_URL"]:
        with fresh_postgres_schema() as url:
            store = open_store_at(url, create=True)
            try:
                yield store
            finally:
                store.close()
        return
    store = open_store_at(config["STORE_PATH"] + "-fresh", create=True)
    try:
        yield store
    finally:
        store.close()
