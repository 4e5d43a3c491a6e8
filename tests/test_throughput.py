"""Training's throughput knobs change how fast a run goes, not what it computes: `--workers` (the processes
reading a file data set), `--accumulate K` (gradient accumulation: one step from K micro-batches equals the
whole batch's) and `--precision fp16` (a GradScaler whose state the checkpoints keep)."""
import json

import pytest
import torch

from nfzoo.data import load_batches, load_dataset
from nfzoo.errors import CorruptFileError
from nfzoo.safeio import load_tensors
from nfzoo.training.checkpoints import check_state, list_checkpoints
from nfzoo.training.trainer import Callback, TrainConfig, Trainer

TINY = {"levels": 2, "steps": 1, "hidden": 8}
CLI_TINY = ["--set", "levels=1", "--set", "steps=1", "--set", "hidden=8"]


def _weights(out):
    return load_tensors(out / "model.safetensors")


def _close(a, b, atol):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=atol), (k, (a[k] - b[k]).abs().max())


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    """240 of the digits as PNG files in class folders: a data set read from files (by DataLoader workers)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("digits-png")
    x, y = load_dataset("digits", "train").batch(torch.arange(240))
    for i, (img, label) in enumerate(zip(x, y)):
        (root / str(int(label))).mkdir(exist_ok=True)
        Image.fromarray((img[0] * 255).round().byte().numpy(), mode="L").save(root / str(int(label)) / f"{i}.png")
    return root


def test_workers_change_neither_the_data_nor_the_weights(digits_folder, tmp_path):
    cfg = dict(arch="glow", dataset=f"folder:{digits_folder}", epochs=2, batch_size=32, model=TINY,
               warmup_steps=5)
    runs = {w: Trainer(TrainConfig(**cfg, workers=w), tmp_path / f"w{w}").run() for w in (0, 2)}
    a, b = _weights(tmp_path / "w0"), _weights(tmp_path / "w2")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0]["history"][-1]["test_bpd"] == runs[2]["history"][-1]["test_bpd"]


def test_kept_loader_reads_the_same_batches_and_draws_the_same_global_numbers(digits_folder):
    ds = load_dataset(f"folder:{digits_folder}", "train")
    passes = [[torch.arange(10), torch.arange(20, 27)], [torch.tensor([5, 3, 1])]]

    def read(**kw):
        torch.manual_seed(0)
        got = [b for lists in passes for b in load_batches(ds, lists, **kw)]
        return got, torch.rand(3)

    plain, after = read(workers=0)
    keep = {}
    kept, kept_after = read(workers=2, keep=keep)     # the DataLoader and its workers kept between passes
    assert "loader" in keep
    assert torch.equal(after, kept_after)
    assert len(plain) == len(kept) == 3
    assert all(torch.equal(p[0], k[0]) and torch.equal(p[1], k[1]) for p, k in zip(plain, kept))


@pytest.mark.parametrize("batch, k, conditional", [(64, 4, False), (60, 4, True)])
def test_accumulated_micro_batches_make_the_whole_batch_step(tmp_path, batch, k, conditional):
    """One epoch (23 or 24 steps, a smaller last batch included; the data-dependent init is on its own
    `init_batch`, untouched by K): the weights equal the whole-batch run's up to the floating-point order."""
    model = {**TINY, **({"num_classes": 10} if conditional else {})}
    cfg = dict(arch="glow", dataset="digits", epochs=1, batch_size=batch, model=model, warmup_steps=5)
    whole = Trainer(TrainConfig(**cfg), tmp_path / "whole").run()
    micro = Trainer(TrainConfig(**cfg, accumulate=k), tmp_path / "micro").run()
    assert whole["steps"] == micro["steps"] == -(-1438 // batch)
    _close(_weights(tmp_path / "whole"), _weights(tmp_path / "micro"), atol=1e-6)
    assert micro["train_bpd"] == pytest.approx(whole["train_bpd"], abs=1e-5)


def test_accumulate_through_the_cli(tmp_path, runner, app):
    base = ["train", "glow", "--dataset", "digits", "--epochs", "1", "--batch-size", "64", *CLI_TINY]
    r1 = runner.invoke(app, [*base, "--out", str(tmp_path / "a")])
    r4 = runner.invoke(app, [*base, "--accumulate", "4", "--out", str(tmp_path / "b")])
    assert r1.exit_code == 0 and r4.exit_code == 0, (r1.output, r4.output)
    assert json.loads((tmp_path / "b" / "train.json").read_text())["train"]["accumulate"] == 4
    _close(_weights(tmp_path / "a"), _weights(tmp_path / "b"), atol=1e-6)


@pytest.mark.parametrize("extra, words", [
    (["--batch-size", "64", "--accumulate", "3"], ["--accumulate", "divide --batch-size (64)"]),
    (["--precision", "fp16"], ["--precision fp16 is for CUDA", "--device cuda"]),
    (["--precision", "fp8"], ["--precision", "'fp16'"]),
    (["--workers", "-1"], ["--workers"]),
])
def test_bad_throughput_options_exit_2_before_any_work(tmp_path, runner, app, extra, words):
    r = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(tmp_path / "r"), *extra])
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert all(w in text for w in words), text
    assert not (tmp_path / "r").exists()


def test_resume_may_change_the_workers_only(tmp_path, runner, app):
    base = ["train", "glow", "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path / "r"), *CLI_TINY]
    assert runner.invoke(app, [*base, "--workers", "0"]).exit_code == 0
    r = runner.invoke(app, [*base, "--epochs", "2", "--workers", "1", "--resume"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*base, "--epochs", "3", "--accumulate", "2", "--resume"])
    assert r.exit_code == 2 and "accumulate" in r.output


# -- fp16's GradScaler, run on the CPU (the trainer makes it for CUDA only; fp16 autocast needs a GPU)
@pytest.fixture
def cpu_scaler(monkeypatch):
    import nfzoo.training.trainer as trainer

    monkeypatch.setattr(trainer, "make_scaler",
                        lambda precision, device: torch.amp.GradScaler("cpu", init_scale=2.0 ** 12))


class _Stop(Callback):
    def __init__(self, at):
        self.at = at

    def on_step(self, step, loss, bpd, it_s):
        if step == self.at:
            raise KeyboardInterrupt


def test_a_scaled_run_resumes_bit_exact_with_its_scaler_state(tmp_path, cpu_scaler):
    cfg = dict(arch="glow", dataset="digits", epochs=2, checkpoint_every=5, model=TINY, warmup_steps=10)
    full = Trainer(TrainConfig(**cfg), tmp_path / "full").run()
    with pytest.raises(KeyboardInterrupt):
        Trainer(TrainConfig(**cfg), tmp_path / "cut", _Stop(13)).run()
    state = json.loads((list_checkpoints(tmp_path / "cut")[-1] / "state.json").read_text())
    assert state["scaler"]["scale"] == 2.0 ** 12 and state["scaler"]["_growth_tracker"] == 10
    t = Trainer(TrainConfig(**cfg), tmp_path / "cut", resume=True)
    resumed = t.run()
    assert resumed["resumed_from"] == "step-00000010" and t.scaler is not None
    assert t.scaler.state_dict()["_growth_tracker"] == full["steps"]
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_scaler_only_scales(tmp_path, cpu_scaler, monkeypatch):
    """A power-of-two scale, unscaled before clipping: the same steps as without a scaler."""
    cfg = dict(arch="glow", dataset="digits", epochs=1, model=TINY, warmup_steps=5)
    Trainer(TrainConfig(**cfg), tmp_path / "scaled").run()
    monkeypatch.undo()
    Trainer(TrainConfig(**cfg), tmp_path / "plain").run()
    _close(_weights(tmp_path / "scaled"), _weights(tmp_path / "plain"), atol=1e-6)


def test_a_checkpoint_without_the_scaler_state_is_skipped(tmp_path, cpu_scaler):
    from nfzoo.safeio import sha256_file

    cfg = dict(arch="glow", dataset="digits", epochs=1, checkpoint_every=5, model=TINY)
    with pytest.raises(KeyboardInterrupt):
        Trainer(TrainConfig(**cfg), tmp_path / "r", _Stop(12)).run()
    newest = list_checkpoints(tmp_path / "r")[-1]
    doc = json.loads((newest / "state.json").read_text())
    del doc["scaler"]
    (newest / "state.json").write_text(json.dumps(doc))
    files = ("model.safetensors", "state.safetensors", "state.json")
    (newest / "manifest.json").write_text(json.dumps({"step": 10, "sha256": {f: sha256_file(newest / f)
                                                                             for f in files}}))
    t = Trainer(TrainConfig(**cfg), tmp_path / "r", resume=True)
    t._build()
    with pytest.warns(Warning, match="no \"scaler\""):
        assert t.load_checkpoint().name == "step-00000005"


@pytest.mark.parametrize("scaler", [[], {"scale": "big"}, {"scale": float("nan")}, {"loss_scale": 1.0},
                                    {"scale": True}])
def test_bad_scaler_states_are_refused(scaler):
    meta = {"step": 1, "epoch": 0, "pos": 1, "history": [], "optimizer": {"param_groups": [], "scalars": {}},
            "scaler": scaler}
    with pytest.raises(CorruptFileError, match="'scaler'"):
        check_state(meta, "state.json")


def test_two_processes_accumulating_step_as_one_process_does(tmp_path):
    """Under torchrun (gloo, 2 processes) each rank's piece of the 64-image batch runs as 2 micro-batches,
    DDP synchronising on the last one: the weights are one process's without accumulation."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    base = [sys.executable, "-m", "nfzoo_cli", "train", "glow", "--dataset", "digits", "--epochs", "1",
            "--batch-size", "64", "--warmup", "5", *CLI_TINY]
    for out, extra in (("one", []), ("two", ["--nproc", "2", "--accumulate", "2"])):
        r = subprocess.run([*base, "--out", str(tmp_path / out), *extra], capture_output=True, text=True,
                           timeout=600, env=env)
        assert r.returncode == 0, r.stderr[-3000:]
    _close(_weights(tmp_path / "one"), _weights(tmp_path / "two"), atol=2e-5)
