"""The fixed, seeded, stratified train / test split of the offline data sets and of image folders without
their own test images (`nfzoo.data.folder`). It imports no other module of the data wing."""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np

SPLIT_SEED = 20240611  # fixed forever: changing it changes every reported test number
DEFAULT_TEST_FRACTION = 0.1   # held out of a data set that has no test split of its own (folders, Hub datasets)


def held_out_counts(class_sizes, fraction: float) -> Dict[int, int]:
    """How many images of each class a data set without a test split holds out: round(fraction x n), at least 1
    of a class of 2 or more, never a class's last image (a class of one keeps it for training)."""
    return {c: (min(n - 1, max(1, math.floor(fraction * n + 0.5))) if n >= 2 else 0)
            for c, n in enumerate(int(n) for n in class_sizes)}


def stratified_split(labels: np.ndarray, test_per_class: Dict[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Fixed (seeded) train / test indices: `test_per_class[c]` random images of class c go to the test split,
    the other images of those classes to the training split; both sorted."""
    rng = np.random.RandomState(SPLIT_SEED)
    train: List[np.ndarray] = []
    test: List[np.ndarray] = []
    for c in sorted(test_per_class):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        test.append(np.sort(idx[:test_per_class[c]]))
        train.append(np.sort(idx[test_per_class[c]:]))
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
