"""inverse-flow: Glow's multi-scale skeleton with an InverseConv2d in every step. Its sampling path is
convolutions and couplings only: no solve anywhere."""
from __future__ import annotations

from typing import Optional

from nfzoo import FlowModel
from nfzoo.flows.bijectors.coupling import DEFAULT_SCALE_FLOOR
from nfzoo_cinc import conv_step_flow

from .conv import InverseConv2d


def inverse_flow(image_shape=(1, 28, 28), levels: int = 2, steps: int = 4, hidden: int = 64,
                 num_classes: Optional[int] = None, blocks: int = 0, coupling: str = "affine",
                 kernel_size: int = 3, invconv: bool = True, learn_top: bool = True,
                 preprocess: str = "logit", backend: str = "auto", scale_floor: float = DEFAULT_SCALE_FLOOR,
                 noise_sigma: float = 0.0) -> FlowModel:
    """Inverse-Flow: each step is ActNorm -> InverseConv2d (solve when normalizing, conv when sampling)
    -> [LU 1x1 conv] -> coupling (Glow's "affine" by default, so sampling costs what Glow's does; or
    "quad"), its scale bounded below by `scale_floor`. `noise_sigma` > 0: TarFlow's noise augmentation,
    samples denoised by the flow's own score (`nfzoo.FlowModel.denoise`)."""
    return conv_step_flow(conv_cls=InverseConv2d, image_shape=image_shape, levels=levels, steps=steps,
                          hidden=hidden, num_classes=num_classes, blocks=blocks, coupling=coupling,
                          kernel_size=kernel_size, invconv=invconv, learn_top=learn_top,
                          preprocess=preprocess, backend=backend, scale_floor=scale_floor,
                          noise_sigma=noise_sigma)
