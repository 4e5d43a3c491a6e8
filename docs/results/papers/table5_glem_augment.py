"""GLEM's Table 9 at mnist5k scale: latent augmentation ADDED to the standard augmentation, with a GLEM model.

    OMP_NUM_THREADS=1 python docs/results/papers/table5_glem_augment.py [--seeds 0 1 2] [--mode mixup]

The paper fine-tunes a classifier on images augmented through GLEM's latent space on top of the usual
augmentations, and compares it with the usual ones alone. Here a ResNet-18 (the heads' recipe) is trained
on mnist5k's 4000 training images with the standard augmentation (random affine) against the standard
augmentation plus latent augmentation through the zoo's glem-mnist5k (a fraction p = 0.5 of every batch
replaced by same-class latent mixes, then the random affine on the whole batch: the `standard+latent` arm of
`nfzoo eval MODEL --task augment`), the same seeds for both arms. Each (arm, seed) is one
`nfzoo_heads.augment.augment_study` call, cached in runs/papers/t5/ (resumable); writes
table5_glem_augment.md and .json beside this script. --report-only rewrites them from the cache.
"""
from __future__ import annotations

import sys
from pathlib import Path

from nfzoo_docs import papers as C   # the paper-table scripts' shared code (zoo/tools/nfzoo_docs/papers)

NAME = "table5_glem_augment"
MODEL = "glem-mnist5k"
ARMS = ("standard", "standard+latent")
P = 0.5
# papers/003 Table 9 (ImageNet, EVA02 fine-tuned with GLEM augmentations, top-1 %): the OCR of the table
# gives the three top-1 values 91.229, 91.129, 90.969 for "GLEM augmentations (ours)" and two EVA02 models;
# its caption says the GLEM-augmented model has the highest top-1 of the table.
PAPER = {"glem_augmented_top1": 91.229, "other_top1_listed": [91.129, 90.969],
         "caption": "GLEM based augmentation achieves the highest rank in term of top1 accuracy"}
PRIOR_STUDY = {"file": "docs/results/heads/augment-glow-mnist5k.json",
               "what": "glow-mnist5k, latent mixup replacing the affine jitter (arm 'latent')",
               "standard": [0.987, 0.981, 0.982], "latent": [0.974, 0.967, 0.977]}


def cache_path(arm: str, seed: int, mode: str) -> Path:
    return C.RECORDS / "t5" / f"{MODEL}-{mode}-p{P:g}-{arm}-s{seed}.json"


def cli_equivalent(arm: str, seed: int, mode: str) -> str:
    return (f"nfzoo eval {MODEL} --dataset {C.DATASET} --task augment --set arms=[\"{arm}\"] "
            f"--set seeds=[{seed}] --set mode={mode} --set p={P:g}")


def measure(seeds, mode: str, after=None) -> None:
    model = None
    for seed in seeds:              # seed by seed, so that a partial run has both arms of its seeds
        for arm in ARMS:
            path = cache_path(arm, seed, mode)
            if path.is_file():
                continue
            import time

            import nfzoo
            from nfzoo_heads.augment import augment_study

            if model is None:
                model = nfzoo.load(MODEL)
            C.log(f"augment study: {arm}, seed {seed} ({mode}, p = {P})")
            t0 = time.perf_counter()
            doc = augment_study(model, C.DATASET, seeds=[seed], arms=[arm], mode=mode, p=P, model_name=MODEL)
            doc.pop("summary", None)
            C.write(path, {**doc, "arm": arm, "seed": seed, "test_accuracy": doc["arms"][arm]["test_accuracy"][0],
                           "seconds": time.perf_counter() - t0, "command": cli_equivalent(arm, seed, mode)})
            if after is not None:
                after()


def collect(seeds, mode: str):
    arms = {}
    for arm in ARMS:
        per = {s: C.read(cache_path(arm, s, mode)) for s in seeds}
        accs = {s: d["test_accuracy"] for s, d in per.items() if d is not None}
        arms[arm] = {"test_accuracy": accs, "summary": C.mean_sd(accs.values()),
                     "commands": {s: d["command"] for s, d in per.items() if d is not None}}
    both = [s for s in seeds if all(s in arms[a]["test_accuracy"] for a in ARMS)]
    diffs = [arms["standard+latent"]["test_accuracy"][s] - arms["standard"]["test_accuracy"][s] for s in both]
    return arms, {"seeds": both, "per_seed": diffs, "summary": C.mean_sd(diffs)}


def report(seeds, mode: str, argv):
    arms, diff = collect(seeds, mode)
    prov = C.provenance(f"{NAME}.py", argv)
    from nfzoo_heads.classifier import RECIPE

    d = diff["summary"]
    if d is None or d["n"] < 2:
        ok, verdict = None, "not testable here (fewer than two seeds with both arms finished)"
    else:
        ok = d["mean"] > 0 and d["mean"] > d["sd"] / (d["n"] ** 0.5)   # above one standard error
        verdict = C.label(ok)
    L = ["# GLEM Table 9 (papers/003) at mnist5k scale: latent augmentation added to the standard one", "",
         f"Written by `{prov['command']}` on {prov['date']} at commit {prov['commit']} "
         f"({prov['threads']} thread). Raw numbers and per-seed commands: `{NAME}.json`.", "",
         f"A torchvision ResNet-18 (3x3 stride-1 stem) trained with the heads' recipe ({RECIPE['epochs']} "
         f"epochs, batch {RECIPE['batch_size']}, SGD one-cycle lr {RECIPE['lr']}) on the 4000 mnist5k "
         "training images, tested on the 1000 test images. Arms: **standard** = random affine "
         "(shift <= 2 px, rotation <= 10 degrees, zoom +-10%); **standard + latent** = in every batch a "
         f"fraction p = {P:g} of the images replaced by latent augmentations through `{MODEL}` (mode "
         f"`{mode}`: a same-class partner, spherical interpolation of the two latents at a uniform weight, "
         "decoded), then the same random affine on the whole batch. The same seeds for both arms (the seed "
         "sets the network's initialisation, the batches and the augmentations). Each cell: "
         "`nfzoo eval glem-mnist5k --dataset mnist5k --task augment --set arms=[ARM] --set seeds=[S] --set "
         f"mode={mode} --set p={P:g}` (run in-process through `augment_study`). Budget: the heads' 8-epoch "
         "recipe, far shorter than the paper's ImageNet fine-tuning; seeds " + ", ".join(map(str, seeds)) + ".",
         "", "| arm | test accuracy %, mean +- sd | per seed | paper (ImageNet top-1 %) |",
         "| --- | --- | --- | --- |"]
    paper_col = {"standard": "EVA02 without GLEM augmentation: 91.129 or 90.969 (see below)",
                 "standard+latent": f"{PAPER['glem_augmented_top1']} (EVA02 base + GLEM augmentations)"}
    for arm in ARMS:
        a = arms[arm]
        per = ", ".join(f"s{s}: {100 * v:.1f}" for s, v in sorted(a["test_accuracy"].items()))
        L.append(f"| {arm} | {C.fmt(a['summary'], 100, 2)} (n = {0 if a['summary'] is None else a['summary']['n']}) "
                 f"| {per or 'pending'} | {paper_col[arm]} |")
    L += ["", f"Paired difference (standard + latent minus standard, same seed): "
          f"{'pending' if d is None else C.fmt(d, 100, 2) + ' points'} over seeds {diff['seeds']}.", "",
          "| claim | here |", "| --- | --- |",
          f"| latent augmentation added to the standard one beats the standard one alone (paired mean "
          f"difference above zero by more than one standard error) | {verdict} |", "",
          "The paper's Table 9 is a leaderboard (ImageNet, EVA02 fine-tuned at 448 px): the OCR of its "
          f"table gives top-1 {PAPER['glem_augmented_top1']}, {PAPER['other_top1_listed'][0]} and "
          f"{PAPER['other_top1_listed'][1]} for the GLEM-augmented model and two EVA02 models, and its caption "
          "says the GLEM-augmented one ranks first in top-1: a gain of 0.1 to 0.26 points, one run, no "
          "spread reported.", "",
          f"The earlier study (`{PRIOR_STUDY['file']}`: {PRIOR_STUDY['what']}) found the latent arm below the "
          "standard one (97.27 +- 0.51 against 98.33 +- 0.32); this table adds the latent mixes to the affine "
          "jitter instead of replacing it, and uses a GLEM model, as the paper does.", ""]
    doc = {"table": "GLEM (papers/003) Table 9 at mnist5k scale", "paper": PAPER, "model": MODEL, "mode": mode,
           "p": P, "recipe": RECIPE, "seeds": list(seeds), "train_images": 4000, "test_images": 1000,
           "arms": arms, "paired_difference": diff, "claim": {"label": verdict, "ok": ok},
           "prior_study": PRIOR_STUDY, "measured_by": prov}
    C.publish(NAME, doc, "\n".join(L))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = C.common_args(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--mode", default="mixup", help="latent augmentation mode (mixup or pca)")
    a = p.parse_args(argv)
    C.require_one_thread()
    if not a.report_only:
        measure(a.seeds, a.mode, after=lambda: report(a.seeds, a.mode, argv))
    report(a.seeds, a.mode, argv)


if __name__ == "__main__":
    main()
