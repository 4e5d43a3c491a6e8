"""cinc-flow: Glow's multi-scale skeleton with a CInC conv in every step; `conv_step_flow`, that skeleton
for any invertible k x k conv (inverse-flow builds on it)."""
from __future__ import annotations

from typing import Optional

from nfzoo import FlowModel
from nfzoo.errors import ConfigError
from nfzoo.flows.architectures import flow_model, multiscale_flow
from nfzoo.flows.bijectors import ActNorm, AffineCoupling, Composite, InvConv1x1
from nfzoo.flows.bijectors.coupling import DEFAULT_SCALE_FLOOR

from .conv import CInCConv2d

COUPLINGS = ("quad", "affine")


def make_coupling(kind: str, channels: int, hidden: int, blocks: int,
                  scale_floor: float = DEFAULT_SCALE_FLOOR):
    """A coupling layer on `channels` channels: "quad" (nfzoo_quad.QuadCoupling, `hidden` channels in each
    of its three nets, no residual blocks) or "affine" (Glow's channel-mask AffineCoupling with `blocks`
    residual blocks); both with the sigmoid scale bounded below by `scale_floor`. Anything else is a
    ConfigError."""
    if kind == "quad":
        try:
            from nfzoo_quad.coupling import QuadCoupling
        except ImportError as exc:  # pragma: no cover - nfzoo-quad is a dependency of nfzoo-cinc
            raise ConfigError("coupling='quad' needs the nfzoo-quad plugin: pip install nfzoo-quad, "
                              "or use --set coupling=affine") from exc
        if blocks:
            raise ConfigError("the quad coupling nets have no residual blocks: use blocks=0")
        return QuadCoupling(channels, hidden, scale_floor=scale_floor)
    if kind == "affine":
        return AffineCoupling(channels, hidden, blocks, "channel", scale_floor=scale_floor)
    raise ConfigError(f"unknown coupling {kind!r}: use one of {', '.join(COUPLINGS)}")


def conv_step_flow(*, conv_cls, image_shape, levels: int, steps: int, hidden: int,
                   num_classes: Optional[int] = None, blocks: int = 0, coupling: str = "affine",
                   kernel_size: int = 3, invconv: bool = True, learn_top: bool = True,
                   preprocess: str = "logit", backend: str = "auto", scale_floor: float = DEFAULT_SCALE_FLOOR,
                   noise_sigma: float = 0.0) -> FlowModel:
    """Glow's multi-scale flow (`nfzoo.flows.architectures.multiscale_flow`: `levels` x squeeze -> `steps` steps
    -> split) whose step is

        ActNorm -> conv_cls(c, kernel_size, backend=backend) -> [LU 1x1 conv if invconv] -> coupling

    with `coupling` built by `make_coupling(coupling, c, hidden, blocks)`, a learned (class-conditional
    with `num_classes`) top gaussian if `learn_top`, and a standard normal prior. `conv_cls` is any
    Bijector class taking (channels, kernel_size, backend=...): cinc-flow passes CInCConv2d, inverse-flow
    InverseConv2d.

        >>> from nfzoo_cinc import CInCConv2d, conv_step_flow
        >>> m = conv_step_flow(conv_cls=CInCConv2d, image_shape=(1, 8, 8), levels=2, steps=1, hidden=8)
        >>> m.sample(2).shape
        torch.Size([2, 1, 8, 8])
    """
    if coupling not in COUPLINGS:
        raise ConfigError(f"unknown coupling {coupling!r}: use one of {', '.join(COUPLINGS)}")

    def make_steps(c, _):
        out = []
        for _ in range(steps):
            layers = [ActNorm(c), conv_cls(c, kernel_size, backend=backend)]
            if invconv:
                layers.append(InvConv1x1(c))
            layers.append(make_coupling(coupling, c, hidden, blocks, scale_floor))
            out.append(Composite(layers))
        return out

    flow = multiscale_flow(image_shape, levels, make_steps, True, learn_top, num_classes)
    return flow_model(flow, image_shape, preprocess=preprocess, num_classes=num_classes,
                      noise_sigma=noise_sigma)


def cinc_flow(image_shape=(1, 28, 28), levels: int = 2, steps: int = 4, hidden: int = 34,
              num_classes: Optional[int] = None, blocks: int = 0, coupling: str = "quad",
              kernel_size: int = 3, invconv: bool = True, learn_top: bool = True,
              preprocess: str = "logit", backend: str = "auto", scale_floor: float = DEFAULT_SCALE_FLOOR,
              noise_sigma: float = 0.0) -> FlowModel:
    """CInC Flow: each step is ActNorm -> CInC k x k conv -> [LU 1x1 conv] -> coupling ("quad", the
    thesis's choice, with `hidden` channels in each of its three nets; or Glow's "affine"). Sampling
    inverts every CInC conv by the wavefront solve (`backend`: auto = Triton on CUDA, else torch)."""
    return conv_step_flow(conv_cls=CInCConv2d, image_shape=image_shape, levels=levels, steps=steps,
                          hidden=hidden, num_classes=num_classes, blocks=blocks, coupling=coupling,
                          kernel_size=kernel_size, invconv=invconv, learn_top=learn_top,
                          preprocess=preprocess, backend=backend, scale_floor=scale_floor,
                          noise_sigma=noise_sigma)
