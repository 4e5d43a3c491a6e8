"""Mixed precision for training: bf16 or fp16 autocast around a model's networks, float32 everywhere else.
fp16 needs a gradient scaler (make_scaler: torch.amp.GradScaler), whose state the checkpoints keep."""
from __future__ import annotations

from typing import List, Optional

import torch

from nfzoo.errors import UsageError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def enable_bf16(model) -> None:
    """Run the model's networks (modules with `mixed_precision = True`, e.g. the coupling nets) under
    bf16 autocast, their outputs cast back to float32: the flow's own transforms, log-determinants,
    priors and the loss stay in float32. The state dict is unchanged."""
    enable_autocast(model, "bf16")


def enable_autocast(model, precision: str) -> None:
    """As enable_bf16, for `precision` "bf16" or "fp16" (then the trainer scales the loss: make_scaler)."""
    import functools

    dtype = AUTOCAST_DTYPES[precision]
    if next(model.parameters()).device.type != "cuda":
        raise UsageError(f"{precision} autocast is for CUDA: move the model to a GPU (--device cuda)")

    def wrap(forward):
        @functools.wraps(forward)
        def run(*args, **kwargs):
            with torch.autocast("cuda", dtype=dtype):
                out = forward(*args, **kwargs)
            return out.float() if torch.is_tensor(out) else out
        return run

    wrapped: List[str] = []
    for name, m in model.named_modules():   # parents come before their children
        if getattr(m, "mixed_precision", False) and not any(name.startswith(w + ".") for w in wrapped):
            m.forward = wrap(m.forward)
            wrapped.append(name)


def make_scaler(precision: str, device_type: str) -> Optional[torch.amp.GradScaler]:
    """The gradient scaler of an fp16 run (None for fp32 and bf16, which need none)."""
    return torch.amp.GradScaler(device_type) if precision == "fp16" else None
