"""The store's record of messages read from the author's mailbox (InboxStore, replies by
email): one record per key, compare-and-set changes, counts and listing, on both backends."""

from __future__ import annotations

from dataclasses import replace

import pytest

from comments_service.models import IncomingMail, IncomingStatus, utc_now
from comments_service.store import IncomingMailNotFound

pytestmark = pytest.mark.both_stores


def test_the_store_records_each_message_once(store) -> None:
    first = IncomingMail(key="a" * 32, message_id="<one@x>", received=utc_now(),
                         body="first", reply_id="r1")
    assert store.add_incoming_mail(first) == first
    again = IncomingMail(key="a" * 32, message_id="<one@x>", received=utc_now(),
                         body="second", reply_id="r2")
    assert store.add_incoming_mail(again) == first
    later = IncomingMail(key="b" * 32, message_id="<two@x>", received=utc_now(),
                         status=IncomingStatus.IGNORED, reason="Not from an author's address.")
    store.add_incoming_mail(later)
    assert store.get_incoming_mail("a" * 32) == first
    assert store.get_incoming_mail("c" * 32) is None
    assert [mail.key for mail in store.list_incoming_mail()] == ["b" * 32, "a" * 32]
    assert [mail.key for mail in store.list_incoming_mail([IncomingStatus.PENDING])] == [
        "a" * 32]
    posted = store.update_incoming_mail("a" * 32, lambda mail: replace(
        mail, status=IncomingStatus.POSTED))
    assert store.get_incoming_mail("a" * 32) == posted
    counts = store.incoming_mail_counts()
    assert counts[IncomingStatus.POSTED] == 1 and counts[IncomingStatus.IGNORED] == 1
    assert counts[IncomingStatus.PENDING] == 0

    def refuse(mail):
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.update_incoming_mail("a" * 32, refuse)
    assert store.get_incoming_mail("a" * 32) == posted
    with pytest.raises(ValueError, match="key"):
        store.update_incoming_mail("a" * 32, lambda mail: replace(mail, key="d" * 32))
    with pytest.raises(ValueError):
        store.get_incoming_mail("../../etc/passwd")
    with pytest.raises(IncomingMailNotFound):
        store.update_incoming_mail("e" * 32, lambda mail: mail)


@pytest.mark.tinydb_only("damages the TinyDB store's incoming_mail.json")
def test_a_damaged_incoming_mail_file_is_found_at_the_start(store, store_config) -> None:
    from pathlib import Path

    from comments_service.store import check_store_files

    store.add_incoming_mail(IncomingMail(key="a" * 32, message_id="<one@x>",
                                         received=utc_now()))
    folder = Path(store_config["STORE_PATH"])
    assert check_store_files(folder).problems == []
    (folder / "incoming_mail.json").write_text('{"incoming": {"1": {"key": 7}}}')
    [problem] = check_store_files(folder).problems
    assert problem.startswith("incoming_mail.json: ")
