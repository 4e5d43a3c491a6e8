"""Training: outputs, exact resume, the NaN guard, and protection of existing runs."""
import json

import pytest
import torch

import nfzoo
from nfzoo.flows.bijectors import Composite
from nfzoo.flows.interfaces import Bijector
from nfzoo.safeio import load_tensors
from nfzoo.training.checkpoints import list_checkpoints
from nfzoo.training.trainer import Callback, TrainConfig, Trainer

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


# ------------------------------------- issue 20, item 5: a checkpoint manifest that lies is not trusted
@pytest.fixture(scope="module")
def cut_run(tmp_path_factory):
    """A run stopped at step 12, with checkpoints at steps 5 and 10 (copied by each test)."""
    out = tmp_path_factory.mktemp("cut") / "r"
    cfg = dict(arch="glow", dataset="digits", epochs=1, checkpoint_every=5, model=TINY)
    with pytest.raises(KeyboardInterrupt):
        Trainer(TrainConfig(**cfg), out, _Stop(12)).run()
    return out, cfg


class _Warnings(Callback):
    def __init__(self):
        self.messages = []

    def on_warning(self, message):
        self.messages.append(message)


def _resumed(cut_run, tmp_path, tamper):
    import shutil

    src, cfg = cut_run
    out = tmp_path / "r"
    shutil.copytree(src, out)
    newest = list_checkpoints(out)[-1]
    tamper(newest)
    cb = _Warnings()
    t = Trainer(TrainConfig(**cfg), out, cb, resume=True)
    t._build()
    return t, t.load_checkpoint(), cb


def _flip_a_bit(ck):
    blob = ck / "model.safetensors"
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0x10
    blob.write_bytes(bytes(data))


def _manifest(ck, sha256):
    (ck / "manifest.json").write_text(json.dumps({"step": 10, "sha256": sha256}))


@pytest.mark.parametrize("name, tamper", [
    ("empty sha256 and flipped weights", lambda ck: (_flip_a_bit(ck), _manifest(ck, {}))),
    ("no sha256", lambda ck: (ck / "manifest.json").write_text('{"step": 10}')),
    ("sha256 a list", lambda ck: _manifest(ck, ["model.safetensors"])),
    ("a file left out", lambda ck: (_flip_a_bit(ck), _manifest(ck, {
        f: nfzoo.safeio.sha256_file(ck / f) for f in ("state.safetensors", "state.json")}))),
    ("a digest not hex", lambda ck: _manifest(ck, {f: "x" for f in ("model.safetensors", "state.safetensors",
                                                                       "state.json")})),
    ("manifest not an object", lambda ck: (ck / "manifest.json").write_text("[1, 2]")),
])
def test_a_checkpoint_with_a_lying_manifest_is_skipped_and_reported(cut_run, tmp_path, name, tamper):
    t, path, cb = _resumed(cut_run, tmp_path, tamper)
    assert path.name == "step-00000005" and t.step == 5, name
    assert len(t.skipped) == 1 and "step-00000010" in t.skipped[0]
    assert len(cb.messages) == 1 and "skipped the checkpoint step-00000010" in cb.messages[0]


def _rewrite_state(ck, change):
    from nfzoo.safeio import sha256_file

    doc = json.loads((ck / "state.json").read_text())
    change(doc)
    (ck / "state.json").write_text(json.dumps(doc))
    _manifest(ck, {f: sha256_file(ck / f) for f in ("model.safetensors", "state.safetensors", "state.json")})


@pytest.mark.parametrize("key, value", [("step", -1), ("pos", "3"), ("epoch", None), ("history", {}),
                                        ("optimizer", []), ("optimizer", {"param_groups": 1, "scalars": {}})])
def test_bad_values_in_state_json_are_reported_naming_the_key(cut_run, tmp_path, key, value):
    """An edited state.json (its manifest recomputed to match) is not trusted either."""
    t, path, cb = _resumed(cut_run, tmp_path, lambda ck: _rewrite_state(ck, lambda d: d.update({key: value})))
    assert path.name == "step-00000005"
    assert "state.json" in cb.messages[0] and repr(key) in cb.messages[0]


def test_non_finite_checkpoint_weights_are_skipped(cut_run, tmp_path):
    from nfzoo.safeio import load_tensors, save_tensors, sha256_file

    def poison(ck):
        tensors = load_tensors(ck / "model.safetensors")
        key = next(k for k, v in tensors.items() if v.dtype.is_floating_point and v.dim() == 4)
        tensors[key].fill_(float("nan"))
        save_tensors(tensors, ck / "model.safetensors")
        _manifest(ck, {f: sha256_file(ck / f) for f in ("model.safetensors", "state.safetensors", "state.json")})
    t, path, cb = _resumed(cut_run, tmp_path, poison)
    assert path.name == "step-00000005" and "non-finite" in cb.messages[0]


def test_a_skipped_checkpoint_is_a_python_warning_by_default(cut_run, tmp_path):
    import shutil

    from nfzoo.errors import NfzooWarning

    src, cfg = cut_run
    shutil.copytree(src, tmp_path / "r")
    _manifest(list_checkpoints(tmp_path / "r")[-1], {})
    t = Trainer(TrainConfig(**cfg), tmp_path / "r", resume=True)
    t._build()
    with pytest.warns(NfzooWarning, match="step-00000010"):
        assert t.load_checkpoint().name == "step-00000005"


def test_no_usable_checkpoint_is_a_usage_error_that_says_why(cut_run, tmp_path, runner, app):
    import shutil

    src, cfg = cut_run
    out = tmp_path / "r"
    shutil.copytree(src, out)
    for ck in list_checkpoints(out):
        _manifest(ck, {})
    before = (out / "model.safetensors").read_bytes() if (out / "model.safetensors").exists() else None
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--epochs", "1", "--checkpoint-every",
                              "5", "--set", "levels=2", "--set", "steps=1", "--set", "hidden=8",
                              "--out", str(out), "--resume"])
    assert res.exit_code == 2, res.output
    assert "no usable checkpoint" in res.output and "sha256" in res.output
    # the CLI reports each skipped checkpoint as a warning line (its callback's on_warning)
    assert res.output.count("warning:") == len(list_checkpoints(out)), res.output
    assert "skipped the checkpoint step-00000010" in " ".join(res.output.split())
    after = (out / "model.safetensors").read_bytes() if (out / "model.safetensors").exists() else None
    assert before == after, "the run's files are left as they were"


# ---------------------- issue 20, item 9: bad train.json values, --out a file, and TrainConfig's numbers
@pytest.mark.parametrize("key, value", [("lr", "abc"), ("lr", None), ("epochs", -1), ("batch_size", 0),
                                        ("grad_clip", -1.0), ("seed", 2.5), ("model", []), ("optimizer", 3),
                                        ("bogus", 1), ("download", "yes")])
def test_bad_values_in_train_json_are_config_errors_naming_file_and_key(tmp_path, runner, app, key, value):
    from nfzoo.training.trainer import load_train_config

    out = tmp_path / "r"
    out.mkdir()
    train = {"arch": "glow", "dataset": "digits", "model": TINY, key: value}
    (out / "train.json").write_text(json.dumps({"train": train, "model_config": TINY}))
    with pytest.raises(nfzoo.errors.ConfigError, match=f"train.json.*{key}"):
        load_train_config(out)
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(out), "--resume"])
    assert res.exit_code == 2 and "train.json" in res.output and key in res.output, res.output


@pytest.mark.parametrize("doc", ['[]', '{"train": 3}', '{"nothing": 1}', '{"train": {"arch": "glow"}}'])
def test_a_train_json_of_the_wrong_shape_is_a_config_error(tmp_path, doc):
    from nfzoo.training.trainer import load_train_config

    (tmp_path / "train.json").write_text(doc)
    with pytest.raises(nfzoo.errors.ConfigError, match="train.json"):
        load_train_config(tmp_path)


def test_train_out_an_existing_file_is_refused_before_anything_is_done(tmp_path, runner, app):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    with pytest.raises(nfzoo.errors.UsageError, match="is a file"):
        Trainer(TrainConfig(arch="glow", dataset="digits", model=TINY), f)
    for extra in ([], ["--resume"]):
        res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(f), *extra])
        assert res.exit_code == 2 and "is a file" in res.output, res.output
    assert f.read_text() == "mine"
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(f / "sub")])
    assert res.exit_code == 2, res.output
    assert f.read_text() == "mine"


@pytest.mark.parametrize("key, value", [
    ("grad_clip", float("nan")), ("grad_clip", float("inf")), ("grad_clip", -1.0), ("lr", float("nan")),
    ("lr", float("inf")), ("lr", 0.0), ("batch_size", 0), ("batch_size", -5), ("epochs", 0), ("epochs", -1),
    ("warmup_steps", -1), ("weight_decay", float("nan")), ("checkpoint_every", -2), ("eval_every", 0),
    ("init_batch", 0), ("seed", -1), ("seed", 2 ** 64), ("epochs", 1.5), ("batch_size", True)])
def test_train_config_numbers_are_validated(key, value):
    with pytest.raises(nfzoo.errors.UsageError, match=key):
        TrainConfig(arch="glow", dataset="digits", **{key: value}).validate()


@pytest.mark.parametrize("option, value", [("--grad-clip", "nan"), ("--grad-clip", "-1"), ("--lr", "nan"),
                                           ("--warmup", "-3"), ("--batch-size", "0")])
def test_train_cli_refuses_bad_numbers_with_exit_2(tmp_path, runner, app, option, value):
    out = tmp_path / "r"
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", option, value, "--out", str(out)])
    assert res.exit_code == 2 and option in res.output, res.output
    assert not out.exists()


def test_the_largest_seed_is_accepted(tmp_path):
    """The largest seed (2^32 - 1, nfzoo.flows.generation.SEED_MAX, the CLI's range too) is accepted: the per-epoch
    shuffle seed (seed * 1000003 + epoch) wraps at 2^64, as torch's seeds do, instead of overflowing (it
    used to be a RuntimeError traceback); small seeds keep their old shuffle; one more is refused."""
    from nfzoo.flows.generation import SEED_MAX

    with pytest.raises(nfzoo.errors.UsageError, match="seed"):
        TrainConfig(arch="glow", dataset="digits", epochs=1, seed=SEED_MAX + 1, model=TINY).validate()
    t = Trainer(TrainConfig(arch="glow", dataset="digits", epochs=1, seed=SEED_MAX, model=TINY), tmp_path)
    t._build()
    assert len(t._plan(0, t._shuffle_generator(3))[0][1]) == len(t.train_set)
    t.cfg.seed = 7
    old = torch.Generator().manual_seed(7 * 1_000_003 + 2)
    assert torch.equal(t._shuffle_generator(2).get_state(), old.get_state())
