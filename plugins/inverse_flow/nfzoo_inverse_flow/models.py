"""inverse-flow: Glow's multi-scale skeleton with an InverseConv2d in every step. Its sampling path is
convolutions and couplings only: no solve anywhere."""
from __future__ import annotations

from typing import Optional

from nfzoo import FlowModel
from nfzoo.architectures import multiscale_flow
from nfzoo.bijectors import ActNorm, Composite, InvConv1x1
from nfzoo.errors import ConfigError
from nfzoo.priors import StandardNormal
from nfzoo_cinc.models import COUPLINGS, make_coupling

from .conv import InverseConv2d


def inverse_flow(image_shape=(1, 28, 28), levels: int = 2, steps: int = 4, hidden: int = 64,
                 num_classes: Optional[int] = None, blocks: int = 0, coupling: str = "affine",
                 kernel_size: int = 3, invconv: bool = True, learn_top: bool = True,
                 preprocess: str = "logit", backend: str = "auto") -> FlowModel:
    """Inverse-Flow: each step is ActNorm -> InverseConv2d (solve when normalizing, conv when sampling)
    -> [LU 1x1 conv] -> coupling (Glow's "affine" by default, so sampling costs what Glow's does; or
    "quad")."""
    if coupling not in COUPLINGS:
        raise ConfigError(f"unknown coupling {coupling!r}: use one of {', '.join(COUPLINGS)}")

    def make_steps(c, _):
        out = []
        for _ in range(steps):
            layers = [ActNorm(c), InverseConv2d(c, kernel_size, backend=backend)]
            if invconv:
                layers.append(InvConv1x1(c))
            layers.append(make_coupling(coupling, c, hidden, blocks))
            out.append(Composite(layers))
        return out

    flow = multiscale_flow(image_shape, levels, make_steps, True, learn_top, num_classes)
    return FlowModel(flow, StandardNormal(image_shape), image_shape, preprocess=preprocess,
                     num_classes=num_classes)
