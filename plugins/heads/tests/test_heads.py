"""Tests of nfzoo-heads: synthesize, augment, inpaint, score, and their CLI commands and eval tasks.
Tiny models on 8x8 images; the zoo models only where a head's contract needs a real one."""
import json
import math

import pytest
import torch

import nfzoo
import nfzoo_heads
from nfzoo.data import load_dataset
from nfzoo.errors import UsageError
from nfzoo.loading.api import create_model
from nfzoo.registry.plugins import get_registry
from nfzoo_heads import augment as aug
from nfzoo_heads.images import read_image
from nfzoo_heads.inpainting import box_mask, inpaint, parse_box
from nfzoo_heads.scoring import auroc, bpd_of


def tiny(arch="glow", **kw):
    torch.manual_seed(0)
    cfg = {"image_shape": [1, 8, 8], "levels": 1, "steps": 1, "hidden": 8, **kw}
    if arch in ("ddpm",):
        cfg = {"image_shape": [1, 8, 8], "timesteps": 20, "unet_channels": [8, 16], **kw}
    m = create_model(arch, **cfg)
    x, y = load_dataset("digits", "train").batch(torch.arange(64))
    m.initialize(x, y if m.num_classes else None, generator=torch.Generator().manual_seed(0))
    m.eval()
    return m


@pytest.fixture(scope="module")
def glow():
    return tiny("glow")


@pytest.fixture(scope="module")
def glem():
    return tiny("glem", num_classes=10)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, glow, glem):
    d = tmp_path_factory.mktemp("models")
    glow.save_pretrained(d / "glow")
    glem.save_pretrained(d / "glem")
    return d


def digits(n=16, split="test"):
    return load_dataset("digits", split).batch(torch.arange(n))


def png(path, x):
    nfzoo_heads.images.save_single(x, path)
    return path


# ---------------------------------------------------------------- synthesize
def test_synthesize_writes_a_balanced_image_folder_that_loads_back(glem, tmp_path):
    man = nfzoo_heads.synthesize(glem, 23, tmp_path / "syn", temperature=0.7, seed=1, model_name="tiny")
    assert man["counts"] == {str(c): (3 if c < 3 else 2) for c in range(10)}
    assert sorted(p.name for p in (tmp_path / "syn").iterdir()) == [*map(str, range(10)), "manifest.json"]
    assert json.loads((tmp_path / "syn" / "manifest.json").read_text())["temperature"] == 0.7
    ds = load_dataset(f"folder:{tmp_path / 'syn'}", "all")     # every image (train is a 90% hold-out's rest)
    assert len(ds) == 23 and ds.num_classes == 10 and ds.image_shape == (1, 8, 8)
    order = sorted(range(len(ds)), key=lambda i: ds.samples[i][0])   # ImageFolder's order: class, then file
    labels = [ds[i][1] for i in order]
    assert labels == sorted(labels) and labels.count(0) == 3
    # the same seed gives the same images
    again, ya, _ = nfzoo_heads.sample_labelled(glem, 23, 0.7, seed=1)
    assert torch.equal((ds[order[0]][0] * 255).round(), (again[0] * 255).round())


def test_synthesize_class_folders_sort_in_label_order():
    from nfzoo_heads.synth import class_folder_names

    names = class_folder_names(12)
    assert names == sorted(names) and names[2] == "02" and names[11] == "11"


def test_synthesize_refuses_an_unconditional_model_and_writes_nothing(glow, tmp_path):
    with pytest.raises(UsageError, match="unconditional"):
        nfzoo_heads.synthesize(glow, 10, tmp_path / "syn")
    assert list(tmp_path.iterdir()) == []


def test_synthesize_failure_midway_leaves_nothing(glem, tmp_path, monkeypatch):
    import nfzoo_heads.images as images

    calls = {"n": 0}
    real = images.single_png_bytes

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError("disk full")
        return real(*a, **k)
    monkeypatch.setattr(images, "single_png_bytes", flaky)
    with pytest.raises(OSError):
        nfzoo_heads.synthesize(glem, 20, tmp_path / "syn")
    assert list(tmp_path.iterdir()) == []          # neither the folder nor its temporary sibling


def test_sample_labelled_redraws_non_finite_samples(glem, monkeypatch):
    real = type(glem).sample
    state = {"first": True}

    def sometimes_nan(self, n, y=None, **kw):
        x = real(self, n, y=y, **kw)
        if state["first"]:
            state["first"] = False
            x[:3] = float("nan")
        return x
    monkeypatch.setattr(type(glem), "sample", sometimes_nan)
    x, y, redrawn = nfzoo_heads.sample_labelled(glem, 20)
    assert redrawn == 3 and torch.isfinite(x).all() and torch.bincount(y).tolist() == [2] * 10


def test_cli_synth_bad_input_exits_2_and_writes_nothing(runner, app, model_dirs, tmp_path):
    r = runner.invoke(app, ["synth", "--model", str(model_dirs / "glow"), "--n", "5", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unconditional" in r.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    r = runner.invoke(app, ["synth", "--model", str(model_dirs / "glem"), "--n", "5", "--out", str(tmp_path / "full")])
    assert r.exit_code == 2 and "already exists" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    r = runner.invoke(app, ["synth", "--model", str(model_dirs / "glem"), "--n", "5", "--out", str(tmp_path / "ok"),
                            "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n"] == 5


# ------------------------------------------------------------------ CNN-A
def test_resnet18_for_small_images():
    from nfzoo_heads.classifier import resnet18_for

    for shape in ((1, 8, 8), (1, 28, 28), (3, 32, 32)):
        assert resnet18_for(shape, 7)(torch.rand(2, *shape)).shape == (2, 7)


def test_cnn_a_eval_task_runs_through_the_cli(runner, app, model_dirs):
    r = runner.invoke(app, ["eval", str(model_dirs / "glem"), "--dataset", "digits", "--task", "cnn-a",
                            "--samples", "20", "--set", "epochs=1", "--set", "baseline=false", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["task"] == "cnn-a" and doc["n_generated"] == 20 and 0.0 <= doc["accuracy"] <= 1.0
    assert doc["test_images"] == len(load_dataset("digits", "test"))
    r = runner.invoke(app, ["eval", str(model_dirs / "glem"), "--dataset", "digits", "--task", "cnn-a",
                            "--set", "nope=1"])
    assert r.exit_code == 2
    r = runner.invoke(app, ["eval", str(model_dirs / "glow"), "--dataset", "digits", "--task", "cnn-a"])
    assert r.exit_code == 2 and "unconditional" in r.output


def test_train_classifier_learns_a_separable_problem():
    from nfzoo_heads.classifier import train_classifier

    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 2
    x = torch.rand(64, 1, 8, 8, generator=g) * 0.2
    x[y == 1, :, :, :4] += 0.8                       # class 1: bright left half
    res = train_classifier(x, y, 2, (x, y), epochs=4, batch_size=16, augment=None)
    assert res["test_accuracy"] == 1.0 and len(res["train_loss"]) == 4


# --------------------------------------------------------------- augment
def test_slerp_mix_endpoints_and_scale():
    za, zb = torch.randn(5, 1, 8, 8), torch.randn(5, 1, 8, 8)
    assert torch.allclose(aug._mix(za, zb, torch.ones(5)), za, atol=1e-5)
    assert torch.allclose(aug._mix(za, zb, torch.zeros(5)), zb, atol=1e-5)
    assert torch.allclose(aug._mix(za, za, torch.full((5,), 0.3)), za, atol=1e-5)
    z = torch.randn(2000, 64)
    mid = aug._mix(z[:1000], z[1000:], torch.full((1000,), 0.5))
    assert float(mid.norm(dim=1).mean()) == pytest.approx(float(z.norm(dim=1).mean()), rel=0.05) # mean: / sqrt 2


def test_latent_mixup_keeps_labels_and_mixes_within_a_class(glow):
    x, y = digits(40, "train")
    g = torch.Generator().manual_seed(0)
    a = torch.randint(len(y), (100,), generator=g)
    assert (y[aug._partners(y, a, g)] == y[a]).all()
    xm, ym = nfzoo_heads.latent_mixup(glow, x, y, n=30)
    assert xm.shape == (30, 1, 8, 8) and ym.shape == (30,) and torch.isfinite(xm).all()
    assert xm.min() >= 0 and xm.max() <= 1


def test_principal_directions_find_the_dominant_direction():
    g = torch.Generator().manual_seed(0)
    u = torch.zeros(16)
    u[3] = 1.0
    z = torch.randn(500, 16, generator=g) * 0.1 + torch.randn(500, 1, generator=g) * 3.0 * u
    pcs = aug.PrincipalDirections(z.view(500, 1, 4, 4), k=2)
    assert abs(float(pcs.dirs[0] @ u)) > 0.99 and float(pcs.std[0]) == pytest.approx(3.0, rel=0.1)
    assert torch.equal(pcs.jitter(z.view(500, 1, 4, 4), 0.0, g), z.view(500, 1, 4, 4))


def test_latent_augment_dataset_batches(glow):
    x, y = digits(50, "train")
    ds = nfzoo_heads.LatentAugment(glow, (x, y), batch_size=16, p=0.0, seed=0)
    batches = list(ds)
    assert len(batches) == len(ds) == 4 and sum(len(b[1]) for b in batches) == 50
    seen = torch.cat([b[0] for b in batches])
    assert sorted(seen.flatten(1).sum(1).tolist()) == pytest.approx(sorted(x.flatten(1).sum(1).tolist()))
    full = nfzoo_heads.LatentAugment(glow, (x, y), batch_size=16, p=1.0, mode="pca", seed=0)
    a1 = full.epoch(torch.Generator().manual_seed(3))
    a2 = full.epoch(torch.Generator().manual_seed(3))
    (xa, ya), (xb, yb) = next(a1), next(a2)
    assert torch.equal(xa, xb) and torch.equal(ya, yb) and not torch.equal(xa, x[:16])
    with pytest.raises(UsageError, match="mode"):
        nfzoo_heads.LatentAugment(glow, (x, y), mode="cutmix")


def test_interpolation_ends_at_the_two_images(glow):
    x, _ = digits(2)
    path = nfzoo_heads.interpolate(glow, x[0], x[1], steps=5)
    assert path.shape == (5, 1, 8, 8)
    assert torch.allclose(path[0], glow.decode(glow.encode(x[:1]))[0].clamp(0, 1), atol=1e-4)
    assert (path[0] - x[0]).abs().max() < 2 / 255 and (path[-1] - x[1]).abs().max() < 2 / 255


def test_augment_study_and_cli(runner, app, model_dirs, tmp_path):
    r = runner.invoke(app, ["eval", str(model_dirs / "glow"), "--dataset", "digits", "--task", "augment",
                            "--set", "epochs=1", "--set", "seeds=[0, 1]", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc["arms"]) == {"standard", "latent"} and len(doc["arms"]["latent"]["test_accuracy"]) == 2
    r = runner.invoke(app, ["augment", "--model", str(model_dirs / "glow"), "--dataset", "digits", "--n", "12",
                            "--out", str(tmp_path / "aug"), "--json"])
    assert r.exit_code == 0, r.output
    assert len(load_dataset(f"folder:{tmp_path / 'aug'}", "all")) == 12
    x, _ = digits(2)
    a, b = png(tmp_path / "a.png", x[0]), png(tmp_path / "b.png", x[1])
    r = runner.invoke(app, ["augment", "--model", str(model_dirs / "glow"), "--interpolate", str(a),
                            "--interpolate", str(b), "--out", str(tmp_path / "i.png"), "--steps", "4"])
    assert r.exit_code == 0, r.output
    assert read_image(tmp_path / "i.png", 1).shape == (1, 12, 4 * 8 + 5 * 2)
    r = runner.invoke(app, ["augment", "--model", str(model_dirs / "glow"), "--dataset", "digits",
                            "--mode", "cutmix", "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and not (tmp_path / "bad").exists()


# --------------------------------------------------------------- inpaint
def test_box_mask_and_bad_boxes():
    m = box_mask((1, 8, 8), (2, 1, 5, 3))
    assert m.sum() == 6 and m[0, 0, 1, 2] == 1 and m[0, 0, 3, 2] == 0 and m[0, 0, 1, 5] == 0
    for box in ((0, 0, 9, 4), (-1, 0, 3, 3), (4, 4, 4, 6), (5, 0, 2, 3)):
        with pytest.raises(UsageError, match="not inside"):
            box_mask((1, 8, 8), box)
    with pytest.raises(UsageError, match="four integers"):
        parse_box("1,2,3")


@pytest.mark.parametrize("arch", ["glow", "ddpm"])
def test_inpaint_keeps_pixels_and_never_reads_the_hidden_ones(arch, glow):
    model = glow if arch == "glow" else tiny("ddpm")
    x, _ = digits(4)
    mask = box_mask((1, 8, 8), (2, 2, 6, 6))
    opts = {"iters": 5} if arch == "glow" else {"steps": 5, "resample": 2}
    out = inpaint(model, x, mask, torch.Generator().manual_seed(0), **opts)
    keep = mask == 0
    assert torch.equal(out[keep.expand_as(out)], x[keep.expand_as(x)])        # exactly, not approximately
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    other = x.clone()
    other[mask.expand_as(x) == 1] = torch.rand(int(mask.sum()) * 4)          # different hidden pixels
    again = inpaint(model, other, mask, torch.Generator().manual_seed(0), **opts)
    assert torch.equal(out, again)


def test_inpaint_bad_input(glow):
    x, _ = digits(2)
    with pytest.raises(UsageError, match="same size"):
        inpaint(glow, x, torch.ones(1, 1, 7, 8))
    with pytest.raises(UsageError, match="no option"):
        inpaint(glow, x, box_mask((1, 8, 8), (0, 0, 2, 2)), steps=3)
    with pytest.raises(UsageError, match="diffusion prior"):
        inpaint(glow, x, box_mask((1, 8, 8), (0, 0, 2, 2)), method="repaint")


def test_cli_inpaint_mask_convention_and_errors(runner, app, model_dirs, tmp_path):
    from PIL import Image

    x, _ = digits(1)
    img = png(tmp_path / "in.png", x[0])
    mask = torch.zeros(1, 8, 8)
    mask[:, 3:6, 1:4] = 1.0                                       # white = fill
    mpath = png(tmp_path / "m.png", mask)
    g = str(model_dirs / "glow")
    r = runner.invoke(app, ["inpaint", "--model", g, "--image", str(img), "--mask", str(mpath),
                            "--out", str(tmp_path / "o.png"), "--set", "iters=3"])
    assert r.exit_code == 0, r.output
    o, i = read_image(tmp_path / "o.png", 1), read_image(img, 1)
    assert torch.equal(o[mask == 0], i[mask == 0])
    Image.new("L", (9, 8)).save(tmp_path / "m9.png")
    (tmp_path / "not.png").write_text("not an image")
    for args, msg in ((["--mask", str(tmp_path / "m9.png")], "same size"),
                      (["--box", "0,0,9,2"], "not inside"),
                      (["--box", "0,0,2,2", "--mask", str(mpath)], "exactly one"),
                      (["--box", "0,0,2,2", "--image", str(tmp_path / "not.png")], "not an image")):
        argv = ["inpaint", "--model", g, "--image", str(img), "--out", str(tmp_path / "bad.png"), *args]
        r = runner.invoke(app, argv)
        assert r.exit_code == 2 and msg in r.output, (args, r.output)
        assert not (tmp_path / "bad.png").exists()


def test_anonymize_study_on_digits(glow, tmp_path, monkeypatch):
    import nfzoo.evaluation.oracle as oracle_mod
    from nfzoo_heads.inpainting import anonymize_study

    oracle = oracle_mod.OracleNet((1, 8, 8), 10)
    monkeypatch.setattr(oracle_mod, "find_oracle", lambda *a, **k: (oracle, "a random oracle"))
    doc = anonymize_study(glow, "digits", box=(2, 2, 6, 6), n=12, out=str(tmp_path / "g.png"), iters=3,
                          average=2)
    assert set(doc["rows"]) == {"original", "constant-black", "constant-gray", "blur", "inpaint", "inpaint-mean-2"}
    assert all(r["kept_pixels_unchanged"] for k, r in doc["rows"].items() if k != "original")
    assert doc["rows"]["constant-black"]["psnr_box_db"] < 99 and (tmp_path / "g.png").exists()


# ----------------------------------------------------------------- score
def test_bpd_of_matches_the_models_bpd(glow, glem):
    x, _ = digits(6)
    assert torch.allclose(bpd_of(glow, x), glow.bpd(x, noise=False), atol=1e-5)
    # class-conditional: the bpd of the class mixture p(x) = mean_y p(x | y)
    lp = torch.stack([glem.log_prob(x, torch.full((6,), c), noise=False) for c in range(10)], 1)
    mix = -(torch.logsumexp(lp, 1) - math.log(10)) / (64 * math.log(2))
    assert torch.allclose(bpd_of(glem, x), mix, atol=1e-5)


def test_auroc_orders():
    a = torch.tensor([0.0, 1.0, 2.0])
    assert auroc(a, a + 10) == 1.0 and auroc(a + 10, a) == 0.0
    assert auroc(a, torch.tensor([float("nan"), 5.0])) == 1.0      # non-finite = most anomalous


def test_ood_task_and_score_cli(runner, app, model_dirs, tmp_path):
    r = runner.invoke(app, ["eval", str(model_dirs / "glow"), "--dataset", "digits", "--task", "ood",
                            "--samples", "40", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {"digits-upscaled", "inverted", "uniform-noise"} <= set(doc["rows"])
    assert all(0 <= v["auroc_bpd"] <= 1 and 0 <= v["auroc_typicality"] <= 1 for v in doc["rows"].values())
    x, _ = digits(3)
    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    for i in range(3):
        png(tmp_path / "imgs" / ("sub" if i else "") / f"{i}.png", x[i])
    r = runner.invoke(app, ["score", "--model", str(model_dirs / "glow"), "--images", str(tmp_path / "imgs"),
                            "--reference", "digits", "--json"])
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["path"].rsplit("/", 1)[1] for rec in recs] == ["0.png", "1.png", "2.png"]
    glow = nfzoo.load(str(model_dirs / "glow"))
    want = bpd_of(glow, torch.stack([read_image(tmp_path / "imgs" / "0.png", 1)]))
    assert recs[0]["bpd"] == pytest.approx(float(want[0]), abs=1e-5) and recs[0]["typicality"] >= 0
    (tmp_path / "imgs" / "notes.txt").write_text("hello")
    r = runner.invoke(app, ["score", "--model", str(model_dirs / "glow"), "--images", str(tmp_path / "imgs"),
                            "--reference", "digits", "--json"])
    assert r.exit_code == 2 and "notes.txt" in r.output and r.stdout.strip() == ""
    r = runner.invoke(app, ["score", "--model", str(model_dirs / "glow"), "--images", str(tmp_path / "imgs")])
    assert r.exit_code == 2


def test_plugins_lists_the_heads(runner, app):
    r = runner.invoke(app, ["plugins", "--json"])
    heads = {p["name"]: p["heads"] for p in json.loads(r.stdout)}["heads"]
    assert sorted(heads) == ["augment", "inpaint", "score", "synthesize"]
    tasks = {p["name"]: p["eval_tasks"] for p in json.loads(r.stdout)}["heads"]   # register_eval_tasks
    assert tasks == ["anonymize", "augment", "cnn-a", "ood"]
    assert {e.name: e.metadata["head"] for e in get_registry().list("eval_tasks")}["cnn-a"] == "synthesize"
    r = runner.invoke(app, ["eval", "glow-mnist5k", "--dataset", "mnist5k", "--task", "nope"])
    assert r.exit_code == 2 and "cnn-a" in r.output


def test_the_guides_example_runs(tmp_path, monkeypatch):
    """The Python block of the applications guide (docs/pages/guides/heads.md; tests/test_guides.py runs the
    whole page too), and what its comments promise."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "pages" / "guides" / "heads.md").read_text()
    block = text[text.index("```python") + len("```python"):]
    block = block[:block.index("```")]
    scope = {}
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "heads guide example", "exec"), scope)
    assert scope["path"].shape == (6, 1, 28, 28) and len(scope["records"]) == 8
    assert scope["images"].shape == (20, 1, 28, 28) and scope["classes"].tolist() == sorted(scope["classes"].tolist())


def test_bpd_of_averages_repeated_estimates_of_a_diffusion_bound():
    m = tiny("ddpm")
    x, _ = digits(4)
    one = bpd_of(m, x, seed=0, repeats=1)
    assert not torch.equal(one, bpd_of(m, x, seed=1, repeats=1))          # a stochastic estimate
    g = torch.Generator().manual_seed(0)
    want = sum(m.bpd(x, generator=g, noise=False).double() for _ in range(3)) / 3
    assert torch.allclose(bpd_of(m, x, seed=0, repeats=3), want.float(), atol=1e-5)
    assert nfzoo_heads.scoring.default_repeats(m) == 8
    with pytest.raises(UsageError, match="repeats"):
        bpd_of(m, x, repeats=0)


def test_inpaint_and_anonymize_options_are_typed_and_bounded(glow):
    """From Python as from --set (any JSON or a string): wrong types, nan/inf and out-of-range values are
    UsageErrors naming the option, before any work (issue 20)."""
    from nfzoo_heads.inpainting import anonymize_study, check_options

    x = digits(1)[0]
    m = box_mask(x.shape[1:], (1, 1, 4, 4))
    for bad in ({"iters": "abc"}, {"iters": 1e9}, {"lr": float("nan")}, {"sigma": float("inf")},
                {"langevin": True}, {"noise": -1}):
        with pytest.raises(UsageError, match=next(iter(bad))):
            inpaint(glow, x, m, **bad)
    assert check_options("latent", {"iters": 3.0, "lr": 1}) == {"iters": 3, "lr": 1.0}
    for bad in ({"batch_size": 0}, {"average": 0}, {"n": -5}, {"blur_sigma": float("nan")}, {"box": 5},
                {"box": "1,2"}, {"seed": 2 ** 40}):
        with pytest.raises(UsageError):
            anonymize_study(glow, "digits", **bad)
