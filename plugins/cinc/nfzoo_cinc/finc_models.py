"""finc-flow: Glow's multi-scale skeleton with a FInC unit (four corner-padded k x k convs with a unit
diagonal, inverted by one wavefront solve) in every step."""
from __future__ import annotations

from typing import Optional

from nfzoo import FlowModel
from nfzoo.flows.bijectors.coupling import DEFAULT_SCALE_FLOOR

from .conv import FInCUnit
from .models import conv_step_flow


def finc_flow(image_shape=(1, 28, 28), levels: int = 2, steps: int = 4, hidden: int = 64,
              num_classes: Optional[int] = None, blocks: int = 0, coupling: str = "affine",
              kernel_size: int = 3, invconv: bool = True, learn_top: bool = True,
              preprocess: str = "logit", backend: str = "auto", scale_floor: float = DEFAULT_SCALE_FLOOR,
              noise_sigma: float = 0.0) -> FlowModel:
    """FInC Flow: each step is ActNorm -> FInCUnit (log|det| = 0: a unit diagonal in each of its four
    corner-padded k x k convs) -> [LU 1x1 conv] -> coupling (Glow's "affine" by default, or "quad").
    Sampling inverts every FInC unit by the anti-diagonal wavefront solve (H + W - 1 steps; `backend`:
    auto = Triton on CUDA, else torch; "sequential" = raster-order back-substitution). The unit splits the
    channels into four groups; every level's channel count (4 C, 8 C, 16 C, ... after the squeezes) is a
    multiple of 4, so any image shape works."""
    return conv_step_flow(conv_cls=FInCUnit, image_shape=image_shape, levels=levels, steps=steps,
                          hidden=hidden, num_classes=num_classes, blocks=blocks, coupling=coupling,
                          kernel_size=kernel_size, invconv=invconv, learn_top=learn_top,
                          preprocess=preprocess, backend=backend, scale_floor=scale_floor,
                          noise_sigma=noise_sigma)
