"""Concurrent and interrupted pulls: two `nfzoo pull` processes of one model into one cache at once both
succeed and verify; a pull killed (SIGKILL) halfway leaves nothing that a later load takes as complete."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_hub import _model_dir

import nfzoo
from nfzoo.errors import NotCachedError


def _pull(spec):
    return [sys.executable, "-m", "nfzoo_cli", "pull", spec, "--json"]


@pytest.fixture
def tiny_repo(hub, tmp_path):
    folder = _model_dir(tmp_path / "m", 7)
    sha = hub.add_repo("nfzoo/tiny", folder)
    return folder, f"hf-hub:nfzoo/tiny@{sha}"


def _same(model, folder):
    ref = nfzoo.loading.api.load_directory(folder).state_dict()
    return all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())


def test_two_pulls_at_once_both_succeed_and_verify(hub, tiny_repo, runner, app):
    folder, spec = tiny_repo
    hub.throttle = 0.002                  # slow enough that the two downloads overlap
    procs = [subprocess.Popen(_pull(spec), env=dict(os.environ), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        assert json.loads(out)["files"]["model.safetensors"]["size"] > 0
    res = runner.invoke(app, ["cache", "verify", spec, "--json"])
    assert res.exit_code == 0, res.output
    assert all(row["ok"] for row in json.loads(res.stdout)), res.stdout
    hub.throttle = None
    assert _same(nfzoo.load(spec), folder)


def test_a_pull_killed_halfway_leaves_nothing_loadable(hub, tmp_path, runner, app):
    torch.manual_seed(0)
    folder = tmp_path / "big"
    m = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=2, hidden=64)
    m.initialize(torch.rand(8, 1, 8, 8))
    m.save_pretrained(folder)                    # about 0.5 MB of weights
    spec = f"hf-hub:nfzoo/big@{hub.add_repo('nfzoo/big', folder)}"
    hub.throttle = 0.01                          # about 100 KiB/s: several seconds for the weights
    cache = Path(os.environ["HF_HUB_CACHE"])
    proc = subprocess.Popen(_pull(spec), env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 120
    while not any(cache.rglob("*.incomplete")):
        assert proc.poll() is None, f"the pull ended before it was killed: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, "no download started"
        time.sleep(0.01)
    time.sleep(0.5)                              # some of the file has arrived
    assert proc.poll() is None, "the pull ended before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    hub.throttle = None
    with pytest.raises(NotCachedError):   # the partial blob is not taken as the file
        nfzoo.load(spec)
    res = runner.invoke(app, ["pull", spec, "--json"])    # and a new pull completes and verifies
    assert res.exit_code == 0, res.output
    assert _same(nfzoo.load(spec), folder)
    assert not any(cache.rglob("*.incomplete")) or all(p.stat().st_size == 0 for p in cache.rglob("*.incomplete"))
