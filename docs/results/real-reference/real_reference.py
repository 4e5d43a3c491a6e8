"""What real images score on the sample metrics: the scale for the FID, Coverage, Density and recognisable
share of a model's samples on mnist5k (oracle-mnist5k features, against the 1000 images of the test split,
k = 5, as `nfzoo eval MODEL --dataset mnist5k --samples N` measures them).

    OMP_NUM_THREADS=1 python docs/results/real-reference/real_reference.py [--n 1000] [--seeds 5] [--out FILE]

For each seed, N images drawn without replacement from the 4000-image training split (a torch.Generator
seeded with the seed picks them) stand in for the samples. Also measured: the oracle's accuracy and its
recognisable share (largest softmax output >= 0.9) on the test split itself. The document is written through
nfzoo.evaluation.results.write_result (command, date, commit, versions, threads) to
docs/results/real-reference/mnist5k-oracle-nN.json unless --out says otherwise. About a minute on one thread
for N = 1000 (1.5 minutes for N = 2000 on a busy machine).
"""
import argparse
import shlex
import sys
from pathlib import Path

import torch

from nfzoo.data import load_dataset
from nfzoo.evaluation.metrics import (RECOGNISABLE, compute_features, coverage_density, dataset_features, fid,
                           get_feature_extractor, recognisable_share)
from nfzoo.evaluation.oracle import find_oracle, oracle_accuracy
from nfzoo.evaluation.results import mean_sd, summarize, write_result

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    """Measure and write the reference document; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="training images per seed [1000]")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0 .. S-1 [5]")
    ap.add_argument("--out", type=Path, help="output JSON [docs/results/real-reference/mnist5k-oracle-nN.json]")
    a = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    out = a.out or HERE / f"mnist5k-oracle-n{a.n}.json"

    train, test = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")
    if not 2 <= a.n <= len(train):
        ap.error(f"--n must be in [2, {len(train)}]")
    net, oracle_name = find_oracle(None, "mnist5k")
    extractor, described = get_feature_extractor("oracle", net)
    real = dataset_features(extractor, test)
    test_images = test.batch(torch.arange(len(test)))[0]
    runs = []
    for seed in range(a.seeds):
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:a.n]
        images = train.batch(idx)[0]
        feats = compute_features(extractor, images)
        runs.append({"seed": seed, "fid": fid(real, feats), **coverage_density(real, feats, k=5),
                     "recognisable": recognisable_share(net, images)})
    doc = {"what": f"{a.n} real training images of mnist5k in place of samples, scored as samples are",
           "dataset": "mnist5k", "split": "test", "reference_split": "train", "n_samples": a.n,
           "seeds": list(range(a.seeds)), "per_seed": runs,
           "summary": summarize(runs, ("fid", "coverage", "density", "recognisable")),
           "n_real": len(test), "k": 5, "features": described, "oracle": oracle_name,
           "recognisable_threshold": RECOGNISABLE,
           "oracle_test_accuracy": oracle_accuracy(net, test),
           "recognisable_real": recognisable_share(net, test_images)}
    assert doc["summary"]["fid"]["n"] == a.seeds and mean_sd([r["fid"] for r in runs]) == doc["summary"]["fid"]
    command = shlex.join(["python", "docs/results/real-reference/real_reference.py", *argv])
    write_result(out, doc, command)
    s = doc["summary"]
    print(f"{out}: FID {s['fid']['mean']:.2f} +- {s['fid']['sd']:.2f}, coverage {s['coverage']['mean']:.3f}, "
          f"oracle test accuracy {doc['oracle_test_accuracy']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
