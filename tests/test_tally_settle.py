"""Settling (comments_service/tally/settle.py): average linkage over calibrated probabilities,
on small fixed vectors, the author's keys, and sizes beyond the neighbour and sample caps."""

from __future__ import annotations

import math

import numpy as np

from comments_service.tally import grouper as tally
from comments_service.tally.settle import MINILM, Calibration, settle


def at(*degrees: float) -> list[list[float]]:
    """Unit vectors in a plane, at these angles: cosine = cos(difference)."""
    return [[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in degrees]


def test_nothing_and_one_vector():
    assert settle([], MINILM) == []
    assert settle(at(0), MINILM) == [0]


def test_close_vectors_join_and_far_ones_stay_apart_numbered_by_first_member():
    # cos 10 degrees = 0.98, cos 80 degrees = 0.17: P 0.998 / 0.02 with MiniLM's curve.
    assert settle(at(90, 0, 95, 5, 85), MINILM) == [0, 1, 0, 1, 0]


def test_a_comment_between_two_groups_does_not_chain_them():
    # Two tight groups 84 degrees apart (P < 0.04 between them) and one comment halfway (P 0.95
    # with either). Single linkage would chain all of them; the average over members does not.
    vectors = at(0, 2, 4, 6, 45, 84, 86, 88, 90)
    groups = settle(vectors, MINILM)
    assert groups[:4] == [0] * 4 and groups[5:] == [groups[5]] * 4
    assert groups[5] != 0
    assert groups[4] in (0, groups[5])


def test_the_threshold_is_the_mean_probability_between_clusters():
    calibration = Calibration(slope=10.0, offset=-5.0, threshold=0.5)
    assert math.isclose(float(calibration.probability(np.float64(0.5))), 0.5)
    assert math.isclose(calibration.floor(), 0.5)
    assert settle(at(0, 59), calibration) == [0, 0]  # cos 0.515: P 0.54
    assert settle(at(0, 61), calibration) == [0, 1]  # cos 0.485: P 0.46


def test_the_same_key_joins_and_different_keys_never_do():
    far, same = at(0, 90), at(0, 0)
    assert settle(far, MINILM, together=["a", "a"]) == [0, 0]
    assert settle(same, MINILM, together=["a", "b"]) == [0, 1]
    # A keyed cluster still takes unkeyed comments in, but only one of two keys gets each.
    assert settle(at(0, 1, 2), MINILM, together=["a", None, "b"]) in ([0, 0, 1], [0, 1, 1])


def test_clusters_larger_than_the_neighbour_and_sample_caps_end_as_one():
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(3, 64))
    vectors = np.concatenate([centre + 0.05 * rng.normal(size=(150, 64)) for centre in centres])
    order = rng.permutation(len(vectors))
    groups = settle(vectors[order], MINILM, neighbours=8, sample=16)
    truth = order // 150
    assert len(set(groups)) == 3
    for cluster in set(groups):
        assert len({int(truth[i]) for i, g in enumerate(groups) if g == cluster}) == 1
    assert settle(vectors[order], MINILM, neighbours=8, sample=16) == groups  # deterministic


def test_zero_and_repeated_vectors_do_not_break_it():
    vectors = [[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]
    groups = settle(vectors, MINILM)
    assert groups[2] == groups[3] == groups[4]
    assert groups[0] != groups[2]


class _Plane:
    """A stand-in for the model: each text's vector is an angle written in it, with MiniLM's
    calibration so regroup settles."""

    name = "plane"
    settle_calibration = MINILM

    def encode(self, texts: list[str]) -> list[list[float]]:
        return [at(float(text.split()[-1].rstrip(".?")))[0] for text in texts]


def test_regroup_settles_the_vectors_of_an_embedder_with_a_calibration():
    grouper = tally.RequestGrouper(_Plane())
    texts = ["Please add angle 0.", "Please add angle 90.", "Please add angle 4.",
             "Nothing asked here.", "Please add angle 86."]
    assert grouper.regroup(texts) == [0, 1, 0, None, 1]
    assert grouper.sizes == [2, 2]
    assert grouper.assign("Please add angle 2.") == 0  # the settled centroids take new ones


def test_regroup_keeps_the_authors_keys_with_and_without_settling():
    triples = [("Please add angle 0.", None, "kept"), ("Please add angle 90.", None, "kept"),
               ("Please add angle 1.", None, None), ("Lovely post, thank you 45", None, "kept"),
               ("Please add angle 2.", None, "other")]
    settled = tally.RequestGrouper(_Plane()).regroup_pairs(iter(triples))
    assert settled[0] == settled[1] == settled[3]  # kept together, asking or not
    assert settled[4] != settled[0]
    lexical = tally.RequestGrouper(tally.LexicalEmbedder()).regroup_pairs(
        [("Please add per-tag RSS feeds.", None, "g"), ("Could you add a dark mode?", None, "g"),
         ("Please add RSS feeds per tag.", None, None), ("Nice post!", None, None)])
    assert lexical[0] == lexical[1] == lexical[2]
    assert lexical[3] is None


def test_averaging_partners_in_small_batches_changes_nothing(monkeypatch):
    from comments_service.tally import settle as tally_settle

    rng = np.random.default_rng(11)
    centres = rng.normal(size=(20, 32))
    vectors = np.concatenate([centre + 0.3 * rng.normal(size=(30, 32)) for centre in centres])
    whole = settle(vectors, MINILM)
    monkeypatch.setattr(tally_settle, "_PARTNERS_PER_PRODUCT", 3)
    assert settle(vectors, MINILM) == whole
