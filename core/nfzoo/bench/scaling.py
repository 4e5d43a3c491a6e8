"""`nfzoo bench scaling`: training throughput (images/s) as the work is spread, measured by real
`nfzoo train` runs of Glow on mnist5k (each in its own process tree, one after the other).

- on the CPU: 1 process (all cores' threads) against 2 processes of torchrun / DDP (gloo, the cores
  shared out), the same global batch;
- with --device cuda: 1 GPU in float32 against 1 GPU with bf16 autocast of the coupling nets
  (`--precision bf16`), and 1 against all GPUs when the machine has several.

Throughput is that of the last epoch (the first warms up), training only: the epoch's `seconds` in
history.json stop before the test-set evaluation. ratio = baseline_s / candidate_s per epoch, so > 1
means the candidate trains faster.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

from nfzoo.bench.timing import device_name, row

TRAIN_IMAGES = 4000   # mnist5k's training split


def _nfzoo_command() -> str:
    """The `nfzoo` console script of this environment (the bench times the command users run)."""
    import shutil

    here = Path(sys.executable).parent / "nfzoo"
    return str(here) if here.is_file() else (shutil.which("nfzoo") or "nfzoo")


def _train(args: List[str], env: Dict[str, str], timeout: float = 1800) -> Dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [_nfzoo_command(), "train", "glow", "--dataset", "mnist5k", "--out", str(out),
               "--json", *args]
        e = dict(os.environ, **env)
        e.pop("WORLD_SIZE", None)
        r = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
        doc = json.loads(r.stdout)
    last = doc["history"][-1]
    return {"seconds": last["seconds"], "images_per_s": TRAIN_IMAGES / last["seconds"],
            "test_bpd": last.get("test_bpd"), "processes": doc["processes"]}


def bench_scaling(quick: bool = False, log=print, device: str = "cpu") -> Dict:
    """Training images/s of real `nfzoo train` runs (Glow on mnist5k): 1 vs 2 processes (torchrun, DDP) on the
    CPU; with `device="cuda"`, one GPU in float32 vs bf16 autocast. Returns the bench document (rows of ratios)."""
    import torch

    cuda = str(device).startswith("cuda")
    if cuda:
        model = ["--set", "levels=2", "--set", "steps=8", "--set", "hidden=256"] if not quick else \
            ["--set", "levels=2", "--set", "steps=2", "--set", "hidden=64"]
        common = ["--epochs", "1" if quick else "3", "--batch-size", "256", "--lr", "1e-3",
                  "--device", "cuda", *model]
    else:
        model = ["--set", "levels=2", "--set", "steps=4", "--set", "hidden=64"] if not quick else \
            ["--set", "levels=2", "--set", "steps=1", "--set", "hidden=8"]
        common = ["--epochs", "1" if quick else "2", "--batch-size", "64", "--lr", "1e-3", *model]
    desc = f"glow on mnist5k ({' '.join(model[1::2])}), global batch {common[3]}"
    rows = []
    cores = os.cpu_count() or 1
    if not cuda:
        one = _train(common, {"OMP_NUM_THREADS": str(cores)})
        log(f"1 process ({cores} threads): {one['images_per_s']:.1f} images/s")
        two = _train(common + ["--nproc", "2"], {"OMP_NUM_THREADS": str(max(1, cores // 2))})
        log(f"2 processes ({max(1, cores // 2)} thread(s) each): {two['images_per_s']:.1f} images/s")
        rows.append(row(f"train {desc}, {cores} CPU cores", "1 process", "2 processes (DDP, gloo)",
                        one["seconds"], two["seconds"], images_per_s_baseline=one["images_per_s"],
                        images_per_s_candidate=two["images_per_s"], test_bpd_baseline=one["test_bpd"],
                        test_bpd_candidate=two["test_bpd"]))
    else:
        fp32 = _train(common, {})
        log(f"1 GPU, float32: {fp32['images_per_s']:.1f} images/s")
        bf16 = _train(common + ["--precision", "bf16"], {})
        log(f"1 GPU, bf16 autocast: {bf16['images_per_s']:.1f} images/s")
        rows.append(row(f"train {desc}, 1 GPU", "float32", "bf16 autocast (nets)", fp32["seconds"],
                        bf16["seconds"], images_per_s_baseline=fp32["images_per_s"],
                        images_per_s_candidate=bf16["images_per_s"], test_bpd_baseline=fp32["test_bpd"],
                        test_bpd_candidate=bf16["test_bpd"]))
        gpus = torch.cuda.device_count()
        if gpus > 1:
            many = _train(common + ["--nproc", str(gpus)], {})
            log(f"{gpus} GPUs, float32: {many['images_per_s']:.1f} images/s")
            rows.append(row(f"train {desc}", "1 GPU", f"{gpus} GPUs (DDP, nccl)", fp32["seconds"],
                            many["seconds"], images_per_s_baseline=fp32["images_per_s"],
                            images_per_s_candidate=many["images_per_s"]))
    notes = ["ratio = baseline_s / candidate_s for one epoch of 4000 images (the last epoch; > 1: the "
             "candidate is faster)",
             "each case is a separate `nfzoo train` run; the test bpd after the run is reported beside it"]
    if not cuda:
        notes.append("the 2 processes share this machine's cores: the ratio measures DDP's overhead "
                     "more than its scaling")
    return {"bench": "scaling", "device": device_name(device), "rows": rows, "notes": notes}
