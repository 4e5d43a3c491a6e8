"""The numbers of a zoo entry from the result files: the index's "metrics" (and the numbers its "description"
quotes), and a card's YAML `metrics:` list and `model-index`."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from nfzoo.evaluation.results import mean_sd

from .chain import (
    bound_doc,
    finetune_history_rel,
    glem_numbers,
    history_rel,
    legacy_glem_eval,
    noise_sigma,
    refit_rel,
    shipped,
)
from .knowledge import has_mixture, is_bound, model_data
from .results import BENCH_DIFFUSION, FID_SEEDS, RenderError, Results, bench_rows, fid_seeds
from .samples import accuracy_file, sample_summary, sampler_label, sampling_default


def _put(out: Dict[str, Any], key: str, s: Dict[str, float], nd: int, labels: Optional[Dict[str, str]] = None,
         label: str = "") -> None:
    """A stochastic metric into an index entry: KEY (mean), KEY_sd (when over several seeds) and KEY_seeds; its
    description (with the source) into `labels`."""
    out[key] = round(s["mean"], nd)
    if s["n"] > 1:
        out[key + "_sd"] = round(s["sd"], nd)
    out[key + "_seeds"] = s["n"]
    if labels is not None:
        spread = f"mean over {s['n']} seeds, sd {round(s['sd'], nd)}" if s["n"] > 1 else "1 seed"
        labels[key] = f"{label} ({spread})"


def model_metrics(res: Results, name: str, entry: Dict[str, Any],
                  labels: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The "metrics" of a zoo entry, all from result files (nothing for a model without them); `labels`, when
    given, receives a description of each key that names its file."""
    out: Dict[str, Any] = {}
    labels = {} if labels is None else labels
    if entry.get("kind") == "oracle":
        acc = accuracy_file(name)
        if acc and res.exists(acc):
            out["test_accuracy"] = round(res.json(acc)["oracle_test_accuracy"], 4)
            labels["test_accuracy"] = f"test accuracy on the 1000 mnist5k test images; source {acc}"
        return out
    hist = history_rel(name)
    if res.exists(hist):
        h = res.history(hist)
        if is_bound(name):
            s, seed0, brel = bound_doc(res, name)
            out["test_bpd_bound"] = round(seed0, 4)
            labels["test_bpd_bound"] = f"test bpd upper bound, seed 0; source {brel}"
            _put(out, "test_bpd_bound_mean", s, 4, labels, f"test bpd upper bound (dequantized, 8-bit term "
                 f"included, one timestep per image); source {brel}")
        else:
            sh = shipped(res, name)
            what = {"refit": "; the shipped weights, with the fitted latent prior", "finetune": "; after the "
                    "fine-tune", "training": ""}[sh["step"]]
            if noise_sigma(res, name) > 0:
                what += f"; clean test images (trained on data + N(0, {noise_sigma(res, name):g}^2) noise)"
            out["test_bpd"] = round(sh["bpd"], 4)
            labels["test_bpd"] = f"test bits per dimension (dequantized, 8-bit term included{what}); source {sh['rel']}"
            if sh["before"]:
                out["test_bpd_normal_prior"] = round(sh["before"][0], 4)
                labels["test_bpd_normal_prior"] = (f"test bpd with the N(0, I) prior, before the refit; source "
                                                   f"{refit_rel(name)}")
        out["epochs"] = h[-1].get("epoch")
        if res.exists(finetune_history_rel(name)):
            out["finetune_epochs"] = res.history(finetune_history_rel(name))[-1].get("epoch")
    if has_mixture(name):
        g = glem_numbers(res, name)
        if "mixture" in g:
            out["test_bpd_mixture"] = round(g["mixture"][0], 4)
            labels["test_bpd_mixture"] = f"test bpd of the class mixture p(x); source {g['mixture'][1]}"
        if "nf_a" in g:
            out["nf_a"] = round(g["nf_a"][0], 4)
            labels["nf_a"] = f"NF-A, argmax_y log p(x | y), on the 1000 test images; source {g['nf_a'][1]}"
        grel = legacy_glem_eval(res, name)
        for key, stem, what in ((("t0.7", "ancestral_t0.7", "diagonal gaussians, T=0.7"),
                                 ("t1.0", "ancestral_t1.0", "diagonal gaussians, T=1.0"),
                                 ("rfcm-t0.7", "rfcm_t0.7", "RFCM, T=0.7")) if grel else ()):
            for m, nd, mname in (("fid", 2, "FID (oracle-mnist5k features)"), ("coverage", 3, "Coverage"),
                                 ("label_reliability", 4, "label reliability")):
                _put(out, f"{'fid_oracle' if m == 'fid' else m}_{stem}", mean_sd([res.json(grel)[key][m]]), nd,
                     labels, f"{mname} of 1000 samples, {what}; source {grel}")
    if is_bound(name) and res.exists(FID_SEEDS):
        for (model, sampler, steps, eta), v in fid_seeds(res).items():
            if model == name:
                kind = "ancestral" if sampler == "ddpm" else f"ddim{steps}" + ("_eta1" if eta == 1 else "")
                what = "the ancestral sampler, T=1000" if sampler == "ddpm" else f"DDIM {steps} steps, eta {eta:g}"
                _put(out, f"fid_oracle_{kind}_n200", v["summary"], 2, labels,
                     f"FID (oracle-mnist5k features) of 200 samples, {what}; source {FID_SEEDS}")
        key, case = "fid_oracle_ancestral_n200", model_data(name).get("bench_diffusion_name")
        if key not in out and case:
            for r in bench_rows(res, BENCH_DIFFUSION):
                if r["case"] == f"{case} ancestral T=1000":
                    _put(out, key, mean_sd([r["fid_common"]]), 2, labels, "FID (oracle-mnist5k features) of "
                         f"200 samples, the ancestral sampler, T=1000; source {BENCH_DIFFUSION}")
    for rel in res.sample_files(name):
        s = sample_summary(res, rel)
        stem = stem_key(rel)
        d = s["doc"]
        out[f"nonfinite_samples_{stem}"] = int(d.get("nonfinite_samples", 0))
        labels[f"nonfinite_samples_{stem}"] = f"non-finite samples of {d.get('n_samples')} (all seeds); source {rel}"
        feats = d.get("features", "oracle")
        for m, v in s["summary"].items():
            key = (f"fid_{'oracle' if feats == 'oracle' else re.sub(r'[^a-z0-9]+', '_', str(feats))}"
                   if m == "fid" else m)
            _put(out, f"{key}_{stem}", v, 2 if m == "fid" else 4, labels,
                 f"{m} of {s['per_seed']} samples per seed, {sampler_label(d)}, T={d.get('temperature')}, "
                 f"{feats} features; source {rel}")
    return out


def stem_key(rel: str) -> str:
    """The suffix of a sample-quality file's metric keys in the index: "ddim50-eta1-t1.0" -> "ddim50_eta1_t1.0"."""
    return re.sub(r"[^a-z0-9.]+", "_", Path(rel).stem.lower())


def sample_metric_keys(res: Results, name: str, metrics: Dict[str, Any]) -> Dict[str, str]:
    """The keys of `metrics` that come from sample-quality files -> their file."""
    out = {}
    for rel in res.sample_files(name):
        stem = stem_key(rel)
        for key in metrics:
            if key.endswith("_" + stem):
                out[key] = rel
    return out


# number patterns of index descriptions: (regex with one group, metric key, format)
DESCRIPTION_NUMBERS = [
    (r"\(test bpd (\d+\.\d+)\)", "test_bpd", lambda v: f"{v:.3f}"),
    (r"\((\d+\.\d+)% test accuracy\)", "test_accuracy", lambda v: f"{100 * v:.1f}"),
    (r"NF-A (\d+\.\d+)%", "nf_a", lambda v: f"{100 * v:.1f}"),
    (r"label reliability (\d+\.\d+)% at T=0\.7", "label_reliability_rfcm_t0.7", lambda v: f"{100 * v:.1f}"),
]


def describe(description: Optional[str], metrics: Dict[str, Any]) -> Optional[str]:
    """The description with the numbers DESCRIPTION_NUMBERS knows taken from the metrics (a number whose
    metric is gone is a RenderError: say it without the number)."""
    if not description:
        return description
    for pattern, key, fmt in DESCRIPTION_NUMBERS:
        m = re.search(pattern, description)
        if m:
            if key not in metrics:
                raise RenderError(f"the description {description!r} gives {key}, which no result file backs")
            description = description[:m.start(1)] + fmt(metrics[key]) + description[m.end(1):]
    return description


def model_index(res: Results, name: str, index: Dict[str, Any]) -> List[str]:
    """A card's YAML `metrics:` list and `model-index:`, each value named with its source file: the accuracies,
    the test bpd (of the shipped weights; a diffusion model's bound), and of the sample-quality files the
    default setting's (config.json "sampling") FID and recognisable share (means); a model without a default
    keeps the FIDs and label reliabilities of its older files (the GLEM evaluation, the diffusion FID seeds)."""
    entry = index.get(name)
    if entry is None:
        raise RenderError(f"model-index:{name}: {name} is not in the zoo index")
    labels: Dict[str, str] = {}
    m = model_metrics(res, name, entry, labels)
    from_files = sample_metric_keys(res, name, m)
    _, default_rel = sampling_default(res, name)
    chosen = set()
    if default_rel:
        stem = stem_key(default_rel)
        chosen = {k for k in m if k.startswith(("fid_", "recognisable_")) and k.endswith("_" + stem)}
    items: List[Tuple[str, str, Any, str]] = []   # (task, type, value, name)
    for key in m:
        if key.endswith(("_sd", "_seeds")) or key in ("test_bpd_bound", "test_bpd_normal_prior"):
            continue
        if key in from_files:     # sample files: the default setting's FID and recognisable share only
            if key in chosen:
                typ = "fid" if key.startswith("fid") else "recognisable"
                items.append(("image-generation", typ, m[key], labels[key] + " (the default setting)"))
            continue
        if key in ("test_accuracy", "nf_a"):
            items.append(("image-classification", "accuracy", m[key], labels[key]))
        elif key.startswith("test_bpd"):
            items.append(("image-generation", "bpd", m[key], labels[key]))
        elif not default_rel and (key.startswith("fid_") or key.startswith("label_reliability_")):
            items.append(("image-generation", key.split("_")[0] if key.startswith("fid") else "label_reliability",
                          m[key], labels[key]))
    if not items:
        return []
    tasks = {"image-classification": "classification", "image-generation": "density estimation and generation"}
    lines = ["metrics:"] + [f"- {t}" for t in sorted({i[1] for i in items})]
    lines += ["model-index:", f"- name: {name}", "  results:"]
    for task in tasks:
        group = [i for i in items if i[0] == task]
        if not group:
            continue
        lines += ["  - task:", f"      type: {task}", f"      name: {tasks[task]}", "    dataset:",
                  "      name: mnist5k (test split, 1000 images)", "      type: mnist5k", "      split: test",
                  "    metrics:"]
        for _, typ, value, label in group:
            lines += [f"    - type: {typ}", f"      value: {value}", f"      name: {json.dumps(label)}"]
    return lines

