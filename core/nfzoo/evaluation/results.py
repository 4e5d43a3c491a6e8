"""Result files: a measured number written with what measured it.

Every number nfzoo publishes (README tables, model cards) comes from a JSON file under docs/results
written by the command that measured it. `write_result` adds a "measured_by" record to the document:
the command line, the UTC date, the git commit of the code (when it runs from a git checkout; else
null), the nfzoo and torch versions and the thread count. `mean_sd` is how a stochastic number over
several seeds is reported: {"mean", "sd", "n"} (sd: the sample standard deviation, ddof 1; 0 for n = 1).
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence

from nfzoo.safeio import atomic_write_json

MEASURED_BY = "measured_by"


def source_commit(start: Optional[os.PathLike] = None) -> Optional[str]:
    """The git commit of the nfzoo source tree (a checkout of this repository), with "+dirty" when it has
    uncommitted changes to tracked files; None when nfzoo is not run from a git checkout or git is absent."""
    here = Path(start) if start is not None else Path(__file__).resolve().parent
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True,
                             timeout=10)
        # nfzoo's own checkout only (core/nfzoo at its top), not a repository it happens to be installed in
        root = Path(top.stdout.strip())
        if top.returncode != 0 or not (root / "core" / "nfzoo" / "evaluation" / "results.py").is_file():
            return None
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def provenance(command: str) -> Dict[str, Any]:
    """What measured a result: {"command", "date" (UTC, ISO 8601), "commit", "nfzoo", "torch", "threads"}."""
    import torch

    from nfzoo import __version__

    return {"command": command,
            "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "commit": source_commit(), "nfzoo": __version__, "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def write_result(path: os.PathLike, doc: Dict[str, Any], command: str) -> Path:
    """Write `doc` with its "measured_by" record (`provenance(command)`) to `path` as JSON, atomically;
    parent folders are created. Returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(p, {**doc, MEASURED_BY: provenance(command)})
    return p


def mean_sd(values: Iterable[float]) -> Dict[str, float]:
    """{"mean", "sd", "n"} of the numbers (sd with ddof 1; 0.0 for a single value)."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("mean_sd needs at least one value")
    mean = math.fsum(v) / len(v)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return {"mean": mean, "sd": sd, "n": len(v)}


def summarize(runs: Sequence[Dict[str, Any]], keys: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """mean_sd of each key over the runs that have it (a key no run has is left out)."""
    out = {}
    for k in keys:
        vals = [r[k] for r in runs if isinstance(r.get(k), (int, float))]
        if vals:
            out[k] = mean_sd(vals)
    return out


def measured_sampler_options(doc: Dict[str, Any]) -> Dict[str, Any]:
    """The sampler options a sample-quality file (`nfzoo eval --samples ... --out FILE`) was measured with.
    The file keeps each option at its top level (steps, eta, a plugin sampler's own such as guidance) and
    their names in "sampler_options" ("guidance,attn_temp"; "" for none). Files written before that key
    existed had only steps and eta; a few of 2026-12-03 kept the options as an object there."""
    names = doc.get("sampler_options")
    if isinstance(names, dict):
        return dict(names)
    if isinstance(names, str):
        return {k: doc[k] for k in names.split(",") if k}
    return {k: doc[k] for k in ("steps", "eta") if doc.get(k) is not None}
