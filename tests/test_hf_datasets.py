"""Hugging Face data sets (`hf:ORG/NAME[:CONFIG][@REV]`, nfzoo.data.hf). Offline: each test writes a small dataset
repo (parquet files with PNG bytes, written by `datasets`) and serves it from the loopback Hub of the `hub`
fixture (tests/hubserver.py answers the Hub's dataset routes too), so the real huggingface_hub client
downloads it into the test's Hub cache, as from huggingface.co."""
import io
import os
import signal

import numpy as np
import pytest
import torch

from nfzoo.errors import DataError, DatasetUnavailableError, UsageError

pytest.importorskip("datasets", reason="Hugging Face datasets are an optional feature: pip install \"nfzoo[hf]\"")
REPO = "nfzoo-test/tiny-images"
GLOW = ["--set", "levels=1", "--set", "steps=1", "--set", "hidden=8"]


def _png(i: int, size=(8, 8), mode="RGB") -> bytes:
    from PIL import Image

    rng = np.random.RandomState(i)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    b = io.BytesIO()
    Image.fromarray((rng.rand(*shape) * 255).astype(np.uint8), mode).save(b, format="PNG")
    return b.getvalue()


def _parquet(rows, image_col="image", label=True, mode="RGB", sizes=None) -> bytes:
    import datasets

    feats = {image_col: datasets.Image()}
    cols = {image_col: [{"bytes": _png(i, (sizes or {}).get(i, (8, 8)), mode), "path": None} for i in rows]}
    if label:
        feats["label"] = datasets.ClassLabel(names=["zero", "one"])
        cols["label"] = [i % 2 for i in rows]
    ds = datasets.Dataset.from_dict(cols, features=datasets.Features(feats))
    b = io.BytesIO()
    ds.to_parquet(b)
    return b.getvalue()


def publish(hub, repo=REPO, train=range(30), test=range(30, 40), **kw) -> str:
    """A dataset repo of `train` / `test` rows (None: no such split) on the loopback Hub; returns its hf: name."""
    files = {"data/train-00000-of-00001.parquet": _parquet(train, **kw)}
    if test is not None:
        files["data/test-00000-of-00001.parquet"] = _parquet(test, **kw)
    hub.create_repo(repo)
    hub.commit(repo, files)
    return f"hf:{repo}"


def test_names_are_checked():
    from nfzoo.data import parse_hf_name

    n = parse_hf_name("hf:org/name:cfg@v1.0")
    assert (n.repo_id, n.config, n.revision) == ("org/name", "cfg", "v1.0")
    for bad in ("hf:noorg", "hf:org/na me", "hf:org/name@../x", "hf:org/name:c/d", "hf:org/a--b"):
        with pytest.raises(UsageError):
            parse_hf_name(bad)


def test_splits_columns_and_streaming_from_the_hub(hub, monkeypatch):
    from nfzoo.data import HFStream, iterate, load_dataset

    name = publish(hub)
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    assert (len(train), len(test), train.image_shape, train.num_classes) == (30, 10, (3, 8, 8), 2)
    x, y = next(iterate(train, 30, shuffle=False))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and y.tolist() == [i % 2 for i in range(30)]
    stream = load_dataset(name, "train", streaming=True)
    assert isinstance(stream, HFStream) and len(stream) == 30
    xs, ys = next(iterate(stream, 30, shuffle=False))
    assert torch.equal(xs, x) and torch.equal(ys, y)
    shuffled = torch.cat([b for b, _ in iterate(stream, 7, True, torch.Generator().manual_seed(1))])
    assert shuffled.shape == x.shape and not torch.equal(shuffled, x)
    with pytest.raises(DatasetUnavailableError, match="validation"):
        load_dataset(name, "validation")
    # offline: the cached snapshot, no request
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert len(load_dataset(name, "test")) == 10
    with pytest.raises(DatasetUnavailableError, match="HF_HUB_OFFLINE"):
        load_dataset("hf:nfzoo-test/never-fetched", "train")


def test_held_out_split_grayscale_and_named_columns(hub):
    from nfzoo.data import load_dataset

    name = publish(hub, train=range(40), test=None, image_col="img", mode="L")
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    assert (len(train), len(test), train.image_shape) == (36, 4, (1, 8, 8))
    assert test.labels.tolist().count(0) == 2          # stratified: 10% of each class
    every = {bytes(a.numpy()) for a in torch.cat([train.images, test.images])}
    assert len(every) == 40                              # disjoint and complete
    s_train = load_dataset(name, "train", streaming=True, image_column="img", label_column="label")
    s_test = load_dataset(name, "test", streaming=True)
    assert len(s_train) + len(s_test) == 40 and len(s_test) > 0


def test_bad_data_is_named(hub):
    from typer.testing import CliRunner

    from nfzoo.data import load_dataset
    from nfzoo_cli.app import build_app

    name = publish(hub, train=range(6), test=range(6, 8), sizes={3: (9, 8)})
    with pytest.raises(DataError, match="row 3"):
        load_dataset(name, "train")
    hub.create_repo("nfzoo-test/no-images")
    hub.commit("nfzoo-test/no-images", {"data/train-0.parquet": _no_image_parquet()})
    with pytest.raises(DataError, match="columns are x, label"):
        load_dataset("hf:nfzoo-test/no-images", "train")
    res = CliRunner().invoke(build_app(), ["train", "glow", "--dataset", "hf:nfzoo-test/no-images", *GLOW])
    assert res.exit_code == 2 and "x, label" in res.output


def _no_image_parquet() -> bytes:
    import datasets

    b = io.BytesIO()
    datasets.Dataset.from_dict({"x": [1, 2], "label": [0, 1]}).to_parquet(b)
    return b.getvalue()


def test_train_eval_and_sample_through_the_cli(hub, tmp_path):
    import json

    from typer.testing import CliRunner

    from nfzoo_cli.app import build_app

    name = publish(hub)
    out, app, runner = tmp_path / "run", build_app(), CliRunner()
    res = runner.invoke(app, ["train", "glow", "--dataset", name, "--epochs", "1", "--batch-size", "10", *GLOW,
                              "--set", "image_column=image", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout[res.stdout.index("{"):])
    assert np.isfinite(doc["test_bpd"]) and doc["train_config"]["data"] == {"image_column": "image"}
    res = runner.invoke(app, ["eval", str(out), "--dataset", name, "--json"])
    assert res.exit_code == 0, res.output
    assert '"images": 10' in res.stdout
    res = runner.invoke(app, ["sample", "--model", str(out), "-n", "4", "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output and (tmp_path / "s.png").is_file()


class _StopAt:
    """A callback that sends this process SIGTERM at step `at` (the trainer checkpoints and stops)."""

    def __init__(self, at):
        self.at = at

    def __getattr__(self, name):
        return lambda *a, **k: None

    def on_step(self, step, loss, bpd, it_s):
        if step == self.at:
            os.kill(os.getpid(), signal.SIGTERM)


def test_streaming_resumes_exactly_after_sigterm(hub, tmp_path, monkeypatch):
    from nfzoo.errors import PreemptedError
    from nfzoo.safeio import load_tensors
    from nfzoo.training.trainer import TrainConfig, Trainer

    name = publish(hub)

    def cfg():
        return TrainConfig(arch="glow", dataset=name, epochs=2, batch_size=4, checkpoint_every=2, warmup_steps=2,
                           model={"levels": 1, "steps": 1, "hidden": 8}, data={"streaming": True})

    Trainer(cfg(), tmp_path / "full").run()
    with pytest.raises(PreemptedError):
        Trainer(cfg(), tmp_path / "cut", _StopAt(11)).run()      # mid-epoch 2 (8 steps an epoch)
    Trainer(cfg(), tmp_path / "cut", resume=True).run()
    a, b = load_tensors(tmp_path / "full" / "model.safetensors"), load_tensors(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
