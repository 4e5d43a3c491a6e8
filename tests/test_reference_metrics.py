"""nfzoo's sample metrics against the reference implementations, on fixed features: FID against torchmetrics'
FrechetInceptionDistance (given a feature module that hands it the same features), Coverage and Density
against `prdc`, the package of their authors (Naeem et al. 2020). Both must agree to 1e-6 (relative for
FID); Coverage is a fraction of the real samples, so there agreement means equality. Inception FID is
checked only where torchvision's Inception-v3 weights are already in the torch hub cache (never downloaded).
"""
import contextlib
import io

import numpy as np
import pytest
import torch

from nfzoo.evaluation.metrics import coverage, coverage_density, density, fid, knn_radii

torchmetrics_fid = pytest.importorskip("torchmetrics.image.fid")
prdc = pytest.importorskip("prdc")


class _FixedFeatures(torch.nn.Module):
    """torchmetrics' feature extractor for precomputed features: the "images" it is updated with are (N, D)
    feature rows, returned as they are. `num_features` spares it the probe with a dummy image."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, x):
        return x


def _torchmetrics_fid(real, fake, batch: int = 0) -> float:
    """torchmetrics' FID of two fixed feature sets (updated in batches of `batch` rows if given, as a stream
    of images would be: it accumulates sums and sums of outer products in float64)."""
    real, fake = torch.as_tensor(real), torch.as_tensor(fake)
    metric = torchmetrics_fid.FrechetInceptionDistance(feature=_FixedFeatures(real.shape[1]))
    for feats, is_real in ((real, True), (fake, False)):
        for chunk in feats.split(batch or feats.shape[0]):
            metric.update(chunk, real=is_real)
    return float(metric.compute())


def _prdc(real, fake, k: int) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):     # compute_prdc prints the sample counts
        return prdc.compute_prdc(real, fake, nearest_k=k)


def _gaussians(seed: int, dim: int, n: int, m: int):
    """Real and fake features from two different gaussians (different means and full covariances)."""
    rng = np.random.RandomState(seed)
    real = rng.randn(n, dim) @ rng.randn(dim, dim) + 3 * rng.randn(dim)
    fake = rng.randn(m, dim) @ (0.5 * rng.randn(dim, dim) + np.eye(dim)) + rng.randn(dim)
    return real, fake


# ------------------------------------------------------------------------ FID
@pytest.mark.parametrize("seed, dim, n, m", [(0, 16, 200, 300), (1, 32, 2000, 500), (2, 64, 1000, 1000),
                                             (3, 128, 2000, 1500)])
def test_fid_equals_torchmetrics_on_gaussian_features(seed, dim, n, m):
    real, fake = _gaussians(seed, dim, n, m)
    ours, ref = fid(real, fake), _torchmetrics_fid(real, fake, batch=250)
    assert ours > 10
    assert ours == pytest.approx(ref, rel=1e-6, abs=0)
    # same means and nearly the same covariances: a small FID, still equal
    close = real[: n // 2] * 1.01 + 0.01
    assert fid(real, close) == pytest.approx(_torchmetrics_fid(real, close), rel=1e-6, abs=0)


def test_fid_equals_torchmetrics_with_large_feature_means():
    # torchmetrics' one-pass covariance (sum x x^T - n mu mu^T) loses digits when the mean is large
    rng = np.random.RandomState(4)
    real, fake = rng.randn(1000, 64) + 100.0, 1.1 * rng.randn(1000, 64) + 100.5
    assert fid(real, fake) == pytest.approx(_torchmetrics_fid(real, fake), rel=1e-6, abs=0)


@pytest.mark.parametrize("dim, n, m", [(128, 100, 120), (64, 20, 2000), (32, 6, 9)])
def test_fid_equals_torchmetrics_when_covariances_are_singular(dim, n, m):
    # fewer samples than features: rank-deficient covariances (torchmetrics takes eigvals of S1 S2, nfzoo
    # the symmetric S1^(1/2) S2 S1^(1/2)); they differ by ~1e-8 relative, torchmetrics' round-off
    real, fake = _gaussians(5, dim, n, m)
    assert fid(real, fake) == pytest.approx(_torchmetrics_fid(real, fake), rel=1e-6, abs=0)


def test_fid_is_exact_for_singular_covariances_in_a_rotated_subspace():
    # the 2-d case of test_metrics (FID = 25 + 4/3 + 12 - 8), embedded in 64 dimensions by a random rotation:
    # FID is rotation invariant, and 62 of the 64 covariance eigenvalues are exactly 0
    real2 = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], dtype=float)
    fake2 = 3 * real2 + np.array([5.0, 0.0])
    q, _ = np.linalg.qr(np.random.RandomState(6).randn(64, 64))
    real, fake = np.pad(real2, ((0, 0), (0, 62))) @ q, np.pad(fake2, ((0, 0), (0, 62))) @ q
    expected = 25 + 4 / 3 + 12 - 8
    assert fid(real, fake) == pytest.approx(expected, rel=1e-12)
    assert _torchmetrics_fid(real, fake) == pytest.approx(expected, rel=1e-6)


def test_fid_of_identical_sets_is_zero_for_both():
    a = np.random.RandomState(7).randn(500, 32)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-10)            # tr(S) is 32: round-off of ~1e-15 of it
    assert _torchmetrics_fid(a, a) == pytest.approx(0.0, abs=1e-10)


def test_fid_equals_torchmetrics_on_float32_features():
    # float32 features (as a network gives them): both compute in float64; torchmetrics rounds its result
    # back to the features' dtype, float32 (6e-8 relative)
    real, fake = (torch.from_numpy(x).float() for x in _gaussians(8, 48, 800, 600))
    assert fid(real, fake) == pytest.approx(_torchmetrics_fid(real, fake), rel=1e-6, abs=0)


# ---------------------------------------------------------- Coverage / Density
@pytest.mark.parametrize("seed, dim, n, m", [(0, 8, 500, 500), (1, 16, 1000, 400), (2, 64, 300, 1200),
                                             (3, 128, 1000, 800)])
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_coverage_and_density_equal_prdc(seed, dim, n, m, k):
    rng = np.random.RandomState(seed)
    real = rng.randn(n, dim)
    fake = 1.2 * rng.randn(m, dim) + 0.3 / np.sqrt(dim)      # overlapping, not identical: 0 < coverage < 1
    ref = _prdc(real, fake, k)
    ours = coverage_density(real, fake, k)
    assert 0 < ours["coverage"] < 1 and ours["density"] > 0
    assert ours["coverage"] == pytest.approx(ref["coverage"], abs=1e-6)
    assert ours["density"] == pytest.approx(ref["density"], abs=1e-6)
    assert coverage(real, fake, k) == ours["coverage"] and density(real, fake, k) == ours["density"]


def test_knn_radii_equal_prdc():
    real = np.random.RandomState(9).randn(700, 24)
    for k in (1, 5, 10):
        ref = prdc.prdc.compute_nearest_neighbour_distances(real, k)
        np.testing.assert_allclose(knn_radii(real, k), ref, rtol=1e-12, atol=0)
    # chunked or not, the same radii
    np.testing.assert_array_equal(knn_radii(real, 5, chunk=64), knn_radii(real, 5))


@pytest.mark.parametrize("dim", [8, 32, 128])
def test_coverage_and_density_equal_prdc_when_fakes_copy_real_samples(dim):
    # fakes equal to real samples sit exactly on the balls' boundaries: the open ball (<) counts the sample
    # itself and its k - 1 nearest neighbours, so a copy of the real set has density 1 and coverage 1.
    # This is where the conventions matter; nfzoo once had 1.1-1.3 here, from radii and distances
    # rounded differently.
    rng = np.random.RandomState(dim)
    real = rng.randn(500, dim)
    for k in (1, 5):
        assert coverage_density(real, real.copy(), k) == {"coverage": 1.0, "density": 1.0}
        ref = _prdc(real, real.copy(), k)
        assert (ref["coverage"], ref["density"]) == (1.0, 1.0)
    # a "memorising" generator: half its samples copy real ones, half are new
    fake = np.concatenate([real[::2], rng.randn(250, dim)])
    ref, ours = _prdc(real, fake, 5), coverage_density(real, fake, 5)
    assert ours["coverage"] == pytest.approx(ref["coverage"], abs=1e-6)
    assert ours["density"] == pytest.approx(ref["density"], abs=1e-6)


def test_coverage_and_density_equal_prdc_with_duplicate_real_samples():
    # every real sample twice: for k = 1 the radius is 0 (the duplicate), an empty open ball
    rng = np.random.RandomState(10)
    base = rng.randn(300, 16)
    real, fake = np.concatenate([base, base]), rng.randn(400, 16)
    for k in (1, 2, 5):
        ref, ours = _prdc(real, fake, k), coverage_density(real, fake, k)
        assert ours["coverage"] == pytest.approx(ref["coverage"], abs=1e-6)
        assert ours["density"] == pytest.approx(ref["density"], abs=1e-6)
    assert coverage_density(real, fake, 1) == {"coverage": 0.0, "density": 0.0}


# ------------------------------------------------------------- Inception FID
def _inception_weights_present() -> bool:
    from nfzoo.evaluation.inception import inception_weights_path

    return inception_weights_path().is_file()


@pytest.mark.skipif(not _inception_weights_present(),
                    reason="torchvision's Inception-v3 weights are not in the torch hub cache (never downloaded)")
def test_inception_fid_through_torchmetrics():
    """torchmetrics' FrechetInceptionDistance with nfzoo's Inception features as its feature module (it
    probes their width with a dummy image) equals nfzoo's fid of the same features. Its own Inception
    extractor is not compared: it needs torch-fidelity and a download of other weights (the TF-FID graph's
    port, pt_inception-2015-12-05), a different network from torchvision's, so features would not match."""
    from nfzoo.data import load_dataset
    from nfzoo.evaluation.inception import InceptionFeatures

    extractor, seen = InceptionFeatures("cpu"), []

    class _Inception(torch.nn.Module):
        """nfzoo's Inception features, kept as torchmetrics asks for them (computed once: ~0.4 s an image)."""

        def forward(self, x):
            seen.append(extractor(x).cpu().double().numpy())
            return torch.from_numpy(seen[-1]).float()

    images = load_dataset("digits", "test").batch(torch.arange(12))[0]
    real, fake = images[:6], images[6:].flip(-1)          # mirrored digits as the "samples"
    metric = torchmetrics_fid.FrechetInceptionDistance(feature=_Inception(), normalize=True,
                                                       input_img_size=tuple(images.shape[1:]))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    ref = float(metric.compute())
    probe, feats_real, feats_fake = seen
    assert probe.shape == (1, 2048) and feats_real.shape == (6, 2048) and feats_fake.shape == (6, 2048)
    assert np.isfinite(feats_real).all() and (feats_real >= 0).all()        # average-pooled ReLU outputs
    # 6 samples in 2048 dimensions: S_r S_f is singular, and torchmetrics' eigvals of it give each of its
    # ~2040 zero eigenvalues a round-off of up to eps |S_r| |S_f|, ~sqrt of that after the square root
    # (nfzoo's symmetric form sets them to 0); its result is also rounded to float32, the features' dtype
    norms = [np.linalg.norm(x - x.mean(0), 2) ** 2 / (len(x) - 1) for x in (feats_real, feats_fake)]  # |S|
    noise = 2048 * np.sqrt(np.finfo(np.float64).eps * norms[0] * norms[1]) + 1e-7 * abs(ref)
    assert abs(fid(feats_real, feats_fake) - ref) <= noise
