"""cinc-flow: Glow's multi-scale skeleton with a CInC conv in every step."""
from __future__ import annotations

from typing import Optional

from nfzoo import FlowModel
from nfzoo.architectures import multiscale_flow
from nfzoo.bijectors import ActNorm, AffineCoupling, Composite, InvConv1x1
from nfzoo.errors import ConfigError
from nfzoo.priors import StandardNormal

from .conv import CInCConv2d

COUPLINGS = ("quad", "affine")


def make_coupling(kind: str, channels: int, hidden: int, blocks: int):
    if kind == "quad":
        try:
            from nfzoo_quad.coupling import QuadCoupling
        except ImportError as exc:  # pragma: no cover - nfzoo-quad is a dependency of nfzoo-cinc
            raise ConfigError("coupling='quad' needs the nfzoo-quad plugin: pip install nfzoo-quad, "
                              "or use --set coupling=affine") from exc
        if blocks:
            raise ConfigError("the quad coupling nets have no residual blocks: use blocks=0")
        return QuadCoupling(channels, hidden)
    if kind == "affine":
        return AffineCoupling(channels, hidden, blocks, "channel")
    raise ConfigError(f"unknown coupling {kind!r}: use one of {', '.join(COUPLINGS)}")


def conv_step_flow(conv_cls, image_shape, levels: int, steps: int, hidden: int, num_classes, blocks: int,
                   coupling: str, kernel_size: int, invconv: bool, learn_top: bool, preprocess: str,
                   backend: str) -> FlowModel:
    """Glow's multi-scale flow whose step is ActNorm -> conv_cls(c, kernel_size) -> [LU 1x1 conv] ->
    coupling. Shared by cinc-flow (CInCConv2d) and inverse-flow (InverseConv2d)."""
    if coupling not in COUPLINGS:
        raise ConfigError(f"unknown coupling {coupling!r}: use one of {', '.join(COUPLINGS)}")

    def make_steps(c, _):
        out = []
        for _ in range(steps):
            layers = [ActNorm(c), conv_cls(c, kernel_size, backend=backend)]
            if invconv:
                layers.append(InvConv1x1(c))
            layers.append(make_coupling(coupling, c, hidden, blocks))
            out.append(Composite(layers))
        return out

    flow = multiscale_flow(image_shape, levels, make_steps, True, learn_top, num_classes)
    return FlowModel(flow, StandardNormal(image_shape), image_shape, preprocess=preprocess,
                     num_classes=num_classes)


def cinc_flow(image_shape=(1, 28, 28), levels: int = 2, steps: int = 4, hidden: int = 34,
              num_classes: Optional[int] = None, blocks: int = 0, coupling: str = "quad",
              kernel_size: int = 3, invconv: bool = True, learn_top: bool = True,
              preprocess: str = "logit", backend: str = "auto") -> FlowModel:
    """CInC Flow: each step is ActNorm -> CInC k x k conv -> [LU 1x1 conv] -> coupling ("quad", the
    thesis's choice, with `hidden` channels in each of its three nets; or Glow's "affine"). Sampling
    inverts every CInC conv by the wavefront solve (`backend`: auto = Triton on CUDA, else torch)."""
    return conv_step_flow(CInCConv2d, image_shape, levels, steps, hidden, num_classes, blocks, coupling,
                          kernel_size, invconv, learn_top, preprocess, backend)
