"""Settling: group a whole collection of request vectors at once, by average linkage.

Incremental assignment (tally.RequestGrouper.assign) must decide when a comment arrives, and an
early wrong decision stays. With the whole collection at hand, ``settle`` can merge the surest
pairs first: it starts from one cluster per comment and repeatedly joins the two clusters whose
members are, on average, most likely to ask for the same thing, until no pair reaches the
threshold. Held out (docs/TALLY.md) that takes MiniLM from F1 0.63 to 0.81 at a higher precision.

Two things make it work and keep it affordable:

- **Calibrated pairs.** Each pair of comments gets ``P(same request | cosine)``, a logistic
  curve fitted on the tune half of bench/tally_data. Averaging probabilities, not cosines, means
  one wordy outlier does not drag two groups of clear matches apart, and many weak cosines
  between unrelated comments add up to nothing.
- **A sparse candidate graph.** Only each comment's nearest neighbours (``NEIGHBOURS``, by
  cosine, from chunked matrix products) are candidates for a first join, so memory grows with
  the number of comments, not its square. The average between two clusters is computed exactly
  over up to ``SAMPLE`` members of each (the earliest), so it does not shrink as clusters grow.

Needs numpy (it comes with the model's packages); used for the model's vectors only.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Calibration:
    """P(same request | cosine) = 1 / (1 + exp(-(slope * cosine + offset))) for one embedder,
    and the mean probability two clusters need to be joined."""

    slope: float
    offset: float
    threshold: float

    def probability(self, cosines: Any) -> Any:
        np = sys.modules["numpy"]
        return 1.0 / (1.0 + np.exp(-(self.slope * cosines + self.offset)))

    def floor(self) -> float:
        """The cosine at which one pair alone reaches the threshold (the curve inverted)."""
        return (math.log(self.threshold / (1.0 - self.threshold)) - self.offset) / self.slope


# all-MiniLM-L6-v2 on request topics: a logistic regression on every pair of request comments
# in the tune half of bench/tally_data, and the threshold chosen there like every other
# (bench/tally_quality.py --calibrate; docs/TALLY.md).
MINILM = Calibration(slope=12.96, offset=-6.19, threshold=0.40)
NEIGHBOURS = 32  # candidate partners per comment
SAMPLE = 48  # members per cluster that the average looks at
_CHUNK = 2048  # rows per block of the neighbour search: 2048 x N floats at a time


def _product(left: Any, right: Any) -> Any:
    """``left @ right.T``, through torch when it is loaded (see tally._DenseIndex._scores)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return left @ right.T
    return (torch.from_numpy(left) @ torch.from_numpy(right).T).numpy()


def _candidate_pairs(unit: Any, neighbours: int,
                     calibration: Calibration) -> list[tuple[float, int, int]]:
    """(-probability, i, j) for each comment and its nearest neighbours whose probability alone
    reaches the threshold (a pair below it can never start a cluster), i < j, no repeats."""
    np = sys.modules["numpy"]
    count = len(unit)
    floor = calibration.floor()
    pairs: dict[tuple[int, int], float] = {}
    keep = min(neighbours + 1, count)
    for start in range(0, count, _CHUNK):
        block = _product(unit[start : start + _CHUNK], unit)
        for row in range(len(block)):
            block[row, start + row] = -2.0  # not its own neighbour
        nearest = np.argpartition(-block, keep - 1, axis=1)[:, :keep]
        for row, columns in enumerate(nearest):
            first = start + row
            for column in columns.tolist():
                cosine = float(block[row, column])
                if cosine >= floor:
                    pairs[(min(first, column), max(first, column))] = cosine
    return [(-float(calibration.probability(cosine)), i, j) for (i, j), cosine in pairs.items()]


def settle(vectors: Sequence[Sequence[float]], calibration: Calibration,
           neighbours: int = NEIGHBOURS, sample: int = SAMPLE) -> list[int]:
    """The cluster of each vector: small integers in order of each cluster's first member, so
    the same input always gives the same numbers. Vectors need not be normalised."""
    np = sys.modules.get("numpy")
    if np is None:
        import numpy as np
    if not len(vectors):
        return []
    unit = np.asarray(vectors, dtype=np.float32)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-9)
    count = len(unit)
    members: list[list[int]] = [[index] for index in range(count)]
    parent = list(range(count))
    partners: list[set[int]] = [set() for _ in range(count)]
    heap = _candidate_pairs(unit, neighbours, calibration)
    for _score, i, j in heap:
        partners[i].add(j)
        partners[j].add(i)
    heapq.heapify(heap)
    version = [0] * count  # bumped at each merge: older heap entries about a cluster are stale
    stamps: dict[tuple[int, int], tuple[int, int]] = {}

    def average(a: int, b: int) -> float:
        left, right = unit[members[a][:sample]], unit[members[b][:sample]]
        return float(calibration.probability(_product(left, right)).mean())

    while heap:
        _score, a, b = heapq.heappop(heap)
        if parent[a] != a or parent[b] != b:
            continue
        if stamps.get((a, b), (0, 0)) != (version[a], version[b]):
            continue
        keep, gone = (a, b) if a < b else (b, a)  # the older cluster keeps its number
        parent[gone] = keep
        members[keep].extend(members[gone])
        members[gone] = []
        partners[keep] |= partners[gone]
        partners[gone] = set()
        partners[keep] = {find for find in (_root(parent, p) for p in partners[keep])
                          if find != keep}
        version[keep] += 1
        for other in partners[keep]:
            score = average(keep, other)
            if score >= calibration.threshold:
                pair = (min(keep, other), max(keep, other))
                stamps[pair] = (version[pair[0]], version[pair[1]])
                heapq.heappush(heap, (-score, *pair))
    numbers: dict[int, int] = {}
    return [numbers.setdefault(_root(parent, index), len(numbers)) for index in range(count)]


def _root(parent: list[int], index: int) -> int:
    while parent[index] != index:
        parent[index] = parent[parent[index]]
        index = parent[index]
    return index
