"""A fitted latent prior for a trained flow: `fit_latent_prior` encodes the training images and replaces the
model's N(0, I) prior by a mixture of low-rank-plus-diagonal gaussians fitted to their latents
(nfzoo.flows.priors.LatentMixture), one component per class of the data set (or one for all).

Why: a flow trained by maximum likelihood maps the training images to latents that are not exactly N(0, I);
latents drawn from N(0, I) land partly where no training image went, and there the inverse makes malformed
images. Sampling the fitted mixture keeps the latents where the flow was trained; GLEM's RFCM does the
same per class. The model stays a flow: one pass to sample, and an exact likelihood under the new prior
(`log_prob` of the mixture), reported beside the old one.

A model's config.json records it as "latent_prior": {"components": K, "rank": r}; `nfzoo.load` builds the
mixture's buffers from that and reads their values from the weights.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional

import torch

from nfzoo.errors import ConfigError, UsageError

KEY = "latent_prior"
MAX_COMPONENTS = 1024


def check_spec(spec: Any, source: Optional[str] = None) -> Optional[Dict[str, int]]:
    """A config's "latent_prior" value checked: None, or {"components": K in [1, 1024], "rank": r >= 0}."""
    if spec is None:
        return None
    where = f"{source}: " if source else ""
    if not isinstance(spec, dict) or set(spec) != {"components", "rank"}:
        raise ConfigError(f"{where}latent_prior must be null or an object with exactly the keys components and "
                          f"rank, got {spec!r}")
    for key, lo, hi in (("components", 1, MAX_COMPONENTS), ("rank", 0, 1 << 20)):
        v = spec[key]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise ConfigError(f"{where}latent_prior.{key} must be an integer in [{lo}, {hi}], got {v!r}")
    return {"components": spec["components"], "rank": spec["rank"]}


def attach(model, spec: Optional[Dict[str, int]]):
    """Give `model` a LatentMixture prior of the spec's size (values to be fitted or loaded); None: as is.
    Refused for class-conditional models (their prior already keeps one density per class)."""
    from nfzoo.flows.priors import LatentMixture

    if spec is None:
        return model
    if model.num_classes is not None:
        raise ConfigError("latent_prior is for unconditional models: a class-conditional model's prior "
                          "already has a density per class (GLEM's RFCM is the conditional counterpart)")
    event = tuple(getattr(model.prior, "event_shape", model.image_shape))
    try:
        model.prior = LatentMixture(event, spec["components"], spec["rank"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return model


@torch.no_grad()
def fit_latent_prior(model, dataset, rank: int = 64, by: str = "labels", batch_size: int = 500, seed: int = 0,
                     progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, Any]:
    """Fit a LatentMixture to the latents of every image of `dataset` (the training split) and make it
    `model`'s prior: `by="labels"` one component per class (the data set's labels), "single" one for all.
    The images are dequantized with seeded noise (and noise-augmented like in training when the model was,
    so the latents are those the model's density is of). Returns {"components", "rank", "by", "images"}."""
    from nfzoo.data import iterate

    if by not in ("labels", "single"):
        raise UsageError(f"by must be 'labels' (one component per class) or 'single', got {by!r}")
    if model.num_classes is not None:
        raise UsageError("a fitted latent prior is for unconditional models; this one is class-conditional")
    if tuple(dataset.image_shape) != tuple(model.image_shape):
        raise UsageError(f"the model takes images of shape {list(model.image_shape)} but the data set has "
                         f"{list(dataset.image_shape)}")
    dim = math.prod(model.image_shape)
    if not 0 <= int(rank) <= dim:
        raise UsageError(f"rank must be in [0, {dim}] (the latent's dimensions), got {rank}")
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(int(seed))
    zs, ys, done = [], [], 0
    for x, y in iterate(dataset, batch_size, shuffle=False):
        v, _ = model.to_flow(model.dequantize(x.to(device), generator=gen))
        if model.noise_sigma > 0:
            v = v + model.noise_sigma * torch.randn(v.shape, generator=gen).to(v)
        z, _ = model.bijector(v, None)
        zs.append(z.cpu())
        ys.append(y.cpu())
        done += x.shape[0]
        if progress:
            progress(done, len(dataset))
    z = torch.cat(zs)
    if by == "labels":
        labels = torch.cat(ys).long()
        if labels.numel() == 0 or int(labels.min()) < 0:
            raise UsageError("this data set has no class labels: use by='single'")
        classes, groups = torch.unique(labels, return_inverse=True)
        k = int(classes.numel())
    else:
        groups, k = None, 1
    spec = {"components": k, "rank": int(rank)}
    attach(model, spec)
    model.prior.to(device)
    try:
        model.prior.fit(z.to(device), None if groups is None else groups.to(device))
    except ValueError as exc:
        raise UsageError(f"cannot fit the latent prior: {exc}") from None
    model.config[KEY] = spec
    return {"components": k, "rank": int(rank), "by": by, "images": int(z.shape[0])}


def refit_model(model, dataset: str, rank: int = 64, by: str = "labels", seed: int = 0,
                data_root: Optional[str] = None,
                progress: Optional[Callable[[str, Optional[int]], Callable[[int, Optional[int]], None]]] = None
                ) -> Dict[str, Any]:
    """`nfzoo refit-prior`'s work on a loaded unconditional flow: the test bpd under its prior, the fit
    (`fit_latent_prior` on the data set's train split) and the test bpd under the fitted prior. `progress`
    makes a `(done, total)` callback from a description and a total. Returns {"dataset", "components",
    "rank", "by", "images", "seed", "test_bpd_before", "test_bpd_after", "test_images"}; the model is
    changed in place (save it with save_pretrained)."""
    from nfzoo.data import load_dataset
    from nfzoo.evaluation.bpd import evaluate_bpd

    if model.num_classes is not None:
        raise UsageError("this model is class-conditional: a fitted latent prior is for unconditional models "
                         "(GLEM models have --sampler rfcm)")
    train = load_dataset(dataset, "train", data_root)
    test = load_dataset(dataset, "test", data_root)
    bar = (lambda what, total: progress(what, total)) if progress is not None else (lambda what, total: None)
    before = evaluate_bpd(model, test, progress=bar("test bpd, N(0, I) prior", len(test)))
    fit = fit_latent_prior(model, train, rank=rank, by=by, seed=seed,
                           progress=bar(f"encoding {dataset}/train", len(train)))
    after = evaluate_bpd(model, test, progress=bar("test bpd, fitted prior", len(test)))
    return {"dataset": dataset, **fit, "seed": seed, "test_bpd_before": before["bpd"],
            "test_bpd_after": after["bpd"], "test_images": before["images"]}
