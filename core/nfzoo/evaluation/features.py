"""FID, Coverage and Density of two sets of feature vectors (real and fake), in float64: the metrics'
mathematics, on features already computed (nfzoo.evaluation.metrics draws the samples and computes their features).

    FID      = |mu_r - mu_f|^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2))       (Heusel et al. 2017)
    Coverage = 1/N sum_i 1[exists j: |Y_j - X_i| < NND_k(X_i)]             (Naeem et al. 2020)
    Density  = 1/(kM) sum_j sum_i 1[|Y_j - X_i| < NND_k(X_i)]              (Naeem et al. 2020)

with real features X_1..X_N, fake features Y_1..Y_M, and NND_k(X_i) the distance from X_i to its k-th
nearest neighbour among the other real samples. FID depends on the number of samples and on the
feature extractor: compare numbers only with the same oracle (or Inception weights) and sample counts.
On fixed features, FID equals torchmetrics' FrechetInceptionDistance and Coverage / Density equal prdc's
(the authors' package) to 1e-6 or better (tests/test_reference_metrics.py).

numpy and scipy only; a torch tensor is accepted as features and read as float64 numpy.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from nfzoo.errors import UsageError


def _as_2d(a: Any, what: str) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().double().numpy()
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise UsageError(f"{what} must be a (samples, features) array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise UsageError(f"{what} contain NaN or infinite values")
    return a


def gaussian_stats(feats: Any) -> tuple:
    """Mean and (unbiased) covariance of (N, D) features, in float64."""
    x = _as_2d(feats, "features")
    if x.shape[0] < 2:
        raise UsageError(f"need at least 2 samples to fit a gaussian, got {x.shape[0]}")
    return x.mean(0), np.atleast_2d(np.cov(x, rowvar=False))


def _psd_eigvals(w: np.ndarray) -> np.ndarray:
    """Eigenvalues of a symmetric PSD matrix with its numerical null space set to exactly 0: those below
    max(w) * size * eps (numpy.linalg.matrix_rank's tolerance) are round-off, and their square roots
    (~1e-8 of the scale each) would otherwise add up to a relative error of ~1e-9 in FID whenever a
    covariance is singular (fewer samples than features, or dead ReLU units in the features)."""
    tol = max(float(w.max(initial=0.0)), 0.0) * w.size * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigendecomposition; round-off
    eigenvalues, negative or in the numerical null space, are set to 0)."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(_psd_eigvals(w))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    tr((S1 S2)^(1/2)) is computed as tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the same eigenvalues, but of a
    symmetric PSD matrix, so the result is real and stable for singular covariances (more features than
    samples), where scipy.linalg.sqrtm of the non-symmetric S1 S2 can return complex noise; eigenvalues in
    the numerical null space count as 0 (`_psd_eigvals`). Against a 40-digit mpmath evaluation this is
    exact to ~1e-15 relative, singular covariances included; torchmetrics' FrechetInceptionDistance
    (eigvals of S1 S2) agrees to ~1e-12, ~1e-8 when a covariance is singular
    (tests/test_reference_metrics.py)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise UsageError(f"mismatched gaussian statistics: means {mu1.shape}, {mu2.shape}; covariances "
                         f"{s1.shape}, {s2.shape}")
    r1 = _sqrt_psd(s1)
    m = r1 @ s2 @ r1
    w = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(_psd_eigvals(w)).sum()
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    return max(d, 0.0)


def fid(real_feats, fake_feats) -> float:
    """Fréchet distance between gaussians fitted to two (N, D) feature sets."""
    r, f = _as_2d(real_feats, "real features"), _as_2d(fake_feats, "fake features")
    if r.shape[1] != f.shape[1]:
        raise UsageError(f"real and fake features differ in dimension: {r.shape[1]} vs {f.shape[1]}")
    return frechet_distance(*gaussian_stats(r), *gaussian_stats(f))


def _check_pair(real_feats, fake_feats, k: int):
    r, f = _as_2d(real_feats, "real features"), _as_2d(fake_feats, "fake features")
    if r.shape[1] != f.shape[1]:
        raise UsageError(f"real and fake features differ in dimension: {r.shape[1]} vs {f.shape[1]}")
    if not 1 <= k < r.shape[0]:
        raise UsageError(f"k must be in [1, {r.shape[0] - 1}] (number of real samples - 1), got {k}")
    if f.shape[0] < 1:
        raise UsageError("need at least one fake sample")
    return r, f


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)), each computed from its own pair's coordinates (scipy's cdist,
    not the |a|^2 + |b|^2 - 2ab expansion): the same pair of points gives the same bits wherever it
    occurs, so a fake sample equal to a real one is compared with the radii exactly as the real one is."""
    from scipy.spatial.distance import cdist

    return cdist(a, b)


def knn_radii(real_feats, k: int = 5, chunk: int = 1024) -> np.ndarray:
    """NND_k: for every real sample, the distance to its k-th nearest neighbour among the others, as in
    prdc (Naeem et al.'s code): the (k+1)-th smallest distance to all real samples, the sample itself
    (distance 0) included, so a duplicate of it counts as a neighbour at distance 0."""
    r = _as_2d(real_feats, "real features")
    if not 1 <= k < r.shape[0]:
        raise UsageError(f"k must be in [1, {r.shape[0] - 1}] (number of real samples - 1), got {k}")
    radii = np.empty(r.shape[0])
    for i in range(0, r.shape[0], chunk):   # chunk x N distances at a time, never N x N
        radii[i:i + chunk] = np.partition(_distances(r[i:i + chunk], r), k, axis=1)[:, k]
    return radii


def _ball_hits(real: np.ndarray, fake: np.ndarray, radii: np.ndarray, chunk: int = 1024):
    """Per real sample, whether any fake lies inside its open ball (distance < radius, prdc's `<`); per
    fake sample, how many balls hold it."""
    covered = np.zeros(real.shape[0], dtype=bool)
    counts = np.zeros(fake.shape[0], dtype=np.int64)
    for i in range(0, fake.shape[0], chunk):
        inside = _distances(real, fake[i:i + chunk]) < radii[:, None]   # (N, chunk)
        covered |= inside.any(1)
        counts[i:i + chunk] = inside.sum(0)
    return covered, counts


def coverage(real_feats, fake_feats, k: int = 5) -> float:
    """Fraction of real samples whose k-NN ball (radius: distance to the k-th nearest other real sample)
    holds at least one fake sample (Naeem et al. 2020). In [0, 1]; for two independent samples of the
    same distribution with N = M it approaches 1 - 1/2^k."""
    r, f = _check_pair(real_feats, fake_feats, k)
    covered, _ = _ball_hits(r, f, knn_radii(r, k))
    return float(covered.mean())


def density(real_feats, fake_feats, k: int = 5) -> float:
    """How many real k-NN balls hold each fake sample, on average, divided by k (Naeem et al. 2020).
    About 1 when fakes follow the real distribution; above 1 when they crowd into dense real regions;
    0 for fakes far from every real sample. Unbounded above."""
    r, f = _check_pair(real_feats, fake_feats, k)
    _, counts = _ball_hits(r, f, knn_radii(r, k))
    return float(counts.mean() / k)


def coverage_density(real_feats, fake_feats, k: int = 5) -> Dict[str, float]:
    """Both at once (one pass over the distances)."""
    r, f = _check_pair(real_feats, fake_feats, k)
    covered, counts = _ball_hits(r, f, knn_radii(r, k))
    return {"coverage": float(covered.mean()), "density": float(counts.mean() / k)}
