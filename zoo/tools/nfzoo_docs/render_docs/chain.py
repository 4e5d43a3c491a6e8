"""A zoo model's chain of recorded steps and the numbers it gives: the training run (MODEL-history.json and
its MODEL-train.json), a fine-tune (MODEL-finetune-history.json, MODEL-finetune-train.json), a refit of the
latent prior (MODEL-refit.json); the test bpd of the weights that ship, the recipe (the steps' commands); a
diffusion model's bound over seeds; GLEM's NF-A and the bpd of its class mixture."""
from __future__ import annotations

import json
import re
import shlex
from typing import Any, Dict, List, Optional, Tuple

from nfzoo.evaluation.results import MEASURED_BY, mean_sd

from .knowledge import has_mixture, is_bound
from .results import BPD_TOL, RESULTS, RenderError, Results, pm


def history_rel(name: str) -> str:
    """The training history of a zoo model."""
    return f"{RESULTS}/{name}-history.json"


def last_tested(history: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The last epoch record with a test bpd."""
    tested = [r for r in history if isinstance(r.get("test_bpd"), (int, float))]
    if not tested:
        raise RenderError("a history without any test_bpd")
    return tested[-1]


def train_rel(name: str, step: str = "") -> str:
    """A zoo model's train.json copy: MODEL-train.json, or MODEL-finetune-train.json for step "finetune"."""
    return f"{RESULTS}/{name}{'-' + step if step else ''}-train.json"


def finetune_history_rel(name: str) -> str:
    """The history of a zoo model's fine-tune run (`nfzoo train ... --init MODEL`)."""
    return f"{RESULTS}/{name}-finetune-history.json"


def refit_rel(name: str) -> str:
    """The result file of `nfzoo refit-prior` for a zoo model (its refit.json)."""
    return f"{RESULTS}/{name}-refit.json"


def train_command(res: Results, name: str, step: str = "") -> Tuple[Optional[str], Optional[str]]:
    """(the training command, its file) from docs/results/NAME-train.json (a run's train.json; with step
    "finetune" the fine-tune run's NAME-finetune-train.json), else (None, None)."""
    rel = train_rel(name, step)
    if not res.exists(rel):
        return None, None
    t = res.json(rel).get("train", {})
    args = ["nfzoo", "train", str(t.get("arch")), "--dataset", str(t.get("dataset"))]
    for key, opt in (("epochs", "--epochs"), ("batch_size", "--batch-size"), ("lr", "--lr"),
                     ("optimizer", "--optimizer"), ("warmup_steps", "--warmup"), ("lr_schedule", "--lr-schedule"),
                     ("grad_clip", "--grad-clip"), ("seed", "--seed"), ("precision", "--precision"),
                     ("init_from", "--init"), ("ema", "--ema"), ("swa_epochs", "--swa-epochs")):
        if t.get(key) is not None and not (key == "swa_epochs" and not t[key]):
            args += [opt, str(t[key])]
    for k, v in (t.get("model") or {}).items():
        args += ["--set", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    return shlex.join(args), rel


def legacy_command(res: Results, rel: str) -> Optional[str]:
    """The `nfzoo train ...` command LEGACY records for an older history (while it is that file)."""
    note = res.legacy(rel) if res.exists(rel) else None
    m = re.search(r"`(nfzoo train [^`]+)`", note or "")
    return m.group(1) if m else None


def zoo_config(res: Results, name: str) -> Dict[str, Any]:
    """The zoo model's config.json ({} when it has none)."""
    path = res.root / "zoo" / "nfzoo_zoo" / "models" / name / "config.json"
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise RenderError(f"{path.relative_to(res.root).as_posix()} is not JSON: {exc}") from None
    return doc if isinstance(doc, dict) else {}


def noise_sigma(res: Results, name: str) -> float:
    """The zoo model's noise augmentation (config.json "config"."noise_sigma"; 0: none)."""
    v = (zoo_config(res, name).get("config") or {}).get("noise_sigma") or 0
    return float(v) if isinstance(v, (int, float)) else 0.0


def noise_note(res: Results, name: str) -> Optional[str]:
    """What the test bpd of a noise-augmented model is (None for a model without noise augmentation)."""
    sigma = noise_sigma(res, name)
    if sigma <= 0:
        return None
    return (f"{name}'s test bpd is on the clean test images; the model was trained on data + N(0, {sigma:g}^2) "
            "noise (TarFlow's noise augmentation, `noise_sigma` in its config.json), and its samples are "
            "denoised")


def shipped(res: Results, name: str) -> Optional[Dict[str, Any]]:
    """The test bpd of the weights that ship, from the last step of the model's chain: {"bpd", "rel", "step"
    ("refit", "finetune" or "training"), "before": (bpd, file) of the step before a refit, or None}. None for
    a diffusion model (a bound) or a model without history. A refit whose test_bpd_before is not the bpd the
    step before it ended at (1e-3) started from other weights: a RenderError."""
    if is_bound(name) or not res.exists(history_rel(name)):
        return None
    bpd, rel, step = float(last_tested(res.history(history_rel(name)))["test_bpd"]), history_rel(name), "training"
    if res.exists(finetune_history_rel(name)):
        rel, step = finetune_history_rel(name), "finetune"
        bpd = float(last_tested(res.history(rel))["test_bpd"])
    if not res.exists(refit_rel(name)):
        return {"bpd": bpd, "rel": rel, "step": step, "before": None}
    r = res.json(refit_rel(name))
    try:
        before, after = float(r["test_bpd_before"]), float(r["test_bpd_after"])
    except (KeyError, TypeError, ValueError):
        raise RenderError(f"{refit_rel(name)} needs numbers test_bpd_before and test_bpd_after (`nfzoo "
                          "refit-prior ... --out DIR` writes them to DIR/refit.json)") from None
    if abs(before - bpd) > BPD_TOL:
        raise RenderError(f"{refit_rel(name)} refitted weights of test bpd {before:.4f}, but {rel} ends at "
                          f"{bpd:.4f}: the refit started from other weights of {name}; refit again (or remove it)")
    return {"bpd": after, "rel": refit_rel(name), "step": "refit", "before": (before, rel)}


def bpd_cell(res: Results, name: str, mixture: bool = False) -> Tuple[str, List[str]]:
    """A zoo model's test bpd as a table cell (the shipped weights'; a refit's with the N(0, I) prior's
    beside it; a diffusion model's bound as mean +- sd over seeds; with `mixture`, a GLEM model's bpd of
    the class mixture beside its p(x given y)), and the files it comes from."""
    if mixture and has_mixture(name):
        cell, rels = bpd_cell(res, name)
        mix = glem_numbers(res, name).get("mixture")
        if mix:
            return cell + f" (p(x given y)); {mix[0]:.4f} (mixture p(x))", rels + [mix[1]]
        return cell, rels
    if is_bound(name):
        s, seed0, brel = bound_doc(res, name)
        return f"{pm(s, 3)} (upper bound; mean +- sd over {s['n']} seeds; seed 0: {seed0:.3f})", [brel]
    sh = shipped(res, name)
    if sh is None:
        return "-", []
    parts, rels = [], [sh["rel"]]
    if sh["before"]:
        parts.append(f"fitted latent prior; {sh['before'][0]:.4f} with the N(0, I) prior")
        rels.insert(0, sh["before"][1])
    if noise_sigma(res, name) > 0:
        parts.append(f"clean images; trained with noise sigma {noise_sigma(res, name):g}")
    return f"{sh['bpd']:.4f}" + (f" ({'; '.join(parts)})" if parts else ""), rels


def recipe(res: Results, name: str) -> List[Tuple[str, Optional[str], List[str]]]:
    """The chain of steps that made the shipped weights: [(what, its command or None, its files)], each
    command from its file (a run's train.json, else what LEGACY records for its history; a refit's
    measured_by.command)."""
    steps: List[Tuple[str, Optional[str], List[str]]] = []
    hist = history_rel(name)
    if not res.exists(hist):
        return steps
    cmd, crel = train_command(res, name)
    steps.append(("train", cmd or legacy_command(res, hist), [r for r in (crel, hist) if r]))
    if res.exists(finetune_history_rel(name)) or res.exists(train_rel(name, "finetune")):
        cmd, crel = train_command(res, name, "finetune")
        fh = finetune_history_rel(name)
        steps.append(("fine-tune", cmd, [r for r in (crel, fh if res.exists(fh) else None) if r]))
    if res.exists(refit_rel(name)):
        mb = res.json(refit_rel(name)).get(MEASURED_BY) or {}
        steps.append(("refit the latent prior", mb.get("command"), [refit_rel(name)]))
    return steps


def bound_doc(res: Results, name: str) -> Tuple[Dict[str, float], float, str]:
    """(mean_sd of the bound over seeds, the seed-0 value, the file) of a diffusion model."""
    rel = f"{RESULTS}/{name}-bound-seeds.json"
    d = res.json(rel)
    seeds, vals = d.get("seeds"), d.get("bpd")
    if not isinstance(vals, list) or not isinstance(seeds, list) or len(seeds) != len(vals) or 0 not in seeds:
        raise RenderError(f"{rel}: needs lists 'seeds' (with 0) and 'bpd' of the same length")
    return mean_sd(vals), float(vals[seeds.index(0)]), rel


def exact_bpd(res: Results, name: str) -> Optional[float]:
    """The test bpd of an exact-likelihood zoo model's shipped weights (`shipped`; None for a diffusion model
    or without history)."""
    sh = shipped(res, name)
    return None if sh is None else sh["bpd"]


def check_fresh(res: Results, rel: str, bpd: Optional[float], name: str) -> None:
    """A file that records a test bpd must agree with the shipped weights' (1e-3; both use seed 0's
    dequantization noise): else it measured other weights."""
    sh = shipped(res, name)
    if bpd is not None and sh is not None and abs(float(bpd) - sh["bpd"]) > BPD_TOL:
        raise RenderError(f"{rel} records test bpd {bpd:.4f} but the shipped weights of {name} have {sh['bpd']:.4f} "
                          f"({sh['rel']}): it measured other weights of {name}; measure again (or remove it)")


def legacy_glem_eval(res: Results, name: str) -> Optional[str]:
    """docs/results/NAME-eval.json (the GLEM evaluation written before result files had provenance), when it
    is there and measured the weights of the model's history; None otherwise (a retrained model's old
    numbers are not shown)."""
    rel = f"{RESULTS}/{name}-eval.json"
    if not res.exists(rel):
        return None
    want = exact_bpd(res, name)
    bpd = res.json(rel).get("bpd")
    if want is not None and bpd is not None and abs(float(bpd) - want) > BPD_TOL:
        if f"{rel} is stale" not in " ".join(res.warnings):
            res.warnings.append(f"{rel} is stale (test bpd {bpd:.4f}, the shipped weights have {want:.4f}): not "
                                "shown")
        return None
    return rel


def glem_numbers(res: Results, name: str) -> Dict[str, Tuple[float, str]]:
    """NF-A, the test bpd of p(x given y) and of the mixture p(x), each (value, file): NF-A from
    docs/results/NAME-classify.json (`nfzoo eval NAME --task classify --out FILE`) or else the older eval
    file; the mixture from the older eval file or else a sample-quality file (`nfzoo eval` records it)."""
    out: Dict[str, Tuple[float, str]] = {}
    legacy = legacy_glem_eval(res, name)
    classify = f"{RESULTS}/{name}-classify.json"
    if res.exists(classify):
        out["nf_a"] = (float(res.json(classify)["accuracy"]), classify)
    elif legacy:
        out["nf_a"] = (float(res.json(legacy)["nf_a"]), legacy)
    if res.exists(history_rel(name)):
        out["bpd"] = (float(last_tested(res.history(history_rel(name)))["test_bpd"]), history_rel(name))
    if legacy:
        out["mixture"] = (float(res.json(legacy)["bpd_marginal"]), legacy)
    else:
        for rel in res.sample_files(name):
            if isinstance(res.json(rel).get("bpd_marginal"), (int, float)):
                out["mixture"] = (float(res.json(rel)["bpd_marginal"]), rel)
                break
    return out
