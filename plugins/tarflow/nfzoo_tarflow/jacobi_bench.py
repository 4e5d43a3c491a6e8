"""Jacobi decoding against the sequential KV-cache inverse, speed and sample quality, for the zoo's TarFlows:

    python -m nfzoo_tarflow.jacobi_bench --out docs/results/bench-tarflow/jacobi   (writes jacobi.json, .md)
    nfzoo bench tarflow-jacobi [--model NAME] [--out FILE.json]                     (the same rows)

For each model (tarflow-mnist5k and tarflow-mnist5k-cond, or `--model`) at its shipped sampling (temperature,
guidance), the settings `sequential` (the KV-cache inverse) and `jacobi tol=...` for each tolerance:

- speed: wall seconds of `model.decode` (the inverse and the denoising step: all of sampling but drawing z)
  on batches of 100 latents, batch r from torch.Generator().manual_seed(r), r < `repeat`; the settings
  interleaved (round r runs them in a rotated order) so load changes hit them alike, after one warm-up
  decode each; the ratio jacobi / sequential is of the mean times of the same run. Jacobi's iterations per
  block (and its sequential fallback steps) are counted on those batches.
- quality: FID by the data set's oracle (oracle-mnist5k features, nfzoo.evaluation.evaluate_samples) of
  `samples` images per seed against the mnist5k test split, mean and sd over `seeds`; a class-conditional
  model draws the labels 0..9 in turn; the largest pixel difference to the sequential images of batch 0.
- work: Transformer calls one after another per batch (all blocks: the serial depth, what bounds a
  latency-bound device such as a GPU at small batch) and tokens run through the Transformer per sample (the
  arithmetic, what bounds a compute-bound CPU), from the inverse's `stats`.

`--quick`: tiny random TarFlows (a smoke test of the bench, not a measurement).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from nfzoo.bench.timing import machine
from nfzoo.evaluation.results import source_commit

MODELS = ("tarflow-mnist5k", "tarflow-mnist5k-cond")
TOLERANCES: Tuple[Union[float, str], ...] = (1e-1, 1e-2, 1e-3, "0.1:8")   # "TOL:ITERS": also jacobi_iters
SEEDS = (0, 1, 2)
SAMPLES = 500
BATCH = 100
REPEAT = 3
DATASET = "mnist5k"


def _tiny(name: str):
    import torch

    import nfzoo

    torch.manual_seed(0)
    cond = name.endswith("cond")
    m = nfzoo.create_model("tarflow", image_shape=(1, 28, 28), patch_size=7, hidden=16, blocks=2, layers=1, heads=2,
                           num_classes=10 if cond else None, label_dropout=0.1 if cond else 0.0)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    if cond:
        m.set_sampling({"sampler": "tarflow", "temperature": 1.0, "options": {"guidance": 1.0}})
    return m.eval()


def _mean(values: Any) -> float:
    """The mean of a (possibly nested) list of numbers, as numpy's mean of it would be."""
    import torch

    return float(torch.tensor(values, dtype=torch.float64).mean())


def bench_model(name: str, quick: bool = False, log: Callable[[str], None] = print,
                tolerances: Sequence[Union[float, str]] = TOLERANCES, seeds: Sequence[int] = SEEDS,
                samples: int = SAMPLES, batch: int = BATCH, repeat: int = REPEAT) -> Dict[str, Any]:
    """One model's settings (see the module's docstring): {"model", "sampling", "settings": [...]}."""
    import torch

    import nfzoo
    from nfzoo.data import load_dataset
    from nfzoo.evaluation.metrics import evaluate_samples_over_seeds
    from nfzoo.evaluation.oracle import find_oracle

    m = _tiny(name) if quick else nfzoo.load(name)
    m.eval()
    sampler = m.sampler
    options = m.sampling_options()
    temperature = m.default_temperature
    settings: Dict[str, Dict[str, Any]] = {"sequential": {}}
    for spec in tolerances:
        tol, _, limit = str(spec).partition(":")
        opts: Dict[str, Any] = {"jacobi": 1, "jacobi_tol": float(tol)}
        if limit:
            opts["jacobi_iters"] = int(limit)
        settings[f"jacobi tol={float(tol):g}" + (f" iters={int(limit)}" if limit else "")] = opts
    labels = None if m.num_classes is None else torch.arange(batch) % m.num_classes
    zs = [sampler.sample(m, batch, y=labels, temperature=temperature, generator=torch.Generator().manual_seed(r),
                         **options) for r in range(repeat)]
    extra = {k: sampler.decode_options(**options, **v) for k, v in settings.items()}
    times: Dict[str, List[float]] = {k: [] for k in settings}
    iters: Dict[str, List[int]] = {k: [] for k in settings}
    fallback: Dict[str, List[int]] = {k: [] for k in settings}
    calls: Dict[str, List[int]] = {k: [] for k in settings}       # per batch: Transformer calls, all blocks
    computed: Dict[str, List[int]] = {k: [] for k in settings}    # per batch: tokens through it per sample
    first: Dict[str, torch.Tensor] = {}
    names = list(settings)
    with torch.no_grad():
        for k in names:                                   # warm-up, on a tenth of a batch
            m.decode(zs[0][:max(2, batch // 10)], None if labels is None else labels[:max(2, batch // 10)],
                     **extra[k])
        for r in range(repeat):
            for k in names[r % len(names):] + names[:r % len(names)]:
                stats: List[Dict[str, int]] = []
                t0 = time.perf_counter()
                x = m.decode(zs[r], labels, stats=stats, **extra[k])
                times[k].append(time.perf_counter() - t0)
                iters[k] += [s["iterations"] for s in stats]
                fallback[k] += [s["sequential_steps"] for s in stats]
                calls[k].append(sum(s["net_calls"] for s in stats))
                computed[k].append(sum(s["tokens_computed"] for s in stats))
                if r == 0:
                    first[k] = x
            log(f"{name}: round {r + 1}/{repeat}: " + ", ".join(f"{k} {times[k][-1]:.2f} s" for k in names))
    net, oracle_from = find_oracle(None, DATASET)
    test = load_dataset(DATASET, "test")
    out = []
    for k, opts in settings.items():
        t0 = time.perf_counter()
        doc = evaluate_samples_over_seeds(m, test, samples, list(seeds), oracle=net, batch_size=batch,
                                          sample_options={**options, **opts}, temperature=temperature)
        assert doc is not None            # no distributed context: this process is rank 0
        fids = [r["fid"] for r in doc["per_seed"]]
        t = torch.tensor(times[k], dtype=torch.float64)
        row: Dict[str, Any] = {
            "setting": k, "options": opts, "decode_s": times[k], "decode_s_mean": float(t.mean()),
            "decode_s_sd": float(t.std(correction=1)) if len(t) > 1 else 0.0, "decode_s_min": float(t.min()),
            "fid": fids, "fid_mean": doc["summary"]["fid"]["mean"], "fid_sd": doc["summary"]["fid"]["sd"],
            "nonfinite_samples": doc["nonfinite_samples"],
            "max_pixel_diff_vs_sequential": float((first[k] - first["sequential"]).abs().max()),
            "net_calls_per_batch": _mean(calls[k]), "tokens_computed_per_batch": _mean(computed[k]),
        }
        for key in ("recognisable", "label_reliability"):
            if key in doc["summary"]:
                row[key] = doc["summary"][key]["mean"]
        if opts:
            row["iterations_per_block"] = iters[k]
            row["mean_iterations_per_block"] = _mean(iters[k])
            row["sequential_fallback_steps"] = int(sum(fallback[k]))
        out.append(row)
        log(f"{name}: {k}: FID {row['fid_mean']:.2f} +- {row['fid_sd']:.2f} ({time.perf_counter() - t0:.0f} s)")
    base = out[0]["decode_s_mean"]
    for row in out:
        row["time_ratio_vs_sequential"] = row["decode_s_mean"] / base
    block = m.bijector.blocks[0]
    return {"model": "tiny (quick)" if quick else name, "sampling": {"temperature": temperature, **options},
            "tokens_per_block": block.tokens, "blocks": len(m.bijector.blocks), "oracle": oracle_from,
            "settings": out}


def bench_jacobi(quick: bool = False, log: Callable[[str], None] = print, model: Optional[str] = None,
                 tolerances: Sequence[Union[float, str]] = TOLERANCES, seeds: Sequence[int] = SEEDS,
                 samples: Optional[int] = None, repeat: Optional[int] = None) -> Dict[str, Any]:
    """The rows of `nfzoo bench tarflow-jacobi` (see the module's docstring): per model and tolerance, the
    sequential inverse (baseline) against Jacobi decoding (candidate); ratio = baseline_s / candidate_s (> 1:
    Jacobi faster), the FIDs and iteration counts beside it. `model`: one TarFlow (default: both zoo ones)."""
    import torch

    before = machine()
    names = [model] if model else list(MODELS)
    if quick:
        samples, repeat, seeds = samples or 20, repeat or 2, list(seeds)[:2]
    samples, repeat = samples or SAMPLES, repeat or REPEAT
    batch = 10 if quick else BATCH
    models = [bench_model(n, quick, log, tolerances, seeds, samples, batch, repeat) for n in names]
    rows = []
    for doc in models:
        base = doc["settings"][0]
        for s in doc["settings"][1:]:
            rows.append({"case": f"{doc['model']}: decode {batch} images", "baseline": "sequential",
                         "candidate": s["setting"], "baseline_s": base["decode_s_mean"],
                         "candidate_s": s["decode_s_mean"], "ratio": base["decode_s_mean"] / s["decode_s_mean"],
                         "mean_iterations_per_block": s["mean_iterations_per_block"],
                         "fallback_steps": s["sequential_fallback_steps"],
                         "net_calls": s["net_calls_per_batch"], "net_calls_sequential": base["net_calls_per_batch"],
                         "fid": f"{s['fid_mean']:.2f} +- {s['fid_sd']:.2f}",
                         "fid_sequential": f"{base['fid_mean']:.2f} +- {base['fid_sd']:.2f}",
                         "max_pixel_diff": s["max_pixel_diff_vs_sequential"]})
    from nfzoo.bench.timing import device_name

    after = machine()
    notes = [f"decode = the inverse and the denoising step on a batch of {batch} latents; mean of {repeat} batches "
             "(seeds 0..), settings interleaved; the rows' ratio (nfzoo bench's convention) = sequential_s / "
             "jacobi_s (> 1: Jacobi faster), the Markdown tables' 'time vs sequential' its inverse",
             f"FID: {samples} samples per seed, seeds {list(seeds)}, oracle-{DATASET} features against the "
             f"{DATASET} test split; each model at its shipped sampling (temperature, guidance)"]
    if quick:
        notes.append("--quick: tiny random models (a smoke test, not a measurement)")
    return {"bench": "tarflow-jacobi", "device": device_name("cpu"), "rows": rows, "models": models,
            "protocol": {"batch": batch, "repeat": repeat, "samples_per_seed": samples, "seeds": list(seeds),
                         "tolerances": [str(t) for t in tolerances], "dataset": DATASET,
                         "oracle": f"oracle-{DATASET}", "torch": torch.__version__, "commit": source_commit()},
            "machine": {"before": before, "after": after}, "notes": notes}


def markdown(doc: Dict[str, Any]) -> str:
    """The bench document as a Markdown page (a table per model)."""
    mb = doc.get("measured_by", {})
    p, mach = doc["protocol"], doc["machine"]
    lines = ["# TarFlow: Jacobi decoding against the sequential KV-cache inverse", "",
             f"Command: `{mb.get('command', '?')}`  ",
             f"Date: {mb.get('date', '?')} (commit {mb.get('commit') or p.get('commit')}, torch {p['torch']})  ",
             f"Machine: {mach['before']['cpu']}, nproc {mach['before']['nproc']} (usable "
             f"{mach['before']['usable_cpus']}), torch threads {mach['before']['torch_threads']}, OMP_NUM_THREADS "
             f"{mach['before']['OMP_NUM_THREADS']}; load average (1, 5, 15 min) {mach['before']['load_average']} "
             f"before, {mach['after']['load_average']} after  ",
             f"Speed: `decode` (inverse + denoising step) of a batch of {p['batch']} latents, mean +- sd over "
             f"{p['repeat']} batches (seeds 0..{p['repeat'] - 1}), the settings interleaved in one run; ratio = "
             "jacobi / sequential time (< 1: Jacobi faster)  ",
             f"Quality: FID by {p['oracle']} features against the {p['dataset']} test split, {p['samples_per_seed']} "
             f"samples per seed, mean +- sd over seeds {p['seeds']}", ""]
    for m in doc["models"]:
        samp = ", ".join(f"{k} {v}" for k, v in m["sampling"].items())
        lines += [f"## {m['model']} ({samp}; {m['blocks']} blocks x {m['tokens_per_block']} patches)", "",
                  "| setting | s / batch | min s | time vs sequential | mean iterations / block (per block, "
                  "decode order) | fallback steps | Transformer calls / batch | tokens computed / batch | "
                  "max pixel diff vs sequential | FID (per seed) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for s in m["settings"]:
            if "mean_iterations_per_block" in s:
                nb = m["blocks"]
                per = s["iterations_per_block"]
                by_block = [sum(per[i::nb]) / len(per[i::nb]) for i in range(nb)]
                it = f"{s['mean_iterations_per_block']:.1f} ({', '.join(f'{v:.1f}' for v in by_block)})"
                fb = str(s["sequential_fallback_steps"])
            else:
                it, fb = f"({m['tokens_per_block'] - 1} sequential steps)", "-"
            fids = ", ".join(f"{f:.2f}" for f in s["fid"])
            lines.append(f"| {s['setting']} | {s['decode_s_mean']:.2f} +- {s['decode_s_sd']:.2f} | "
                         f"{s['decode_s_min']:.2f} | {s['time_ratio_vs_sequential']:.2f} | {it} | {fb} | "
                         f"{s['net_calls_per_batch']:.0f} | {s['tokens_computed_per_batch']:.0f} | "
                         f"{s['max_pixel_diff_vs_sequential']:.2g} | {s['fid_mean']:.2f} +- {s['fid_sd']:.2f} "
                         f"({fids}) |")
        lines.append("")
    lines += [f"- {n}" for n in doc["notes"]]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    from nfzoo.evaluation.results import write_result

    ap = argparse.ArgumentParser(prog="python -m nfzoo_tarflow.jacobi_bench",
                                 description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--out", required=True, help="path stem: writes STEM.json and STEM.md")
    ap.add_argument("--model", help="one TarFlow (default: tarflow-mnist5k and tarflow-mnist5k-cond)")
    ap.add_argument("--tolerances", default=",".join(str(t) for t in TOLERANCES),
                    help="Jacobi settings, comma-separated: TOL, or TOL:ITERS to cap the iterations per block")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    ap.add_argument("--samples", type=int, default=None, help=f"samples per seed (default {SAMPLES})")
    ap.add_argument("--repeat", type=int, default=None, help=f"timed batches (default {REPEAT})")
    ap.add_argument("--quick", action="store_true", help="tiny random models (a smoke test)")
    args = ap.parse_args(argv)
    tolerances = args.tolerances.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    doc = bench_jacobi(quick=args.quick, log=lambda s: print(s, file=sys.stderr, flush=True), model=args.model,
                       tolerances=tolerances, seeds=seeds, samples=args.samples, repeat=args.repeat)
    stem = Path(args.out)
    command = shlex.join(["python", "-m", "nfzoo_tarflow.jacobi_bench", *(sys.argv[1:] if argv is None else argv)])
    if os.environ.get("OMP_NUM_THREADS"):
        command = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} {command}"
    path = write_result(stem.with_suffix(".json"), doc, command)
    import json

    stem.with_suffix(".md").write_text(markdown(json.loads(path.read_text())))
    print(markdown(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
