"""The store's outbox and mail addresses (both backends): dedupe keys, atomic claims with leases
(threads and processes), compare-and-set updates; and the TinyDB store's files: one per day,
open markers, key files."""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from comments_service.models import MailAddress, OutboxMessage, OutboxStatus
from comments_service.store import (
    DuplicateMessage,
    MessageNotFound,
    Store,
    StoreCorrupted,
    TinyDBStore,
    message_day,
)

pytestmark = pytest.mark.both_stores

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def at(seconds: float = 0, base: datetime = T0) -> str:
    return (base + timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def make_message(created: datetime = T0, **overrides: object) -> OutboxMessage:
    number = next(_numbers)
    values: dict[str, object] = {
        "id": f"{created:%Y%m%d}-m{number:06d}", "kind": "reply", "to": "rosa@example.org",
        "subject": f"Message {number}", "text": "Hello", "html": "<p>Hello</p>",
        "created": at(base=created), "next_attempt_at": at(base=created),
    }
    values.update(overrides)
    return OutboxMessage(**values)  # type: ignore[arg-type]


def outbox(store: TinyDBStore) -> Path:
    return store.path / "outbox"


# -- adding, reading, updating -------------------------------------------------------------------


def test_a_message_is_kept_in_the_file_of_its_day(store: Store) -> None:
    first = store.add_message(make_message(T0))
    second = store.add_message(make_message(T0 + timedelta(days=1), status=OutboxStatus.SENT))
    assert store.get_message(first.id) == first
    assert store.get_message(second.id) == second
    assert message_day(first.id) == "2026-11-20"
    if isinstance(store, TinyDBStore):
        day_file = json.loads((outbox(store) / "2026-11-20.json").read_text())
        assert [doc["id"] for doc in day_file["messages"].values()] == [first.id]
        assert (outbox(store) / "2026-11-21.json").exists()
    assert store.get_message("20261120-unknown") is None
    assert store.get_message("not an id") is None


@pytest.mark.tinydb_only("one file per day")
def test_a_write_touches_only_its_own_day(store: TinyDBStore) -> None:
    store.add_message(make_message(T0))
    before = (outbox(store) / "2026-11-20.json").stat()
    store.add_message(make_message(T0 + timedelta(days=1)))
    after = (outbox(store) / "2026-11-20.json").stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_ids_must_name_a_day_and_be_unique(store: Store) -> None:
    with pytest.raises(ValueError, match="Invalid message id"):
        store.add_message(make_message(id="no-day"))
    message = store.add_message(make_message())
    with pytest.raises(DuplicateMessage):
        store.add_message(dataclasses.replace(message, subject="again"))


def test_update_is_compare_and_set_and_may_abort(store: Store) -> None:
    message = store.add_message(make_message())
    sent = store.update_message(message.id, lambda m: dataclasses.replace(
        m, status=OutboxStatus.SENT, sent_at=at(5)))
    assert store.get_message(message.id) == sent

    def refuse(_message: OutboxMessage) -> OutboxMessage:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.update_message(message.id, refuse)
    assert store.get_message(message.id) == sent
    with pytest.raises(ValueError, match="id"):
        store.update_message(message.id, lambda m: dataclasses.replace(m, id="20261120-other"))
    with pytest.raises(MessageNotFound):
        store.update_message("20261120-missing", lambda m: m)


def test_a_dedupe_key_is_queued_once_even_by_racing_threads(store: Store) -> None:
    results: list[OutboxMessage] = []
    barrier = threading.Barrier(6)

    def add() -> None:
        barrier.wait()
        results.append(store.add_message(make_message(dedupe_key="reply:abc")))

    threads = [threading.Thread(target=add) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({message.id for message in results}) == 1
    assert len(store.list_messages()) == 1


@pytest.mark.tinydb_only("the key files")
def test_a_dedupe_key_whose_message_never_landed_is_taken_over(store: TinyDBStore) -> None:
    """A crash between the key file and the message leaves a key naming no message."""
    keys = outbox(store) / "keys"
    keys.mkdir(parents=True)
    first = make_message(dedupe_key="k")
    store.add_message(first)
    [key_file] = keys.iterdir()
    key_file.write_text("20261120-vanished")
    second = store.add_message(make_message(dedupe_key="k"))
    assert store.get_message(second.id) == second


# -- open days and claims ----------------------------------------------------------------------


def open_markers(store: TinyDBStore) -> list[str]:
    folder = outbox(store) / "open"
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


@pytest.mark.tinydb_only("the open-day marker files")
def test_only_days_with_open_messages_are_marked(store: TinyDBStore) -> None:
    store.add_message(make_message(T0, status=OutboxStatus.SENT))
    assert open_markers(store) == []
    waiting = store.add_message(make_message(T0 + timedelta(days=1)))
    assert open_markers(store) == ["2026-11-21"]
    store.update_message(waiting.id, lambda m: dataclasses.replace(m, status=OutboxStatus.SENT))
    assert open_markers(store) == []


@pytest.mark.tinydb_only("the open-day marker files")
def test_a_marker_left_by_a_crash_is_removed_by_the_next_claim(store: TinyDBStore) -> None:
    store.add_message(make_message(status=OutboxStatus.SENT))
    (outbox(store) / "open" / "2026-11-20").touch()
    assert store.claim_messages("a", at(60), at(360), 10) == []
    assert open_markers(store) == []


def test_claim_takes_due_messages_oldest_first_and_marks_them(store: Store) -> None:
    later = store.add_message(make_message(next_attempt_at=at(30)))
    first = store.add_message(make_message(next_attempt_at=at(10)))
    store.add_message(make_message(next_attempt_at=at(500)))  # not due yet
    store.add_message(make_message(status=OutboxStatus.HELD))  # waits for confirmation
    claimed = store.claim_messages("sender-a", at(60), at(360), 10)
    assert [message.id for message in claimed] == [first.id, later.id]
    for message in claimed:
        stored = store.get_message(message.id)
        assert stored == message
        assert (stored.status, stored.claimed_by, stored.claimed_until, stored.attempts) == (
            OutboxStatus.SENDING, "sender-a", at(360), 1)
    assert store.claim_messages("sender-b", at(61), at(361), 10) == []


def test_a_lease_that_runs_out_lets_another_sender_take_the_message(store: Store) -> None:
    message = store.add_message(make_message())
    [mine] = store.claim_messages("dead-sender", at(0), at(300), 10)
    assert store.claim_messages("other", at(299), at(599), 10) == []
    [theirs] = store.claim_messages("other", at(300), at(600), 10)
    assert (theirs.id, theirs.claimed_by, theirs.attempts) == (message.id, "other", 2)

    def finish_as(claimer: str):
        def apply(current: OutboxMessage) -> OutboxMessage:
            if current.claimed_by != claimer:
                raise LookupError("lease lost")
            return dataclasses.replace(current, status=OutboxStatus.SENT)
        return apply

    with pytest.raises(LookupError):
        store.update_message(mine.id, finish_as("dead-sender"))
    assert store.update_message(mine.id, finish_as("other")).status is OutboxStatus.SENT


def test_threads_claiming_at_once_never_share_a_message(store: Store) -> None:
    for number in range(60):
        store.add_message(make_message(T0 + timedelta(days=number % 3)))
    claims: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(5)
    now = at(0, T0 + timedelta(days=3))

    def claim(name: str) -> None:
        barrier.wait()
        while batch := store.claim_messages(name, now, at(300, T0 + timedelta(days=3)), 3):
            with lock:
                claims.extend(message.id for message in batch)

    threads = [threading.Thread(target=claim, args=(f"t{n}",)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claims) == 60
    assert len(set(claims)) == 60


CLAIMER = """
import json, sys
from comments_service.store import open_configured_store
store = open_configured_store(json.loads(sys.argv[1]))
sys.stdin.readline()
while True:
    batch = store.claim_messages(sys.argv[2], "2026-12-01T00:00:00.000000+00:00",
                                 "2026-12-01T00:05:00.000000+00:00", 2)
    if not batch:
        break
    for message in batch:
        print(message.id, flush=True)
"""


def test_processes_claiming_at_once_never_share_a_message(
    store: Store, store_config: dict[str, str]
) -> None:
    ids = {store.add_message(make_message(T0 + timedelta(days=number % 4))).id
           for number in range(80)}
    workers = [subprocess.Popen(
        [sys.executable, "-c", CLAIMER, json.dumps(store_config), f"p{number}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) for number in range(3)]
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    claimed: Counter[str] = Counter()
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=60)
        assert worker.returncode == 0, stderr
        claimed.update(stdout.split())
    assert set(claimed) == ids
    assert max(claimed.values()) == 1
    assert all(store.get_message(message_id).status is OutboxStatus.SENDING
               for message_id in ids)


# -- listing ----------------------------------------------------------------------------------


def test_list_messages_newest_first_by_status(store: Store) -> None:
    sent = [store.add_message(make_message(T0 + timedelta(days=day), status=OutboxStatus.SENT))
            for day in range(3)]
    waiting = store.add_message(make_message(T0 + timedelta(days=1)))
    assert store.list_messages() == [sent[2], waiting, sent[1], sent[0]]
    assert store.list_messages([OutboxStatus.SENT], limit=2) == [sent[2], sent[1]]
    assert store.list_messages([OutboxStatus.SENT], limit=2, offset=2) == [sent[0]]
    assert store.list_messages([OutboxStatus.QUEUED, OutboxStatus.HELD]) == [waiting]
    assert store.list_messages([OutboxStatus.FAILED]) == []


def test_messages_to_an_address_since_a_time_or_still_open(store: Store) -> None:
    old = store.add_message(make_message(T0 - timedelta(days=2), to="Rosa@Example.org"))
    recent = store.add_message(make_message(T0, status=OutboxStatus.SENT))
    store.add_message(make_message(T0, to="tom@example.org"))
    assert store.messages_to("rosa@example.ORG", since=at(-3600)) == [recent]
    assert store.messages_to("rosa@example.org", open_only=True) == [old]


@pytest.mark.tinydb_only("a damaged day file")
def test_a_damaged_day_file_is_reported_by_name(store: TinyDBStore) -> None:
    message = store.add_message(make_message())
    (outbox(store) / "2026-11-20.json").write_text("{not json")
    with pytest.raises(StoreCorrupted, match=r"2026-11-20\.json"):
        store.get_message(message.id)


# -- mail addresses -----------------------------------------------------------------------------


def test_address_records_are_one_per_mailbox_whatever_the_case(store: Store) -> None:
    assert store.get_mail_address("Rosa@Example.org") is None
    store.update_mail_address("Rosa@Example.org",
                              lambda record: dataclasses.replace(record, confirmed_at=at()))
    record = store.get_mail_address("rosa@example.org")
    assert record == MailAddress("rosa@example.org", confirmed_at=at())
    store.update_mail_address("ROSA@example.org",
                              lambda record: dataclasses.replace(record, unsubscribed_at=at(9)))
    assert store.get_mail_address("rosa@example.org").unsubscribed_at == at(9)
    assert len(store.all_mail_addresses()) == 1
    if isinstance(store, TinyDBStore):
        data = json.loads((store.path / "mail_addresses.json").read_text())
        assert len(data["addresses"]) == 1
    # Reading through update without a change writes nothing for an unknown address.
    store.update_mail_address("tom@example.org", lambda record: record)
    assert store.get_mail_address("tom@example.org") is None
