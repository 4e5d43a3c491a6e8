"""Training: outputs, exact resume, the NaN guard, and protection of existing runs."""
import json

import pytest
import torch

import nfzoo
from nfzoo.bijectors import Composite
from nfzoo.interfaces import Bijector
from nfzoo.safeio import load_tensors
from nfzoo.training import Callback, TrainConfig, Trainer, list_checkpoints

TINY = {"levels": 2, "steps": 1, "hidden": 8}


def test_training_writes_a_loadable_run(tiny_run):
    names = {p.name for p in tiny_run.iterdir()}
    assert {"config.json", "model.safetensors", "train.json", "history.json", "curve.png",
            "checkpoints"} <= names
    hist = json.loads((tiny_run / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2]
    assert all(r["test_bpd"] < hist[0]["train_bpd"] + 1 for r in hist)
    assert (tiny_run / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list_checkpoints(tiny_run)) == 2
    m = nfzoo.load(str(tiny_run))
    assert m.architecture == "glow" and m.config["hidden"] == 8


class _Stop(Callback):
    def __init__(self, at):
        self.at = at

    def on_step(self, step, loss, bpd, it_s):
        if step == self.at:
            raise KeyboardInterrupt  # what a kill looks like to the run: it just stops here


def test_resume_is_bit_exact(tmp_path):
    cfg = dict(arch="glow", dataset="digits", epochs=2, checkpoint_every=5, model=TINY, warmup_steps=10)
    full = Trainer(TrainConfig(**cfg), tmp_path / "full").run()
    with pytest.raises(KeyboardInterrupt):
        Trainer(TrainConfig(**cfg), tmp_path / "cut", _Stop(13)).run()
    assert [p.name for p in list_checkpoints(tmp_path / "cut")] == ["step-00000005", "step-00000010"]
    resumed = Trainer(TrainConfig(**cfg), tmp_path / "cut", resume=True).run()
    assert resumed["resumed_from"] == "step-00000010" and resumed["steps"] == full["steps"]
    a = load_tensors(tmp_path / "full" / "model.safetensors")
    b = load_tensors(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test_bpd"] == full["test_bpd"]


def test_resume_skips_a_corrupt_checkpoint(tmp_path):
    cfg = dict(arch="glow", dataset="digits", epochs=1, checkpoint_every=5, model=TINY)
    with pytest.raises(KeyboardInterrupt):
        Trainer(TrainConfig(**cfg), tmp_path / "r", _Stop(12)).run()
    newest = list_checkpoints(tmp_path / "r")[-1]
    blob = newest / "model.safetensors"
    blob.write_bytes(blob.read_bytes()[:-10])
    t = Trainer(TrainConfig(**cfg), tmp_path / "r", resume=True)
    res = t.run()
    assert res["resumed_from"] == "step-00000005"
    assert any("sha256" in s for s in t.skipped)


class NaNAfter(Bijector):
    """Passes x through, but poisons it after `after` training-mode calls (a simulated divergence)."""

    def __init__(self, after):
        super().__init__()
        self.after, self.calls = after, 0

    def forward(self, x, context=None):
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                x = x * float("nan")
        return x, x.new_zeros(x.shape[0])

    def inverse(self, z, context=None):
        return z, z.new_zeros(z.shape[0])


def nan_glow(image_shape=(1, 8, 8), levels=1, steps=1, hidden=8, num_classes=None, after=30):
    m = nfzoo.create_model("glow", image_shape=image_shape, levels=levels, steps=steps, hidden=hidden)
    m.bijector = Composite([NaNAfter(after), m.bijector])
    return m


class NaNPlugin:
    @nfzoo.hookimpl
    def register_architectures(self, register):
        register("nan-glow", nan_glow, description="diverges on purpose")


def test_nan_stops_with_exit_1_and_keeps_the_last_good_checkpoint(tmp_path, runner, app, fresh_registry):
    fresh_registry.get_registry().register_plugin(NaNPlugin(), "nan-plugin")
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "nan-glow", "--dataset", "digits", "--epochs", "3", "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "the loss became nan" in res.output and "step-00000023" in res.output
    assert [p.name for p in list_checkpoints(out)] == ["step-00000023"]
    hist = json.loads((out / "history.json").read_text())
    assert len(hist) == 1  # the files of the last good epoch are kept as they were
    weights = load_tensors(out / "model.safetensors")
    assert all(torch.isfinite(v.float()).all() for v in weights.values())


def test_existing_run_is_not_overwritten(tmp_path, runner, app, tiny_run):
    before = {p.name: p.stat().st_mtime_ns for p in tiny_run.iterdir()}
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(tiny_run)])
    assert res.exit_code == 2 and "--resume" in res.output
    assert {p.name: p.stat().st_mtime_ns for p in tiny_run.iterdir()} == before


def test_resume_refuses_other_settings(runner, app, tiny_run):
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(tiny_run), "--resume",
                              "--lr", "0.5"])
    assert res.exit_code == 2 and "only --epochs may change" in res.output


def test_resume_without_a_run(runner, app, tmp_path):
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(tmp_path / "x"),
                              "--resume"])
    assert res.exit_code == 2


def test_conditional_training_and_classification(tmp_path, runner, app):
    out = tmp_path / "cond"
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--epochs", "1", "--set", "levels=1",
                              "--set", "steps=1", "--set", "hidden=8", "--set", "num_classes=10",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", str(out), "--dataset", "digits", "--task", "classify", "--json"])
    assert res.exit_code == 0, res.output
    assert 0.0 <= json.loads(res.stdout)["accuracy"] <= 1.0
    res = runner.invoke(app, ["sample", "--model", str(out), "--per-class", "-n", "2",
                              "--out", str(tmp_path / "pc.png")])
    assert res.exit_code == 0, res.output


def test_learning_rate_schedules():
    t = Trainer(TrainConfig(arch="glow", dataset="digits", epochs=2, lr=1e-3, warmup_steps=10,
                            lr_schedule="cosine", model=TINY), "unused")
    t._build()   # the epoch plan (hence the step count) comes from the model
    total = 2 * t.steps_per_epoch()
    assert t._lr(0) == pytest.approx(1e-4)
    assert t._lr(9) == pytest.approx(1e-3)
    assert t._lr(10 + (total - 10) // 2) == pytest.approx(5e-4, rel=0.05)
    assert t._lr(total - 1) < 2e-5
    t.cfg.lr_schedule = "constant"
    assert t._lr(total - 1) == 1e-3
    with pytest.raises(nfzoo.errors.UsageError, match="lr-schedule"):
        TrainConfig(arch="glow", dataset="digits", lr_schedule="step").validate()
