"""Training logs (nfzoo.training.loggers, `nfzoo train --log tensorboard|wandb`): TensorBoard event files in
RUN_DIR/tb with the step and epoch scalars (the test bpds those of history.json) and a sample grid per epoch;
wandb through its API (a fake module records the calls); a missing package is exit 2 before any work; only
rank 0 logs; logging never changes the weights."""
import json
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import nfzoo
from nfzoo.safeio import load_tensors
from nfzoo.training.loggers import GRID_STEPS, CallbackList, WandbLogger, create_loggers, sample_grid
from nfzoo.training.trainer import Callback

# the settings of the session's `tiny_run` (conftest.py), whose weights a logged run must reproduce
TINY = ["--set", "levels=2", "--set", "steps=1", "--set", "hidden=8"]
STEPS = 23   # digits: 1438 training images at batch 64


def _f32(x):
    return float(np.float32(x))


def test_tensorboard_logs_steps_epochs_and_samples(tmp_path, runner, app, tiny_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "r"
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--epochs", "2", *TINY, "--out", str(out),
                              "--ema", "0.9", "--log", "tensorboard", "--json"])
    assert res.exit_code == 0, res.output
    hist = json.loads((out / "history.json").read_text())
    acc = EventAccumulator(str(out / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    step_tags = {"train/loss", "train/bpd", "train/lr", "train/grad_norm"}
    epoch_tags = {"epoch/train_bpd", "epoch/test_bpd", "epoch/test_bpd_ema", "epoch/seconds", "epoch/epoch"}
    assert set(tags["scalars"]) == step_tags | epoch_tags
    for tag in step_tags:
        assert [e.step for e in acc.Scalars(tag)] == list(range(1, 2 * STEPS + 1)), tag
    for tag in epoch_tags:
        assert [e.step for e in acc.Scalars(tag)] == [STEPS, 2 * STEPS], tag
    for key in ("train_bpd", "test_bpd", "test_bpd_ema"):
        assert [e.value for e in acc.Scalars(f"epoch/{key}")] == [_f32(r[key]) for r in hist], key
    # the learning rate of step s: the linear warm-up over 200 steps (the default) to 1e-3
    assert [e.value for e in acc.Scalars("train/lr")] == [_f32(1e-3 * s / 200) for s in range(1, 2 * STEPS + 1)]
    assert all(e.value > 0 for e in acc.Scalars("train/grad_norm"))
    images = acc.Images("samples")
    assert [im.step for im in images] == [STEPS, 2 * STEPS]
    assert (images[0].width, images[0].height) == (37, 37)    # 4 x 4 samples of 8 x 8, 1 pixel apart
    assert images[0].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
    # the EMA and the logs leave the raw weights as a plain run trains them
    a, b = load_tensors(out / "raw" / "model.safetensors"), load_tensors(tiny_run / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_logger_whose_package_is_missing_exits_2_before_any_work(tmp_path, runner, app, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)      # what `import tensorboard` sees uninstalled
    monkeypatch.setitem(sys.modules, "wandb", None)
    for name, install in (("tensorboard", "pip install 'nfzoo[tensorboard]'"), ("wandb", "pip install wandb")):
        out = tmp_path / name
        res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(out), "--log", name])
        assert res.exit_code == 2 and install in res.output and "Traceback" not in res.output, res.output
        assert not out.exists()
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(tmp_path / "x"),
                              "--log", "tensorbord"])
    assert res.exit_code == 2 and "tensorboard" in res.output


class _FakeWandb(types.ModuleType):
    """What nfzoo uses of wandb: init, log, Image and the run's finish, recorded."""

    def __init__(self):
        super().__init__("wandb")
        self.calls = []
        fake = self

        class Image:
            def __init__(self, data, caption=None):
                self.data, self.caption = data, caption

        class Run:
            def finish(self):
                fake.calls.append(("finish",))

        self.Image, self._run = Image, Run()

    def init(self, **kw):
        self.calls.append(("init", kw))
        return self._run

    def log(self, values, step=None):
        self.calls.append(("log", values, step))

    def finish(self):
        raise AssertionError("the run's own finish is used")


def test_wandb_logs_the_same_scalars_and_the_grid(tmp_path, runner, app, monkeypatch):
    fake = _FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    out = tmp_path / "r"
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--epochs", "1", *TINY, "--out", str(out),
                              "--swa-epochs", "1", "--log", "tensorboard,wandb"])
    assert res.exit_code == 0, res.output
    init = [c for c in fake.calls if c[0] == "init"]
    assert len(init) == 1
    kw = init[0][1]
    assert kw["project"] == "nfzoo" and kw["dir"] == str(out) and kw["mode"] == "offline" and kw["name"] == "r"
    assert kw["config"]["arch"] == "glow" and kw["config"]["swa_epochs"] == 1 and kw["config"]["model"]["hidden"] == 8
    logs = [c for c in fake.calls if c[0] == "log"]
    steps = [c for c in logs if "train/bpd" in c[1]]
    assert [c[2] for c in steps] == list(range(1, STEPS + 1))
    assert all(set(c[1]) == {"train/loss", "train/bpd", "train/lr", "train/grad_norm"} for c in steps)
    hist = json.loads((out / "history.json").read_text())
    epoch = [c for c in logs if "epoch/test_bpd" in c[1]]
    assert len(epoch) == 1 and epoch[0][2] == STEPS
    assert epoch[0][1]["epoch/test_bpd"] == hist[0]["test_bpd"]
    assert epoch[0][1]["epoch/test_bpd_swa"] == hist[0]["test_bpd_swa"]
    grid = [c for c in logs if "samples" in c[1]]
    assert len(grid) == 1 and grid[0][2] == STEPS
    img = grid[0][1]["samples"].data
    assert img.shape == (37, 37, 3) and img.dtype == np.uint8
    assert fake.calls[-1] == ("finish",)
    assert (out / "tb").is_dir()          # both loggers at once


def test_only_rank_0_logs():
    fake = _FakeWandb()
    logger = WandbLogger(fake)
    trainer = SimpleNamespace(dist=SimpleNamespace(is_main=False))
    logger.on_start(trainer)
    logger.on_step_metrics(1, {"loss": 1.0, "bpd": 1.0, "lr": 1e-3, "grad_norm": 2.0})
    logger.on_epoch_end(1, {"epoch": 1, "step": 1, "train_bpd": 1.0})
    logger.close()
    assert fake.calls == []


def test_sample_grid_is_seeded_and_leaves_the_random_state_alone():
    model = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)
    model.train()
    state = torch.get_rng_state()
    a, why = sample_grid(model, seed=3)
    assert why is None and a.shape == (3, 37, 37) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(torch.get_rng_state(), state) and model.training
    b, _ = sample_grid(model, seed=3)
    assert torch.equal(a, b)
    want = model.sample(16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[:, 1:9, 1:9], want[0].clamp(0, 1).expand(3, 8, 8))


def test_a_sampler_with_steps_gets_few_and_one_that_cannot_sample_is_skipped():
    class Recorder(nfzoo.Sampler):
        name = "recorder"

        def __init__(self, refuse):
            self.refuse, self.seen = refuse, []

        def sample(self, model, n, y=None, temperature=1.0, generator=None, steps=None):
            self.seen.append(steps)
            if self.refuse:
                raise nfzoo.errors.UsageError("no")
            return torch.zeros(n, *model.prior.event_shape)

    model = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)
    model.sampler = Recorder(refuse=False)
    grid, why = sample_grid(model)
    assert grid is not None and why is None and model.sampler.seen == [GRID_STEPS]
    model.sampler = Recorder(refuse=True)
    grid, why = sample_grid(model)
    assert grid is None and "skipped" in why and model.sampler.seen == [GRID_STEPS, None]


def test_callback_list_sends_warnings_to_renderers_only(recwarn):
    class Renderer:
        def __init__(self):
            self.messages = []

        def on_warning(self, message):
            self.messages.append(message)

    r = Renderer()
    CallbackList([r, Callback()]).on_warning("careful")
    assert r.messages == ["careful"] and not recwarn.list
    with pytest.warns(nfzoo.errors.NfzooWarning, match="careful"):
        CallbackList([Callback()]).on_warning("careful")


def test_create_loggers_checks_names():
    with pytest.raises(nfzoo.errors.UsageError, match="tensorboard"):
        create_loggers(["tensorbored"])
    assert len(create_loggers(["tensorboard", "tensorboard"])) == 1
