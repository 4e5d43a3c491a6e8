"""Evaluation of a flow model on a data set: exact test bpd (`evaluate_bpd`, what training reports too) and
likelihood classification."""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional

import torch

from nfzoo.data import iterate
from nfzoo.errors import TrainingDivergedError, UsageError


@torch.no_grad()
def evaluate_bpd(model, dataset, batch_size: int = 500, seed: int = 0,
                 progress: Optional[Callable[[int, int], None]] = None, dist=None) -> Dict[str, Any]:
    """Exact test bpd: every image, eval mode, uniform dequantization noise from a seeded generator
    (the standard dequantized bound, the same number on every run). With a distributed context `dist`,
    each rank scores a contiguous shard and the sums are all-reduced; where the model declares its draws
    per image, each image gets the noise it gets on one process, so the result does not depend on the
    number of ranks."""
    from nfzoo.distributed import mix_seed, skip_uniform

    model.eval()
    gen = torch.Generator().manual_seed(seed)
    order = None
    if dist is not None and dist.enabled:
        a, b = dist.shard(len(dataset))
        order = torch.arange(a, b)
        draws = model.training_draws_per_image
        if draws is not None:
            skip_uniform(gen, a * draws)
        else:
            gen = torch.Generator().manual_seed(mix_seed(seed, dist.rank))
    total, n, total_marginal = 0.0, 0, 0.0
    conditional = model.num_classes is not None
    # a class-conditional model that scores every class at once (GLEM's class_log_likelihoods) also
    # reports the bpd of the mixture p(x) = mean_y p(x | y), comparable with an unconditional model's,
    # from the same pass (and so the same noise)
    mixture = conditional and hasattr(model, "class_log_likelihoods")
    bits = model.dim * math.log(2.0)
    for x, y in iterate(dataset, batch_size, shuffle=False, order=order):
        x, y = x.to(model.device), y.to(model.device)
        if mixture:
            ll = model.class_log_likelihoods(x, generator=gen, noise=True)
            b = -ll.gather(1, y.long()[:, None]).squeeze(1) / bits
            marginal = -(torch.logsumexp(ll, 1) - math.log(model.num_classes)) / bits
            total_marginal += marginal.double().sum().item()
        else:
            b = model.bpd(x, y if conditional else None, generator=gen)
        if not torch.isfinite(b).all():
            raise TrainingDivergedError("the model gives a non-finite bpd on the evaluation data")
        total += b.double().sum().item()
        n += x.shape[0]
        if progress:
            progress(n, len(dataset))
    if dist is not None and dist.enabled:
        total, n, total_marginal = dist.all_reduce_sum([total, n, total_marginal])
        n = int(n)
    out = {"bpd": total / n, "images": n}
    if mixture:
        out["bpd_marginal"] = total_marginal / n
    return out


@torch.no_grad()
def classify_logits(model, x: torch.Tensor) -> torch.Tensor:
    """log p(x | y) for every class y (B, num_classes): the NF classifier argmaxes these."""
    if model.num_classes is None:
        raise UsageError("this model is unconditional: likelihood classification needs a "
                         "class-conditional model (train with --set num_classes=N)")
    if hasattr(model, "classify"):
        return model.classify(x)
    cols = [model.log_prob(x, torch.full((x.shape[0],), c, dtype=torch.long, device=x.device), noise=False)
            for c in range(model.num_classes)]
    return torch.stack(cols, 1)


@torch.no_grad()
def evaluate_classification(model, dataset, batch_size: int = 500, progress=None) -> Dict[str, Any]:
    """Test accuracy of a class-conditional model's likelihood classifier, argmax_y log p(x | y), over a data
    set: {"accuracy", "images"}."""
    model.eval()
    correct, n = 0, 0
    for x, y in iterate(dataset, batch_size, shuffle=False):
        pred = classify_logits(model, x.to(model.device)).argmax(1).cpu()
        correct += int((pred == y).sum())
        n += x.shape[0]
        if progress:
            progress(n, len(dataset))
    return {"accuracy": correct / n, "images": n}
