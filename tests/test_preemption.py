"""Preemption safety: a run killed with SIGKILL at a random step and resumed ends with the same weights,
bit for bit, as an uninterrupted run (glow, and GLEM from a plugin: phases, class labels, EM split); SIGTERM
writes a checkpoint of the exact position and exits 143. The runs are real `python -m nfzoo_cli train`
processes, single-threaded (the thread count changes the floating-point order)."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nfzoo.safeio import load_tensors

ARCHS = {
    "glow": ["--set", "levels=1", "--set", "steps=2", "--set", "hidden=8"],
    "glem": ["--set", "levels=1", "--set", "steps=2", "--set", "hidden=8", "--set", "m_passes=1"],
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _cmd(arch, out, *extra):
    return [sys.executable, "-m", "nfzoo_cli", "train", arch, "--dataset", "digits", "--epochs", "2",
            "--batch-size", "32", "--checkpoint-every", "4", "--seed", "0", "--out", str(out), *ARCHS[arch],
            *extra]


def _weights(out: Path):
    return load_tensors(out / "model.safetensors")


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _steps(out: Path):
    d = out / "checkpoints"
    return [int(p.name.split("-")[1]) for p in d.glob("step-*")] if d.is_dir() else []


def _start_and_wait_for_step(arch, out, at_least: int):
    proc = subprocess.Popen(_cmd(arch, out), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while max(_steps(out), default=0) < at_least:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before step {at_least}: {proc.stderr.read()[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail("no checkpoint in time")
        time.sleep(0.005)
    return proc


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    runs = {}
    for arch in ARCHS:
        out = tmp_path_factory.mktemp(f"full-{arch}")
        r = subprocess.run(_cmd(arch, out), env=ENV, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]
        runs[arch] = _weights(out)
    return runs


@pytest.mark.parametrize("arch", list(ARCHS))
def test_sigkill_then_resume_gives_the_same_weights(arch, uninterrupted, tmp_path):
    rng = random.Random(f"kill-{arch}")
    at = rng.randrange(4, 80)            # digits: 45 steps per epoch at batch 32, 90 in all
    proc = _start_and_wait_for_step(arch, tmp_path, at)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    r = subprocess.run(_cmd(arch, tmp_path, "--resume"), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    _same(_weights(tmp_path), uninterrupted[arch])


def test_sigterm_writes_a_checkpoint_and_the_run_resumes_exactly(uninterrupted, tmp_path):
    proc = _start_and_wait_for_step("glow", tmp_path, 8)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "SIGTERM" in err and "--resume" in err
    last = max(_steps(tmp_path))
    assert f"step-{last:08d}" in err                # the checkpoint of the step where it stopped
    r = subprocess.run(_cmd("glow", tmp_path, "--resume"), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    _same(_weights(tmp_path), uninterrupted["glow"])
