"""Weight averaging in training, with torch's own `torch.optim.swa_utils.AveragedModel`:

- EMA (`--ema DECAY`): after every optimizer step, W_ema <- DECAY * W_ema + (1 - DECAY) * W (the first update
  copies W), parameters and buffers (`use_buffers=True`), torch's `get_ema_multi_avg_fn`;
- SWA (`--swa-epochs K`): at the end of each of the last K epochs, the equal-weight mean of the weights seen so
  far, W_swa <- W_swa + (W - W_swa) / (n + 1) (torch's default average; GLEM trains so: its last epochs
  averaged). Buffers are the model's own (torch's default, `use_buffers=False`).

An AveragedModel holds a deep copy of the model (`.module`: a FlowModel that evaluates, samples and saves like
the one trained) and `n_averaged` (a buffer), so its state_dict is its whole state: a checkpoint keeps it and
`--resume` continues the average exactly. Tensors that are not floating point (ActNorm's `initialized` flag,
index buffers such as a permutation) are never averaged: the EMA takes the model's value (torch's EMA would
scale and truncate them).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Dict, Optional, cast

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

if TYPE_CHECKING:
    from nfzoo.flows.model import FlowModel

AVERAGES = ("ema", "swa")
"""The averages a run may keep, in the order a tie in test bpd is settled after the raw weights."""


def _ema_update(decay: float):
    """torch's EMA update (`get_ema_multi_avg_fn(decay)`: foreach lerp with weight 1 - decay) for floating
    tensors; tensors of another dtype (one group per dtype) take the model's values."""
    ema = get_ema_multi_avg_fn(decay)

    @torch.no_grad()
    def update(averaged, current, n_averaged):
        if averaged[0].is_floating_point() or averaged[0].is_complex():
            ema(averaged, current, n_averaged)
        else:
            for a, c in zip(averaged, current):
                a.copy_(c)
    return update


def check_decay(decay: float) -> None:
    """An EMA decay must be a number in the open interval (0, 1); else ValueError naming the value."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not (0.0 < decay < 1.0):
        raise ValueError(f"an EMA decay must be a number in (0, 1), e.g. 0.999; got {decay!r}")


def ema_model(model: torch.nn.Module, decay: float) -> AveragedModel:
    """The EMA of `model`'s parameters and buffers with decay `decay` in (0, 1): an AveragedModel(model,
    multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True) whose non-floating tensors follow the model.
    Create it from the initialised model (after ActNorm's data-dependent init or loading weights) and call
    `update_parameters(model)` after every optimizer step."""
    check_decay(decay)
    return AveragedModel(model, multi_avg_fn=_ema_update(float(decay)), use_buffers=True)


def swa_model(model: torch.nn.Module) -> AveragedModel:
    """The equal-weight average of `model`'s parameters (torch's default SWA average; buffers follow the
    model): an AveragedModel(model). Call `update_parameters(model)` at the end of each averaged epoch."""
    return AveragedModel(model)


def create_averages(model: torch.nn.Module, ema: Optional[float], swa_epochs: int) -> Dict[str, AveragedModel]:
    """{"ema": ema_model(model, ema)} when `ema` is set, {"swa": swa_model(model)} when swa_epochs > 0 (both
    may be), in AVERAGES order; the copies live on the model's device."""
    out: Dict[str, AveragedModel] = {}
    if ema is not None:
        out["ema"] = ema_model(model, ema)
    if swa_epochs > 0:
        out["swa"] = swa_model(model)
    return out


def swa_epoch(epoch: int, epochs: int, swa_epochs: int) -> bool:
    """Whether the end of epoch `epoch` (from 1) of `epochs` is averaged by SWA: one of the last `swa_epochs`."""
    return swa_epochs > 0 and epochs - swa_epochs < epoch <= epochs


def averaged_count(avg: AveragedModel) -> int:
    """How many weights `avg` has averaged (0: none yet; its weights are then the copy it was made from)."""
    return int(avg.n_averaged.item())


def averaged_flow(avg: AveragedModel) -> FlowModel:
    """The average's model (`avg.module`): the deep copy of the FlowModel it averages (torch types it Module)."""
    return cast("FlowModel", avg.module)


def choose_published(final: Dict[str, Optional[float]]) -> str:
    """The name of the lowest finite test bpd in `final` ({"raw": bpd, "ema": bpd, "swa": bpd}, None where not
    evaluated); a tie goes to the first in the order raw, ema, swa (the raw weights when nothing else wins)."""
    best = "raw"
    for name in ("raw", *AVERAGES):
        v = final.get(name)
        if v is None or not math.isfinite(v):
            continue
        b = final.get(best)
        if b is None or not math.isfinite(b) or v < b:
            best = name
    return best
