"""Coupling layers: additive (NICE), affine (RealNVP, Glow) and rational-quadratic spline (NSF).

A coupling splits x into a conditioning part x_a and a transformed part x_b, either by channel halves
(`mask="channel"`) or by a spatial checkerboard (`mask="checkerboard"`, RealNVP); `parity` picks which
part is transformed. The parameters of the element-wise transform of x_b come from a conv net on x_a
whose last layer is zero-initialised, so every coupling starts as a fixed element-wise map (the
identity, or Glow's constant scale sigmoid(2) for the affine coupling).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from nfzoo.errors import UsageError
from nfzoo.flows.bijectors.splines import rational_quadratic_spline
from nfzoo.flows.interfaces import Bijector, fused_training


class NetActNorm(nn.Module):
    """ActNorm inside a coupling net (Glow normalises its hidden activations this way): per-channel
    affine whose data-dependent init happens with the flow's own initialisation."""

    def __init__(self, channels: int):
        super().__init__()
        from nfzoo.flows.bijectors.basic import ActNorm

        self.norm = ActNorm(channels, dead_std=1e-2)

    def forward(self, h):
        """h normalised by the ActNorm, its log-det dropped (a layer of the net, not of the flow)."""
        return self.norm(h)[0]

    def after_conv(self, conv: nn.Conv2d, h: torch.Tensor) -> torch.Tensor:
        """self(conv(h)) as one convolution: (conv(h) + b) exp(s) = conv'(h) with the weight W exp(s) and the
        bias (c + b) exp(s) (c: the conv's own bias, if any), per output channel. The same function up to
        float rounding, without the two passes over the activations (and their backward) that the
        ActNorm costs; before the data-dependent init (`needs_init`) it is the two layers as they are."""
        norm = self.norm
        if norm.needs_init():
            return self(conv(h))
        e = torch.exp(norm.log_scale).reshape(-1)
        b = norm.bias.reshape(-1) if conv.bias is None else conv.bias + norm.bias.reshape(-1)
        return conv._conv_forward(h, conv.weight * e.view(-1, 1, 1, 1), b * e)


class ZeroConv2d(nn.Module):
    """Glow's Conv2dZeros: a zero-initialised conv whose output is scaled by exp(3 * s), s per channel
    (zero-init). The factor speeds up learning of the output scale, which matters for flows that must
    contract some dimensions a lot (the constant background of MNIST)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, logscale_factor: float = 3.0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        nn.init.zeros_(self.conv.weight)
        assert self.conv.bias is not None  # nn.Conv2d has a bias by default
        nn.init.zeros_(self.conv.bias)
        self.logs = nn.Parameter(torch.zeros(1, out_channels, 1, 1))
        self.factor = logscale_factor

    def forward(self, x):
        """conv(x) * exp(factor * s), zero at initialisation. In a training step (`fused_training`) the scale is
        folded into the conv's weight and bias: one pass over the output instead of two, equal up to float
        rounding."""
        if not fused_training(self):
            return self.conv(x) * torch.exp(self.logs * self.factor)
        e = torch.exp(self.logs * self.factor).reshape(-1)
        bias = self.conv.bias
        return self.conv._conv_forward(x, self.conv.weight * e.view(-1, 1, 1, 1),
                                       None if bias is None else bias * e)


class ResBlock(nn.Module):
    """A residual block of the coupling net: h + ActNorm(conv3x3(ReLU(ActNorm(conv3x3(ReLU(h))))))."""
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = NetActNorm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = NetActNorm(channels)

    def forward(self, h):
        """h plus the block's residual, same shape as h (in a training step with each conv - ActNorm pair as
        one conv, `NetActNorm.after_conv`)."""
        if not fused_training(self):
            return h + self.norm2(self.conv2(F.relu(self.norm1(self.conv1(F.relu(h))))))
        r = F.relu(self.norm1.after_conv(self.conv1, F.relu(h)), inplace=True)
        return h + self.norm2.after_conv(self.conv2, r)


class CouplingNet(nn.Module):
    """Glow's coupling net: conv3x3 - ActNorm - ReLU - [blocks x residual block] - conv1x1 - ActNorm -
    ReLU - ZeroConv2d (zero-initialised, so the coupling starts as the identity).

    A training step (`fused_training`) runs the same function faster (`_train_forward`): each conv -
    ActNorm pair and the output scale as one conv, in-place ReLUs, and the hidden activations in
    channels-last layout on the CPU (the layout oneDNN convolves in: NCHW costs it a reorder of every
    activation and gradient). Otherwise it computes layer by layer, exactly as the weights were published."""

    mixed_precision = True   # `--precision bf16` runs it under autocast (the flow's own maths stays float32)

    def __init__(self, in_channels: int, out_channels: int, hidden: int, blocks: int = 0):
        super().__init__()
        layers = [nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False), NetActNorm(hidden), nn.ReLU()]
        layers += [ResBlock(hidden) for _ in range(blocks)]
        layers += [nn.Conv2d(hidden, hidden, 1, bias=False), NetActNorm(hidden), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.out = ZeroConv2d(hidden, out_channels)

    def forward(self, x):
        """The coupling's parameters from its conditioning input x: out(body(x)), zero at initialisation."""
        if not fused_training(self):
            return self.out(self.body(x))
        return self._train_forward(x)

    def _train_forward(self, x):
        layers = list(self.body)
        # oneDNN's layout on the CPU (other devices keep theirs: cuDNN's choice is the caller's)
        h = x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x
        i = 0
        while i < len(layers):
            layer = layers[i]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, nn.Conv2d) and isinstance(nxt, NetActNorm):
                h = nxt.after_conv(layer, h)
                i += 2
                continue
            # a layer's output (not x itself) is saved by no backward here: ReLU may overwrite it
            h = F.relu(h, inplace=i > 0) if isinstance(layer, nn.ReLU) else layer(h)
            i += 1
        return self.out(h).contiguous()


def checkerboard(h: int, w: int, parity: int, like: torch.Tensor) -> torch.Tensor:
    """A (1, 1, h, w) mask with the dtype and device of `like`: 1 where i + j + parity is even, else 0
    (RealNVP's checkerboard)."""
    i = torch.arange(h, device=like.device).view(-1, 1)
    j = torch.arange(w, device=like.device).view(1, -1)
    return (((i + j + parity) % 2) == 0).to(like.dtype).view(1, 1, h, w)


class _Coupling(Bijector):
    """Shared split / merge logic. Subclasses define `params_per_element`, `_transform`."""

    params_per_element = 2

    def __init__(self, channels: int, hidden: int = 64, blocks: int = 0, mask: str = "channel",
                 parity: int = 0):
        super().__init__()
        if mask not in ("channel", "checkerboard"):
            raise ValueError(f"mask must be 'channel' or 'checkerboard', got {mask!r}")
        if mask == "channel" and channels < 2:
            raise ValueError("a channel-mask coupling needs at least 2 channels: squeeze first, or use "
                             "mask='checkerboard'")
        self.channels, self.mask, self.parity = channels, mask, int(parity) % 2
        if mask == "channel":
            self.n_b = channels - channels // 2 if self.parity == 0 else channels // 2
            n_a = channels - self.n_b
            self.net = CouplingNet(n_a, self.n_b * self.params_per_element, hidden, blocks)
        else:
            # the mask is given to the net as an extra channel so it knows which pixels are kept
            self.net = CouplingNet(channels + 1, channels * self.params_per_element, hidden, blocks)

    def _split(self, x):
        if self.mask == "channel":
            n_a = self.channels - self.n_b
            if self.parity == 0:
                return x[:, :n_a], x[:, n_a:]
            return x[:, self.n_b:], x[:, :self.n_b]
        return x, x

    def _transform(self, xb: torch.Tensor, p: torch.Tensor, inverse: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """(y_b, elementwise log|det|) from x_b and the net's parameters p (B, params_per_element, C_b, H, W)."""
        raise NotImplementedError

    def _merge(self, xa, yb):
        return torch.cat([xa, yb], 1) if self.parity == 0 else torch.cat([yb, xa], 1)

    def _run(self, x, inverse: bool):
        if self.mask == "channel":
            xa, xb = self._split(x)
            p = self.net(xa)
            p = p.view(x.shape[0], self.params_per_element, -1, *x.shape[2:])
            yb, ld = self._transform(xb, p, inverse)
            return self._merge(xa, yb), ld.reshape(x.shape[0], -1).sum(1)
        if x.shape[2] * x.shape[3] < 2:    # found by tests/test_fuzz.py: one pixel is all kept or all changed
            raise UsageError(f"a checkerboard-mask coupling needs images of at least 2 pixels, got shape "
                             f"{list(x.shape)} (1x1); use mask='channel'")
        m = checkerboard(x.shape[2], x.shape[3], self.parity, x)
        keep = x * m
        p = self.net(torch.cat([keep, m.expand(x.shape[0], 1, *x.shape[2:])], 1))
        p = p.view(x.shape[0], self.params_per_element, -1, *x.shape[2:])
        y, ld = self._transform(x, p, inverse)
        y = keep + (1 - m) * y
        return y, (ld * (1 - m)).reshape(x.shape[0], -1).sum(1)

    def forward(self, x, context=None):
        return self._run(x, inverse=False)

    def inverse(self, z, context=None):
        return self._run(z, inverse=True)


class AdditiveCoupling(_Coupling):
    """NICE: y_b = x_b + t(x_a); log|det| = 0."""

    params_per_element = 1

    def _transform(self, xb, p, inverse):
        t = p[:, 0]
        return (xb - t if inverse else xb + t), torch.zeros_like(xb)


DEFAULT_SCALE_FLOOR = 0.05
"""The smallest scale of a sigmoid coupling unless a config says otherwise: sampling divides by the scale,
and Glow's unbounded sigmoid(h + 2) reaches ~0 off the data (NaN samples; see `sigmoid_log_scale`)."""


def sigmoid_log_scale(h: torch.Tensor, floor: float = 0.0) -> torch.Tensor:
    """log s with s = floor + (1 - floor) * sigmoid(h + 2): Glow's coupling scale (floor = 0) or the same
    scale bounded away from 0. The inverse divides by s, so with a floor > 0 one coupling amplifies by at
    most 1 / floor wherever a sample lands, and the model is trained under the same bound."""
    if floor <= 0:
        return F.logsigmoid(h + 2.0)
    return torch.log(floor + (1.0 - floor) * torch.sigmoid(h + 2.0))


def check_scale_floor(floor: float) -> float:
    """A scale floor as a float in [0, 1), else ValueError naming the range."""
    floor = float(floor)
    if not 0.0 <= floor < 1.0:
        raise ValueError(f"scale_floor must be in [0, 1) (0: Glow's unbounded sigmoid scale), got {floor}")
    return floor


class AffineCoupling(_Coupling):
    """y_b = (x_b + t(x_a)) * s(x_a), log|det| = sum log s.

    `scale="sigmoid"` (Glow): s = f + (1 - f) sigmoid(h + 2) with f = `scale_floor` (0 is Glow's own
    s in (0, 1); f > 0 bounds what the inverse divides by, `sigmoid_log_scale`), near 0.88 at init.
    `scale="tanh"` (RealNVP): s = exp(alpha * tanh(h)) with a learned per-channel alpha."""

    def __init__(self, channels: int, hidden: int = 64, blocks: int = 0, mask: str = "channel",
                 parity: int = 0, scale: str = "sigmoid", scale_floor: float = DEFAULT_SCALE_FLOOR):
        super().__init__(channels, hidden, blocks, mask, parity)
        if scale not in ("sigmoid", "tanh"):
            raise ValueError(f"scale must be 'sigmoid' or 'tanh', got {scale!r}")
        self.scale = scale
        self.scale_floor = check_scale_floor(scale_floor)
        if scale == "tanh":
            n = self.n_b if mask == "channel" else channels
            self.alpha = nn.Parameter(torch.ones(1, n, 1, 1))

    def _transform(self, xb, p, inverse):
        t, h = p[:, 0], p[:, 1]
        if self.scale == "sigmoid":
            log_s = sigmoid_log_scale(h, self.scale_floor)
        else:
            log_s = self.alpha * torch.tanh(h)
        if inverse:
            return xb * torch.exp(-log_s) - t, -log_s
        return (xb + t) * torch.exp(log_s), log_s


class SplineCoupling(_Coupling):
    """NSF: y_b = RQS(x_b; theta(x_a)), a K-bin rational-quadratic spline on [-B, B], identity outside."""

    def __init__(self, channels: int, hidden: int = 64, blocks: int = 0, mask: str = "channel",
                 parity: int = 0, bins: int = 8, bound: float = 3.0):
        self.params_per_element = 3 * bins - 1
        self.bins, self.bound = bins, float(bound)
        super().__init__(channels, hidden, blocks, mask, parity)

    def _transform(self, xb, p, inverse):
        k = self.bins
        p = p.movedim(1, -1)  # (B, C, H, W, 3K - 1)
        w, h, d = p[..., :k], p[..., k:2 * k], p[..., 2 * k:]
        return rational_quadratic_spline(xb, w, h, d, inverse=inverse, bound=self.bound)
