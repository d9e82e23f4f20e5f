"""Sentence vectors kept in the store (VectorStore, #18): each text is encoded once, read back
by every process and after a restart, on both backends; bad keys are refused; a cut-off append
on the embedded store loses only itself."""

from __future__ import annotations

import numpy as np
import pytest

from comments_service.store.tinydb.vectors import VECTORS_FOLDER
from comments_service.tally import vectors
from comments_service.tally.grouper import MiniLMEmbedder

pytestmark = pytest.mark.both_stores

MODEL = "all-MiniLM-L6-v2"


def vector(seed: int) -> bytes:
    return np.random.default_rng(seed).random(384, dtype=np.float32).astype("<f4").tobytes()


def digest(text: str) -> str:
    return vectors.text_digest(text)


def test_vectors_are_kept_once_and_read_back_by_another_store_object(store, open_test_store):
    first, second = digest("a dark mode"), digest("per-tag feeds")
    assert store.text_vectors(MODEL, [first]) == {}
    store.add_text_vectors(MODEL, {first: vector(1)})
    store.add_text_vectors(MODEL, {first: vector(2), second: vector(3)})  # first stays
    assert store.text_vectors(MODEL, [first, second, digest("unknown")]) == {
        first: vector(1), second: vector(3)}
    assert store.text_vectors("other-model", [first]) == {}
    again = open_test_store()  # another process's view of the same store
    assert again.text_vectors(MODEL, [second, first]) == {first: vector(1), second: vector(3)}


@pytest.mark.parametrize(("model", "key"), [
    ("../escape", "0" * 32), ("", "0" * 32), (MODEL, "not-hex"), (MODEL, "0" * 31),
    (MODEL, 7),
])
def test_bad_model_names_and_digests_are_refused(store, model, key) -> None:
    with pytest.raises(ValueError):
        store.add_text_vectors(model, {key: vector(1)})
    with pytest.raises(ValueError):
        store.text_vectors(model, [key])


@pytest.mark.tinydb_only("a cut-off append is a file's concern")
def test_a_cut_off_append_loses_only_itself(store, open_test_store) -> None:
    kept = {digest(f"text {n}"): vector(n) for n in range(3)}
    store.add_text_vectors(MODEL, kept)
    path = store.path / VECTORS_FOLDER / f"{MODEL}.bin"
    whole = path.stat().st_size
    record = whole // 3
    for cut in range(1, 40):
        with open(path, "ab") as handle:  # a crash part way through the next record
            handle.write(b"\x01" * cut)
        reopened = open_test_store()
        assert reopened.text_vectors(MODEL, list(kept)) == kept
        reopened.add_text_vectors(MODEL, {digest("after"): vector(9)})
        assert path.stat().st_size == whole + record  # the cut-off bytes are gone
        assert open_test_store().text_vectors(MODEL, [digest("after"), *kept]) == {
            **kept, digest("after"): vector(9)}
        store = reopened
        with open(path, "r+b") as handle:  # back to the three records for the next cut
            handle.truncate(whole)


@pytest.mark.skipif(not MiniLMEmbedder.available(), reason="the sentence model is not installed")
def test_a_text_is_encoded_once_across_restarts(store, open_test_store) -> None:
    """Through tally.vectors.stored, the model encodes a text the first time only: after a
    restart (memory forgotten, store reopened), its vector comes from the store."""

    class Counting(MiniLMEmbedder):
        def __init__(self) -> None:
            self.encoded: list[str] = []

        def encode(self, texts):
            self.encoded.extend(texts)
            return super().encode(texts)

    vectors.forget_in_memory()
    model = Counting()
    texts = ["Could you write about the tent?", "A dark mode, please."]
    first = vectors.stored(model, store).encode(texts)
    assert model.encoded == texts
    vectors.forget_in_memory()
    again = vectors.stored(model, open_test_store()).encode([texts[1], texts[0]])
    assert model.encoded == texts  # nothing encoded again
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])
    reference = np.asarray(MiniLMEmbedder().encode([texts[0]])[0], dtype=np.float32)
    assert float(reference @ first[0]) > 0.9999


@pytest.mark.skipif(not MiniLMEmbedder.available(), reason="the sentence model is not installed")
def test_a_regroup_after_a_restart_encodes_nothing(store, open_test_store, monkeypatch) -> None:
    from comments_service.models import Comment, CommentState, new_comment_id, utc_now
    from comments_service.tally.regrouping import regroup

    for body in ("Could you write about the tent?", "Please write about your tent.",
                 "A dark mode, please.", "Thanks, lovely read."):
        store.add_comment(Comment(
            id=new_comment_id(), thread="hello", name="Rosa", body=body, html="<p>…</p>",
            created=utc_now(), public=False, state=CommentState.AWAITING_REPLY))
    first = regroup(store, "auto")
    vectors.forget_in_memory()
    encoded: list[str] = []
    encode = MiniLMEmbedder.encode
    monkeypatch.setattr(MiniLMEmbedder, "encode",
                        lambda self, texts: encoded.extend(texts) or encode(self, texts))
    again = regroup(open_test_store(), "auto")
    assert encoded == []
    assert (again.groups, again.embedder) == (first.groups, "minilm")
