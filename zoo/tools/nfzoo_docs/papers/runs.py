"""The paper-table scripts' settings and their runs: the common training budget, the records in git
(docs/results/papers/records/<run>/), training a run with `nfzoo train` (resumable), provenance and small I/O."""
from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from .. import REPO

ROOT = REPO
PAPERS = ROOT / "docs" / "results" / "papers"   # the scripts, their tables (NAME.json, NAME.md) and records/
RUNS = ROOT / "runs" / "papers"
RECORDS = PAPERS / "records"
DATASET = "mnist5k"
ORACLE = "oracle-mnist5k"   # the data set's default oracle (nfzoo.evaluation.oracle.default_oracle)
PAPER = "GLEM, papers/003 (Table numbers on CIFAR-10 / CIFAR-100)"

# the training options of every run (the glem-mnist5k recipe at 24 epochs)
SCHEDULE: Dict[str, Any] = {"epochs": 24, "batch-size": 64, "lr": 0.002, "optimizer": "adam", "warmup": 200,
                            "lr-schedule": "cosine", "grad-clip": 50}
GLEM_BASE: Dict[str, Any] = {"levels": 2, "steps": 4, "hidden": 64, "kl_weight": 0.45, "kl_weight_final": 0.25,
                             "kl_schedule": "exponential", "em_fraction": 0.5, "prior_lr_scale": 3}

# the paper's sampling setting of its Tables 1-3 (Table 5: its T = 0.9 column repeats Table 2's GLEM row):
# the diagonal class gaussians at T = 0.9; RFCM at T = 0.7 (the zoo model's default) as a second setting
PAPER_SAMPLING = ("ancestral", 0.9)
RFCM_SAMPLING = ("rfcm", 0.7)
SAMPLES = 1000           # per sample seed, balanced classes, against the 1000 test images
SAMPLE_SEEDS = (0, 1, 2)
CNN_A_IMAGES = 4000      # the size of mnist5k's training split (the paper's "1x")
CNN_A_SAMPLING = PAPER_SAMPLING


def log(msg: str) -> None:
    print(f"[{_dt.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


def short_commit() -> str:
    """`git rev-parse --short HEAD` with "+dirty" when tracked files differ (nfzoo.evaluation.results.source_commit)."""
    from nfzoo.evaluation.results import source_commit

    full = source_commit(ROOT) or "unknown"
    head, _, dirty = full.partition("+")
    return head[:7] + (f"+{dirty}" if dirty else "")


def provenance(script: str, argv: Sequence[str]) -> Dict[str, Any]:
    import torch

    import nfzoo

    return {"command": shlex.join(["python", f"docs/results/papers/{script}", *argv]),
            "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "commit": short_commit(), "nfzoo": nfzoo.__version__, "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def require_one_thread() -> None:
    if os.environ.get("OMP_NUM_THREADS") != "1":
        sys.exit("error: run with OMP_NUM_THREADS=1 (these measurements are single-threaded; the machine is "
                 "shared): OMP_NUM_THREADS=1 python docs/results/papers/SCRIPT")


def read(path: Path) -> Optional[Any]:
    return json.loads(path.read_text()) if path.is_file() else None


def write(path: Path, doc: Any, indent: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=indent) + "\n")
    tmp.replace(path)


def mean_sd(values: Iterable[float]) -> Optional[Dict[str, float]]:
    v = [float(x) for x in values if x is not None]
    if not v:
        return None
    return {"mean": statistics.fmean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v)}


def train_argv(run: str, sets: Dict[str, Any], seed: int) -> List[str]:
    argv = ["nfzoo", "train", "glem", "--dataset", DATASET]
    for k, v in SCHEDULE.items():
        argv += [f"--{k}", str(v)]
    argv += ["--seed", str(seed)]
    for k, v in {**GLEM_BASE, **sets}.items():
        argv += ["--set", f"{k}={v}"]
    return argv + ["--out", f"runs/papers/{run}"]


def rec(run_dir: Path) -> Path:
    """The records (in git) of the run in run_dir: records/<run>/ (paper-run.json, history.json, one JSON
    file per measured unit)."""
    return RECORDS / Path(run_dir).name


def ensure_run(run: str, sets: Dict[str, Any], seed: int) -> Path:
    """Train runs/papers/<run> unless its record paper-run.json says it finished; an interrupted run is
    resumed from its last checkpoint (`nfzoo train ... --resume`)."""
    d = RUNS / run
    done = read(rec(d) / "paper-run.json")
    argv = train_argv(run, sets, seed)
    if done is not None:
        if done["command"] != shlex.join(argv):
            raise SystemExit(f"error: {d} was trained by a different command:\n  {done['command']}\nnot\n  "
                             f"{shlex.join(argv)}\nmove it away to retrain")
        return d
    cmd = [str(Path(sys.executable).with_name("nfzoo")), *argv[1:]]
    resume = d.is_dir() and any(d.iterdir())
    if resume:
        cmd = [str(Path(sys.executable).with_name("nfzoo")), "train", "glem", "--dataset", DATASET, "--out",
               str(d), "--resume"]
    log(f"training {run}{' (resumed)' if resume else ''}: {shlex.join(argv)}")
    d.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(d.parent / f"{run}.log", "a") as fh:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode
    if rc != 0:
        raise SystemExit(f"error: training {run} failed (exit {rc}); see runs/papers/{run}.log")
    write(rec(d) / "history.json", read(d / "history.json") or [])
    write(rec(d) / "paper-run.json", {"command": shlex.join(argv), "seconds": time.perf_counter() - t0,
                                      "resumed": resume, "commit": short_commit(),
                                      "finished": _dt.datetime.now(_dt.timezone.utc).isoformat()})
    return d


def history(run_dir: Path) -> List[Dict[str, Any]]:
    return read(rec(run_dir) / "history.json") or read(Path(run_dir) / "history.json") or []


def em_end_kl(run_dir: Path) -> Optional[float]:
    """The mean pairwise KL(N_y || N_y') per class dimension the last M-step logged (nats)."""
    kls = [e["mean_pair_kl_per_dim"] for e in history(run_dir) if e.get("mean_pair_kl_per_dim") is not None]
    return kls[-1] if kls else None

