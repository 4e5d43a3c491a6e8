"""GLEM: the class-gaussian prior (psi, log-densities, closed-form KL, sampling, RFCM), the glem flow
(testing kit, classification, EM phases, lambda annealing), and the CLI (conditional and per-class
sampling, the rfcm sampler, NF classification)."""
import json
import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

import nfzoo
from nfzoo.testing import check_bijector
from nfzoo_glem.prior import MultiGaussianPrior, psi

TINY = {"image_shape": (1, 8, 8), "levels": 1, "steps": 2, "hidden": 8, "num_classes": 3, "rfcm_rank": 4,
        "em_fraction": 0.75, "kl_weight": 0.05, "kl_weight_final": 0.005, "kl_schedule": "linear"}


def _random_prior(k=4, d=6, seed=0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    p = MultiGaussianPrior(k, (d,), **kw).to(dtype)
    with torch.no_grad():
        p.mean.normal_(0, 1)
        p.S.normal_(0, 2)
    return p


def _dist(p, k):
    return Independent(Normal(p.mean[k], p.variances()[k].sqrt()), 1)


# ---------------------------------------------------------------- the prior
def test_psi_keeps_covariances_positive_and_bounded_for_any_s():
    a, b, c = 1.0, 1.0, 0.25
    s = torch.cat([torch.randn(10000) * 50, torch.tensor([-1e30, -1e6, -80.0, 0.0, 80.0, 1e6, 1e30,
                                                           float("-inf"), float("inf")])])
    v = psi(s, a, b, c)
    assert torch.isfinite(v).all() and (v >= c).all() and (v <= a + c).all() and (v > 0).all()
    assert psi(torch.zeros(1)).item() == pytest.approx(0.75), "Algorithm 1's init: a/2 + c"
    for a, b, c in [(2.0, 0.05, 1e-3), (0.5, 10.0, 0.1)]:
        v = psi(torch.randn(1000, dtype=torch.float64) * 1e3, a, b, c)
        assert (v >= c).all() and (v <= a + c).all()
    with pytest.raises(ValueError, match="a, b, c > 0"):
        MultiGaussianPrior(3, (4,), c=0.0)


def test_initialisation_is_overlapping_standard_gaussians():
    p = MultiGaussianPrior(5, (2, 3, 3))
    assert torch.equal(p.mean, torch.zeros(5, 18))
    assert torch.allclose(p.variances(), torch.full((5, 18), 0.75))
    assert p.repulsion().item() == 0.0
    assert torch.allclose(p.kl_matrix(), torch.zeros(5, 5), atol=1e-6)


def test_log_prob_matches_torch_distributions():
    p = _random_prior()
    z = torch.randn(7, 6, dtype=torch.float64) * 2
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    ref = torch.stack([_dist(p, int(k)).log_prob(z[i]) for i, k in enumerate(y)])
    assert torch.allclose(p.log_prob(z, y), ref, atol=1e-10)
    all_ = p.log_prob_all(z)
    assert all_.shape == (7, 4)
    for k in range(4):
        assert torch.allclose(all_[:, k], _dist(p, k).log_prob(z), atol=1e-9)
    with pytest.raises(ValueError, match="labels"):
        p.log_prob(z)


def test_kl_matrix_matches_torch_distributions_and_monte_carlo():
    p = _random_prior()
    kl = p.kl_matrix()
    for i in range(4):
        for j in range(4):
            assert kl[i, j].item() == pytest.approx(kl_divergence(_dist(p, i), _dist(p, j)).item(), abs=1e-9)
    assert torch.allclose(kl.diagonal(), torch.zeros(4, dtype=kl.dtype), atol=1e-12)
    # Monte Carlo: E_{z ~ N_i}[log N_i(z) - log N_j(z)], within 5 standard errors
    gen = torch.Generator().manual_seed(1)
    n = 200_000
    for i, j in [(0, 1), (2, 3), (3, 0)]:
        z = p.mean[i] + p.variances()[i].sqrt() * torch.randn(n, 6, generator=gen, dtype=torch.float64)
        diff = _dist(p, i).log_prob(z) - _dist(p, j).log_prob(z)
        se = diff.std().item() / math.sqrt(n)
        assert abs(diff.mean().item() - kl[i, j].item()) < 5 * se + 1e-9
    rep = p.repulsion()
    off = kl.sum() - kl.diagonal().sum()
    assert rep.item() == pytest.approx(-off.item() / (4 * 3 * 6))
    rep.backward()
    assert p.mean.grad is not None and p.S.grad is not None


def test_repulsion_pushes_means_apart_and_the_stability_bound_holds():
    """With the data fixed, gradient descent on NLL + lambda R stays bounded below the documented bound
    lambda < (K-1)/(2K) (equal variances) and runs away above it."""
    torch.manual_seed(0)
    k, d = 4, 3
    centres = torch.randn(k, d, dtype=torch.float64)
    z = centres.repeat_interleave(50, 0) + 0.1 * torch.randn(k * 50, d, dtype=torch.float64)
    y = torch.arange(k).repeat_interleave(50)

    def fit(lam, steps=3000):
        p = MultiGaussianPrior(k, (d,)).double()
        p.S.requires_grad_(False)   # equal, fixed variances: the bound is exact
        opt = torch.optim.SGD([p.mean], lr=0.5)
        for _ in range(steps):
            opt.zero_grad()
            loss = -p.log_prob(z, y).mean() / d + lam * p.repulsion()
            loss.backward()
            opt.step()
        return (p.mean - p.mean.mean(0)).norm().item()
    bound = (k - 1) / (2 * k)
    free, mild, over = fit(0.0), fit(0.5 * bound), fit(1.2 * bound)
    cent = torch.stack([z[y == i].mean(0) for i in range(k)])
    spread = (cent - cent.mean(0)).norm().item()
    assert free == pytest.approx(spread, rel=1e-3), "lambda = 0: the means are the class centroids"
    amp = 1.0 / (1.0 - 2 * 0.5 * bound * k / (k - 1))
    assert mild == pytest.approx(amp * spread, rel=1e-3), "lambda < bound: centroids amplified 1/(1 - 2 lambda K/(K-1))"
    assert over > 100 * spread, "lambda above the bound: the means run apart"


def test_sampling_statistics_and_temperature():
    p = _random_prior(k=2, d=3)
    gen = torch.Generator().manual_seed(0)
    for t in (1.0, 0.5):
        z = p.sample(100_000, torch.ones(100_000, dtype=torch.long), temperature=t, generator=gen)
        assert torch.allclose(z.mean(0), p.mean[1], atol=0.02)
        assert torch.allclose(z.var(0), p.variances()[1] * t * t, rtol=0.03)
    a = p.sample(5, torch.tensor([0, 1, 0, 1, 1]), generator=torch.Generator().manual_seed(3))
    b = p.sample(5, torch.tensor([0, 1, 0, 1, 1]), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_rfcm_is_the_empirical_covariance_when_the_rank_allows_and_samples_it():
    torch.manual_seed(0)
    d = 5
    L = torch.randn(d, d, dtype=torch.float64)
    cov = L @ L.t() + 0.1 * torch.eye(d, dtype=torch.float64)
    z0 = torch.randn(400, d, dtype=torch.float64) @ torch.linalg.cholesky(cov).t() + 3.0
    z1 = torch.randn(300, d, dtype=torch.float64) - 2.0
    z, y = torch.cat([z0, z1]), torch.cat([torch.zeros(400), torch.ones(300)]).long()
    p = MultiGaussianPrior(2, (d,), rfcm_rank=d).double()
    assert not p.rfcm_ready
    with pytest.raises(ValueError, match="fit_rfcm"):
        p.sample(3, torch.zeros(3, dtype=torch.long), rfcm=True)
    p.fit_rfcm(z, y)
    assert p.rfcm_ready
    assert torch.allclose(p.rfcm_mean[0], z0.mean(0), atol=1e-10)
    assert torch.allclose(p.rfcm_covariance(0), torch.cov(z0.t()), atol=1e-6)
    assert torch.allclose(p.rfcm_covariance(1), torch.cov(z1.t()), atol=1e-6)
    s = p.sample(200_000, torch.zeros(200_000, dtype=torch.long), rfcm=True,
                 generator=torch.Generator().manual_seed(0))
    assert torch.allclose(torch.cov(s.t()), torch.cov(z0.t()), atol=0.05 * cov.abs().max().item())
    # a lower rank keeps the per-dimension variances exactly (the residual fills the diagonal)
    q = MultiGaussianPrior(2, (d,), rfcm_rank=2).double()
    q.fit_rfcm(z, y)
    assert torch.allclose(q.rfcm_covariance(0).diagonal(), torch.cov(z0.t()).diagonal(), atol=1e-8)


def test_registered_prior_sampler_architecture():
    from nfzoo.registry.plugins import get_registry

    reg = get_registry()
    assert reg.get("priors", "multi-gaussian").load() is MultiGaussianPrior
    assert "rfcm" in reg.registry("samplers")
    assert "glem" in nfzoo.list_models()
    assert "glem-cifar100" in nfzoo.list_pretrained()


# --------------------------------------------------------------- the model
def _tiny(**kw):
    torch.manual_seed(0)
    m = nfzoo.create_model("glem", **{**TINY, **kw})
    m.initialize(torch.rand(16, 1, 8, 8), torch.arange(16) % 3)
    with torch.no_grad():
        m.prior.mean.normal_(0, 0.5)
        m.prior.S.normal_(0, 1)
    return m


def test_the_flow_part_passes_the_testing_kit():
    check_bijector(_tiny().bijector, (2, 1, 8, 8))
    check_bijector(nfzoo.create_model("glem", image_shape=(1, 4, 8), levels=2, steps=1, hidden=4,
                                      num_classes=2).bijector, (1, 1, 4, 8))


def test_classify_gives_class_log_likelihoods():
    m = _tiny().eval()
    x = torch.rand(5, 1, 8, 8)
    logits = m.classify(x)
    assert logits.shape == (5, 3)
    for k in range(3):
        ref = m.log_prob(x, torch.full((5,), k), noise=False)
        assert torch.allclose(logits[:, k], ref, atol=1e-4)
    from nfzoo.evaluation.bpd import classify_logits
    assert torch.equal(classify_logits(m, x), logits)
    assert torch.allclose(m.decode(m.encode(x)), m.from_flow(m.to_flow(m.dequantize(x, noise=False))[0]),
                          atol=1e-4)


def test_marginal_bpd_is_the_class_mixture():
    from nfzoo.data import ArrayDataset
    from nfzoo.training.trainer import evaluate_bpd

    m = _tiny().eval()
    x = torch.rand(6, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    ll = m.class_log_likelihoods(x, generator=torch.Generator().manual_seed(5), noise=True)
    lp = m.marginal_log_prob(x, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(lp, torch.logsumexp(ll, 1) - math.log(3), atol=1e-5)
    cond = m.log_prob(x, y, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(cond, ll.gather(1, y[:, None]).squeeze(1), atol=1e-4), "the same noise"
    assert (lp >= cond - math.log(3) - 1e-4).all(), "p(x) >= p(x | y) / K"
    ds = ArrayDataset((x * 255).round().to(torch.uint8), y, 3, "tiny")
    r = evaluate_bpd(m, ds, batch_size=4)
    assert r["bpd_marginal"] <= r["bpd"] + math.log2(3) / 64 + 1e-6


def test_em_phases_split_and_parameters():
    m = _tiny()
    n, epochs = 200, 8
    assert m.em_epochs(epochs) == 6
    nf, g = m.split_indices(n)
    assert len(g) == 20 and len(nf) == 180 and set(nf.tolist()) | set(g.tolist()) == set(range(n))
    assert not set(nf.tolist()) & set(g.tolist())
    gen = torch.Generator().manual_seed(0)
    plan = m.training_plan(n, 0, epochs, gen)
    assert [p for p, _ in plan] == ["E", "M"]
    assert set(plan[0][1].tolist()) == set(nf.tolist())
    assert len(plan[1][1]) == 20 * m.m_passes and set(plan[1][1].tolist()) == set(g.tolist())
    assert [p for p, _ in m.training_plan(n, 6, epochs, gen)] == ["F"]
    assert len(m.training_plan(n, 7, epochs, gen)[0][1]) == n
    prior_ids = {id(p) for p in m.prior.parameters()}
    assert m.phase_parameters("M") == prior_ids
    assert not m.phase_parameters("E") & prior_ids
    assert m.phase_parameters("E") | prior_ids == {id(p) for p in m.parameters()}
    assert m.kl_weight_at(0, epochs) == pytest.approx(m.kl_weight)
    assert m.kl_weight_at(5, epochs) == pytest.approx(m.kl_weight_final)
    assert m.kl_weight > m.kl_weight_at(3, epochs) > m.kl_weight_final, "annealed from high to low"
    e = nfzoo.create_model("glem", **{**TINY, "kl_weight": 0.4, "kl_weight_final": 0.004,
                                      "kl_schedule": "exponential"})
    lams = [e.kl_weight_at(t, epochs) for t in range(6)]
    assert lams[0] == pytest.approx(0.4) and lams[-1] == pytest.approx(0.004)
    ratios = [b / a for a, b in zip(lams, lams[1:])]
    assert all(r == pytest.approx(0.01 ** 0.2) for r in ratios), "a constant factor per round"
    with pytest.raises(nfzoo.errors.ConfigError, match="kl_schedule"):
        nfzoo.create_model("glem", **{**TINY, "kl_schedule": "cosine"})


def test_m_step_loss_reaches_only_the_gaussians_and_adds_the_repulsion():
    m = _tiny().train()
    x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    loss, bpd = m.training_loss(x, y, "M", epoch=0, epochs=4, generator=torch.Generator().manual_seed(0))
    loss.backward()
    prior_ids = {id(p) for p in m.prior.parameters()}
    for p in m.parameters():
        assert (p.grad is not None) == (id(p) in prior_ids)
    lam = m.kl_weight_at(0, 4)
    assert loss.item() == pytest.approx(bpd.mean().item() + lam * m.prior.repulsion().item() / math.log(2),
                                        rel=1e-5)
    m.zero_grad(set_to_none=True)
    loss, _ = m.training_loss(x, y, "E", epoch=0, epochs=4, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is not None for n_, p in m.named_parameters() if not n_.startswith("prior."))


def _train(tmp_path, runner, app, name, *sets, epochs=3):
    out = tmp_path / name
    args = ["train", "glem", "--dataset", "digits", "--epochs", str(epochs), "--batch-size", "128",
            "--set", "levels=1", "--set", "steps=1", "--set", "hidden=8", "--set", "rfcm_rank=4",
            "--set", "em_fraction=0.75",
            *sum((["--set", s] for s in sets), []), "--out", str(out), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout)


def test_training_runs_the_em_phases_then_fits_rfcm(tmp_path, runner, app):
    out, doc = _train(tmp_path, runner, app, "run", epochs=3)
    hist = doc["history"]
    assert [r.get("phase", "EM") for r in hist] == ["EM", "EM", "F"]
    assert hist[0]["kl_weight"] > hist[1]["kl_weight"]
    assert all(r["mean_pair_kl_per_dim"] > 0 for r in hist[:2])
    m = nfzoo.load(str(out))
    assert m.prior.rfcm_ready and m.prior.mean.abs().sum() > 0
    # m_passes=0: the gaussians never train (the E / F steps leave them alone)
    out0, _ = _train(tmp_path, runner, app, "frozen", "m_passes=0", epochs=2)
    m0 = nfzoo.load(str(out0))
    assert torch.equal(m0.prior.mean, torch.zeros_like(m0.prior.mean))
    assert torch.equal(m0.prior.S, torch.zeros_like(m0.prior.S))
    # save / load keeps everything, RFCM included: the same seed gives the same samples
    a = m.sample(6, torch.tensor([0, 1, 2, 3, 4, 5]), generator=torch.Generator().manual_seed(0))
    b = nfzoo.load(str(out)).sample(6, torch.tensor([0, 1, 2, 3, 4, 5]), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_cli_conditional_sampling_classification_and_presets(tmp_path, runner, app):
    out, _ = _train(tmp_path, runner, app, "run", epochs=2)
    res = runner.invoke(app, ["sample", "--model", str(out), "--label", "3", "-n", "4", "--temperature", "0.7",
                              "--out", str(tmp_path / "three.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "three.png").stat().st_size > 0
    res = runner.invoke(app, ["sample", "--model", str(out), "--per-class", "-n", "2", "--sampler", "rfcm",
                              "--out", str(tmp_path / "grid")])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "grid").glob("0*.png"))) == 20
    res = runner.invoke(app, ["sample", "--model", str(out), "-n", "5", "--out", str(tmp_path / "mixed.png")])
    assert res.exit_code == 0 and "classes 0..9 in turn" in res.output
    res = runner.invoke(app, ["sample", "--model", str(out), "--label", "10"])
    assert res.exit_code == 2 and "--label must be in [0, 9]" in res.output
    res = runner.invoke(app, ["eval", str(out), "--dataset", "digits", "--task", "classify", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert 0.0 <= doc["accuracy"] <= 1.0 and doc["images"] == 359
    res = runner.invoke(app, ["train", "glem", "--dataset", "digits", "--preset", "cifar10"])
    assert res.exit_code == 2 and "cifar100" in res.output
    from nfzoo.loading.api import architecture_preset

    p = architecture_preset("glem", "cifar100")
    assert p["model"]["num_classes"] == 100 and p["train"]["optimizer"] == "adamax"


def test_bad_configs_are_clear():
    with pytest.raises(nfzoo.errors.ConfigError, match="num_classes >= 2"):
        nfzoo.create_model("glem", image_shape=(1, 8, 8), levels=1, num_classes=None)
    with pytest.raises(nfzoo.errors.ConfigError, match="m_split"):
        nfzoo.create_model("glem", image_shape=(1, 8, 8), levels=1, m_split=1.5)


def test_class_gaussians_on_a_subset_of_dimensions():
    """dims: the class gaussians cover the final latent only; the other dimensions are N(0, I)."""
    torch.manual_seed(0)
    dims = torch.tensor([5, 0, 7, 2])
    p = MultiGaussianPrior(3, (2, 2, 2), dims=dims, rfcm_rank=2).double()
    with torch.no_grad():
        p.mean.normal_()
        p.S.normal_()
    assert p.dim == 4 and p.total_dim == 8 and sorted(p.rest.tolist()) == [1, 3, 4, 6]
    z = torch.randn(6, 2, 2, 2, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    zf = z.flatten(1)
    std = Independent(Normal(torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)), 1)
    for k in range(3):
        ref = _dist(p, k).log_prob(zf[:, dims]) + std.log_prob(zf[:, p.rest])
        assert torch.allclose(p.log_prob_all(z)[:, k], ref, atol=1e-10)
    assert torch.allclose(p.log_prob(z, y), p.log_prob_all(z).gather(1, y[:, None]).squeeze(1), atol=1e-10)
    s = p.sample(100_000, torch.full((100_000,), 1), temperature=0.5, generator=torch.Generator().manual_seed(0))
    sf = s.flatten(1)
    assert torch.allclose(sf[:, dims].mean(0), p.mean[1], atol=0.01)
    assert torch.allclose(sf[:, p.rest].var(0), torch.full((4,), 0.25, dtype=torch.float64), rtol=0.03)
    p.fit_rfcm(torch.randn(40, 2, 2, 2, dtype=torch.float64), torch.arange(40) % 3)
    assert p.sample(5, torch.zeros(5, dtype=torch.long), rfcm=True).shape == (5, 2, 2, 2)
    with pytest.raises(ValueError, match="distinct flat indices"):
        MultiGaussianPrior(3, (2, 2, 2), dims=[0, 0])


def test_glem_puts_the_class_gaussians_on_the_final_latent():
    m = nfzoo.create_model("glem", image_shape=(1, 8, 8), levels=2, steps=1, hidden=4, num_classes=3)
    assert m.prior.dim == 32 and m.prior.mean.shape == (3, 32)   # 1x8x8 -> 4x4x4, keep 2 -> 8x2x2
    ids = torch.arange(64, dtype=torch.float64).reshape(1, 1, 8, 8)
    assert torch.equal(m.bijector.latent_parts(ids)[-1].flatten().long(), m.prior.dims)
    m_all = nfzoo.create_model("glem", image_shape=(1, 8, 8), levels=2, steps=1, hidden=4, num_classes=3,
                               class_latent="all")
    assert m_all.prior.dim == 64
    with pytest.raises(nfzoo.errors.ConfigError, match="class_latent"):
        nfzoo.create_model("glem", image_shape=(1, 8, 8), levels=1, class_latent="split")


def test_conditional_encoding_baselines():
    """CE pads the image with its class's code rows; classification scores each code; generated images
    carry their label in the code; the monomodal CE model refuses to sample a chosen class."""
    from nfzoo.errors import UsageError

    for gaussians in ("class", "single"):
        torch.manual_seed(0)
        m = nfzoo.create_model("glem", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8, num_classes=3,
                               encoding="ce", gaussians=gaussians, rfcm_rank=2)
        assert m.code_rows == 2 and m.prior.total_dim == 80 and m.prototypes.shape == (3, 1, 2, 8)
        x, y = torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
        m.initialize(x, y)
        m.eval()
        logits = m.classify(x)
        for k in range(3):
            assert torch.allclose(logits[:, k], m.log_prob(x, torch.full((6,), k), noise=False), atol=1e-4)
        z = m.encode(x, y)
        v, _ = m.bijector.inverse(z, None)
        assert torch.equal(m.read_labels(v), y), "the code rows carry the label through the flow"
        assert m.decode(z).shape == (6, 1, 8, 8)
        with pytest.raises(UsageError, match="conditional encoding"):
            m.encode(x)
        imgs, labels = m.sample_with_labels(5, generator=torch.Generator().manual_seed(0))
        assert imgs.shape == (5, 1, 8, 8) and labels.shape == (5,) and labels.max() < 3
        if gaussians == "single":
            assert m.prior.mean.shape[0] == 1 and m.prior.repulsion().item() == 0.0
            with pytest.raises(UsageError, match="shared gaussian"):
                m.sample(2, torch.tensor([0, 1]))
        else:
            assert m.sample(2, torch.tensor([0, 1])).shape == (2, 1, 8, 8)
    with pytest.raises(nfzoo.errors.ConfigError, match="needs encoding='ce'"):
        nfzoo.create_model("glem", image_shape=(1, 8, 8), levels=1, gaussians="single")


def test_a_monomodal_model_refuses_labels_only_for_samplers_that_draw_from_its_prior():
    """One shared gaussian cannot choose a class, but RFCM keeps one estimate per class."""
    from nfzoo.errors import UsageError

    torch.manual_seed(0)
    m = nfzoo.create_model("glem", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8, num_classes=3,
                           encoding="ce", gaussians="single", rfcm_rank=2).eval()
    y = torch.arange(6) % 3
    m.prior.fit_rfcm(m.encode(torch.rand(6, 1, 8, 8), y), y)
    for sampler in (None, "ancestral"):
        with pytest.raises(UsageError, match="shared gaussian"):
            m.sample(2, torch.tensor([0, 1]), sampler=sampler)
    assert m.sample(2, torch.tensor([0, 1]), sampler="rfcm").shape == (2, 1, 8, 8)


def test_ce_trains_through_the_cli(tmp_path, runner, app):
    out, doc = _train(tmp_path, runner, app, "ce", "encoding=ce", "gaussians=single", epochs=2)
    m = nfzoo.load(str(out))
    assert m.code_rows == 2 and math.isfinite(doc["test_bpd"])
    res = runner.invoke(app, ["eval", str(out), "--dataset", "digits", "--task", "classify", "--json"])
    assert res.exit_code == 0 and 0 <= json.loads(res.stdout)["accuracy"] <= 1


def test_resume_inside_the_m_step_is_bit_exact(tmp_path):
    """A run cut in the middle of an epoch's M phase and resumed ends with the same weights (gaussians,
    RFCM and flow) as an uninterrupted one: the position in the epoch counts batches across phases."""
    from nfzoo.safeio import load_tensors
    from nfzoo.training.trainer import Callback, TrainConfig, Trainer

    class Stop(Callback):
        def __init__(self, at):
            self.at = at

        def on_step(self, step, loss, bpd, it_s):
            if step == self.at:
                raise KeyboardInterrupt

    model = {"levels": 1, "steps": 1, "hidden": 8, "rfcm_rank": 4, "em_fraction": 1.0, "m_passes": 2}
    cfg = dict(arch="glem", dataset="digits", epochs=2, batch_size=128, checkpoint_every=13, model=model,
               warmup_steps=5)
    full = Trainer(TrainConfig(**cfg), tmp_path / "full").run()
    # an epoch: 11 E batches (1294 images of D_NF) + 3 M batches (D_G's 144 images, twice) = 14 steps
    assert full["steps"] == 28 and [r.get("kl_weight") is not None for r in full["history"]] == [True, True]
    with pytest.raises(KeyboardInterrupt):
        Trainer(TrainConfig(**cfg), tmp_path / "cut", Stop(14)).run()
    resumed = Trainer(TrainConfig(**cfg), tmp_path / "cut", resume=True).run()
    assert resumed["resumed_from"] == "step-00000013", "step 13 is the 2nd batch of epoch 1's M phase"
    a = load_tensors(tmp_path / "full" / "model.safetensors")
    b = load_tensors(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.startswith("prior.rfcm") for k in a)
