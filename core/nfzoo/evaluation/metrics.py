"""Sample-quality metrics of generated images: FID, Coverage and Density against the held-out images, the
label reliability of class-conditional samples and the share of recognisable samples (`evaluate_samples`,
`evaluate_samples_over_seeds`), and the features they are computed on.

Images are compared through the features of a classifier (the "oracle", nfzoo.evaluation.oracle: its penultimate
layer), or, where torchvision's ImageNet Inception-v3 weights are already in the local torch hub cache,
through Inception-v3's 2048-d pool features (`feature_extractor="inception"`; they are never downloaded).
The metrics' mathematics on those features (the formulas, and how they agree with torchmetrics and prdc)
is nfzoo.evaluation.features; its functions are importable from here as well (`fid`, `coverage`, `density`,
`coverage_density`, `frechet_distance`, `gaussian_stats`, `knn_radii`).

numpy / scipy only at import time; torch is imported when images are involved.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional

import numpy as np

from nfzoo.errors import NfzooError, UsageError
from nfzoo.evaluation.features import (  # noqa: F401  (the API)
    coverage,
    coverage_density,
    density,
    fid,
    frechet_distance,
    gaussian_stats,
    knn_radii,
)

# ------------------------------------------------------------------ features
FeatureFn = Callable[[Any], Any]   # images (B, C, H, W) in [0, 1] -> features (B, D)


def compute_features(extractor: FeatureFn, images, batch_size: int = 500) -> np.ndarray:
    """Features (float64 numpy) of a tensor of images in [0, 1], computed in eval mode and in batches."""
    import torch

    module = extractor.__self__ if hasattr(extractor, "__self__") else extractor
    if isinstance(module, torch.nn.Module):
        module.eval()
    out = []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            out.append(extractor(images[i:i + batch_size]).detach().cpu().double())
    feats = torch.cat(out).numpy()
    if not np.isfinite(feats).all():
        raise NfzooError("the feature extractor returned NaN or infinite values (non-finite images?)")
    return feats


def dataset_features(extractor: FeatureFn, dataset, batch_size: int = 500) -> np.ndarray:
    """Features of every image of a data set (in order)."""
    from nfzoo.data import iterate

    return np.concatenate([compute_features(extractor, x, batch_size)
                           for x, _ in iterate(dataset, batch_size, shuffle=False)])


def label_reliability(oracle, images, labels, batch_size: int = 500) -> float:
    """Accuracy of the oracle on conditionally generated images, against the labels they were generated
    for: how often a class-conditional model draws the class it was asked for."""
    import torch

    labels = torch.as_tensor(labels).long().reshape(-1).cpu()
    if labels.numel() != images.shape[0] or labels.numel() == 0:
        raise UsageError(f"need one label per image: {images.shape[0]} images, {labels.numel()} labels")
    was = getattr(oracle, "training", False)
    oracle.eval()
    try:
        with torch.no_grad():
            pred = torch.cat([oracle(images[i:i + batch_size]).argmax(1).cpu()
                              for i in range(0, images.shape[0], batch_size)])
    finally:
        oracle.train(was)
    return float((pred == labels).double().mean())


RECOGNISABLE = 0.9
"""The oracle's probability (its largest softmax output) from which a sample counts as recognisable."""


def oracle_confidence(oracle, images, batch_size: int = 500):
    """The oracle's probability of its most likely class for each image, shape (B,), on the CPU."""
    import torch

    was = getattr(oracle, "training", False)
    oracle.eval()
    try:
        with torch.no_grad():
            return torch.cat([torch.softmax(oracle(images[i:i + batch_size]).float(), 1).amax(1).cpu()
                              for i in range(0, images.shape[0], batch_size)])
    finally:
        oracle.train(was)


def recognisable_share(oracle, images, threshold: float = RECOGNISABLE, batch_size: int = 500) -> float:
    """The share of images the oracle classifies with probability >= threshold (0.9): samples a reader
    would take for a digit of some class, whichever. Real held-out digits score about 0.9 or more on a
    good classifier, so it reads as "how many samples look like real ones"."""
    if images.shape[0] == 0:
        raise UsageError("recognisable_share needs at least one image")
    return float((oracle_confidence(oracle, images, batch_size) >= threshold).double().mean())


# -------------------------------------------------------------- high level
def _as_oracle(oracle, device: Optional[str] = None):
    """An OracleNet from an OracleNet, an oracle directory or a pretrained oracle's name."""
    if isinstance(oracle, (str, os.PathLike)):
        from nfzoo.evaluation.oracle import find_oracle

        oracle, _ = find_oracle(os.fspath(oracle), device=device)
    return oracle


def get_feature_extractor(feature_extractor: str = "oracle", oracle=None, device: Optional[str] = None):
    """(features callable, short description) for 'oracle' (an OracleNet, an oracle directory or a
    pretrained oracle's name) or 'inception'."""
    if feature_extractor == "inception":
        from nfzoo.evaluation.inception import InceptionFeatures

        return InceptionFeatures(device), "inception-v3"
    if feature_extractor != "oracle":
        from nfzoo.errors import UnknownNameError

        raise UnknownNameError("feature extractor", feature_extractor, ["oracle", "inception"])
    if oracle is None:
        raise UsageError("the oracle features need an oracle: pass oracle=OracleNet or an oracle directory "
                         "(train one with `nfzoo train-oracle`), or use feature_extractor='inception'")
    return _as_oracle(oracle, device).features, "oracle"


def _features_and_logits(extractor, net, x, oracle_features: bool, batch_size: int = 500):
    """(features as float64 numpy, the oracle's logits on the CPU or None without an oracle) of a batch of
    samples, with one pass of the oracle: when the features are the oracle's, its head reads them (the
    oracle's forward is head(features)), so FID, the recognisable share and the label reliability cost one
    oracle pass per sample, not three."""
    import torch

    if not oracle_features or net is None:
        feats = compute_features(extractor, x, batch_size)
        if net is None:
            return feats, None
        was = net.training
        net.eval()
        try:
            with torch.no_grad():
                logits = torch.cat([net(x[i:i + batch_size]).cpu() for i in range(0, x.shape[0], batch_size)])
        finally:
            net.train(was)
        return feats, logits
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            f, lg = [], []
            for i in range(0, x.shape[0], batch_size):
                h = net.features(x[i:i + batch_size])
                f.append(h.detach().cpu().double())
                lg.append(net.head(h).cpu())
    finally:
        net.train(was)
    feats = torch.cat(f).numpy()
    if not np.isfinite(feats).all():
        raise NfzooError("the feature extractor returned NaN or infinite values (non-finite images?)")
    return feats, torch.cat(lg)


def _feature_width(extractor, model) -> int:
    """The extractor's feature width (one blank image through it): for a rank that drew no samples."""
    import torch

    from nfzoo.flows.generation import model_device

    blank = torch.zeros(1, *model.image_shape, device=model_device(model))
    return compute_features(extractor, blank).shape[1]


def evaluate_samples(model, dataset_test, n_samples: int, oracle=None, seed: int = 0,
                     temperature: Optional[float] = None, batch_size: int = 250, feature_extractor: str = "oracle",
                     k: int = 5, progress: Optional[Callable[[int, int], None]] = None,
                     sample_options: Optional[Dict[str, Any]] = None, dist=None, sampler: Any = None,
                     pipeline: Any = None) -> Optional[Dict[str, Any]]:
    """Draw `n_samples` images from a FlowModel (seeded, in batches) and compare them with every image of
    `dataset_test` (the held-out split) through the oracle's features (or Inception's):
    {"fid", "coverage", "density", "n_samples", "nonfinite_samples", "n_real", "k", "temperature",
    "seed", "features"}, and with an oracle "recognisable" (the share of all n_samples the oracle
    classifies with probability >= 0.9; a non-finite sample is not recognisable) beside
    "recognisable_real" (the same share on the real images of `dataset_test`). Samples with NaN /
    infinite pixels (a numerical overflow in the flow's inverse) are left out of the other metrics and
    counted in "nonfinite_samples"; fewer than 2 finite ones is an error.
    `oracle`: an OracleNet, an oracle directory or a pretrained oracle's name; None: the data set's default
    oracle (nfzoo.evaluation.oracle.default_oracle of its `name`) when it has one; with
    feature_extractor="inception" it is optional and only used for the label reliability.
    A class-conditional model is sampled with balanced labels (0, 1, ..., C-1, 0, ...), and when there
    is an oracle, its accuracy on those labels is added as "label_reliability". The samples come from
    `pipeline` (an nfzoo.flows.pipeline.SamplingPipeline of `model`), else from one made of `sampler` (None: the
    model's own), `temperature` and `sample_options` (e.g. {"steps": 20} for a diffusion sampler).

    Samples are drawn in seeded chunks (nfzoo.flows.generation), so sample i is the same whatever the number of
    processes: with a distributed context `dist` each rank draws and featurises its chunks, rank 0
    gathers the features and returns the document; the other ranks return None."""
    import torch

    if n_samples < 2:
        raise UsageError(f"need at least 2 samples for FID, got {n_samples}")
    if temperature is not None and not (temperature >= 0 and np.isfinite(temperature)):
        raise UsageError(f"temperature must be a finite number >= 0, got {temperature}")
    if pipeline is None:
        from nfzoo.flows.pipeline import SamplingPipeline

        pipeline = SamplingPipeline(model, sampler, temperature, sample_options)
    temperature = pipeline.temperature      # None: the model's measured default (FlowModel.default_temperature)
    if tuple(dataset_test.image_shape) != tuple(model.image_shape):
        raise UsageError(f"the model makes images of shape {list(model.image_shape)} but the data set has "
                         f"{list(dataset_test.image_shape)}")
    device = str(next(model.parameters()).device)
    if oracle is None and feature_extractor == "oracle":
        from nfzoo.evaluation.oracle import default_oracle

        oracle = default_oracle(getattr(dataset_test, "name", None))
    net = None if oracle is None else _as_oracle(oracle, device)
    extractor, described = get_feature_extractor(feature_extractor, net, device)
    dist = dist if dist is not None and dist.enabled else None
    main = dist is None or dist.is_main
    total = n_samples + len(dataset_test)
    real = dataset_features(extractor, dataset_test) if main else None
    if progress:
        progress(len(dataset_test), total)
    plan = pipeline.plan(n_samples)         # every class in turn; no labels: unconditional
    fake, correct, nonfinite, done, recognised = [], 0, 0, 0, 0
    for _, x, y in pipeline.stream(plan, seed=seed, dist=dist):
        b = x.shape[0]
        x = x.to(device)
        ok = torch.isfinite(x.flatten(1)).all(1)
        if not bool(ok.all()):    # a numerically broken sample (overflow in the inverse) is left out
            nonfinite += int((~ok).sum())
            x = x[ok]
            y = None if y is None else y[ok]
        if x.shape[0]:
            feats, logits = _features_and_logits(extractor, net, x, feature_extractor == "oracle")
            fake.append(feats)
            if y is not None and logits is not None:
                correct += int((logits.argmax(1) == torch.as_tensor(y).long().reshape(-1).cpu()).sum())
            if logits is not None:
                recognised += int((torch.softmax(logits.float(), 1).amax(1) >= RECOGNISABLE).sum())
        done += b
        if progress:
            progress(len(dataset_test) + done, total)
    if dist is not None:
        local = (torch.from_numpy(np.concatenate(fake)) if fake
                 else torch.zeros(0, _feature_width(extractor, model), dtype=torch.float64))
        gathered = dist.gather_tensor(local.double())
        nonfinite, correct, recognised = (int(v) for v in dist.all_reduce_sum([nonfinite, correct,
                                                                                recognised]))
        if not main:
            return None
        fake = [gathered.numpy()]
    kept = n_samples - nonfinite
    if kept < 2:
        raise NfzooError(f"the model produced non-finite images for {nonfinite} of {n_samples} samples at "
                         f"temperature {temperature}: nothing to compare")
    fake_feats = np.concatenate(fake)
    doc: Dict[str, Any] = {"fid": fid(real, fake_feats), **coverage_density(real, fake_feats, k),
                           "n_samples": n_samples, "nonfinite_samples": nonfinite,
                           "n_real": len(dataset_test), "k": k, "temperature": temperature, "seed": seed,
                           "features": described}
    if plan.labels is not None and net is not None:
        doc["label_reliability"] = correct / kept
    if net is not None:
        from nfzoo.data import iterate

        real_images = torch.cat([x for x, _ in iterate(dataset_test, 500, shuffle=False)])
        doc["recognisable"] = recognised / n_samples
        doc["recognisable_real"] = recognisable_share(net, real_images.to(device))
    return doc


SEED_SUMMARY_KEYS = ("fid", "coverage", "density", "recognisable", "label_reliability")


def evaluate_samples_over_seeds(model, dataset_test, n_samples: int, seeds, **kwargs) -> Optional[Dict[str, Any]]:
    """`evaluate_samples` once per seed (n_samples each): {"per_seed": [the documents], "summary": {metric:
    {"mean", "sd", "n"}} over the seeds (nfzoo.evaluation.results.mean_sd), "seeds", "n_samples" (all seeds together),
    "nonfinite_samples" (all seeds together), "recognisable_real", "temperature", "features"}.
    Keywords go to evaluate_samples; with a distributed context only rank 0 gets the document."""
    from nfzoo.evaluation.results import summarize

    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"need one or more distinct seeds, got {seeds}")
    results = [evaluate_samples(model, dataset_test, n_samples, seed=s, **kwargs) for s in seeds]
    runs = [r for r in results if r is not None]
    if len(runs) < len(results):      # not rank 0 (each run gives None there)
        return None
    doc: Dict[str, Any] = {"per_seed": runs, "summary": summarize(runs, SEED_SUMMARY_KEYS), "seeds": seeds,
                           "n_samples": n_samples * len(seeds),
                           "nonfinite_samples": sum(r["nonfinite_samples"] for r in runs)}
    for key in ("recognisable_real", "temperature", "features", "k", "n_real"):
        if key in runs[0]:
            doc[key] = runs[0][key]
    return doc
