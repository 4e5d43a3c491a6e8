"""nfzoo-tarflow: the bijectors through the testing kit, the KV-cache inverse against the plain one,
guidance, the denoising step, the sampler, training / sampling / eval through the CLI, and clear refusals."""
import json

import pytest
import torch

import nfzoo
from nfzoo.errors import ConfigError, UsageError
from nfzoo.testing import check_bijector
from nfzoo_tarflow.flow import TarFlow, TarFlowBlock

TINY = {"patch_size": 2, "hidden": 16, "layers": 1, "heads": 2}


def perturbed(module, scale=0.1, seed=0):
    """Every weight moved off its init (the zero-init output would make every block the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def tiny_model(**kw):
    torch.manual_seed(0)
    cfg = {"image_shape": (1, 8, 8), "patch_size": 2, "hidden": 16, "blocks": 2, "layers": 1, "heads": 2, **kw}
    return perturbed(nfzoo.create_model("tarflow", **cfg)).eval()


# ------------------------------------------------------------------------------------- the testing kit
@pytest.mark.parametrize("flip", [False, True])
def test_block_passes_the_testing_kit(flip):
    check_bijector(TarFlowBlock((1, 4, 4), flip=flip, **TINY), (2, 1, 4, 4))


def test_conditional_stack_on_non_square_multichannel_images_passes_the_kit():
    flow = TarFlow((2, 4, 6), blocks=2, num_classes=2, **TINY)
    check_bijector(flow, (2, 2, 4, 6), context=torch.tensor([1, 0]))


def test_first_patch_passes_unchanged_and_a_new_block_is_the_identity():
    block = TarFlowBlock((1, 4, 4), **TINY)
    x = torch.randn(3, 1, 4, 4)
    z, ld = block(x)
    assert torch.equal(z, x) and torch.equal(ld, torch.zeros(3))
    perturbed(block)
    z, _ = block(x)
    assert torch.equal(z[:, :, :2, :2], x[:, :, :2, :2])       # patch 0 (raster order) is never transformed
    assert not torch.allclose(z[:, :, 2:, 2:], x[:, :, 2:, 2:])


def test_a_token_depends_only_on_the_tokens_before_it():
    """Causality: changing patch t changes z at patches >= t only (in the block's token order)."""
    for flip in (False, True):
        block = perturbed(TarFlowBlock((1, 4, 4), flip=flip, **TINY))
        x = torch.randn(1, 1, 4, 4)
        x2 = x.clone()
        x2[:, :, 0:2, 2:4] += 1.0                     # patch 1 in raster order (patch 2 reversed)
        d = (block(x)[0] - block(x2)[0]).abs().sum(1)[0]
        patches = [d[i:i + 2, j:j + 2].sum().item() for i in (0, 2) for j in (0, 2)]
        before = [0] if not flip else [3, 2]           # the patches earlier in the block's order
        assert all(patches[k] == 0 for k in before), (flip, patches)


# ------------------------------------------------------------------------------------- the inverse
def test_kv_cache_inverse_equals_the_inverse_without_cache():
    torch.manual_seed(0)
    flow = perturbed(TarFlow((1, 8, 8), blocks=3, num_classes=3, **TINY)).double()
    z = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1])
    for labels, kw in ((y, {}), (y, {"guidance": 1.5}), (y, {"guidance": 2.0, "guidance_anneal": True}),
                       (y, {"guidance": 1.0, "attn_temp": 0.5}), (None, {"guidance": 1.0, "attn_temp": 2.0})):
        a, la = flow.inverse(z, labels, cache=True, **kw)
        b, lb = flow.inverse(z, labels, cache=False, **kw)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        torch.testing.assert_close(la, lb, rtol=0, atol=1e-10)


# the inverse's settings the Jacobi tests run through: labels and guidance of the sequential inverse
JACOBI_CASES = [(False, {}), (True, {}), (True, {"guidance": 1.5}), (True, {"guidance": 2.0, "guidance_anneal": True}),
                (False, {"guidance": 1.0, "attn_temp": 2.0})]


def jacobi_flow():
    """A tiny perturbed class-conditional TarFlow in float64: 8x8 images in 2x2 patches, T = 16 per block."""
    torch.manual_seed(0)
    flow = perturbed(TarFlow((1, 8, 8), blocks=3, num_classes=3, **TINY)).double()
    z = torch.randn(4, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return flow, z, torch.tensor([0, 1, 2, 1])


@pytest.mark.parametrize("labelled, kw", JACOBI_CASES)
def test_jacobi_decoding_at_convergence_equals_the_sequential_inverse(labelled, kw):
    flow, z, y = jacobi_flow()
    y = y if labelled else None
    with torch.no_grad():
        seq, lseq = flow.inverse(z, y, **kw)
        # a tight tolerance: the same numbers up to rounding, and fewer iterations than tokens
        stats = []
        x, lx = flow.inverse(z, y, jacobi=True, jacobi_tol=1e-12, stats=stats, **kw)
        torch.testing.assert_close(x, seq, rtol=0, atol=1e-10)
        torch.testing.assert_close(lx, lseq, rtol=0, atol=1e-10)
        assert [s["tokens"] for s in stats] == [16] * 3 and all(s["sequential_steps"] == 0 for s in stats)
        assert all(1 <= s["iterations"] <= 15 for s in stats)
        # a looser one: within 20 x the tolerance (the error of a fixed token is about its last change)
        stats = []
        x, lx = flow.inverse(z, y, jacobi=True, jacobi_tol=1e-5, stats=stats, **kw)
        assert 0 < float((x - seq).abs().max()) <= 2e-4
        assert float((lx - lseq).abs().max()) <= 2e-4
        assert all(s["sequential_steps"] == 0 for s in stats) and sum(s["iterations"] for s in stats) < 3 * 15


@pytest.mark.parametrize("labelled, kw", JACOBI_CASES)
def test_jacobi_with_as_many_iterations_as_patches_is_exact_and_a_tiny_limit_falls_back(labelled, kw):
    """With a tolerance no change meets, every iteration fixes exactly the one token whose inputs are final:
    T - 1 iterations decode the block (any limit >= T - 1 is exact, no sequential step); a smaller limit
    hands the rest to the sequential inverse, with the same result."""
    flow, z, y = jacobi_flow()
    y = y if labelled else None
    with torch.no_grad():
        seq, lseq = flow.inverse(z, y, **kw)
        for iters in (16, 15, 5, 2, 1):
            stats = []
            x, lx = flow.inverse(z, y, jacobi=True, jacobi_tol=1e-300, jacobi_iters=iters, stats=stats, **kw)
            torch.testing.assert_close(x, seq, rtol=0, atol=1e-12)
            torch.testing.assert_close(lx, lseq, rtol=0, atol=1e-12)
            used = min(iters, 15)
            # one Transformer call per iteration (plus one to cache the last fixed token before a fallback, and
            # one per sequential step); the cached prefix is not rerun: iteration k >= 2 runs T + 1 - k tokens
            fallback = int(used < 15)
            calls = used + fallback + (15 - used)
            computed = 15 + sum(17 - k for k in range(2, used + 1)) + fallback + (15 - used)
            assert stats == [{"iterations": used, "sequential_steps": 15 - used, "net_calls": calls,
                              "tokens_computed": computed, "tokens": 16}] * 3, (iters, stats)
        stats = []
        flow.inverse(z, y, stats=stats, **kw)
        assert stats == [{"iterations": 0, "sequential_steps": 15, "net_calls": 15, "tokens_computed": 15,
                          "tokens": 16}] * 3
        # a loose tolerance and a tiny limit: the fallback continues from the first unfixed token
        stats = []
        x, _ = flow.inverse(z, y, jacobi=True, jacobi_tol=1e-3, jacobi_iters=2, stats=stats, **kw)
        assert all(s["iterations"] == 2 and 0 < s["sequential_steps"] <= 13 for s in stats), stats
        assert float((x - seq).abs().max()) <= 1e-2


@pytest.mark.parametrize("labelled", [False, True])
def test_the_forward_of_a_jacobi_decoded_sample_returns_its_latent(labelled):
    flow, z, y = jacobi_flow()
    y = y if labelled else None
    with torch.no_grad():
        for tol, iters, atol in ((1e-12, None, 1e-10), (1e-300, 3, 1e-12), (1e-6, None, 1e-4)):
            x, lx = flow.inverse(z, y, jacobi=True, jacobi_tol=tol, jacobi_iters=iters)
            back, lb = flow(x, y)
            torch.testing.assert_close(back, z, rtol=0, atol=atol)
            torch.testing.assert_close(lb, -lx, rtol=0, atol=atol)


def test_jacobi_in_float32_matches_the_sequential_sampler_through_the_model_and_the_sampler():
    """float32, the sampler's path (decode_options -> decode, denoising included): a tolerance of 1e-5
    gives images within 1e-3 of the sequential sampler's (pixels in [0, 1]); the options reach decode."""
    for kw in ({}, {"num_classes": 3, "label_dropout": 0.1}):
        m = tiny_model(**kw)
        y = None if not kw else torch.tensor([0, 1, 2, 0])
        g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
        guide = {"guidance": 1.0} if kw else {"guidance": 1.0, "attn_temp": 1.5}
        for opts in ({}, guide):
            seq = m.sample(4, y, generator=g(), **opts)
            jac = m.sample(4, y, generator=g(), jacobi=1, jacobi_tol=1e-5, **opts)
            assert 0 < float((jac - seq).abs().max()) <= 1e-3, (kw, opts)
            z = nfzoo.create_sampler("tarflow").sample(m, 4, y, generator=g(), jacobi=1, jacobi_tol=1e-5, **opts)
            stats = []
            with torch.no_grad():
                direct = m.decode(z, y, jacobi=True, jacobi_tol=1e-5, stats=stats,
                                  **{"guidance": 0.0, **opts})
            assert torch.equal(jac, direct) and len(stats) == 2
            limited = m.sample(4, y, generator=g(), jacobi=1, jacobi_tol=1e-5, jacobi_iters=1, **opts)
            assert float((limited - seq).abs().max()) <= 1e-3


def test_jacobi_refusals_of_the_block():
    flow, z, _ = jacobi_flow()
    with pytest.raises(ValueError, match="cache=False"):
        flow.inverse(z, jacobi=True, cache=False)
    with pytest.raises(ValueError, match="jacobi_tol"):
        flow.inverse(z, jacobi=True, jacobi_tol=0.0)
    with pytest.raises(ValueError, match="jacobi_iters"):
        flow.inverse(z, jacobi=True, jacobi_iters=0)


def test_guidance_zero_is_the_conditional_inverse_and_equal_embeddings_make_guidance_vanish():
    torch.manual_seed(0)
    flow = perturbed(TarFlow((1, 8, 8), blocks=2, num_classes=3, **TINY)).double()
    z = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    y = torch.tensor([2, 0, 1])
    cond = flow.inverse(z, y)[0]
    torch.testing.assert_close(flow.inverse(z, y, guidance=0.0)[0], cond, rtol=0, atol=0)
    assert not torch.allclose(flow.inverse(z, y, guidance=2.0)[0], cond)   # guidance acts ...
    with torch.no_grad():                      # ... through the difference to the mean class only
        for block in flow.blocks:
            block.class_embed.copy_(block.class_embed[:1].expand_as(block.class_embed))
    torch.testing.assert_close(flow.inverse(z, y, guidance=3.0)[0], flow.inverse(z, y)[0], rtol=0, atol=1e-12)


def test_unconditional_guidance_against_another_attention_temperature():
    torch.manual_seed(0)
    flow = perturbed(TarFlow((1, 8, 8), blocks=2, **TINY)).double()
    z = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    plain = flow.inverse(z)[0]
    torch.testing.assert_close(flow.inverse(z, guidance=2.0, attn_temp=1.0 + 1e-12)[0], plain, rtol=0, atol=1e-9)
    assert not torch.allclose(flow.inverse(z, guidance=2.0, attn_temp=2.0)[0], plain)
    with pytest.raises(ValueError, match="attn_temp"):
        flow.inverse(z, guidance=1.0)
    m = tiny_model()
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    x = m.sample(3, generator=g(), guidance=1.0, attn_temp=1.5)
    assert torch.isfinite(x).all() and not torch.equal(x, m.sample(3, generator=g()))


def test_samples_stay_finite_even_from_extreme_weights_and_latents():
    """The bounded log-scale and the final LayerNorm bound (a, b): no overflow, whatever the weights."""
    m = tiny_model()
    perturbed(m, scale=3.0, seed=1)
    z = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 10
    v, _ = m.bijector.inverse(z)
    assert torch.isfinite(v).all()
    x = m.sample(16, temperature=3.0, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(x).all() and 0 <= float(x.min()) and float(x.max()) <= 1


def test_denoising_moves_samples_toward_higher_log_density():
    m = tiny_model(noise_sigma=0.05)
    v = m.bijector.inverse(torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(0)))[0].detach()

    def log_p(v):
        z, ld = m.bijector(v)
        return m.prior.log_prob(z) + ld

    with torch.no_grad():
        before, after = log_p(v), log_p(m.denoise(v))
    assert bool((after > before).all()), (after - before)


# ------------------------------------------------------------------------------------- model and sampler
def test_bpd_is_the_cores_dequantized_bound_on_the_minus_one_one_scale():
    m = tiny_model(noise_sigma=0.0)
    x = torch.rand(4, 1, 8, 8)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    v = 2 * m.dequantize(x, generator=g()) - 1
    z, ld = m.bijector(v)
    d = 64
    want = -(m.prior.log_prob(z) + ld + d * torch.log(torch.tensor(2.0)) - d * torch.log(torch.tensor(256.0)))
    torch.testing.assert_close(m.bpd(x, generator=g()), want / (d * torch.log(torch.tensor(2.0))))
    xs = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(m.decode(m.encode(xs), denoise=False), m.dequantize(xs, noise=False))


def test_the_tarflow_sampler_guides_conditional_models_and_is_seeded():
    m = tiny_model(num_classes=3, label_dropout=0.1)
    y = torch.tensor([0, 1, 2])
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    plain = m.sample(3, y, generator=g())
    assert m.sampler.name == "tarflow" and torch.equal(plain, m.sample(3, y, generator=g(), guidance=0.0))
    guided = m.sample(3, y, generator=g(), guidance=2.0, guidance_anneal=1)
    assert torch.isfinite(guided).all() and not torch.equal(guided, plain)
    z = nfzoo.create_sampler("tarflow").sample(m, 3, y, generator=g(), guidance=2.0, guidance_anneal=1)
    assert torch.equal(guided, m.decode(z, y, guidance=2.0, guidance_anneal=True))


def test_label_dropout_trains_the_unconditional_embedding():
    m = tiny_model(num_classes=3, label_dropout=0.5).train()
    x, y = torch.rand(16, 1, 8, 8), torch.arange(16) % 3
    loss, bpd = m.training_loss(x, y, "all", 0, 1, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and bpd.shape == (16,)
    assert m.training_draws_per_image is None
    emb = m.bijector.blocks[0].class_embed
    assert emb.grad is not None and bool((emb.grad.abs().sum(1) > 0).all())


@pytest.mark.parametrize("options, match", [({"steps": 10}, "guidance, guidance_anneal, attn_temp, jacobi, "
                                                           "jacobi_tol and jacobi_iters"),
                                            ({"guidance": -1.0}, "guidance must be"),
                                            ({"guidance": 1.0}, "set attn_temp"),
                                            ({"attn_temp": 0.0}, "attn_temp must be"),
                                            ({"guidance_anneal": 2}, "guidance_anneal"),
                                            ({"jacobi": 2}, "jacobi must be 1"),
                                            ({"jacobi_tol": 1e-3}, "add jacobi=1"),
                                            ({"jacobi": 0, "jacobi_iters": 3}, "add jacobi=1"),
                                            ({"jacobi": 1, "jacobi_tol": 0.0}, "jacobi_tol must be"),
                                            ({"jacobi": 1, "jacobi_tol": -1e-3}, "jacobi_tol must be"),
                                            ({"jacobi": 1, "jacobi_tol": True}, "jacobi_tol must be"),
                                            ({"jacobi": 1, "jacobi_iters": 0}, "jacobi_iters must be"),
                                            ({"jacobi": 1, "jacobi_iters": 2.5}, "jacobi_iters must be"),
                                            ({"jacobi": 1, "jacobi_iters": -3}, "jacobi_iters must be")])
def test_bad_sampler_options_are_clear_usage_errors(options, match):
    m = tiny_model()
    with pytest.raises(UsageError, match=match):
        m.sample(2, **options)


def test_the_sampler_refuses_other_models():
    glow = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)
    with pytest.raises(UsageError, match="needs a TarFlow model"):
        glow.sample(2, sampler="tarflow")


@pytest.mark.parametrize("config, match", [({"patch_size": 3}, "patch_size=3 does not divide"),
                                           ({"patch_size": 8}, "one patch"),
                                           ({"hidden": 20, "heads": 3}, "multiple of heads"),
                                           ({"label_dropout": 0.1}, "class-conditional"),
                                           ({"noise_sigma": -1.0}, "noise_sigma")])
def test_bad_configs_are_config_errors(config, match):
    with pytest.raises(ConfigError, match=match):
        nfzoo.create_model("tarflow", image_shape=(1, 8, 8), **{"hidden": 16, "heads": 2, **config})


# ------------------------------------------------------------------------------------- the CLI
def test_train_resume_sample_and_eval_through_the_cli(runner, app, tmp_path):
    run = tmp_path / "run"
    args = ["train", "tarflow", "--dataset", "digits", "--epochs", "1", "--batch-size", "256", "--ema", "0.9",
            "--seed", "0", "--out", str(run), "--set", "patch_size=4", "--set", "hidden=16",
            "--set", "blocks=2", "--set", "layers=1", "--set", "heads=2"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["architecture"] == "tarflow" and cfg["config"]["noise_sigma"] == 0.1
    res = runner.invoke(app, ["train", "tarflow", "--dataset", "digits", "--resume", "--out", str(run),
                              "--epochs", "2"])
    assert res.exit_code == 0, res.output
    assert len(json.loads((run / "history.json").read_text())) == 2
    png = tmp_path / "s.png"
    res = runner.invoke(app, ["sample", "--model", str(run), "-n", "4", "--seed", "1", "--out", str(png)])
    assert res.exit_code == 0 and png.stat().st_size > 0, res.output
    from nfzoo.evaluation.oracle import OracleNet

    torch.manual_seed(0)
    OracleNet(image_shape=(1, 8, 8)).eval().save(tmp_path / "oracle")    # an untrained oracle: the plumbing
    res = runner.invoke(app, ["eval", str(run), "--dataset", "digits", "--samples", "12", "--oracle",
                              str(tmp_path / "oracle"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert 0 < doc["bpd"] < 20 and doc["sampler"] == "tarflow" and doc["n_samples"] == 12
    assert doc["nonfinite_samples"] == 0 and isinstance(doc["fid"], float)
    # the sampler's own options are recorded with the measurement (the zoo's sweep reads them back)
    res = runner.invoke(app, ["eval", str(run), "--dataset", "digits", "--samples", "12", "--oracle",
                              str(tmp_path / "oracle"), "--sampler-option", "guidance=1", "--sampler-option",
                              "attn_temp=1.5", "--out", str(tmp_path / "g.json")])
    assert res.exit_code == 0, res.output
    from nfzoo.evaluation.results import measured_sampler_options

    doc = json.loads((tmp_path / "g.json").read_text())
    assert doc["sampler_options"] == "attn_temp,guidance" and doc["guidance"] == 1.0
    assert measured_sampler_options(doc) == {"guidance": 1.0, "attn_temp": 1.5}
    assert "--sampler-option guidance=1" in doc["measured_by"]["command"]


def test_cli_refusals_exit_2_without_traceback(runner, app, tmp_path):
    res = runner.invoke(app, ["train", "tarflow", "--dataset", "digits", "--set", "patch_size=3",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "patch_size=3 does not divide" in res.output and "Traceback" not in res.output
    m = nfzoo.create_model("tarflow", image_shape=(1, 8, 8), patch_size=4, hidden=16, blocks=1, layers=1, heads=2)
    m.save_pretrained(tmp_path / "m")
    res = runner.invoke(app, ["sample", "--model", str(tmp_path / "m"), "--steps", "5", "--out",
                              str(tmp_path / "s.png")])
    assert res.exit_code == 2 and "attn_temp" in res.output and "Traceback" not in res.output


def test_quick_bench_times_every_case_against_tarflow_and_the_uncached_inverse_matches():
    from nfzoo_tarflow.bench import _no_cache, _tiny_models, bench_tarflow

    lines = []
    doc = bench_tarflow(quick=True, log=lines.append)
    by_candidate = {r["baseline"]: r for r in doc["rows"]}
    assert set(by_candidate) == {"tarflow (no KV cache)", "ddpm ancestral T=20", "ddpm ddim 4 eta=1", "glow"}
    for r in doc["rows"]:
        assert r["candidate"] == "tarflow" and r["baseline_s"] > 0 and r["candidate_s"] > 0
        assert r["ratio"] == pytest.approx(r["baseline_s"] / r["candidate_s"])
        assert r["baseline_finite"] == 10 and r["candidate_finite"] == 10
    assert len(lines) == 5 and any("--quick" in n for n in doc["notes"])
    tf = _tiny_models("cpu")["tarflow"].eval()
    with torch.no_grad():
        cached = tf.sample(4, generator=torch.Generator().manual_seed(3))
        uncached = _no_cache(tf, 4, torch.Generator().manual_seed(3))
    torch.testing.assert_close(uncached, cached, atol=1e-5, rtol=1e-5)
    # a class-conditional model at a guided default sampling: the labels reach both inverses
    torch.manual_seed(1)
    cond = nfzoo.create_model("tarflow", image_shape=(1, 28, 28), patch_size=7, hidden=16, blocks=2, layers=1,
                              heads=2, num_classes=3).eval()
    with torch.no_grad():
        for q in cond.parameters():
            q.add_(0.3 * torch.randn_like(q))
    cond.set_sampling({"sampler": "tarflow", "temperature": 1.0, "options": {"guidance": 1.0}})
    y = torch.arange(4) % 3
    with torch.no_grad():
        cached = cond.sample(4, y=y, generator=torch.Generator().manual_seed(3))
        uncached = _no_cache(cond, 4, torch.Generator().manual_seed(3), y)
        relabelled = _no_cache(cond, 4, torch.Generator().manual_seed(3), (y + 1) % 3)
    # pixels in [0, 1]: the two inverses sum in other orders, which the guided, perturbed blocks amplify
    torch.testing.assert_close(uncached, cached, atol=5e-4, rtol=0)
    assert (relabelled - cached).abs().max() > 1e-2


def test_sampler_options_from_the_cli_guide_sampling_and_bad_ones_exit_2(runner, app, tmp_path):
    from PIL import Image

    torch.manual_seed(0)
    m = nfzoo.create_model("tarflow", image_shape=(1, 8, 8), patch_size=4, hidden=16, blocks=2, layers=1, heads=2)
    with torch.no_grad():                      # a non-trivial model: a new block is the identity
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    m.save_pretrained(tmp_path / "m")

    def grid(name, *extra):
        out = tmp_path / name
        res = runner.invoke(app, ["sample", "--model", str(tmp_path / "m"), "-n", "4", "--seed", "1",
                                  "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        import numpy as np

        return torch.from_numpy(np.asarray(Image.open(out), dtype=np.float32))

    guided = ("--sampler-option", "guidance=1", "--sampler-option", "attn_temp=1.5")
    plain, g1, g2 = grid("plain.png"), grid("g1.png", *guided), grid("g2.png", *guided)
    assert torch.equal(g1, g2) and (g1 - plain).abs().max() > 0
    # Jacobi decoding at a tight tolerance draws the same 8-bit grid (at most one level apart)
    jacobi = ("--sampler-option", "jacobi=1", "--sampler-option", "jacobi_tol=1e-6")
    assert (grid("j.png", *jacobi) - plain).abs().max() <= 1
    assert (grid("jg.png", *jacobi, *guided, "--sampler-option", "jacobi_iters=2") - g1).abs().max() <= 1
    res = runner.invoke(app, ["eval", str(tmp_path / "m"), "--dataset", "digits", "--json", *guided])
    assert res.exit_code == 0, res.output
    for extra, match in [(["--sampler-option", "foo=1"], "takes the options guidance"),
                         (["--sampler-option", "guidance=much"], "guidance must be a number"),
                         (["--sampler-option", "guidance=1"], "set attn_temp"),
                         (["--sampler-option", "jacobi_tol=0.001"], "add jacobi=1"),
                         (["--sampler-option", "jacobi=1", "--sampler-option", "jacobi_iters=0"],
                          "jacobi_iters must be"),
                         (["--sampler-option", "guidance=1", "--sampler-option", "guidance=2"], "given twice"),
                         (["--sampler-option", "=1"], "KEY=VALUE"),
                         (["--sampler-option", "guidance"], "KEY=VALUE"),
                         (["--sampler-option", "guidance=[1, 2]"], "takes a number"),
                         (["--sampler-option", "guidance=1e999"], "finite"),
                         (["--steps", "5", "--sampler-option", "steps=5"], "give it once")]:
        res = runner.invoke(app, ["sample", "--model", str(tmp_path / "m"), "-n", "2", "--out",
                                  str(tmp_path / "bad.png"), *extra])
        assert res.exit_code == 2 and match in res.output and "Traceback" not in res.output, (extra, res.output)
    assert not (tmp_path / "bad.png").exists()


def test_quick_jacobi_bench_writes_its_json_and_markdown(tmp_path):
    from nfzoo.registry.plugins import get_registry
    from nfzoo_tarflow.jacobi_bench import bench_jacobi, main

    assert get_registry().get("benchmarks", "tarflow-jacobi").load() is bench_jacobi
    stem = tmp_path / "jacobi"
    assert main(["--quick", "--model", "tarflow-mnist5k-cond", "--tolerances", "0.01,1e-4", "--seeds", "0,1",
                 "--samples", "10", "--repeat", "2", "--out", str(stem)]) == 0
    doc = json.loads(stem.with_suffix(".json").read_text())
    assert doc["bench"] == "tarflow-jacobi" and "jacobi_bench --quick" in doc["measured_by"]["command"]
    assert doc["protocol"]["seeds"] == [0, 1] and doc["protocol"]["samples_per_seed"] == 10
    assert doc["machine"]["before"]["nproc"] >= 1 and doc["machine"]["before"]["torch_threads"] >= 1
    (model,) = doc["models"]
    assert model["sampling"]["guidance"] == 1.0 and model["tokens_per_block"] == 16
    settings = {s["setting"]: s for s in model["settings"]}
    assert list(settings) == ["sequential", "jacobi tol=0.01", "jacobi tol=0.0001"]
    assert settings["sequential"]["max_pixel_diff_vs_sequential"] == 0
    for name in ("jacobi tol=0.01", "jacobi tol=0.0001"):
        s = settings[name]
        assert len(s["iterations_per_block"]) == 2 * 2 and all(1 <= i <= 15 for i in s["iterations_per_block"])
        assert s["sequential_fallback_steps"] == 0 and s["max_pixel_diff_vs_sequential"] < 0.05
        assert len(s["fid"]) == 2 and s["nonfinite_samples"] == 0
        base = settings["sequential"]["decode_s_mean"]
        assert s["time_ratio_vs_sequential"] == pytest.approx(s["decode_s_mean"] / base)
    for row in doc["rows"]:
        assert row["baseline"] == "sequential" and row["ratio"] == pytest.approx(row["baseline_s"] / row["candidate_s"])
    md = stem.with_suffix(".md").read_text()
    assert "| jacobi tol=0.01 |" in md and "Command: `" in md and "nproc" in md and "load average" in md
