"""The diffusion bound's test bpd over several seeds (each seed: other dequantization noise, timesteps and
diffusion noise; one timestep per image), its mean and standard deviation across seeds:

    python docs/results/diffusion_bound_seeds.py MODEL [SEEDS]      # prints JSON
"""
import json
import statistics
import sys

import nfzoo
from nfzoo.data import load_dataset
from nfzoo.training.trainer import evaluate_bpd


def main() -> None:
    name, k = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10
    m, test = nfzoo.load(name), load_dataset("mnist5k", "test")
    vals = [evaluate_bpd(m, test, seed=s)["bpd"] for s in range(k)]
    print(json.dumps({"model": name, "seeds": list(range(k)), "bpd": vals, "mean": statistics.mean(vals),
                      "stdev_across_seeds": statistics.stdev(vals)}, indent=1))


if __name__ == "__main__":
    main()
