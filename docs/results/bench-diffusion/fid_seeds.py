"""FID (oracle-mnist5k features, 200 samples against the 1000 mnist5k test images) of a diffusion model
with one sampler, over sampling seeds 0..S-1: how much FID at n = 200 moves from seed to seed.

    python docs/results/bench-diffusion/fid_seeds.py MODEL SAMPLER STEPS S [ETA]
    e.g. python docs/results/bench-diffusion/fid_seeds.py ddpm-mnist5k ddim 50 5 1

ETA: DDIM's eta (default 0). Each seed draws 2 batches of 100 from torch.Generator().manual_seed(seed), as
`nfzoo bench diffusion` does for seed 0, so seed 0 reproduces the bench's fid_common.
"""
import sys

import numpy as np
import torch

import nfzoo
from nfzoo.data import load_dataset
from nfzoo.evaluation.metrics import dataset_features, fid, get_feature_extractor, compute_features
from nfzoo.evaluation.oracle import find_oracle
from nfzoo_diffused_flows.samplers import DiffusionSampler


def main() -> None:
    torch.set_num_threads(1)
    name, kind, steps, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    opts = {"steps": steps, **({"eta": float(sys.argv[5])} if len(sys.argv) > 5 else {})}
    m = nfzoo.load(name); m.eval(); m.sampler = DiffusionSampler(kind)
    net, _ = find_oracle(None, "mnist5k"); ex, _ = get_feature_extractor("oracle", net, "cpu")
    real = dataset_features(ex, load_dataset("mnist5k", "test"))
    out = []
    for s in range(seeds):
        g = torch.Generator().manual_seed(s)
        with torch.no_grad():
            f = np.concatenate([compute_features(ex, m.sample(100, generator=g, **opts)) for _ in range(2)])
        out.append(fid(real, f))
    print(name, kind, steps, *([f"eta={opts['eta']:g}"] if "eta" in opts else []), "FIDs", [round(v, 2) for v in out], "mean %.2f sd %.2f" % (np.mean(out), np.std(out, ddof=1)), flush=True)


if __name__ == "__main__":
    main()
