"""The effect of weight averaging (EMA / SWA) on two zoo recipes, measured: each recipe was run with
`--ema 0.999 --swa-epochs 10` (one run gives the raw weights and both averages: averaging never changes the
raw trajectory), then each of the main training stage's raw / ema / swa folders is evaluated:

    nfzoo train --recipe glow-mnist5k --ema 0.999 --swa-epochs 10 --out runs/ema-glow
    nfzoo train --recipe glem-mnist5k --ema 0.999 --swa-epochs 10 --out runs/ema-glem
    python docs/results/averaging/measure.py            # the evals below, then table.md

Per variant: `nfzoo eval RUN/1-train/VARIANT --dataset mnist5k --samples 1000 --seeds 3 -t 0.7 [--sampler
rfcm] --out docs/results/averaging/MODEL-VARIANT.json` (test bpd of those weights, FID, recognisable share,
label reliability for GLEM), and the history's final test bpd of each. table.md is written from the files.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
RUNS = {"glow-mnist5k": ("runs/ema-glow", []), "glem-mnist5k": ("runs/ema-glem", ["--sampler", "rfcm"])}
VARIANTS = ("raw", "ema", "swa")


def measure(force: bool = False) -> None:
    exe = Path(sys.executable).with_name("nfzoo")
    for model, (run, extra) in RUNS.items():
        for v in VARIANTS:
            out = HERE / f"{model}-{v}.json"
            if out.exists() and not force:
                continue
            cmd = [str(exe), "eval", f"{run}/1-train/{v}", "--dataset", "mnist5k", "--samples", "1000", "--seeds",
                   "3", "--temperature", "0.7", *extra, "--out", str(out.relative_to(ROOT))]
            print(" ".join(cmd[1:]), flush=True)
            subprocess.run(cmd, cwd=ROOT, check=True)


def pm(s, digits=2, pct=False):
    if s is None:
        return "-"
    k = 100 if pct else 1
    return f"{s['mean'] * k:.{digits}f} +- {s['sd'] * k:.{digits}f}" + ("%" if pct else "")


def table() -> str:
    lines = ["| recipe | weights | test bpd | FID (T = 0.7) | recognisable | label reliability | file |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for model in RUNS:
        for v in VARIANTS:
            f = HERE / f"{model}-{v}.json"
            if not f.exists():
                continue
            d = json.loads(f.read_text())
            sm = d["summary"]
            lines.append(f"| {model} | {v} | {d['bpd']:.4f} | {pm(sm['fid'])} | {pm(sm.get('recognisable'), 1, True)} "
                         f"| {pm(sm.get('label_reliability'), 1, True)} | `{f.relative_to(ROOT)}` |")
    lines += ["", "Each of 1000 samples x 3 seeds (mean +- sd over the seeds), against the 1000 mnist5k test images in "
              "the oracle-mnist5k features; test bpd exact, seed 0's dequantization. glow: the recipe's first stage "
              "(95 epochs, N(0, I) prior, ancestral sampler); glem: its only stage (80 epochs, the RFCM sampler). "
              "EMA decay 0.999 (every step); SWA: the mean of the last 10 epochs' weights. Commands: in each file."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    measure(force="--force" in sys.argv)
    (HERE / "table.md").write_text(table())
    print(table())
