"""The fixed, seeded, stratified train / test split of the offline data sets and of image folders without
their own test images (`nfzoo.data.folder`). It imports no other module of the data wing."""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

SPLIT_SEED = 20240611  # fixed forever: changing it changes every reported test number


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
