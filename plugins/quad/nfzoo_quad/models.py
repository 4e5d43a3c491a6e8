"""quad-flow: Glow with its affine coupling replaced by Quad-coupling (the ablation of CInC Flow)."""
from __future__ import annotations

from typing import Optional

from nfzoo import FlowModel
from nfzoo.errors import ConfigError
from nfzoo.flows.architectures import flow_model, multiscale_flow
from nfzoo.flows.bijectors import ActNorm, Composite, InvConv1x1
from nfzoo.flows.bijectors.coupling import DEFAULT_SCALE_FLOOR

from .coupling import QuadCoupling


def quad_flow(image_shape=(1, 28, 28), levels: int = 2, steps: int = 4, hidden: int = 34,
              num_classes: Optional[int] = None, blocks: int = 0, learn_top: bool = True,
              preprocess: str = "logit", scale_floor: float = DEFAULT_SCALE_FLOOR,
              noise_sigma: float = 0.0) -> FlowModel:
    """Glow's multi-scale flow whose step is ActNorm -> LU 1x1 conv -> Quad-coupling. `hidden` is the
    width of each of the coupling's three nets (34 gives about the parameters of Glow with hidden 64:
    75k vs 78k on 28x28).
    `scale_floor` bounds the coupling scales below (what sampling divides by); `noise_sigma`: noise
    augmentation (nfzoo.flows.architectures.flow_model).
    `blocks` is accepted for the common config and must be 0 (the Quad nets have a fixed shape)."""
    if blocks:
        raise ConfigError("quad-flow's coupling nets have no residual blocks: use blocks=0")

    def make_steps(c, _):
        return [Composite([ActNorm(c), InvConv1x1(c), QuadCoupling(c, hidden, scale_floor=scale_floor)])
                for _ in range(steps)]

    flow = multiscale_flow(image_shape, levels, make_steps, True, learn_top, num_classes)
    return flow_model(flow, image_shape, preprocess=preprocess, num_classes=num_classes,
                      noise_sigma=noise_sigma)
