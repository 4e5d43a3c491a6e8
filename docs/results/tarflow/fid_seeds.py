"""FID of a TarFlow model at n = 200 over sampling seeds 0..S-1, by the protocol of
docs/results/bench-diffusion/fid_seeds.py (the one ddpm-mnist5k's ancestral FID, 12.47 +- 0.74, was measured
with): oracle-mnist5k features, 200 samples (2 batches of 100 from torch.Generator().manual_seed(seed))
against the 1000 mnist5k test images, one thread.

    python docs/results/tarflow/fid_seeds.py MODEL S [TEMPERATURE] [KEY=VALUE ...] [--no-denoise]
    e.g. python docs/results/tarflow/fid_seeds.py tarflow-mnist5k 5 1.0 guidance=1 attn_temp=1.5

KEY=VALUE: options of the tarflow sampler (guidance, guidance_anneal, attn_temp). A class-conditional model
draws 10 images of each class per 100 (labels 0..9 in turn).

Prints one line: the model, the setting, the FID per seed, mean and sd (ddof 1), seconds per 100 samples.
"""
import sys
import time

import numpy as np
import torch

import nfzoo
from nfzoo.data import load_dataset
from nfzoo.evaluation.metrics import compute_features, dataset_features, fid, get_feature_extractor
from nfzoo.evaluation.oracle import find_oracle


def main() -> None:
    torch.set_num_threads(1)
    args = [a for a in sys.argv[1:] if not a.startswith("--") and "=" not in a]
    options = {k: float(v) for k, v in (a.split("=", 1) for a in sys.argv[1:] if "=" in a)}
    name, seeds = args[0], int(args[1])
    temperature = float(args[2]) if len(args) > 2 else None
    denoise = False if "--no-denoise" in sys.argv else None
    m = nfzoo.load(name)
    m.eval()
    net, _ = find_oracle(None, "mnist5k")
    ex, _ = get_feature_extractor("oracle", net, "cpu")
    real = dataset_features(ex, load_dataset("mnist5k", "test"))
    # a class-conditional model draws balanced classes (10 of each label per 100), as the conditional cards do
    labels = None if m.num_classes is None else torch.arange(100) % m.num_classes
    out, nonfinite, spent = [], 0, 0.0
    for s in range(seeds):
        g = torch.Generator().manual_seed(s)
        feats = []
        for _ in range(2):
            t0 = time.perf_counter()
            with torch.no_grad():
                x = m.sample(100, y=labels, generator=g, temperature=temperature, denoise=denoise, **options)
            spent += time.perf_counter() - t0
            nonfinite += int((~torch.isfinite(x)).flatten(1).any(1).sum())
            feats.append(compute_features(ex, x))
        out.append(fid(real, np.concatenate(feats)))
    t = m.default_temperature if temperature is None else temperature
    print(name, f"T={t:g}", *[f"{k}={v:g}" for k, v in options.items()],
          "denoise" if denoise is None else "no-denoise", "FIDs", [round(v, 2) for v in out],
          "mean %.2f sd %.2f" % (np.mean(out), np.std(out, ddof=1) if len(out) > 1 else 0.0),
          "non-finite %d/%d" % (nonfinite, 200 * seeds), "s/100 %.2f" % (spent / (2 * seeds)), flush=True)


if __name__ == "__main__":
    main()
