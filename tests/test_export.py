"""Exported samplers (issue 24): `nfzoo export` and nfzoo.export.onnx write ONNX graphs that reproduce the torch model
(the sample direction on 1,000 latents: images within 1e-4; the density direction on 1,000 mnist5k test images:
latents, log-dets and log-densities within 1e-4 of max(1, |value|)), a manifest that says what each graph is and
why anything was not exported, and a runner that needs neither torch nor nfzoo.

Each model is exported once per module (the `exported` fixture): the zoo's inverse-flow, glow, realnvp, glem and
diffusion models (embedded weights), a tiny NICE model folder, and small copies of the zoo's quad-flow, nsf and
cinc-flow (`small_copy`). Exporting is slow (torch's exporter re-traces each graph): about 5 minutes of one core
for the module, 70 s of it inverse-flow's density graph (its wavefront solve, 3,254 ONNX nodes)."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import nfzoo
from nfzoo.export.onnx import RUNNER_FILES, RUNNER_NAME, export_model
from nfzoo.export.runner import ExportedModel
from nfzoo.export.trace import replay_draws

N = 1000          # latents and images per parity check (the number)
TOL = 1e-4        # max |diff| on images and latents


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """exported(name) -> (torch model, ExportedModel, manifest): the model exported once (both directions) per
    module; a fresh runner each time (onnxruntime keeps its memory pool as long as a session lives)."""
    cache = {}

    def get(name, model=None):
        if name not in cache:
            model = model if model is not None else nfzoo.load(name)
            out = tmp_path_factory.mktemp(name)
            cache[name] = (model, out, export_model(model, out, name=name))
        model, out, manifest = cache[name]
        return model, ExportedModel(out, threads=1), manifest
    return get


@pytest.fixture(scope="module")
def tiny_nice(tmp_path_factory):
    """A tiny NICE with random (non-zero) weights, saved with save_pretrained and loaded as any model dir."""
    torch.manual_seed(0)
    m = nfzoo.create_model("nice", image_shape=(1, 8, 8), levels=2, steps=2, hidden=8)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.2)
    d = tmp_path_factory.mktemp("nice-dir") / "tiny-nice"
    m.save_pretrained(d)
    return nfzoo.load(d)


@pytest.fixture(scope="module")
def mnist_test():
    from nfzoo.data import load_dataset

    x, y = load_dataset("mnist5k", "test").batch(torch.arange(N))
    return x, y


def torch_latents(model, noise, temperature=None, label=None):
    """The model's own default sampler, fed the runner's numpy noise (in the manifest's order)."""
    t = model.default_temperature if temperature is None else temperature
    xs = [torch.from_numpy(v) for v in noise.values()]
    y = None if label is None else torch.as_tensor(label)
    with torch.no_grad(), replay_draws(xs):
        return model.get_sampler(None).sample(model, xs[0].shape[0], y=y, temperature=t, **model.sampling_options())


def check_sample_direction(model, runner, n=N, label=None):
    """Same noise in: the prior graph's latents and the images (decode graph, and `sample` end to end) agree
    with torch within TOL. Returns the largest differences."""
    noise = runner.draw_noise(n, seed=0)
    z_torch = torch_latents(model, noise, label=label)
    z_onnx = runner.prior(noise, label=label)
    with torch.no_grad():
        images = model.decode(z_torch, None if label is None else torch.as_tensor(label)).numpy()
    got = runner.sample(n, seed=0, label=label)            # numpy noise -> prior -> decode, all onnxruntime
    dz, dx = float(np.abs(z_onnx - z_torch.numpy()).max()), float(np.abs(got - images).max())
    assert got.shape == (n, *model.image_shape) and got.dtype == np.float32
    assert 0.0 <= got.min() and got.max() <= 1.0
    assert dz <= TOL and dx <= TOL, (dz, dx)
    return dz, dx


def check_density_direction(model, runner, x, label=None, tol=TOL):
    """Same images in: latent, log-det and log-density agree with torch within `tol` relative to max(1, |value|)
    (the latents of mnist5k's test images reach |z| = 114, where float32 itself is that far off: torch's
    float32 inverse-flow latents differ from float64 by 6e-4 there, the ONNX graph's by 1.4e-4). The torch
    side is one pass of the flow, checked against the model's own encode and log_prob on the first images."""
    out = runner.density(x.numpy(), label=label)
    y = None if label is None else torch.as_tensor(label)
    with torch.no_grad():
        v, ld0 = model.to_flow(model.dequantize(x, noise=False))
        z, ld = model.bijector(v, model.context(y, x.shape[0]))
        logdet = ld + ld0
        log_prob = model.prior.log_prob(z, model.context(y, x.shape[0])) + logdet - model.dim * np.log(256.0)
        few = slice(0, 8)
        torch.testing.assert_close(model.encode(x[few], None if y is None else y[few]), z[few])
        torch.testing.assert_close(model.log_prob(x[few], None if y is None else y[few], noise=False), log_prob[few])
    z, logdet, log_prob = z.numpy(), logdet.double().numpy(), log_prob.double().numpy()
    dz = float((np.abs(out["z"] - z) / np.maximum(1.0, np.abs(z))).max())
    rel_ld = float((np.abs(out["logdet"] - logdet) / np.maximum(1.0, np.abs(logdet))).max())
    got_lp = runner.log_prob(x.numpy(), label=label)
    rel_lp = float((np.abs(got_lp - log_prob) / np.maximum(1.0, np.abs(log_prob))).max())
    assert dz <= tol and rel_ld <= tol and rel_lp <= tol, (dz, rel_ld, rel_lp)
    # bits per dimension: log_prob / (D ln 2), so its differences are those of log_prob over 543 (mnist)
    np.testing.assert_allclose(runner.bpd(x.numpy(), label=label),
                               -log_prob / (model.dim * np.log(2.0)), rtol=1e-5, atol=1e-5)
    return dz, rel_ld, rel_lp


# --------------------------------------------------------------------- the four flows of the issue, both ways
@pytest.mark.parametrize("name", ["inverse-flow-mnist5k", "glow-mnist5k", "realnvp-mnist5k"])
def test_zoo_flows_export_both_directions_with_parity(exported, mnist_test, name):
    model, runner, manifest = exported(name)
    assert manifest["not_exported"] == {}
    assert manifest["directions"] == {"sample": {"graphs": ["prior", "decode"], "complete": True},
                                      "density": {"graphs": ["density", "prior_log_prob"], "complete": True}}
    check_sample_direction(model, runner)
    check_density_direction(model, runner, mnist_test[0])


def test_a_tiny_nice_model_dir_exports_both_directions(exported, tiny_nice):
    model, runner, manifest = exported("tiny-nice", tiny_nice)
    assert set(manifest["graphs"]) == {"prior", "decode", "density", "prior_log_prob"}
    assert manifest["graphs"]["prior"]["noise"] == [{"name": "noise_0", "distribution": "normal",
                                                     "shape": ["batch", 1, 8, 8]}]
    check_sample_direction(model, runner)
    x = model.sample(N, generator=torch.Generator().manual_seed(1))
    check_density_direction(model, runner, x)


def test_the_manifest_describes_every_graph_and_file(exported):
    model, runner, manifest = exported("inverse-flow-mnist5k")
    d = runner.directory
    assert manifest["model"]["name"] == "inverse-flow-mnist5k" and manifest["model"]["config"] == model.config
    assert manifest["sampling"] == {"sampler": "ancestral", "temperature": 0.7, "options": {}, "kind": "flow"}
    assert json.loads((d / "manifest.json").read_text()) == manifest
    prior = manifest["graphs"]["prior"]
    # the fitted mixture: a component per sample, then its low-rank and diagonal noise
    assert [(s["distribution"], s["shape"]) for s in prior["noise"]] == [
        ("categorical", ["batch"]), ("normal", ["batch", 64, 1]), ("normal", ["batch", 784])]
    np.testing.assert_allclose(prior["noise"][0]["probs"], torch.softmax(model.prior.logits, 0).numpy(), atol=1e-7)
    assert [(i["name"], i["shape"], i["dtype"]) for i in manifest["graphs"]["decode"]["inputs"]] == \
        [("z", ["batch", 1, 28, 28], "float32")]
    assert [(o["name"], o["shape"]) for o in manifest["graphs"]["density"]["outputs"]] == \
        [("z", ["batch", 1, 28, 28]), ("logdet", ["batch"])]
    from nfzoo.safeio import sha256_file

    for g in manifest["graphs"].values():
        assert sha256_file(d / g["file"]) == g["sha256"] and g["what"] and g["opset"] >= 17
        assert all(c["max_rel_diff"] <= TOL for c in g["check"].values() if isinstance(c, dict))
    assert manifest["runner"]["file"] == RUNNER_NAME and sha256_file(d / RUNNER_NAME) == manifest["runner"]["sha256"]
    assert sorted(manifest["runner"]["files"]) == sorted(RUNNER_FILES.values())
    assert all(sha256_file(d / f) == sha for f, sha in manifest["runner"]["files"].items())


def test_the_runner_needs_neither_torch_nor_nfzoo(exported, tmp_path):
    """The copied runner samples with torch and nfzoo made unimportable; a batch of one works; the same seed
    gives the same images; a changed file is refused."""
    _, runner, _ = exported("glow-mnist5k")
    code = ("import sys; sys.modules['torch'] = None; sys.modules['nfzoo'] = None\n"
            f"sys.path.insert(0, {str(runner.directory)!r})\n"
            "from nfzoo_onnx_runner import ExportedModel\n"
            f"m = ExportedModel({str(runner.directory)!r}, threads=1)\n"
            "a, b = m.sample(1, seed=3), m.sample(3, seed=3)\n"
            "print(a.shape, float(abs(m.sample(3, seed=3) - b).max()))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["(1,", "1,", "28,", "28)", "0.0"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in runner.directory.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    data = bytearray((copy / "decode.onnx").read_bytes())
    data[-1] ^= 1
    (copy / "decode.onnx").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        ExportedModel(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["graphs"]["decode"]["file"] = "../decode.onnx"      # a manifest that points outside the folder
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="plain file names"):
        ExportedModel(copy, verify=False)


def test_the_runner_checks_labels_and_temperature(exported):
    _, runner, _ = exported("glow-mnist5k")
    with pytest.raises(ValueError, match="unconditional"):
        runner.sample(2, label=1)
    with pytest.raises(ValueError, match="temperature"):
        runner.sample(2, temperature=-1.0)
    hot, cold = runner.sample(4, seed=1, temperature=1.0), runner.sample(4, seed=1, temperature=0.0)
    assert np.abs(hot - cold).max() > 0.1       # the temperature is an input of the prior graph


# --------------------------------------------------------------------- every other zoo model
def test_glem_samples_the_classes_it_is_asked_for(exported, mnist_test):
    model, runner, manifest = exported("glem-mnist5k")
    assert manifest["sampling"]["sampler"] == "rfcm" and manifest["num_classes"] == 10
    labels = np.arange(N) % 10
    check_sample_direction(model, runner, label=labels)
    check_density_direction(model, runner, mnist_test[0], label=mnist_test[1].numpy())
    with pytest.raises(ValueError, match="class-conditional"):
        runner.sample(2)
    with pytest.raises(ValueError, match="integers in"):
        runner.sample(2, label=10)


def small_copy(name):
    """The zoo model's architecture and config (its coupling, kernel, bins, two levels...) at 8 x 8, one step per
    level, 8-channel nets and random weights (zero-initialised layers made non-zero): the same operations as
    the zoo model in a graph a quarter of the size. The zoo models themselves export as well (the checks in
    their manifests); exporting them all here would take minutes (torch's exporter re-traces every graph, and
    the wavefront solves and the splines are thousands of nodes)."""
    zoo = nfzoo.load(name)
    config = {k: v for k, v in zoo.config.items() if k != "latent_prior"}
    torch.manual_seed(0)
    m = nfzoo.create_model(zoo.architecture, **{**config, "image_shape": [1, 8, 8], "hidden": 8, "steps": 1})
    m.initialize(torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    return m.eval()


@pytest.mark.parametrize("name", ["quad-flow-mnist5k", "nsf-mnist5k", "cinc-flow-mnist5k"])
def test_the_other_zoo_flows_export_both_directions(exported, name):
    model, runner, manifest = exported(f"small-{name}", small_copy(name))
    assert manifest["not_exported"] == {} and set(manifest["graphs"]) == {"prior", "decode", "density",
                                                                         "prior_log_prob"}
    check_sample_direction(model, runner, n=200)
    with torch.no_grad():
        x = model.decode(torch.randn(200, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * 0.7)
    check_density_direction(model, runner, x)


@pytest.mark.parametrize("name", ["ddpm-mnist5k", "diffused-flows-mnist5k"])
def test_diffusion_models_export_the_unet_and_the_runner_runs_ddim(exported, name):
    """The runner's DDIM (numpy) over the U-Net graph gives nfzoo's ddim sampler's images for the same noise."""
    model, runner, manifest = exported(name)
    assert manifest["sampling"]["kind"] == "diffusion"
    assert manifest["sampling"]["ddim"]["steps"] == 20 and manifest["sampling"]["ddim"]["eta"] == 1.0
    assert "variational bound" in manifest["not_exported"]["prior_log_prob"]
    n = 16
    noise = runner.draw_ddim_noise(n, seed=0)
    assert len(noise) == 21                         # the start, then one draw per step (eta > 0)
    with torch.no_grad(), replay_draws([torch.from_numpy(a) for a in noise]):
        images = model.sample(n).numpy()            # its default: ddim, 20 steps, eta 1
    got = runner.decode(runner.ddim(noise))
    assert float(np.abs(got - images).max()) <= TOL
    assert runner.sample(2, seed=5).shape == (2, *model.image_shape)


# --------------------------------------------------------------------- the command
def test_export_command_writes_the_graphs_and_says_what_it_checked(runner, app, tiny_nice, tmp_path):
    src = tmp_path / "model"
    tiny_nice.save_pretrained(src)
    out = tmp_path / "exported"
    res = runner.invoke(app, ["export", str(src), "--out", str(out), "--direction", "sample", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc["graphs"]) == {"prior", "decode"} and doc["directions"]["sample"]["complete"]
    assert sorted(p.name for p in out.iterdir()) == sorted(["decode.onnx", "manifest.json", "prior.onnx",
                                                            *RUNNER_FILES.values()])
    # --out must be new or empty
    res = runner.invoke(app, ["export", str(src), "--out", str(out)])
    assert res.exit_code == 2 and "already holds files" in res.output


@pytest.mark.parametrize("args,needle", [
    (["export", "no-such-model", "--out", "OUT"], "unknown"),
    (["export", "MODEL", "--out", "OUT", "--format", "tflite"], "unknown export format 'tflite'"),
    (["export", "MODEL", "--out", "OUT", "--direction", "backwards"], "unknown export direction"),
])
def test_export_command_refuses_bad_input_with_exit_2(runner, app, tiny_nice, tmp_path, args, needle):
    src = tmp_path / "model"
    tiny_nice.save_pretrained(src)
    args = [str(src) if a == "MODEL" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and needle in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_a_direction_the_model_cannot_export_exits_2_with_the_reason(runner, app, tmp_path):
    """A noise-augmented model denoises its samples with a backward pass: its sample direction cannot be a
    graph; asked for by name, the export says why and leaves no folder behind."""
    m = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8, noise_sigma=0.1)
    m.save_pretrained(tmp_path / "model")
    res = runner.invoke(app, ["export", str(tmp_path / "model"), "--out", str(tmp_path / "out"),
                              "--direction", "sample"])
    assert res.exit_code == 2 and "cannot export the sample direction" in res.output
    assert "backward pass" in res.output and not (tmp_path / "out").exists()


def test_bench_export_quick_is_a_ratio_document_written_with_its_provenance(runner, app, tmp_path):
    out = tmp_path / "bench.json"
    res = runner.invoke(app, ["bench", "export", "--quick", "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["bench"] == "export" and len(doc["rows"]) == 2
    for r in doc["rows"]:
        assert r["ratio"] == pytest.approx(r["baseline_s"] / r["candidate_s"]) and r["export_s"] > 0
    assert any("get_num_threads" in note for note in doc["notes"])
    assert doc["measured_by"]["command"] == "nfzoo bench export --quick"
    assert len(doc["load_average"]["before"]) == 3 and doc["measured_by"]["threads"] >= 1
    res = runner.invoke(app, ["bench", "export", "--quick", "--out", str(tmp_path / "bench.txt")])
    assert res.exit_code == 2 and "give a .json file" in res.output
