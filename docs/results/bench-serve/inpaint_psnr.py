"""PSNR in the box of the gallery's inpainting on held-out digits, per setting, as `nfzoo serve` runs it.

Each digit is inpainted alone, as one gallery request does it (nfzoo_heads.inpaint on one image, the box's mask,
torch.Generator().manual_seed(SEED)), on images 0 .. N-1 of the model's test split; the PSNR (dB, 8-bit, inside
the box) is against the original digit. Prints and writes {"rows": [{"options", "psnr_db": {mean, sd, n},
"seconds_per_digit": {mean, sd, n}}]} with its measured_by record.

    OMP_NUM_THREADS=1 python docs/results/bench-serve/inpaint_psnr.py --n 100 \
        --set iters=50 --set iters=50,lr=0.2 --out docs/results/bench-serve/inpaint-psnr.json
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time


def parse_setting(text: str) -> dict:
    out = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        out[k.strip()] = float(v) if "." in v or "e" in v else int(v)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="inverse-flow-mnist5k")
    ap.add_argument("--n", type=int, default=100, help="digits: test images 0 .. n-1")
    ap.add_argument("--box", default="8,8,20,20", help="the gallery page's default box")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", dest="settings", default=[],
                    help="inpainting options, k=v,k=v (repeatable; none: the gallery's default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    import torch

    import nfzoo
    from nfzoo.data import load_dataset
    from nfzoo.evaluation.results import mean_sd, write_result
    from nfzoo_gallery.features import INPAINT_DEFAULTS
    from nfzoo_heads import box_mask, inpaint, parse_box
    from nfzoo_heads.inpainting import psnr_in_mask

    torch.set_num_threads(a.threads)
    model = nfzoo.load(a.model)
    model.eval()
    model.requires_grad_(False)
    test = load_dataset(model_dataset(a.model), "test")
    x, _ = test.batch(torch.arange(a.n))
    mask = box_mask(x.shape[1:], parse_box(a.box))
    settings = [parse_setting(s) for s in a.settings] or [dict(INPAINT_DEFAULTS["latent"])]
    inpaint(model, x[:1], mask, torch.Generator().manual_seed(a.seed), **settings[0])        # warm-up
    rows = []
    for opts in settings:
        psnr, secs = [], []
        for i in range(a.n):
            t0 = time.perf_counter()
            filled = inpaint(model, x[i:i + 1], mask, torch.Generator().manual_seed(a.seed), **opts)
            secs.append(time.perf_counter() - t0)
            psnr.append(float(psnr_in_mask(filled, x[i:i + 1], mask)[0]))
        row = {"options": opts, "psnr_db": mean_sd(psnr), "seconds_per_digit": mean_sd(secs),
               "psnr_per_digit": [round(p, 3) for p in psnr]}
        if rows:             # paired with the first setting, digit by digit
            first = rows[0]["psnr_per_digit_exact"]
            row["psnr_gain_over_first_db"] = mean_sd(b - a for a, b in zip(first, psnr))
            row["digits_better_than_first"] = sum(b > a for a, b in zip(first, psnr))
        row["psnr_per_digit_exact"] = psnr
        rows.append(row)
        gain = row.get("psnr_gain_over_first_db")
        print(f"{json.dumps(opts)}: PSNR {row['psnr_db']['mean']:.3f} +- {row['psnr_db']['sd']:.3f} dB, "
              f"{row['seconds_per_digit']['mean']:.3f} s/digit"
              + (f", {gain['mean']:+.3f} +- {gain['sd']:.3f} dB over the first" if gain else ""), flush=True)
    doc = {"model": a.model, "dataset": model_dataset(a.model), "split": "test", "digits": a.n, "box": a.box,
           "seed": a.seed, "threads": a.threads, "load_average": [round(v, 2) for v in os.getloadavg()],
           "nproc": os.cpu_count(), "rows": rows}
    for r in rows:
        r.pop("psnr_per_digit_exact")
    if a.out:
        write_result(a.out, doc, shlex.join(["python", *sys.argv]))
    return 0


def model_dataset(name: str) -> str:
    from nfzoo.loading.pretrained import resolve_pretrained

    return resolve_pretrained(name).dataset


if __name__ == "__main__":
    raise SystemExit(main())
