"""The heads (plugins/heads): CNN-A, anonymization, anomaly scores, latent augmentation; models.json names each
block's file(s)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from nfzoo.evaluation.results import mean_sd

from .knowledge import block_config, is_bound
from .registry import block
from .results import Results, num, pct, pm, rel_results, table


def _files(block_id: str) -> List[str]:
    cfg = block_config(block_id)
    return [rel_results(r) for r in cfg.get("files", [cfg.get("file")])]


@block("heads-cnn-a")
def b_heads_cnn_a(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """CNN-A: a ResNet-18 trained on generated images against the same recipe on real ones."""
    rel, = _files("heads-cnn-a")
    d = res.json(rel)
    rows = [[f"{d['cnn_a']['train_images']} {d['sampler']} samples of {d['model']} (T={d['temperature']:g}; "
             f"{d['redrawn_nonfinite']} non-finite samples redrawn)", pct(d["cnn_a"]["test_accuracy"]),
             str(d["cnn_a"]["seed"])],
            [f"{d['real']['train_images']} real training images", pct(d["real"]["test_accuracy"]),
             str(d["real"]["seed"])]]
    out = table(["ResNet-18 trained on", f"accuracy on the {d['test_images']} real test images", "seed"], rows)
    out += ["", f"{d['cnn_a']['epochs']} epochs each, one seed each (no spread measured)."]
    return out + res.sources([rel])


@block("heads-anonymize")
def b_heads_anonymize(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The anonymization study: oracle accuracy and PSNR in the hidden box per fill."""
    rel, = _files("heads-anonymize")
    d = res.json(rel)
    labels = {"original": "none (the original images)", "constant-black": "constant black",
              "constant-gray": "constant gray",
              "blur": f"Gaussian blur, sigma {d.get('blur_sigma', 3):g} (of the hidden pixels themselves)",
              "inpaint": f"{d['model']} RePaint-style, one draw",
              "inpaint-mean-3": f"{d['model']}, mean of {d.get('average', 3)} draws"}
    rows = [[labels.get(k, k), pct(v.get("oracle_accuracy")), num(v.get("psnr_box_db"), 2),
             {True: "yes", False: "NO", None: "-"}[v.get("kept_pixels_unchanged")]] for k, v in d["rows"].items()]
    box = d.get("box")
    out = table(["fill of the hidden box", "oracle accuracy (class kept)",
                 "PSNR in the box vs the hidden pixels (dB)", "kept pixels unchanged"], rows)
    out += ["", f"All {d['images']} test images, box {box} hidden; one seed ({d.get('seed')}); oracle: "
            f"{d.get('oracle')}."]
    return out + res.sources([rel])


@block("heads-ood")
def b_heads_ood(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Anomaly scores: AUROC of bpd and typicality against the test split."""
    rels = _files("heads-ood")
    rows = []
    for rel in rels:
        d = res.json(rel)
        est = d.get("repeats", 1)
        label = f"{d['model']} ({'exact bpd' if not is_bound(d['model']) else f'{est} bound estimate(s) per image'})"
        for name, r in d["rows"].items():
            rows.append([label, name, f"{r['auroc_bpd']:.3f}", f"{r['auroc_typicality']:.3f}",
                         f"{r['mean_bpd']:.1f} vs {d['mean_bpd_test']:.2f}"])
    out = table(["model", "outliers (1000 images)", "AUROC bpd", "AUROC typicality",
                 "mean bpd: outliers vs test split"], rows)
    missing = sorted({k for rel in rels for k in (res.json(rel).get("missing") or {})})
    if missing:
        out += ["", "Not measured (not on this machine): " + ", ".join(missing) + "."]
    return out + res.sources(rels)


@block("heads-augment")
def b_heads_augment(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Latent augmentation against standard augmentation, over seeds."""
    rel, = _files("heads-augment")
    d = res.json(rel)
    labels = {"standard": "standard (random affine)",
              "latent": f"latent ({d.get('mode')} through {d['model']}, p = {d.get('p')}, no affine)"}
    rows = [[labels.get(k, k), pm(mean_sd(v["test_accuracy"]), 2, True), str(len(v["test_accuracy"]))]
            for k, v in d["arms"].items()]
    out = table(["augmentation", "test accuracy, mean +- sd", "seeds"], rows)
    out += ["", f"ResNet-18 on the 4000 training images, {d['recipe']['epochs']} epochs, seeds "
            f"{', '.join(map(str, d['seeds']))}."]
    return out + res.sources([rel])
