"""The classic flows as built-in architectures, on images, all on one multi-scale skeleton.

Every builder takes the common keys image_shape=(C, H, W), levels, steps (per level), hidden (channels
of the coupling nets), num_classes (None = unconditional) and `blocks` (residual blocks per coupling
net), plus its own keys. A level is: squeeze 2x2 -> steps -> split half of the channels (not on the
last level), so H and W must be divisible by 2^levels.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from nfzoo.errors import ConfigError
from nfzoo.flows.bijectors import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    Composite,
    GaussianSplit,
    InvConv1x1,
    Level,
    MultiScale,
    Rescale,
    SplineCoupling,
    TopGaussian,
)
from nfzoo.flows.bijectors.coupling import DEFAULT_SCALE_FLOOR
from nfzoo.flows.model import FlowModel
from nfzoo.flows.priors import StandardNormal


def check_shape(image_shape: Sequence[int], levels: int) -> tuple:
    """(C, H, W) as ints, or a ConfigError that says which `levels` fit: each level halves H and W."""
    if len(image_shape) != 3:
        raise ConfigError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
    c, h, w = (int(s) for s in image_shape)
    if levels < 1:
        raise ConfigError(f"levels must be >= 1, got {levels}")
    f = 2 ** levels
    if h % f or w % f:
        ok = max(k for k in range(0, levels + 1) if h % 2 ** k == 0 and w % 2 ** k == 0)
        raise ConfigError(
            f"image size {h}x{w} is not divisible by 2^levels = {f} (levels={levels}): each level "
            f"squeezes by 2. Use levels <= {ok} (e.g. --set levels={max(ok, 1)}), or pad/resize the "
            f"images to a multiple of {f}.")
    return c, h, w


def multiscale_flow(image_shape, levels: int, make_steps, split_prior: bool = True,
                    learn_top: bool = True, num_classes: Optional[int] = None,
                    split_bias: bool = False) -> MultiScale:
    """The multi-scale skeleton: `levels` x (squeeze -> make_steps(channels, level) -> split half to a
    learned gaussian split prior, with a learned per-position offset if `split_bias`), and a learned
    (class-conditional if num_classes) top gaussian. Plugins build their architectures with it."""
    c, h, w = check_shape(image_shape, levels)
    out: List[Level] = []
    for i in range(levels):
        c, h, w = c * 4, h // 2, w // 2
        steps = make_steps(c, i)
        if i < levels - 1:
            keep = c // 2
            split = GaussianSplit(keep, c - keep, (c - keep, h, w) if split_bias else None) \
                if split_prior else None
            out.append(Level(steps, squeeze=True, split=split, keep_channels=keep))
            c = keep
        else:
            out.append(Level(steps, squeeze=True))
    top = TopGaussian((c, h, w), num_classes) if (learn_top or num_classes) else None
    return MultiScale(out, top=top)


def flow_model(bijector, image_shape, *, preprocess: str = "shift",
               num_classes: Optional[int] = None, noise_sigma: float = 0.0) -> FlowModel:
    """An image FlowModel: x -> preprocess -> bijector -> z, log p(x) = log N(z; 0, I) + logdet (the
    learned split and top gaussians of a multi-scale bijector whiten inside it). The last line of every
    architecture builder built on `multiscale_flow`. `noise_sigma` > 0: trained on noisy data and
    denoised after sampling (TarFlow's noise augmentation, `FlowModel.denoise`)."""
    return FlowModel(bijector, StandardNormal(image_shape), image_shape, preprocess=preprocess,
                     num_classes=num_classes, noise_sigma=noise_sigma)


def glow(image_shape=(1, 28, 28), levels: int = 2, steps: int = 8, hidden: int = 64,
         num_classes: Optional[int] = None, blocks: int = 0, learn_top: bool = True,
         preprocess: str = "shift", split_bias: bool = False, scale_floor: float = DEFAULT_SCALE_FLOOR,
         noise_sigma: float = 0.0) -> FlowModel:
    """Glow (Kingma & Dhariwal 2018): ActNorm -> LU 1x1 conv -> affine coupling (sigmoid scale,
    zero-init), multi-scale with learned conditional split priors and a learned top prior.
    `split_bias=True` adds a learned per-position offset to the split priors. `scale_floor`: the
    couplings' smallest scale (0: Glow's unbounded sigmoid, whose inverse can overflow off the data).
    `noise_sigma`: noise augmentation (`flow_model`)."""
    def make_steps(c, _):
        return [Composite([ActNorm(c), InvConv1x1(c),
                           AffineCoupling(c, hidden, blocks, "channel", scale_floor=scale_floor)])
                for _ in range(steps)]
    flow = multiscale_flow(image_shape, levels, make_steps, True, learn_top, num_classes, split_bias)
    return flow_model(flow, image_shape, preprocess=preprocess, num_classes=num_classes,
                      noise_sigma=noise_sigma)


def realnvp(image_shape=(1, 28, 28), levels: int = 2, steps: int = 3, hidden: int = 64,
            num_classes: Optional[int] = None, blocks: int = 2, actnorm: bool = True,
            learn_top: bool = False, preprocess: str = "logit", noise_sigma: float = 0.0) -> FlowModel:
    """RealNVP (Dinh et al. 2017): affine couplings s = exp(alpha * tanh(h)) with alternating
    checkerboard masks, then (except on the last level, which has steps + 1 checkerboard couplings)
    alternating channel masks, residual coupling nets, multi-scale. Batch norm is replaced by ActNorm
    (`actnorm=True`), which has no batch statistics at test time."""
    def make_steps(c, i):
        last = i == levels - 1
        kinds = ["checkerboard"] * (steps + 1 if last else steps) + ([] if last else ["channel"] * steps)
        out = []
        for j, mask in enumerate(kinds):
            layer = AffineCoupling(c, hidden, blocks, mask, parity=j % 2, scale="tanh")
            out.append(Composite([ActNorm(c), layer]) if actnorm else layer)
        return out
    flow = multiscale_flow(image_shape, levels, make_steps, True, learn_top, num_classes)
    return flow_model(flow, image_shape, preprocess=preprocess, num_classes=num_classes,
                      noise_sigma=noise_sigma)


def nice(image_shape=(1, 28, 28), levels: int = 2, steps: int = 4, hidden: int = 64,
         num_classes: Optional[int] = None, blocks: int = 1, preprocess: str = "shift") -> FlowModel:
    """NICE (Dinh et al. 2015): additive couplings alternating which half of the channels they change,
    volume preserving, and a final diagonal rescaling layer (the only log-det). Convolutional nets and
    squeezes instead of the paper's MLPs; parts factored out between levels get no learned prior."""
    def make_steps(c, _):
        return [AdditiveCoupling(c, hidden, blocks, "channel", parity=j % 2) for j in range(steps)]
    flow = multiscale_flow(image_shape, levels, make_steps, split_prior=False, learn_top=False,
                       num_classes=num_classes)
    bij = Composite([flow, Rescale(tuple(int(s) for s in image_shape))])
    return flow_model(bij, image_shape, preprocess=preprocess, num_classes=num_classes)


def nsf(image_shape=(1, 28, 28), levels: int = 2, steps: int = 6, hidden: int = 64,
        num_classes: Optional[int] = None, blocks: int = 1, bins: int = 8, tail_bound: float = 3.0,
        learn_top: bool = True, preprocess: str = "shift", noise_sigma: float = 0.0) -> FlowModel:
    """Neural Spline Flow (Durkan et al. 2019) on images: Glow's step with the affine coupling replaced
    by a rational-quadratic spline coupling (K bins on [-B, B], linear tails)."""
    def make_steps(c, _):
        return [Composite([ActNorm(c), InvConv1x1(c),
                           SplineCoupling(c, hidden, blocks, "channel", bins=bins, bound=tail_bound)])
                for _ in range(steps)]
    flow = multiscale_flow(image_shape, levels, make_steps, True, learn_top, num_classes)
    return flow_model(flow, image_shape, preprocess=preprocess, num_classes=num_classes,
                      noise_sigma=noise_sigma)
