"""Weight averaging in training (nfzoo.training.averaging, `nfzoo train --ema DECAY --swa-epochs K`): the EMA is the
exponential moving average of the raw weights' trajectory, SWA the mean of the last K epochs' weights (both
torch's AveragedModel, created from the initialised model); checkpoints keep them and --resume continues them
bit for bit; the run publishes the one with the lowest final test bpd, and nfzoo.load(run) gives it."""
import json

import pytest
import torch

import nfzoo
from nfzoo.evaluation.bpd import evaluate_bpd
from nfzoo.safeio import load_tensors
from nfzoo.training.averaging import choose_published, ema_model, swa_epoch
from nfzoo.training.trainer import Callback, TrainConfig, Trainer

TINY = {"levels": 1, "steps": 1, "hidden": 8}
# digits: 1438 training images, so 6 steps an epoch at batch 256, 12 at batch 128


def _cfg(**kw):
    base = dict(arch="glow", dataset="digits", epochs=2, batch_size=256, warmup_steps=0, lr=5e-3, model=TINY)
    return TrainConfig(**{**base, **kw})


class _Record(Callback):
    """The raw weights after every step and every epoch, and the averages' weights at the start."""

    def __init__(self):
        self.steps, self.epochs, self.start = [], [], {}

    def on_start(self, trainer):
        self.trainer = trainer
        self.start = {"raw": _state(trainer.model),
                      **{k: _state(a.module) for k, a in trainer.averages.items()}}

    def on_step(self, step, loss, bpd, it_s):
        self.steps.append(_state(self.trainer.model))

    def on_epoch_end(self, epoch, record):
        self.epochs.append(_state(self.trainer.model))


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _assert_close_floats(got, want, **tol):
    assert got.keys() == want.keys()
    for k in want:
        if want[k].is_floating_point():
            torch.testing.assert_close(got[k].double(), want[k].double(), **tol, msg=k)
        else:
            assert torch.equal(got[k], want[k]), k


def test_ema_is_the_moving_average_of_the_raw_weights(tmp_path):
    decay = 0.7
    rec = _Record()
    t = Trainer(_cfg(ema=decay), tmp_path / "r", rec)
    res = t.run()
    assert res["steps"] == 12 and len(rec.steps) == 12
    # made from the initialised model (ActNorm's data-dependent init done: its bias is not the zeros it is built with)
    _assert_close_floats(rec.start["ema"], rec.start["raw"], atol=0, rtol=0)
    assert any(k.endswith("bias") and v.abs().sum() > 0 for k, v in rec.start["raw"].items())
    # W_ema = W_1, then W_ema <- decay * W_ema + (1 - decay) * W_k, in float64 from the raw trajectory
    ref = {k: v.double() if v.is_floating_point() else v for k, v in rec.steps[0].items()}
    for w in rec.steps[1:]:
        ref = {k: decay * ref[k] + (1 - decay) * w[k].double() if w[k].is_floating_point() else w[k] for k in w}
    avg = t.averages["ema"]
    assert int(avg.n_averaged) == 12
    _assert_close_floats(_state(avg.module), ref, atol=1e-6, rtol=1e-6)
    # the run folder has it as a loadable model (the flags, e.g. ActNorm's `initialized`, are the model's)
    saved = load_tensors(tmp_path / "r" / "ema" / "model.safetensors")
    _assert_close_floats(saved, ref, atol=1e-6, rtol=1e-6)
    assert all(int(v) == 1 for k, v in saved.items() if k.endswith("initialized"))
    hist = json.loads((tmp_path / "r" / "history.json").read_text())
    assert all("test_bpd_ema" in r and "test_bpd_swa" not in r for r in hist)
    ema_bpd = evaluate_bpd(nfzoo.load(str(tmp_path / "r" / "ema")), t.test_set, seed=0)["bpd"]
    assert ema_bpd == pytest.approx(hist[-1]["test_bpd_ema"], abs=1e-9)


def test_swa_is_the_mean_of_the_last_epochs_weights(tmp_path):
    rec = _Record()
    Trainer(_cfg(epochs=3, swa_epochs=2), tmp_path / "r", rec).run()
    assert len(rec.epochs) == 3
    want = {k: (rec.epochs[1][k].double() + rec.epochs[2][k].double()) / 2 if v.is_floating_point() else v
            for k, v in rec.epochs[2].items()}
    _assert_close_floats(load_tensors(tmp_path / "r" / "swa" / "model.safetensors"), want, atol=1e-6, rtol=1e-6)
    hist = json.loads((tmp_path / "r" / "history.json").read_text())
    assert "test_bpd_swa" not in hist[0]
    assert hist[1]["test_bpd_swa"] == hist[1]["test_bpd"]     # one epoch averaged: the raw weights themselves
    assert hist[2]["test_bpd_swa"] != hist[2]["test_bpd"]
    assert [swa_epoch(e, 3, 2) for e in (1, 2, 3)] == [False, True, True]


class _Stop(Callback):
    def __init__(self, at):
        self.at = at

    def on_step(self, step, loss, bpd, it_s):
        if step == self.at:
            raise KeyboardInterrupt  # a kill, as the run sees it


def test_resume_continues_the_averages_bit_for_bit(tmp_path):
    kw = dict(batch_size=128, checkpoint_every=4, ema=0.9, swa_epochs=1)
    full = Trainer(_cfg(**kw), tmp_path / "full").run()
    with pytest.raises(KeyboardInterrupt):
        Trainer(_cfg(**kw), tmp_path / "cut", _Stop(18)).run()   # epoch 2; checkpoints at 12 and 16
    resumed = Trainer(_cfg(**kw), tmp_path / "cut", resume=True).run()
    assert resumed["resumed_from"] == "step-00000016" and resumed["steps"] == full["steps"] == 24
    for f in ("model.safetensors", "raw/model.safetensors", "ema/model.safetensors", "swa/model.safetensors",
              "checkpoints/step-00000024/ema.safetensors", "checkpoints/step-00000024/swa.safetensors"):
        a, b = load_tensors(tmp_path / "full" / f), load_tensors(tmp_path / "cut" / f)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f
    assert int(load_tensors(tmp_path / "cut" / "checkpoints/step-00000024/ema.safetensors")["n_averaged"]) == 24
    assert resumed["final_test_bpd"] == full["final_test_bpd"] and resumed["published"] == full["published"]


def test_a_checkpoint_without_the_runs_average_is_skipped(tmp_path):
    out = tmp_path / "r"
    Trainer(_cfg(epochs=1, checkpoint_every=3), out).run()            # no EMA: checkpoints at steps 3 and 6
    messages = []

    class Warn(Callback):
        def on_warning(self, message):
            messages.append(message)

    t = Trainer(_cfg(epochs=1, checkpoint_every=3, ema=0.9), out, Warn(), resume=True)
    t._build()
    assert t.load_checkpoint() is None
    assert len(messages) == 2 and all("ema.safetensors" in m for m in messages)


class _SpoilRawAtTheEnd(Callback):
    """Adds noise to the raw weights after the last step (after the EMA's update): the EMA must win."""

    def on_start(self, trainer):
        self.trainer = trainer

    def on_step(self, step, loss, bpd, it_s):
        if step == self.trainer.total_steps():
            g = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for p in self.trainer.model.parameters():
                    p.add_(0.3 * torch.randn(p.shape, generator=g))


def test_the_lowest_final_bpd_is_published_and_loaded(tmp_path):
    out = tmp_path / "r"
    res = Trainer(_cfg(ema=0.5, swa_epochs=1), out, _SpoilRawAtTheEnd()).run()
    final = res["final_test_bpd"]
    assert set(final) == {"raw", "ema", "swa"} and final["ema"] < final["raw"] == final["swa"]
    assert res["published"] == "ema"
    doc = json.loads((out / "train.json").read_text())
    assert doc["published"] == "ema" and doc["final_test_bpd"] == final
    last = json.loads((out / "history.json").read_text())[-1]
    assert last["published"] == "ema" and {k: last[f"test_bpd_{k}" if k != "raw" else "test_bpd"]
                                           for k in final} == final
    top = nfzoo.load(str(out)).state_dict()
    for name, same in (("ema", True), ("raw", False)):
        other = nfzoo.load(str(out / name)).state_dict()
        assert all(torch.equal(top[k], other[k]) for k in top) is same, name
    # the choice: the lowest finite bpd, ties to raw, then ema, then swa
    assert choose_published({"raw": 2.0, "ema": 1.0, "swa": 1.0}) == "ema"
    assert choose_published({"raw": 1.0, "ema": 1.0}) == "raw"
    assert choose_published({"raw": float("nan"), "swa": 3.0}) == "swa"
    assert choose_published({"raw": 1.5, "ema": None, "swa": 1.2}) == "swa"


def test_glem_trains_with_both_averages(tmp_path):
    """GLEM: phases with per-phase parameters, and RFCM fitted after training by each average itself."""
    cfg = TrainConfig(arch="glem", dataset="digits", epochs=2, batch_size=128, warmup_steps=0, ema=0.9,
                      swa_epochs=1, model={"levels": 1, "steps": 1, "hidden": 8, "m_passes": 1, "rfcm_rank": 4})
    res = Trainer(cfg, tmp_path / "r").run()
    assert set(res["final_test_bpd"]) == {"raw", "ema", "swa"} and res["published"] in res["final_test_bpd"]
    for name in ("ema", "swa", "raw"):
        m = nfzoo.load(str(tmp_path / "r" / name))
        assert float(m.prior.rfcm_fitted) == 1.0
    # RFCM is fitted on each model's own latents
    ema, raw = (load_tensors(tmp_path / "r" / n / "model.safetensors") for n in ("ema", "raw"))
    assert not torch.equal(ema["prior.rfcm_mean"], raw["prior.rfcm_mean"])


def test_ema_leaves_flags_and_indices_alone():
    """Tensors that are not floating point follow the model (torch's EMA would scale and truncate them)."""
    m = torch.nn.Module()
    m.w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    m.register_buffer("perm", torch.tensor([2, 0, 1]))
    m.register_buffer("flag", torch.tensor(1, dtype=torch.uint8))
    avg = ema_model(m, 0.999)
    for _ in range(3):
        avg.update_parameters(m)
        with torch.no_grad():
            m.w.mul_(2)
    assert torch.equal(avg.module.perm, m.perm) and int(avg.module.flag) == 1
    # W = [1, 2] copied, then 0.999 W + 0.001 (2 W), then again with 4 W
    want = (0.999 * (0.999 * 1 + 0.001 * 2) + 0.001 * 4) * torch.tensor([1.0, 2.0])
    torch.testing.assert_close(avg.module.w.detach(), want)
    with pytest.raises(ValueError, match="decay"):
        ema_model(m, 1.0)


@pytest.mark.parametrize("args, needle", [
    (["--ema", "1.5"], "--ema"), (["--ema", "0"], "--ema"),
    (["--swa-epochs", "-1"], "--swa-epochs"), (["--swa-epochs", "3"], "--swa-epochs"),
])
def test_bad_averaging_options_exit_2(args, needle, tmp_path, runner, app):
    out = tmp_path / "r"
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--epochs", "2", "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert not out.exists()
