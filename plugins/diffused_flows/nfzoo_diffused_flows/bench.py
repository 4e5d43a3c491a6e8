"""`nfzoo bench diffusion`: sample quality against sampling time, in one run.

Models: the zoo's ddpm-mnist5k and diffused-flows-mnist5k (ancestral sampling at their trained T, and DDIM
at 100, 50, 20 and 10 steps, deterministic (eta = 0) and stochastic (eta = 1: the ancestral sampler over
those steps)), with nsf-mnist5k and glow-mnist5k (temperatures 1.0 and 0.7) beside them.
For each case: oracle FID and Coverage (oracle-mnist5k's features) against the mnist5k test split, and
seconds per 100 samples (sampling only, batches of 100, wall clock on this machine).

The full-T ancestral cases are slow (1000 U-Net calls per batch for ddpm), so they draw FULL_N samples
and every other case draws N; every case's FID is also computed on its first FULL_N samples ("fid_common"),
and the ratios and the plot use that one, so all FIDs compared come from the same number of samples (FID
is biased upwards at small n). Ratios: `ratio` = ddpm ancestral's seconds / the case's (> 1: faster),
`fid_ratio` = the case's fid_common / ddpm ancestral's. It writes bench-diffusion.png (FID against
seconds per 100 samples) and bench-diffusion.json in the current directory.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional

from nfzoo.bench.timing import device_name, row

DDIM_STEPS = (100, 50, 20, 10)
DDIM_ETAS = (0.0, 1.0)
N, FULL_N, BATCH = 500, 200, 100
PLOT = "bench-diffusion.png"


def _models(quick: bool):
    import torch

    import nfzoo

    if not quick:
        return {name: nfzoo.load(f"{name}-mnist5k") for name in ("ddpm", "diffused-flows", "nsf", "glow")}
    torch.manual_seed(0)     # --quick: tiny random models of the same kinds (a smoke test of the bench)
    tiny = {"image_shape": [1, 28, 28], "timesteps": 20, "unet_channels": [8, 16]}
    models = {"ddpm": nfzoo.create_model("ddpm", **tiny),
              "diffused-flows": nfzoo.create_model("diffused-flows", levels=1, steps=1, hidden=8, **tiny),
              "nsf": nfzoo.create_model("nsf", image_shape=[1, 28, 28], levels=1, steps=1, hidden=8),
              "glow": nfzoo.create_model("glow", image_shape=[1, 28, 28], levels=1, steps=1, hidden=8)}
    x = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for m in models.values():
        m.initialize(x)
        m.eval()
    return models


def _cases(models, quick: bool) -> List[Dict]:
    from .samplers import DiffusionSampler

    steps = (4, 2) if quick else DDIM_STEPS
    cases = []
    for name in ("ddpm", "diffused-flows"):
        T = models[name].prior.timesteps
        cases.append({"model": name, "sampler": DiffusionSampler("ddpm"), "steps": T, "full": True,
                      "label": f"{name} ancestral T={T}"})
        for eta in DDIM_ETAS:
            for s in steps:
                cases.append({"model": name, "sampler": DiffusionSampler("ddim"), "steps": s, "eta": eta,
                              "full": False, "label": f"{name} ddim {s}" + (f" eta={eta:g}" if eta else "")})
    for name in ("nsf", "glow"):
        for t in (1.0, 0.7):
            cases.append({"model": name, "sampler": None, "temperature": t, "full": False,
                          "label": f"{name} T={t:g}"})
    return cases


def _run_case(case, model, extractor, n: int, batch: int):
    import numpy as np
    import torch

    from nfzoo.evaluation.metrics import compute_features

    if case.get("sampler") is not None:
        model.sampler = case["sampler"]
    opts = {k: case[k] for k in ("steps", "eta") if k in case}
    gen = torch.Generator().manual_seed(0)
    feats, seconds, nonfinite = [], 0.0, 0
    with torch.no_grad():
        for i in range(0, n, batch):
            b = min(batch, n - i)
            t0 = time.perf_counter()
            x = model.sample(b, temperature=case.get("temperature", 1.0), generator=gen, **opts)
            seconds += time.perf_counter() - t0
            ok = torch.isfinite(x.flatten(1)).all(1)
            nonfinite += int((~ok).sum())
            feats.append(compute_features(extractor, x[ok]))
    return np.concatenate(feats), seconds / n * 100, nonfinite


def _plot(rows: List[Dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nfzoo.evaluation.plots import save_figure

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    series = [("ddpm", "o", 0.0), ("diffused-flows", "s", 0.0), ("ddpm", "o", 1.0), ("diffused-flows", "s", 1.0),
              ("nsf", "^", None), ("glow", "v", None)]
    colors = {"ddpm": "C0", "diffused-flows": "C1", "nsf": "C2", "glow": "C3"}
    for model, marker, eta in series:
        # one line per model and DDIM eta; each diffusion line starts at the model's ancestral sampler
        pts = [(r["candidate_s"], r["fid_common"], r["case"]) for r in rows if r["model"] == model
               and (eta is None or r.get("eta", 0.0) == eta or "ancestral" in r["case"])]
        if not pts:
            continue
        xs, ys, labels = zip(*pts)
        label = model if eta is None else f"{model} (ddim eta={eta:g})"
        ax.plot(xs, ys, marker=marker, color=colors[model], ls="" if eta is None else "-" if eta == 0 else "--",
                label=label)
        for x, y, lab in pts:
            if eta == 1.0 and "ancestral" in lab:
                continue                          # labelled on the eta = 0 line
            text = lab.split(" ", 1)[1].replace(" eta=1", "")
            ax.annotate(text, (x, y), fontsize=7, xytext=(3, -9 if eta == 1.0 else 3), textcoords="offset points")
    base = rows[0]
    ax.axhline(1.25 * base["fid_common"], color="gray", ls=":", lw=1)
    ax.annotate(f"1.25x {base['case']}", (rows[-1]["candidate_s"], 1.25 * base["fid_common"]), fontsize=7,
                color="gray", xytext=(0, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("seconds per 100 samples (log scale)")
    ax.set_ylabel(f"oracle FID ({rows[0]['n_common']} samples)")
    ax.set_title("mnist5k: FID against sampling time")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def bench_diffusion(quick: bool = False, log=print, out_dir: Optional[str] = None) -> Dict:
    from nfzoo.data import load_dataset
    from nfzoo.evaluation.metrics import coverage_density, dataset_features, fid, get_feature_extractor
    from nfzoo.evaluation.oracle import find_oracle
    from nfzoo.safeio import atomic_write_json

    n, full_n, batch = (8, 4, 4) if quick else (N, FULL_N, BATCH)
    models = _models(quick)
    test = load_dataset("mnist5k", "test")
    net, oracle_from = find_oracle(None, "mnist5k")
    extractor, described = get_feature_extractor("oracle", net, "cpu")
    real = dataset_features(extractor, test)
    results = []
    for case in _cases(models, quick):
        m = models[case["model"]]
        k = full_n if case["full"] else n
        log(f"{case['label']}: {k} samples ...")
        feats, s100, bad = _run_case(case, m, extractor, k, batch)
        r = {"case": case["label"], "model": case["model"], "s_per_100": s100, "n_samples": k,
             "nonfinite": bad, "fid": fid(real, feats), "fid_common": fid(real, feats[:full_n]),
             "n_common": full_n, **coverage_density(real, feats, 5)}
        r.update({k: case[k] for k in ("steps", "eta") if k in case})
        log(f"  FID {r['fid']:.2f} (first {full_n}: {r['fid_common']:.2f}), coverage {r['coverage']:.3f}, "
            f"{s100:.2f} s per 100 samples")
        results.append(r)
    base = results[0]                  # ddpm, ancestral at its T
    rows = []
    ddpm_at = {(r["steps"], r["eta"]): r for r in results if r["model"] == "ddpm" and "eta" in r}
    for r in results:
        extra = {k: v for k, v in r.items() if k not in ("case", "s_per_100")}
        extra["fid_ratio"] = r["fid_common"] / base["fid_common"]
        same = ddpm_at.get((r.get("steps"), r.get("eta")))
        if r["model"] == "diffused-flows" and same is not None:
            extra["fid_common_ddpm_same_steps"] = same["fid_common"]
        rows.append(row(r["case"], base["case"], r["case"], base["s_per_100"], r["s_per_100"], **extra))
    out = Path(out_dir or ".")
    notes = [f"times are seconds per 100 samples; ratio = {base['case']}'s time / the case's",
             f"the full-T ancestral cases draw {full_n} samples, the others {n}; fid_common (and fid_ratio, "
             f"and the plot) use each case's first {full_n}, against the {len(test)} mnist5k test images",
             f"features: {described} ({oracle_from})",
             f"plot: {out / PLOT}"]
    if quick:
        notes.append("--quick: tiny random models, not the zoo's; the numbers mean nothing")
    doc = {"bench": "diffusion", "device": device_name(), "rows": rows, "notes": notes}
    _plot(rows, out / PLOT)
    atomic_write_json(out / "bench-diffusion.json", doc)
    return doc
