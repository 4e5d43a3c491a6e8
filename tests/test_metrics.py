"""Sample-quality metrics (FID, Coverage, Density, label reliability), the oracle, and `nfzoo eval
--samples` / `nfzoo train-oracle`. Everything is small and offline; no Inception weights are needed."""
import json
import math

import numpy as np
import pytest
import torch

import nfzoo
from nfzoo.errors import ConfigError, CorruptFileError, NfzooError, UsageError
from nfzoo.evaluation.metrics import (
    coverage,
    coverage_density,
    density,
    evaluate_samples,
    fid,
    frechet_distance,
    knn_radii,
    label_reliability,
)
from nfzoo.evaluation.oracle import OracleNet, load_oracle


def _oracle(shape=(1, 28, 28), seed=0):
    torch.manual_seed(seed)
    return OracleNet(image_shape=shape).eval()


# ------------------------------------------------------------------------ FID
def test_fid_of_identical_features_is_zero():
    a = np.random.RandomState(0).randn(300, 16)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-8)


def test_fid_matches_hand_computation_in_1d():
    # real: mean 1, unbiased var 2; fake: mean 5, var 8.
    # FID = (1 - 5)^2 + 2 + 8 - 2 sqrt(2 * 8) = 16 + 10 - 8 = 18
    assert fid([0.0, 2.0], [3.0, 7.0]) == pytest.approx(18.0, rel=1e-12)


def test_fid_matches_hand_computation_in_2d():
    real = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], dtype=float)   # mean 0, cov (2/3) I
    fake = 3 * real + np.array([5.0, 0.0])                               # mean (5, 0), cov 6 I
    # 25 + tr(2/3 I) + tr(6 I) - 2 tr((4 I)^(1/2)) = 25 + 4/3 + 12 - 8
    assert fid(real, fake) == pytest.approx(25 + 4 / 3 + 12 - 8, rel=1e-12)
    # non-commuting covariances: S1 = I, S2 = [[2, 1], [1, 2]] (eigenvalues 3 and 1)
    s2 = np.array([[2.0, 1.0], [1.0, 2.0]])
    expected = 5 + 2 + 4 - 2 * (math.sqrt(3) + 1)
    assert frechet_distance([0, 0], np.eye(2), [1, 2], s2) == pytest.approx(expected)
    # diagonal: S1 = diag(1, 4), S2 = diag(9, 16): tr sqrt(S1 S2) = 3 + 8
    d = frechet_distance([0, 0], np.diag([1.0, 4]), [0, 0], np.diag([9.0, 16]))
    assert d == pytest.approx(5 + 25 - 22)


def test_fid_agrees_with_scipy_sqrtm_and_is_real_for_singular_covariances():
    from scipy.linalg import sqrtm

    rng = np.random.RandomState(1)
    a, b = rng.randn(200, 6), rng.randn(200, 6) @ rng.randn(6, 6) + 0.3
    m1, m2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(sqrtm(s1 @ s2)).real
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(ref, rel=1e-9)
    # 10 samples of 50 features: rank-deficient covariances; still a finite, real, non-negative number
    d = fid(rng.randn(10, 50), rng.randn(10, 50))
    assert isinstance(d, float) and math.isfinite(d) and d >= 0


def test_fid_grows_with_a_mean_shift():
    a = np.random.RandomState(2).randn(500, 8)
    values = [fid(a, a + s) for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(x < y for x, y in zip(values, values[1:]))
    # the same samples shifted by delta: the covariances agree, so FID = |delta|^2 = 8 * s^2
    assert values[-1] == pytest.approx(8 * 4.0, rel=1e-9)


def test_fid_rejects_bad_input():
    with pytest.raises(UsageError):
        fid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(UsageError):
        fid(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(UsageError):
        fid(np.full((5, 3), np.nan), np.zeros((5, 3)))


# ------------------------------------------------------------ coverage / density
def test_coverage_and_density_by_hand():
    real = np.array([[0.0], [1.0], [3.0]])
    # k = 1: radii 1, 1, 2. Fake 0.5 lies in the balls of 0 and 1; fake 10 in none.
    assert knn_radii(real, 1).tolist() == [1.0, 1.0, 2.0]
    assert coverage(real, [[0.5], [10.0]], k=1) == pytest.approx(2 / 3)
    assert density(real, [[0.5], [10.0]], k=1) == pytest.approx((2 + 0) / (1 * 2))
    # k = 2: radii 3, 2, 3. Fake 0.5 lies in all three balls.
    assert knn_radii(real, 2).tolist() == [3.0, 2.0, 3.0]
    assert coverage(real, [[0.5], [10.0]], k=2) == 1.0
    assert density(real, [[0.5], [10.0]], k=2) == pytest.approx(3 / (2 * 2))
    assert density(real, [[0.5]], k=2) == pytest.approx(3 / 2)    # density is not bounded by 1


def test_coverage_is_one_for_identical_sets_and_zero_for_far_fakes():
    a = np.random.RandomState(3).randn(400, 8)
    # identical sets: every ball holds its own centre and its k - 1 nearest neighbours (open balls)
    assert coverage_density(a, a) == {"coverage": 1.0, "density": 1.0}
    far = coverage_density(a, a + 100.0)
    assert far == {"coverage": 0.0, "density": 0.0}


def test_coverage_and_density_of_two_samples_of_one_distribution():
    # Naeem et al. 2020: E[density] = 1 and E[coverage] -> 1 - 1/2^k (N = M) for identical distributions
    rng = np.random.RandomState(4)
    real, fake = rng.randn(1500, 8), rng.randn(1500, 8)
    res = coverage_density(real, fake, k=5)
    assert res["coverage"] == pytest.approx(1 - 1 / 2 ** 5, abs=0.03)
    assert res["density"] == pytest.approx(1.0, abs=0.15)


def test_density_is_robust_to_a_real_outlier():
    # Naeem et al. 2020: fakes near a lone real outlier fall inside its large k-NN ball only; precision
    # would call them all realistic, density counts each once: 1/k.
    rng = np.random.RandomState(5)
    real = np.concatenate([rng.randn(1000, 2), [[8.0, 0.0]]])
    angle, radius = rng.rand(200) * 2 * np.pi, 0.5 * np.sqrt(rng.rand(200))
    fakes = np.stack([8 + radius * np.cos(angle), radius * np.sin(angle)], 1)
    assert coverage_density(real, fakes, k=5) == pytest.approx({"coverage": 1 / 1001, "density": 1 / 5})


def test_dropping_a_mode_lowers_coverage_not_density():
    rng = np.random.RandomState(6)
    real = rng.randn(1000, 4)
    half = rng.randn(1000, 4)
    half[:, 0] = np.abs(half[:, 0])               # the fakes cover half of the real distribution
    res = coverage_density(real, half, k=5)
    assert 0.5 < res["coverage"] < 0.8 and res["density"] == pytest.approx(1.0, abs=0.2)


def test_k_is_checked():
    with pytest.raises(UsageError):
        coverage(np.zeros((3, 2)), np.zeros((3, 2)), k=3)


# ------------------------------------------------------------- label reliability
class _Brightness(torch.nn.Module):
    """A toy oracle: class 1 for bright images, class 0 for dark ones."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([0.5 - m, m - 0.5], 1)


def test_label_reliability_on_a_toy_oracle():
    images = torch.cat([torch.full((4, 1, 6, 6), 0.1), torch.full((4, 1, 6, 6), 0.9)])
    assert label_reliability(_Brightness(), images, [0, 0, 0, 0, 1, 1, 1, 1]) == 1.0
    assert label_reliability(_Brightness(), images, [0, 0, 1, 1, 1, 1, 1, 0], batch_size=3) == 0.625
    with pytest.raises(UsageError):
        label_reliability(_Brightness(), images, [0, 1])


# ------------------------------------------------------------------- the oracle
def test_oracle_shapes_save_and_strict_load(tmp_path):
    net = _oracle()
    x = torch.rand(3, 1, 28, 28)
    assert net.features(x).shape == (3, 256) and net(x).shape == (3, 10)
    x8 = (x * 255).round().to(torch.uint8)
    assert torch.allclose(net(x8), net(x8.float() / 255))          # uint8 images work too
    net.save(tmp_path / "o", extra={"dataset": "mnist5k"})
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["config.json", "model.safetensors"]
    back = load_oracle(tmp_path / "o")
    assert torch.equal(back(x), net(x)) and not back.training
    with pytest.raises(UsageError):
        net(torch.rand(2, 1, 8, 8))
    # a flow model directory is not an oracle
    flow = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)
    flow.save_pretrained(tmp_path / "m")
    with pytest.raises(ConfigError, match="not an nfzoo oracle"):
        load_oracle(tmp_path / "m")
    # missing tensors
    from nfzoo.safeio import load_tensors, save_tensors

    t = load_tensors(tmp_path / "o" / "model.safetensors")
    t.pop("head.1.bias")
    save_tensors(t, tmp_path / "o" / "model.safetensors")
    with pytest.raises(ConfigError, match="missing"):
        load_oracle(tmp_path / "o")


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_oracle_is_corrupt(tmp_path):
    _oracle().save(tmp_path / "o")
    _truncate(tmp_path / "o" / "model.safetensors")
    with pytest.raises(CorruptFileError):
        load_oracle(tmp_path / "o")


# ------------------------------------------------------------ evaluate_samples
def _subset(name, split, n):
    from nfzoo.data import ArrayDataset, load_dataset

    ds = load_dataset(name, split)
    return ArrayDataset(ds.images[:n], ds.labels[:n], ds.num_classes, name)


def test_evaluate_samples_end_to_end_with_a_tiny_glow_and_untrained_oracle():
    torch.manual_seed(0)
    model = nfzoo.create_model("glow", image_shape=(1, 28, 28), levels=1, steps=1, hidden=8)
    ds = _subset("mnist5k", "test", 60)
    model.initialize(ds.images[:16].float() / 255)
    oracle = _oracle()
    res = evaluate_samples(model, ds, 12, oracle=oracle, seed=3, batch_size=5)
    assert set(res) >= {"fid", "coverage", "density", "n_samples"}
    assert res["n_samples"] == 12 and res["n_real"] == 60 and res["features"] == "oracle"
    assert math.isfinite(res["fid"]) and res["fid"] >= 0
    assert 0 <= res["coverage"] <= 1 and res["density"] >= 0
    assert "label_reliability" not in res
    again = evaluate_samples(model, ds, 12, oracle=oracle, seed=3, batch_size=12)
    assert again["fid"] == pytest.approx(res["fid"], rel=1e-6)   # seeded, whatever the batch size
    # a class-conditional model is sampled with balanced labels and gets a label reliability
    cond = nfzoo.create_model("glow", image_shape=(1, 28, 28), levels=1, steps=1, hidden=8, num_classes=10)
    res = evaluate_samples(cond, ds, 10, oracle=oracle, seed=0, temperature=0.7)
    assert 0 <= res["label_reliability"] <= 1 and res["temperature"] == 0.7


def test_evaluate_samples_usage_errors(tmp_path, monkeypatch):
    model = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)
    ds = _subset("digits", "test", 20)
    with pytest.raises(UsageError):
        evaluate_samples(model, ds, 10)                                   # no oracle
    with pytest.raises(UsageError):
        evaluate_samples(model, ds, 1, oracle=_oracle((1, 8, 8)))         # too few samples
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(UsageError, match="never downloads"):
        evaluate_samples(model, ds, 10, feature_extractor="inception")
    assert not (tmp_path / "torch-home").exists()


# ------------------------------------------------------------------------ CLI
def test_cli_eval_samples_json(runner, app, tiny_run, tmp_path):
    _oracle((1, 8, 8)).save(tmp_path / "oracle")
    res = runner.invoke(app, ["eval", str(tiny_run), "--dataset", "digits", "--samples", "24",
                              "--oracle", str(tmp_path / "oracle"), "--temperature", "0.8", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["task"] == "bpd" and doc["bpd"] > 0 and doc["images"] == 359
    assert doc["n_samples"] == 24 and doc["n_real"] == 359 and doc["temperature"] == 0.8
    assert doc["oracle"] == str(tmp_path / "oracle") and doc["features"] == "oracle"
    assert all(isinstance(doc[key], float) for key in ("fid", "coverage", "density"))
    assert all(not isinstance(v, (dict, list)) for v in doc.values()), "the document is flat"


def test_cli_eval_samples_needs_an_oracle(runner, app, tiny_run, tmp_path, monkeypatch, fresh_registry):
    res = runner.invoke(app, ["eval", str(tiny_run), "--dataset", "digits", "--samples", "8"])
    assert res.exit_code == 2 and "--oracle" in res.output
    # mnist5k's default is the zoo's oracle-mnist5k; without it, say to pass --oracle DIR
    monkeypatch.setenv("NFZOO_LOAD_PLUGINS", "")
    fresh_registry.reset()
    nfzoo.create_model("glow", image_shape=(1, 28, 28), levels=1, steps=1, hidden=8).save_pretrained(
        tmp_path / "m28")
    res = runner.invoke(app, ["eval", str(tmp_path / "m28"), "--dataset", "mnist5k", "--samples", "8"])
    assert res.exit_code == 2 and "oracle-mnist5k" in res.output and "--oracle DIR" in res.output
    res = runner.invoke(app, ["eval", str(tiny_run), "--dataset", "digits", "--samples", "8",
                              "--oracle", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "nowhere" in res.output
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    res = runner.invoke(app, ["eval", str(tiny_run), "--dataset", "digits", "--samples", "8",
                              "--features", "inception"])
    assert res.exit_code == 2 and "never downloads" in res.output


@pytest.mark.parametrize("style", ["plugin", "zoo"])
def test_cli_eval_uses_the_zoo_oracle_by_default(runner, app, tmp_path, fake_plugin, style, monkeypatch):
    monkeypatch.setenv("NFZOO_LOAD_PLUGINS", "zoooracle")  # stand in for the shipped zoo's oracle
    folder = str(tmp_path / "zoo-oracle")
    _oracle().save(folder)
    # a plugin's entry targets the folder; the zoo's pins Hub files and embeds the folder as `path`
    meta = "" if style == "plugin" else \
        f", path={folder!r}, status='embedded', repo_id='nfzoo/oracle-mnist5k'"
    fake_plugin("zoooracle", f"""
        import nfzoo

        @nfzoo.hookimpl
        def register_pretrained(register):
            register("oracle-mnist5k", {folder!r}, kind="oracle", dataset="mnist5k"{meta})
    """)
    torch.manual_seed(0)
    nfzoo.create_model("glow", image_shape=(1, 28, 28), levels=1, steps=1, hidden=8).save_pretrained(
        tmp_path / "m28")
    res = runner.invoke(app, ["eval", str(tmp_path / "m28"), "--dataset", "mnist5k", "--samples", "10",
                              "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["oracle"] == "oracle-mnist5k" and doc["n_samples"] == 10 and doc["n_real"] == 1000


def test_cli_truncated_oracle_exits_2(runner, app, tiny_run, tmp_path):
    _oracle((1, 8, 8)).save(tmp_path / "oracle")
    _truncate(tmp_path / "oracle" / "model.safetensors")
    res = runner.invoke(app, ["eval", str(tiny_run), "--dataset", "digits", "--samples", "8",
                              "--oracle", str(tmp_path / "oracle"), "--json"])
    assert res.exit_code == 2, res.output
    assert "not a valid safetensors file" in res.output and res.stdout.strip() == ""


def test_cli_train_oracle_json(runner, app, tmp_path):
    out = tmp_path / "oracle-digits"
    res = runner.invoke(app, ["train-oracle", "--dataset", "digits", "--epochs", "1", "--batch-size", "128",
                              "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["out"] == str(out) and doc["test_images"] == 359 and 0 <= doc["test_accuracy"] <= 1
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["kind"] == "oracle" and cfg["config"]["image_shape"] == [1, 8, 8]
    assert cfg["test_accuracy"] == doc["test_accuracy"]
    assert load_oracle(out).image_shape == (1, 8, 8)
    res = runner.invoke(app, ["train-oracle", "--dataset", "digits", "--epochs", "1", "--out", str(out)])
    assert res.exit_code == 2 and "not empty" in res.output   # nothing is overwritten


def test_nonfinite_samples_are_left_out_and_counted():
    class Broken(torch.nn.Module):
        """A stand-in flow model whose every third sample is NaN."""

        image_shape, num_classes, default_temperature = (1, 8, 8), None, 1.0

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def get_sampler(self, sampler=None):      # what nfzoo.flows.pipeline asks a model for
            return nfzoo.Sampler()

        def sampling_options(self, sampler=None, **given):
            return dict(given)

        def sample(self, n, y=None, temperature=1.0, generator=None, sampler=None):
            x = torch.rand(n, 1, 8, 8, generator=generator)
            x[::3] = float("nan")
            return x

    ds = _subset("digits", "test", 30)
    res = evaluate_samples(Broken(), ds, 9, oracle=_oracle((1, 8, 8)), batch_size=9)
    assert res["nonfinite_samples"] == 3 and res["n_samples"] == 9 and math.isfinite(res["fid"])
    with pytest.raises(NfzooError, match="non-finite"):
        evaluate_samples(Broken(), ds, 2, oracle=_oracle((1, 8, 8)), batch_size=1)


# ------------------------------------------------------------------ Inception weights: never unpickled
class _PlantFile:
    """Unpickling this creates the file `path` (what a hostile .pth would do, with a harmless effect)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _plant_evil_inception(torch_home, marker):
    """A crafted .pth at torchvision's cache path of Inception-v3's weights; returns its path."""
    from nfzoo.evaluation.inception import INCEPTION_FILE

    path = torch_home / "hub" / "checkpoints" / INCEPTION_FILE
    path.parent.mkdir(parents=True)
    torch.save({"Conv2d_1a_3x3.conv.weight": _PlantFile(marker)}, path)
    return path


def _sha256(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_pinned_inception_file_is_torchvisions():
    """The pinned sha256 is the one whose first 8 hex digits torchvision publishes in the file name."""
    import os

    from torchvision.models import Inception_V3_Weights

    from nfzoo.evaluation.inception import INCEPTION_FILE, INCEPTION_SHA256, INCEPTION_URL

    assert INCEPTION_URL == Inception_V3_Weights.IMAGENET1K_V1.url
    assert os.path.basename(INCEPTION_URL) == INCEPTION_FILE
    assert INCEPTION_FILE.rsplit("-", 1)[1].split(".")[0] == INCEPTION_SHA256[:8]
    assert len(INCEPTION_SHA256) == 64 and int(INCEPTION_SHA256, 16) >= 0


def test_cli_eval_with_inception_features_never_runs_a_planted_weight_file(runner, app, tiny_run, tmp_path,
                                                                          monkeypatch):
    """Issue 20, item 1: a crafted file where torchvision caches Inception-v3's weights used to be
    unpickled (and run) by `eval --features inception`; now it is refused before it is read, exit 2."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    marker = tmp_path / "pwned"
    path = _plant_evil_inception(tmp_path / "torch-home", marker)
    res = runner.invoke(app, ["eval", str(tiny_run), "--dataset", "digits", "--samples", "10",
                              "--features", "inception"])
    assert not marker.exists(), "the planted weight file ran"
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "sha256" in out and "inception_v3_google-0cc3c7bd.pth" in out and "not loaded" in out
    assert "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth" in out
    assert "Traceback" not in res.output
    # the API refuses it too (not only the CLI's early check)
    from nfzoo.evaluation.inception import InceptionFeatures

    with pytest.raises(CorruptFileError, match="sha256"):
        InceptionFeatures()
    assert not marker.exists() and path.is_file()


def test_the_inception_hash_is_checked_whole_and_before_anything_is_loaded(tmp_path, monkeypatch):
    """torchvision checks only the 8-digit prefix of the name, and only when downloading: a file whose
    sha256 shares that prefix but not the rest is refused, and torch.load is never called."""
    import nfzoo.evaluation.inception as inception

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    marker = tmp_path / "pwned"
    path = _plant_evil_inception(tmp_path / "torch-home", marker)
    digest = _sha256(path)
    wrong = digest[:8] + ("0" if digest[8] != "0" else "1") + digest[9:]   # same prefix, another file
    monkeypatch.setattr(inception, "INCEPTION_SHA256", wrong)
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k) or pytest.fail("torch.load called"))
    for call in (inception.require_inception_weights, inception.load_inception_state_dict,
                 inception.InceptionFeatures):
        with pytest.raises(CorruptFileError, match=digest):
            call()
    assert loads == [] and not marker.exists()


def test_a_weight_file_with_the_pinned_hash_but_more_than_tensors_is_refused(tmp_path, monkeypatch):
    """Second line of defence: were the pinned hash ever that of a hostile file, the weights-only loader
    still refuses to build anything but tensors."""
    import nfzoo.evaluation.inception as inception

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    marker = tmp_path / "pwned"
    path = _plant_evil_inception(tmp_path / "torch-home", marker)
    monkeypatch.setattr(inception, "INCEPTION_SHA256", _sha256(path))
    with pytest.raises(CorruptFileError, match="weights-only loader refused") as info:
        inception.InceptionFeatures()
    msg = str(info.value)
    assert "Unsupported global" in msg and "io.open" in msg and str(path) in msg
    assert "weights_only" not in msg and "safe_globals" not in msg, "never suggest loading it unsafely"
    assert not marker.exists()
    # a file of plain tensors that is not Inception's is refused by the strict load
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    monkeypatch.setattr(inception, "INCEPTION_SHA256", _sha256(path))
    with pytest.raises(CorruptFileError, match="do not fit"):
        inception.InceptionFeatures()


@pytest.fixture(scope="module")
def inception_like_weights(tmp_path_factory):
    """A state dict in the format of torchvision's Inception-v3 file (random weights, torch.save), saved
    where the torch hub cache keeps the real one: (TORCH_HOME, its sha256)."""
    from torchvision.models import inception_v3

    from nfzoo.evaluation.inception import inception_weights_path

    home = tmp_path_factory.mktemp("torch-home")
    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    for m in net.modules():   # BatchNorm statistics away from 0 / 1, so that they matter
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(home))
        path = inception_weights_path()
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    return home, _sha256(path)


def test_inception_features_are_those_of_torchvisions_own_loading(inception_like_weights, monkeypatch):
    """The weights-only path builds the same network as inception_v3(weights=IMAGENET1K_V1) did: the
    same features, bit for bit, from the same file."""
    import torch.nn.functional as F
    from torchvision.models import Inception_V3_Weights, inception_v3

    import nfzoo.evaluation.inception as inception
    import nfzoo.evaluation.metrics as metrics

    home, digest = inception_like_weights
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(inception, "INCEPTION_SHA256", digest)
    extractor, described = metrics.get_feature_extractor("inception")
    assert described == "inception-v3"
    # the previous code path (torchvision unpickles the file; fine here: the test wrote it)
    ref = inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1, aux_logits=True, transform_input=False)
    ref.fc = torch.nn.Identity()
    ref.eval()
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    big = F.interpolate(x.repeat(1, 3, 1, 1), size=(299, 299), mode="bilinear", align_corners=False,
                        antialias=True)
    with torch.no_grad():
        want = ref(big * 2 - 1)
    got = extractor(x)
    assert got.shape == (2, 2048) and torch.equal(got, want)
