"""Evaluation tasks beyond bpd (which lives with training): likelihood classification."""
from __future__ import annotations

from typing import Any, Dict

import torch

from .errors import UsageError


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
    from .training import iterate

    model.eval()
    correct, n = 0, 0
    for x, y in iterate(dataset, batch_size, shuffle=False):
        pred = classify_logits(model, x.to(model.device)).argmax(1).cpu()
        correct += int((pred == y).sum())
        n += x.shape[0]
        if progress:
            progress(n, len(dataset))
    return {"accuracy": correct / n, "images": n}
