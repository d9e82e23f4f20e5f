"""Settling: group a whole collection of request vectors at once, by average linkage.

Incremental assignment (grouper.RequestGrouper.assign) must decide when a comment arrives, and an
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
import itertools
import math
import sys
from collections.abc import Hashable, Sequence
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
        import numpy as np
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
_CHUNK = 512  # rows per block of the neighbour search: 512 x N cosines (and indices) at a time
# Partner clusters averaged in one product: at most 256 x SAMPLE member rows (~19 MB) at a time.
_PARTNERS_PER_PRODUCT = 256


def _product(left: Any, right: Any) -> Any:
    """``left @ right.T``, through torch when it is loaded (see grouper._DenseIndex._scores)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return left @ right.T
    return (torch.from_numpy(left) @ torch.from_numpy(right).T).numpy()


def _candidate_pairs(unit: Any, neighbours: int,
                     calibration: Calibration) -> list[tuple[float, int, int]]:
    """(-probability, i, j) for each comment and its nearest neighbours whose probability alone
    reaches the threshold (a pair below it can never start a cluster), i < j, no repeats."""
    import numpy as np
    count = len(unit)
    floor = calibration.floor()
    keep = min(neighbours + 1, count)
    firsts, seconds, cosines = [], [], []
    for start in range(0, count, _CHUNK):
        block = _product(unit[start : start + _CHUNK], unit)
        rows = np.arange(len(block))
        block[rows, start + rows] = -2.0  # not its own neighbour
        nearest = np.argpartition(block, count - keep, axis=1)[:, count - keep :]
        values = np.take_along_axis(block, nearest, axis=1)
        row_of, column_of = np.nonzero(values >= floor)
        firsts.append(start + row_of)
        seconds.append(nearest[row_of, column_of])
        cosines.append(values[row_of, column_of])
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    low, high = np.minimum(first, second), np.maximum(first, second)
    _keys, unique = np.unique(low.astype(np.int64) * count + high, return_index=True)
    probabilities = calibration.probability(np.concatenate(cosines)[unique].astype(np.float64))
    return list(zip((-probabilities).tolist(), low[unique].tolist(), high[unique].tolist(),
                    strict=True))


def settle(vectors: Sequence[Sequence[float]], calibration: Calibration,
           together: Sequence[Hashable | None] | None = None,
           neighbours: int = NEIGHBOURS, sample: int = SAMPLE) -> list[int]:
    """The cluster of each vector: small integers in order of each cluster's first member, so
    the same input always gives the same numbers. Vectors need not be normalised.

    ``together`` (one key or None per vector) is what the author decided: vectors with the
    same key start in one cluster, which may take others in, and two clusters holding
    different keys are never joined."""
    import numpy as np
    if not len(vectors):
        return []
    unit = np.asarray(vectors, dtype=np.float32)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-9)
    clusters = _Clusters(unit, calibration, sample)
    heap = _candidate_pairs(unit, neighbours, calibration)
    for _score, first, second in heap:
        clusters.partners[first].add(second)
        clusters.partners[second].add(first)
    heapq.heapify(heap)
    seeded: dict[Hashable, int] = {}
    for index, key in enumerate(together or ()):
        if key is not None:
            clusters.key[index] = key
            if key in seeded:
                seeded[key] = clusters.join(seeded[key], index)
            else:
                seeded[key] = index
    for root in seeded.values():
        clusters.push_partners(heap, root)
    while heap:
        _score, first, second = heapq.heappop(heap)
        if clusters.current(first, second) and clusters.may_join(first, second):
            clusters.push_partners(heap, clusters.join(first, second))
    numbers: dict[int, int] = {}
    return [numbers.setdefault(_root(clusters.parent, index), len(numbers))
            for index in range(len(unit))]


class _Clusters:
    """The state of one settle: a union-find over the vectors, each root's members and
    candidate partners, and a version per root so stale heap entries are recognised."""

    def __init__(self, unit: Any, calibration: Calibration, sample: int) -> None:
        count = len(unit)
        self.unit, self.calibration, self.sample = unit, calibration, sample
        self.parent = list(range(count))
        self.members: list[list[int]] = [[index] for index in range(count)]
        self.partners: list[set[int]] = [set() for _ in range(count)]
        self.key: list[Hashable | None] = [None] * count
        self.version = [0] * count
        self.stamps: dict[tuple[int, int], tuple[int, int]] = {}

    def current(self, first: int, second: int) -> bool:
        """Both are still clusters, and neither changed since the entry was pushed."""
        if self.parent[first] != first or self.parent[second] != second:
            return False
        return self.stamps.get((first, second), (0, 0)) == (self.version[first],
                                                              self.version[second])

    def may_join(self, first: int, second: int) -> bool:
        one, other = self.key[first], self.key[second]
        return one is None or other is None or one == other

    def join(self, first: int, second: int) -> int:
        """Merge two roots; the older (lower) one stays the root and is returned."""
        keep, gone = (first, second) if first < second else (second, first)
        self.parent[gone] = keep
        self.members[keep].extend(self.members[gone])
        self.members[gone] = []
        self.key[keep] = self.key[keep] if self.key[keep] is not None else self.key[gone]
        self.partners[keep] |= self.partners[gone]
        self.partners[gone] = set()
        self.version[keep] += 1
        return keep

    def averages(self, root: int, others: list[int]) -> Any:
        """The mean probability between ``root``'s members and each other cluster's (up to
        ``sample`` of each), from one matrix product for all of them."""
        import numpy as np
        picked = [self.members[other][: self.sample] for other in others]
        sizes = np.fromiter((len(members) for members in picked), dtype=np.int64,
                            count=len(picked))
        columns = np.fromiter(itertools.chain.from_iterable(picked), dtype=np.int64,
                              count=int(sizes.sum()))
        left = self.unit[self.members[root][: self.sample]]
        means = self.calibration.probability(_product(left, self.unit[columns])).mean(axis=0)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        return np.add.reduceat(means, starts) / sizes

    def push_partners(self, heap: list[tuple[float, int, int]], root: int) -> None:
        # Partners joined elsewhere since this root's set was made are looked up again.
        self.partners[root] = {other for other in (_root(self.parent, p)
                                                   for p in self.partners[root]) if other != root}
        if not self.partners[root]:
            return
        others = sorted(self.partners[root])
        for start in range(0, len(others), _PARTNERS_PER_PRODUCT):
            batch = others[start : start + _PARTNERS_PER_PRODUCT]
            for other, score in zip(batch, self.averages(root, batch).tolist(), strict=True):
                if score >= self.calibration.threshold:
                    pair = (min(root, other), max(root, other))
                    self.stamps[pair] = (self.version[pair[0]], self.version[pair[1]])
                    heapq.heappush(heap, (-score, *pair))


def _root(parent: list[int], index: int) -> int:
    while parent[index] != index:
        parent[index] = parent[parent[index]]
        index = parent[index]
    return index
