"""Diffused-Flows and DDPM: the schedule, the bound, the samplers, the objectives, persistence, bad input."""
import json
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

import nfzoo
from nfzoo.errors import ConfigError, UsageError
from nfzoo.loading.api import create_model
from nfzoo.testing import check_bijector
from nfzoo_diffused_flows.diffusion import DiffusionPrior, NoiseSchedule, default_betas
from nfzoo_diffused_flows.models import FixedScale
from nfzoo_diffused_flows.samplers import DiffusionSampler

TINY_UNET = {"unet_channels": [8, 16], "unet_groups": 8}
TINY_FLOW = {"levels": 1, "steps": 1, "hidden": 8}


def tiny(arch="diffused-flows", **kw):
    torch.manual_seed(0)
    cfg = {"image_shape": [1, 8, 8], "timesteps": 20, **TINY_UNET, **kw}
    if arch == "diffused-flows":
        cfg = {**TINY_FLOW, **cfg}
    m = create_model(arch, **cfg)
    x = torch.rand(16, 1, 8, 8)
    m.initialize(x, generator=torch.Generator().manual_seed(0))
    m.eval()
    return m


# ------------------------------------------------------------------ schedule
def test_schedule_is_ddpms_product_and_matches_diffusers():
    from diffusers import DDPMScheduler

    s = NoiseSchedule(1000, *default_betas(1000))
    assert default_betas(1000) == (1e-4, 0.02)
    direct = torch.tensor([math.prod(1 - float(b) for b in s.betas[:i + 1]) for i in range(0, 1000, 97)],
                          dtype=torch.float64)
    assert torch.allclose(s.abar[::97], direct, rtol=1e-10)          # a product (not eq. 4.3's mean)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear").alphas_cumprod.double()
    assert torch.allclose(s.abar, ref, rtol=1e-5)
    assert default_betas(500) == pytest.approx((2e-4, 0.04))         # Ho's range, scaled by 1000 / T


def test_noised_latent_uses_square_roots():
    p = DiffusionPrior((1, 4, 4), timesteps=10, channels=[8], groups=8)
    z0 = torch.full((1, 1, 4, 4), 3.0)
    eps = torch.full((1, 1, 4, 4), -2.0)
    i = torch.tensor([6])
    ab = float(p.schedule.abar[6])
    want = math.sqrt(ab) * 3.0 + math.sqrt(1 - ab) * -2.0            # eq. 4.5 with its square root
    assert torch.allclose(p.noised(z0, i, eps), torch.full_like(z0, want), atol=1e-6)


def test_bound_terms_match_a_direct_computation():
    """Every term of the bound against torch.distributions on a tiny case (T = 5, float64)."""
    torch.manual_seed(1)
    p = DiffusionPrior((1, 4, 4), timesteps=5, channels=[8], groups=8).double()
    sch = p.schedule
    z0 = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    eps = torch.randn_like(z0)
    total_mine = sch.prior_kl(z0).clone()
    a_T = sch.abar[-1]
    direct_LT = kl_divergence(Normal(a_T.sqrt() * z0, (1 - a_T).sqrt()), Normal(0.0, 1.0)).sum((1, 2, 3))
    assert torch.allclose(sch.prior_kl(z0), direct_LT)
    total_direct = direct_LT.clone()
    for i in range(sch.T):
        ii = torch.full((3,), i)
        mine = p.terms(z0, ii, eps)["term"]
        zt = p.noised(z0, ii, eps)
        e = p.eps(zt, ii)
        beta, alpha, ab = sch.betas[i], sch.alphas[i], sch.abar[i]
        mu_theta = (zt - beta / (1 - ab).sqrt() * e) / alpha.sqrt()
        if i == 0:
            direct = -Normal(mu_theta, beta.sqrt()).log_prob(z0).sum((1, 2, 3))
        else:
            ab_prev = sch.abar[i - 1]
            mu_q = (ab_prev.sqrt() * beta / (1 - ab)) * z0 + (alpha.sqrt() * (1 - ab_prev) / (1 - ab)) * zt
            var = beta * (1 - ab_prev) / (1 - ab)
            direct = kl_divergence(Normal(mu_q, var.sqrt()), Normal(mu_theta, var.sqrt())).sum((1, 2, 3))
        assert torch.allclose(mine, direct, rtol=1e-8, atol=1e-8), i
        total_mine = total_mine + mine
        total_direct = total_direct + direct
    assert torch.allclose(total_mine, total_direct)


def test_one_sample_bound_is_unbiased():
    torch.manual_seed(2)
    p = DiffusionPrior((1, 4, 4), timesteps=8, channels=[8], groups=8).double()
    z0 = torch.randn(1, 1, 4, 4, dtype=torch.float64).expand(4000, 1, 4, 4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        est = p.nll_bound(z0, g)
        full = p.full_bound(z0[:400], g)
    se = est.std() / math.sqrt(len(est)) + full.std() / math.sqrt(len(full))
    assert abs(est.mean() - full.mean()) < 4 * se


def test_bound_is_an_upper_bound_that_tightens_with_T_for_the_exact_denoiser():
    """Gaussian data N(0, s^2): the optimal noise predictor is linear in z_t. With it, DDPM's bound is
    above the exact -log p(z0) at every T, and its gap (the fixed reverse variances) shrinks as T grows."""
    s2 = 0.5 ** 2

    class Exact(DiffusionPrior):
        def eps(self, z, i):
            ab = self.schedule.abar.to(z.dtype)[i].view(-1, 1, 1, 1)
            return (1 - ab).sqrt() * z / (ab * s2 + 1 - ab)

    gaps = []
    for T in (50, 200, 1000):
        p = Exact((1, 2, 2), timesteps=T, channels=[8], groups=8)
        g = torch.Generator().manual_seed(0)
        z0 = torch.randn(2000, 1, 2, 2, dtype=torch.float64, generator=g) * math.sqrt(s2)
        with torch.no_grad():
            bound = p.full_bound(z0, g).mean() / 4
        exact = -Normal(0.0, math.sqrt(s2)).log_prob(z0).sum((1, 2, 3)).mean() / 4
        gaps.append(float(bound - exact))
    assert all(g > 0 for g in gaps), gaps
    assert gaps[0] > gaps[1] > gaps[2], gaps      # measured: 2.01, 0.87, 0.47 nats per dimension


# ---------------------------------------------------------------- samplers
@pytest.mark.parametrize("kind,steps", [("ddim", 5), ("dpm-solver++", 4), ("ddpm", None), ("ddpm", 7)])
def test_sampling_never_calls_the_flows_forward(kind, steps, monkeypatch):
    m = tiny()
    calls = {"inverse": 0}
    inverse = m.bijector.inverse

    def no_forward(*a, **k):
        raise AssertionError("the flow's forward was called while sampling")

    def counted_inverse(*a, **k):
        calls["inverse"] += 1
        return inverse(*a, **k)
    monkeypatch.setattr(m.bijector, "forward", no_forward)
    monkeypatch.setattr(m.bijector, "inverse", counted_inverse)
    m.sampler = DiffusionSampler(kind)
    x = m.sample(3, generator=torch.Generator().manual_seed(0), **({} if steps is None else {"steps": steps}))
    assert x.shape == (3, 1, 8, 8) and torch.isfinite(x).all() and calls["inverse"] == 1
    assert 0 <= float(x.min()) and float(x.max()) <= 1


def test_ddim_eta0_is_deterministic_for_a_seed():
    m = tiny()
    m.sampler = DiffusionSampler("ddim")
    a = m.sample(4, generator=torch.Generator().manual_seed(3), steps=6)
    b = m.sample(4, generator=torch.Generator().manual_seed(3), steps=6)
    c = m.sample(4, generator=torch.Generator().manual_seed(4), steps=6)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_ddim_eta1_is_the_ancestral_sampler_over_the_same_steps():
    """Song et al.: with eta = 1 DDIM's update is DDPM's posterior step between the respaced timesteps, so
    it draws the same samples as the respaced ancestral sampler (both spaced "trailing", same noise).
    (For step counts that do not divide T, diffusers' DDIM steps from t to t - T // steps, which can be
    one off the next "trailing" timestep; the bench's 100/50/20/10 divide T = 1000.)"""
    m = tiny("ddpm")
    with torch.no_grad():     # a U-Net off its init, so the prediction matters
        for prm in m.prior.parameters():
            prm.add_(0.05 * torch.randn_like(prm, generator=torch.Generator().manual_seed(0)))
    for steps in (20, 10, 5):   # divisors of T: diffusers' DDIM steps to t - T // steps, not to the next
        anc = m.prior.reverse(3, "ddpm", steps, torch.Generator().manual_seed(2))
        ddim1 = m.prior.reverse(3, "ddim", steps, torch.Generator().manual_seed(2), eta=1.0)
        assert torch.allclose(anc, ddim1, atol=1e-4), (steps, float((anc - ddim1).abs().max()))
    assert m.prior.scheduler("ddpm").config.timestep_spacing == "trailing"


def test_ddim_eta_between_0_and_1_is_stochastic_and_seeded():
    m = tiny(latent_clip=3.0)     # unclipped, an untrained U-Net's z0 runs off and every image saturates
    m.sampler = DiffusionSampler("ddim")
    a, b, c = (m.sample(4, generator=torch.Generator().manual_seed(k), steps=6, eta=0.5) for k in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    det = m.sample(4, generator=torch.Generator().manual_seed(3), steps=6, eta=0.0)
    assert torch.equal(det, m.sample(4, generator=torch.Generator().manual_seed(3), steps=6))
    assert not torch.equal(a, det)


def test_ddim_step_rederives_the_noise_from_the_clipped_prediction(monkeypatch):
    """One DDIM step with an over-range prediction: z_s = sqrt(ab_s) clip(z0) + sqrt(1 - ab_s) eps', with
    eps' = (z_t - sqrt(ab_t) clip(z0)) / sqrt(1 - ab_t) (GLIDE; diffusers' default keeps the raw eps)."""
    m = tiny("ddpm")
    p = m.prior
    eps = torch.full((2, 1, 8, 8), -3.0)                        # predicts z0 far above the clip of 1
    monkeypatch.setattr(p, "eps", lambda z, i: eps)
    z = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    sch = p.scheduler("ddim")
    sch.set_timesteps(2)
    t, s = int(sch.timesteps[0]), int(sch.timesteps[1])
    ab_t, ab_s = p.schedule.abar[t].float(), p.schedule.abar[s].float()
    monkeypatch.setattr("nfzoo_diffused_flows.diffusion._randn", lambda shape, like, gen: z)
    monkeypatch.setattr(type(sch), "set_timesteps", lambda self, n, device=None: setattr(
        self, "timesteps", torch.tensor([t])))
    monkeypatch.setattr(p, "scheduler", lambda kind, _s=sch: _s)
    out = p.reverse(2, "ddim", 2)
    z0 = ((z - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()).clamp(-1, 1)
    e2 = (z - ab_t.sqrt() * z0) / (1 - ab_t).sqrt()
    assert torch.allclose(out, ab_s.sqrt() * z0 + (1 - ab_s).sqrt() * e2, atol=1e-5)


def test_saved_and_reloaded_model_samples_identically(tmp_path):
    m = tiny(objective="two-stage")
    with torch.no_grad():     # move the U-Net off its init so the weights matter
        for prm in m.prior.parameters():
            prm.add_(0.01 * torch.randn_like(prm))
    m.save_pretrained(tmp_path / "m")
    r = nfzoo.load(str(tmp_path / "m"))
    assert r.objective == "two-stage"
    for kind, steps in [("ddpm", None), ("ddim", 5), ("dpm-solver++", 5)]:
        outs = []
        for model in (m, r):
            model.sampler = DiffusionSampler(kind)
            outs.append(model.sample(3, generator=torch.Generator().manual_seed(1),
                                     **({} if steps is None else {"steps": steps})))
        assert torch.equal(*outs), kind
    x = torch.rand(4, 1, 8, 8)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    assert torch.equal(m.log_prob(x, generator=g()), r.log_prob(x, generator=g()))


def test_ancestral_core_sampler_runs_the_prior_ddpm():
    m = tiny("ddpm")
    m.sampler = nfzoo.registry.plugins.get_registry().get("samplers", "ancestral").load()()
    x = m.sample(2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 1, 8, 8)
    with pytest.raises(UsageError, match="temperature 1"):
        m.sample(2, temperature=0.7)


def test_sampler_rejects_bad_steps_and_models():
    m = tiny("ddpm")
    for bad in (0, 21, -3, 2.5):
        with pytest.raises(UsageError, match="from 1 to the model's T = 20"):
            DiffusionSampler("ddim").check(m, steps=bad)
    glow = create_model("glow", image_shape=[1, 8, 8], levels=1, steps=1, hidden=8)
    with pytest.raises(UsageError, match="needs a model with a diffusion prior"):
        DiffusionSampler("ddim").check(glow, steps=5)
    for bad in (-0.1, 1.5, float("nan"), "1"):
        with pytest.raises(UsageError, match="--eta must be a number from 0"):
            DiffusionSampler("ddim").check(m, steps=5, eta=bad)
    with pytest.raises(UsageError, match="--eta is an option of the ddim sampler only"):
        DiffusionSampler("ddpm").check(m, steps=5, eta=0.5)


# ---------------------------------------------------------------- bijectors
def test_flow_part_passes_the_testing_kit():
    for flow in ("glow", "nsf"):
        m = create_model("diffused-flows", image_shape=[1, 4, 4], flow=flow, levels=1, steps=2, hidden=8,
                         unet_channels=[8], timesteps=10)
        check_bijector(m.bijector, (2, 1, 4, 4))
    check_bijector(FixedScale(2.0), (2, 1, 3, 5))
    assert isinstance(tiny("ddpm").bijector, FixedScale)


# -------------------------------------------------------------- objectives
def test_paper_objective_rewards_scaling_the_latent_up_and_the_bound_does_not():
    """Eq. 4.6 as printed: scaling f by s adds D log s to log|det| and barely moves the eps MSE, so the
    loss falls by about log2(s) bits per dimension without end. DDPM's bound grows instead."""
    from nfzoo.flows.interfaces import Composite

    m = tiny(objective="paper", timesteps=1000)
    base = m.bijector
    x = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    paper, elbo = [], []
    for s in (1.0, 10.0, 100.0, 1000.0):
        m.bijector = Composite([base, FixedScale(s)])
        with torch.no_grad():
            m.objective = "paper"
            paper.append(float(m.training_loss(x, None, "all", 0, 1, torch.Generator().manual_seed(1))[0]))
            m.objective = "elbo"
            elbo.append(float(m.training_loss(x, None, "all", 0, 1, torch.Generator().manual_seed(1))[0]))
    drops = [a - b for a, b in zip(paper, paper[1:])]
    assert all(d > 0.8 * math.log2(10) for d in drops), paper      # ~3.3 bits / dim per decade
    assert elbo[-1] > elbo[0], elbo


def test_hybrid_gives_the_flow_the_bounds_gradient_and_the_unet_the_simple_loss():
    """`hybrid` in one U-Net call: flow parameters get exactly the gradient of the bound (`elbo`), U-Net
    parameters exactly that of DDPM's simple loss, with the same timesteps and noise; it reports the
    same bound."""
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))

    def grads(objective):
        m = tiny(objective=objective, timesteps=50)
        m.train()
        loss, bpd = m.training_loss(x, None, "all", 0, 1, torch.Generator().manual_seed(3))
        m.zero_grad()
        loss.backward()
        flow = {n: p.grad.clone() for n, p in m.bijector.named_parameters() if p.grad is not None}
        unet = {n: p.grad.clone() for n, p in m.prior.named_parameters() if p.grad is not None}
        return flow, unet, bpd

    f_h, u_h, bpd_h = grads("hybrid")
    f_e, u_e, bpd_e = grads("elbo")
    torch.testing.assert_close(bpd_h, bpd_e)
    assert f_h.keys() == f_e.keys() and len(f_h) > 0
    for n in f_h:
        torch.testing.assert_close(f_h[n], f_e[n], rtol=1e-4, atol=1e-6, msg=n)
    # the simple loss's U-Net gradient: the same draws, the flow's latent held fixed
    m = tiny(objective="elbo", timesteps=50)
    m.train()
    z, _ = m._latent(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    m.dequantize(x, generator=g)                                # the same stream position as in training
    r = m.prior.draw_terms(z.detach(), g)
    m.zero_grad()
    (r["sq"] / m.dim).mean().backward()
    u_s = {n: p.grad.clone() for n, p in m.prior.named_parameters() if p.grad is not None}
    assert u_h.keys() == u_s.keys() and len(u_h) > 0
    for n in u_h:
        torch.testing.assert_close(u_h[n], u_s[n], rtol=1e-4, atol=1e-6, msg=n)
    assert not all(torch.allclose(u_h[n], u_e[n]) for n in u_h)       # elbo weights the U-Net otherwise


def test_two_stage_trains_the_flow_then_only_the_unet(tmp_path):
    from nfzoo.training.trainer import TrainConfig, Trainer

    cfg = TrainConfig(arch="diffused-flows", dataset="digits", epochs=2, batch_size=256, eval_batch=500,
                      model={**TINY_FLOW, **TINY_UNET, "timesteps": 20, "objective": "two-stage",
                             "stage1_epochs": 1})
    t = Trainer(cfg, tmp_path / "run")
    t._build()
    assert [p for p, _ in t._plan(0)] == ["flow"] and [p for p, _ in t._plan(1)] == ["diffusion"]
    snaps = []

    class Snap(nfzoo.training.trainer.Callback):
        def on_epoch_end(self, epoch, record):
            snaps.append({k: v.clone() for k, v in t.model.state_dict().items()})
    t.cb = Snap()
    res = t.run()
    init = snaps[0]
    flow_keys = [k for k in init if k.startswith("bijector.") and "initialized" not in k]
    unet_keys = [k for k in init if k.startswith("prior.unet.")]
    assert all(torch.equal(snaps[0][k], snaps[1][k]) for k in flow_keys)       # stage 2: flow frozen
    assert any(not torch.equal(snaps[0][k], snaps[1][k]) for k in unet_keys)   # ... U-Net trained
    clip = t.model.config["latent_clip"]           # fitted on the training split at the end
    assert clip == t.model.prior.clip and clip > 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["latent_clip"] == clip
    hist = res["history"]
    assert all(math.isfinite(r["test_bpd"]) and r["test_bpd"] > 0 for r in hist)
    assert all("latent_rms" in r and "logdet_per_dim" in r for r in hist)


def test_init_flow_must_match_the_config(tmp_path):
    glow = create_model("glow", image_shape=[1, 8, 8], levels=1, steps=1, hidden=8)
    glow.save_pretrained(tmp_path / "g")
    m = create_model("diffused-flows", image_shape=[1, 8, 8], **TINY_FLOW, **TINY_UNET,
                     objective="two-stage", init_flow=str(tmp_path / "g"))
    m.initialize(torch.rand(4, 1, 8, 8))
    assert all(torch.equal(a, b) for a, b in zip(m.bijector.state_dict().values(),
                                                 glow.bijector.state_dict().values()))
    bad = create_model("diffused-flows", image_shape=[1, 8, 8], levels=1, steps=2, hidden=8, **TINY_UNET,
                       objective="two-stage", init_flow=str(tmp_path / "g"))
    with pytest.raises(ConfigError, match="steps=1 there, 2 here"):
        bad.initialize(torch.rand(4, 1, 8, 8))


def test_config_errors():
    with pytest.raises(ConfigError, match="cannot take a 8x8 latent"):
        create_model("diffused-flows", image_shape=[1, 8, 8], unet_channels=[8, 8, 8, 8, 8])
    with pytest.raises(ConfigError, match="objective must be one of elbo, hybrid, two-stage, paper"):
        create_model("diffused-flows", image_shape=[1, 8, 8], objective="simple")
    with pytest.raises(ConfigError, match="stage1_epochs is for objective=two-stage"):
        create_model("diffused-flows", image_shape=[1, 8, 8], stage1_epochs=3)
    with pytest.raises(ConfigError, match="divisible by unet_groups"):
        create_model("ddpm", image_shape=[1, 8, 8], unet_channels=[12, 16])


# --------------------------------------------------------------------- CLI
def test_cli_sample_with_a_diffusion_sampler(runner, app, tmp_path):
    m = tiny(latent_clip=3.0)
    m.save_pretrained(tmp_path / "m")
    out = tmp_path / "s.png"
    r = runner.invoke(app, ["sample", "--model", str(tmp_path / "m"), "--sampler", "ddim", "--steps", "4",
                            "-n", "4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.is_file()
    out1 = tmp_path / "s1.png"
    r = runner.invoke(app, ["sample", "--model", str(tmp_path / "m"), "--sampler", "ddim", "--steps", "4",
                            "--eta", "1", "-n", "4", "--out", str(out1)])
    assert r.exit_code == 0, r.output
    assert out1.read_bytes() != out.read_bytes()


# --------------------------------------------------------- a measured default with sampler options
DDIM_RECORD = {"sampler": "ddim", "temperature": 1.0, "options": {"steps": 4, "eta": 1.0},
               "source": "docs/results/samples/x/ddim-t1.json"}


def test_recorded_sampler_options_apply_under_the_given_ones(tmp_path):
    m = tiny(latent_clip=3.0)
    m.set_sampling(DDIM_RECORD)
    m.save_pretrained(tmp_path / "m")
    back = nfzoo.load(str(tmp_path / "m"))
    assert back.sampling == DDIM_RECORD and back.sampler.name == "ddim"
    assert back.sampling_options() == {"steps": 4, "eta": 1.0}
    assert back.sampling_options(steps=2) == {"steps": 2, "eta": 1.0}      # one changed, the other kept
    assert back.sampling_options("ddim", eta=0.0) == {"steps": 4, "eta": 0.0}
    assert back.sampling_options("ddpm-ancestral") == {}                   # another sampler's are not its
    g = lambda: torch.Generator().manual_seed(0)            # noqa: E731
    x = back.sample(3, generator=g())
    assert torch.equal(x, back.sample(3, sampler="ddim", steps=4, eta=1.0, generator=g()))
    assert not torch.equal(x, back.sample(3, sampler="ddim", steps=4, eta=0.0, generator=g()))


def test_cli_sample_uses_the_recorded_options_and_flags_override_them(runner, app, tmp_path):
    m = tiny(latent_clip=3.0)
    m.save_pretrained(tmp_path / "plain")
    m.set_sampling(DDIM_RECORD)
    m.save_pretrained(tmp_path / "rec")
    outs = {}
    for key, model, args in [("rec", "rec", []), ("explicit", "plain", ["--sampler", "ddim", "--steps", "4",
                                                                         "--eta", "1"]),
                             ("eta0", "rec", ["--eta", "0"]), ("eta0-explicit", "plain",
                                                               ["--sampler", "ddim", "--steps", "4", "--eta", "0"])]:
        outs[key] = tmp_path / f"{key}.png"
        r = runner.invoke(app, ["sample", "--model", str(tmp_path / model), "-n", "4", "--seed", "3",
                                "--out", str(outs[key]), *args])
        assert r.exit_code == 0, r.output
    assert outs["rec"].read_bytes() == outs["explicit"].read_bytes()
    assert outs["eta0"].read_bytes() == outs["eta0-explicit"].read_bytes()
    assert outs["rec"].read_bytes() != outs["eta0"].read_bytes()


@pytest.mark.parametrize("sampling", [{"options": {"steps": 4}}, {"sampler": "ddim", "options": [4]},
                                      {"sampler": "ddim", "options": {"steps": "4"}},
                                      {"sampler": "ddim", "options": {"eta": float("nan")}},
                                      {"sampler": "ddim", "options": {"steps": True}},
                                      {"sampler": "ddim", "options": {f"k{i}": 1 for i in range(17)}}])
def test_a_bad_options_record_is_a_config_error_naming_the_file(tmp_path, sampling):
    m = tiny()
    m.save_pretrained(tmp_path / "m")
    p = tmp_path / "m" / "config.json"
    doc = json.loads(p.read_text())
    doc["sampling"] = sampling
    p.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"config.json.*sampling\.(options|sampler)"):
        nfzoo.load(str(tmp_path / "m"))


@pytest.mark.parametrize("args,message", [
    (["--sampler", "ddmi"], "ddim"),                        # unknown sampler: suggests the close name
    (["--sampler", "ddim", "--steps", "0"], "Invalid value for '--steps'"),   # the CLI's own range check
    (["--sampler", "ddim", "--steps", "21"], "from 1 to the model's T = 20"),
    (["--sampler", "ddim", "--temperature", "0.7"], "temperature 1 only"),
    (["--steps", "5", "--sampler", "ancestral"], "takes no options"),
    (["--sampler", "ddim", "--eta", "1.5"], "Invalid value for '--eta'"),     # the CLI's own range check
    (["--sampler", "ddpm-ancestral", "--eta", "1"], "--eta is an option of the ddim sampler only"),
    (["--eta", "0.5", "--sampler", "ancestral"], "takes no options"),
])
def test_cli_bad_sampling_input_exits_2(runner, app, tmp_path, args, message):
    m = tiny()
    m.save_pretrained(tmp_path / "m")
    out = tmp_path / "s.png"
    r = runner.invoke(app, ["sample", "--model", str(tmp_path / "m"), "-n", "2", "--out", str(out), *args])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert not out.exists()


def test_cli_train_rejects_a_latent_the_unet_cannot_take(runner, app, tmp_path):
    r = runner.invoke(app, ["train", "diffused-flows", "--dataset", "digits", "--out", str(tmp_path / "r"),
                            "--set", "unet_channels=[8,8,8,8,8]"])
    assert r.exit_code == 2, r.output
    assert "cannot take a 8x8 latent" in r.output
    assert not (tmp_path / "r").exists()


def test_registered():
    reg = nfzoo.registry.plugins.get_registry()
    for kind, name in [("architectures", "ddpm"), ("architectures", "diffused-flows"),
                       ("samplers", "ddim"), ("samplers", "dpm-solver++"), ("samplers", "ddpm-ancestral"),
                       ("priors", "diffusion"), ("benchmarks", "diffusion")]:
        assert name in reg.registry(kind)
    doc = create_model("ddpm", image_shape=[1, 8, 8], **TINY_UNET).config
    assert json.loads(json.dumps(doc))["timesteps"] == 1000


def test_bench_diffusion_quick(tmp_path):
    from nfzoo_diffused_flows.bench import bench_diffusion

    doc = bench_diffusion(quick=True, log=lambda m: None, out_dir=str(tmp_path))
    cases = [r["case"] for r in doc["rows"]]
    assert cases[0] == "ddpm ancestral T=20" and "diffused-flows ddim 4" in cases and "glow T=0.7" in cases
    base = doc["rows"][0]
    assert base["ratio"] == pytest.approx(1.0) and base["fid_ratio"] == pytest.approx(1.0)
    for r in doc["rows"]:
        assert r["candidate_s"] > 0 and math.isfinite(r["fid_common"]) and r["n_common"] == 4
    same = [r for r in doc["rows"] if r["case"] == "diffused-flows ddim 4"][0]
    assert same["fid_common_ddpm_same_steps"] == [r for r in doc["rows"] if r["case"] == "ddpm ddim 4"][0][
        "fid_common"]
    same1 = [r for r in doc["rows"] if r["case"] == "diffused-flows ddim 4 eta=1"][0]
    assert same1["eta"] == 1.0 and same1["fid_common_ddpm_same_steps"] == [
        r for r in doc["rows"] if r["case"] == "ddpm ddim 4 eta=1"][0]["fid_common"]
    assert (tmp_path / "bench-diffusion.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "bench-diffusion.json").read_text())["rows"] == doc["rows"]


def test_samplers_clip_the_predicted_z0():
    m = tiny(latent_clip=0.5)
    p = m.prior
    with torch.no_grad():
        for prm in p.unet.parameters():        # a U-Net that predicts large noise
            prm.add_(0.2 * torch.randn_like(prm))
        z = 3 * torch.randn(4, 1, 8, 8)
        for t in (0, 7, 19):
            assert float(p.clipped_z0(z, torch.full((4,), t)).abs().max()) <= 0.5
    for kind in ("ddpm", "ddim"):
        cfg = p.scheduler(kind).config
        assert cfg.clip_sample and cfg.clip_sample_range == 0.5
    assert p.scheduler("dpm-solver++").config.prediction_type == "sample"
    p.clip = None
    assert not p.scheduler("ddim").config.clip_sample
    assert p.scheduler("dpm-solver++").config.prediction_type == "epsilon"
    assert tiny("ddpm").prior.clip == 1.0


def test_cli_eval_checks_the_sampler_options_before_any_work(runner, app, tmp_path):
    m = tiny()
    m.save_pretrained(tmp_path / "m")
    r = runner.invoke(app, ["eval", str(tmp_path / "m"), "--dataset", "digits", "--samples", "10",
                            "--oracle", str(tmp_path / "no-oracle"), "--sampler", "ddim", "--steps", "999"])
    assert r.exit_code == 2, r.output
    assert "from 1 to the model's T = 20" in r.output


@pytest.mark.parametrize("name", ["ddpm-mnist5k", "diffused-flows-mnist5k"])
def test_zoo_models_load_offline_and_reproduce_their_cards_bound(name, monkeypatch, tmp_path):
    from nfzoo.data import load_dataset
    from nfzoo.training.trainer import evaluate_bpd

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    entry = nfzoo.registry.plugins.get_registry().get("pretrained", name)
    m = nfzoo.load(name)
    assert m.architecture == entry.metadata["architecture"]
    # the measured default (docs/results/samples/NAME/ddim-t1.json), not the 1000-step ancestral sampler
    assert m.sampler.name == "ddim" and m.sampling_options() == {"steps": 20, "eta": 1.0}
    got = evaluate_bpd(m, load_dataset("mnist5k", "test"))["bpd"]   # seed 0, as the card's
    assert abs(got - entry.metadata["metrics"]["test_bpd_bound"]) < 1e-3
    m.sampler = DiffusionSampler("ddim")
    x = m.sample(2, generator=torch.Generator().manual_seed(0), steps=5)
    assert x.shape == (2, 1, 28, 28) and torch.isfinite(x).all()
