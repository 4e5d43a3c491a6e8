"""Mixed precision for training: bf16 autocast around a model's networks, float32 everywhere else."""
from __future__ import annotations

from typing import List

import torch

from nfzoo.errors import UsageError


def enable_bf16(model) -> None:
    """Run the model's networks (modules with `mixed_precision = True`, e.g. the coupling nets) under
    bf16 autocast, their outputs cast back to float32: the flow's own transforms, log-determinants,
    priors and the loss stay in float32. The state dict is unchanged."""
    import functools

    if next(model.parameters()).device.type != "cuda":
        raise UsageError("bf16 autocast is for CUDA: move the model to a GPU (--device cuda)")

    def wrap(forward):
        @functools.wraps(forward)
        def run(*args, **kwargs):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = forward(*args, **kwargs)
            return out.float() if torch.is_tensor(out) else out
        return run

    wrapped: List[str] = []
    for name, m in model.named_modules():   # parents come before their children
        if getattr(m, "mixed_precision", False) and not any(name.startswith(w + ".") for w in wrapped):
            m.forward = wrap(m.forward)
            wrapped.append(name)
