"""The store (both backends) shared by several processes, and killed (SIGKILL) at random
moments."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter

import pytest

from comments_service.models import CommentState

pytestmark = pytest.mark.both_stores

# A worker as gunicorn would run one: its own store object on the shared store (the settings
# in argv[1]). It waits for "go" on stdin so that all workers start writing at the same moment.
WORKER = """
import dataclasses, json, sys
from comments_service.models import Comment, CommentState, new_comment_id, utc_now
from comments_service.store import open_configured_store

worker, count = int(sys.argv[2]), int(sys.argv[3])
store = open_configured_store(json.loads(sys.argv[1]))
sys.stdin.readline()
for number in range(count):
    thread = "shared" if number % 3 == 0 else f"worker-{worker}-{number % 2}"
    comment = store.add_comment(Comment(
        id=new_comment_id(), thread=thread, name="Reader", body=f"{worker}/{number}",
        html="<p>x</p>", created=utc_now(), state=CommentState.AWAITING_REPLY, public=False,
    ))
    print("added", comment.id, flush=True)
    if number % 5 == 0:
        store.update_comment(comment.id, lambda latest: dataclasses.replace(
            latest, state=CommentState.REPLIED, public=True))
        print("replied", comment.id, flush=True)
"""

# Adds (and now and then replies to) comments until killed; a line is printed only after the
# store call returned, so every printed id must survive the kill.
CRASHER = """
import dataclasses, json, random, sys
from comments_service.models import Comment, CommentState, new_comment_id, utc_now
from comments_service.store import open_configured_store

store = open_configured_store(json.loads(sys.argv[1]))
added = []
while True:
    comment = store.add_comment(Comment(
        id=new_comment_id(), thread=random.choice(["crash-a", "crash-b", "crash-c"]),
        name="Reader", body="x" * random.randrange(1, 400), html="<p>x</p>", created=utc_now(),
        state=CommentState.AWAITING_REPLY, public=False,
    ))
    added.append(comment.id)
    print("added", comment.id, flush=True)
    if random.random() < 0.2:
        replied_id = added.pop(random.randrange(len(added)))
        store.update_comment(replied_id, lambda latest: dataclasses.replace(
            latest, state=CommentState.REPLIED, public=True))
        print("replied", replied_id, flush=True)
"""


def test_four_processes_adding_at_once_store_every_comment_once(
    store_config: dict[str, str], open_test_store
) -> None:
    open_test_store()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(store_config), str(worker), "150"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for worker in range(4)
    ]
    outputs = []
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
        outputs.append(stdout)

    events = [line.split() for output in outputs for line in output.splitlines()]
    added = [comment_id for event, comment_id in events if event == "added"]
    replied = {comment_id for event, comment_id in events if event == "replied"}
    assert len(added) == 600 and len(set(added)) == 600
    assert len(replied) == 4 * 30

    store = open_test_store()
    stored = list(store.all_comments())
    assert Counter(comment.id for comment in stored) == Counter(added)
    for thread in {comment.thread for comment in stored}:
        store.thread_comments(thread)  # every thread file loads
    assert len(store.thread_comments("shared")) == 4 * 50
    assert store.count_comments() == 600
    waiting = {comment.id for comment in store.waiting_comments(limit=1000)}
    assert waiting == set(added) - replied
    assert store.count_waiting() == 480
    replied_per_thread = Counter(comment.thread for comment in stored if comment.id in replied)
    assert store.public_counts(replied_per_thread) == dict(replied_per_thread)


def read_events(stdout: str) -> list[tuple[str, str]]:
    """The events of complete lines only: a line cut by the kill names no finished call."""
    complete = stdout[: stdout.rfind("\n") + 1]
    return [tuple(line.split()) for line in complete.splitlines()]  # type: ignore[misc]


def test_comments_survive_sigkill_at_any_moment(
    store_config: dict[str, str], open_test_store
) -> None:
    rng = random.Random()  # noqa: S311 - kill timing, not a secret
    added: list[str] = []
    replied: set[str] = set()
    for _run in range(6):
        crasher = subprocess.Popen(
            [sys.executable, "-c", CRASHER, json.dumps(store_config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        # Wait until it is writing, then let it run a little longer before the kill.
        first_line = crasher.stdout.readline()
        assert first_line.startswith("added"), crasher.stderr.read()
        time.sleep(rng.uniform(0.0, 0.4))
        crasher.kill()
        stdout, _stderr = crasher.communicate(timeout=30)
        for event, comment_id in read_events(first_line + stdout):
            (added.append if event == "added" else replied.add)(comment_id)

        store = open_test_store()
        stored = {comment.id: comment for comment in store.all_comments()}
        assert set(added) <= stored.keys()
        for comment_id in replied:
            assert stored[comment_id].state is CommentState.REPLIED
        for comment_id in added[-5:]:
            assert store.get_comment(comment_id) == stored[comment_id]
        # The queue is exactly the waiting comments of the thread files (a reply the kill cut
        # off before its line was printed may have been stored: the file decides).
        waiting = {comment.id for comment in store.waiting_comments(limit=100_000)}
        assert waiting == {comment_id for comment_id, comment in stored.items() if comment.in_queue}
        assert set(added) - replied - waiting <= {
            comment_id for comment_id, comment in stored.items()
            if comment.state is CommentState.REPLIED
        }
        # Listing the queue settled any index line the kill left without its comment.
        assert store.count_waiting() == len(waiting)
        assert store.count_comments() == len(stored)
