"""The multi-scale container (RealNVP / Glow): levels of squeeze -> steps -> split.

At each level but the last, half of the channels are split off and whitened by a learned conditional
gaussian split prior: eps = (z_b - mu(z_a)) / sigma(z_a), with (mu, log sigma) from a zero-initialised
conv of the kept half z_a (Glow's `split2d`). The last level can whiten its output with a learned
(optionally class-conditional) gaussian (Glow's learned top prior). With that, the latent of the whole
flow is standard normal, and sampling at temperature T (eps ~ N(0, T^2 I)) is Glow's temperature.

The latent z is laid out with the shape of the input: the split-off parts are put back in place by
undoing the squeezes, as in RealNVP. `latent_parts(z)` gives them per level.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, cast

import torch
from torch import Tensor, nn

from nfzoo.errors import UsageError
from nfzoo.flows.bijectors.basic import squeeze, unsqueeze
from nfzoo.flows.interfaces import Bijector, Composite

SPLIT_LOG_SCALE_BOUND = 12.0
"""|log sigma| of a split prior is clamped to this: sampling multiplies by sigma(z_a), and z_a drawn far from
the data can drive an unbounded log sigma past float32's range (exp(89) overflows: NaN images). Trained
models sit well inside it (a background pixel's sigma is about e^-7), so on the data nothing changes."""


class GaussianSplit(Bijector):
    """Conditional affine whitening of z_b given z_a: eps = (z_b - mu(z_a)) * exp(-log_sigma(z_a)).
    Used with `context=z_a`. forward log|det| = -sum log_sigma. With `position_shape=(C_b, H, W)` a
    learned per-position offset (zero-init) is added to mu and log_sigma, as an unconditional
    per-element gaussian prior has (normflows' split priors). log_sigma is clamped to
    +-SPLIT_LOG_SCALE_BOUND (a bijection either way; the bound keeps sampling finite off the data)."""

    def __init__(self, in_channels: int, out_channels: int, position_shape: Optional[Sequence[int]] = None):
        super().__init__()
        from nfzoo.flows.bijectors.coupling import ZeroConv2d

        self.conv = ZeroConv2d(in_channels, 2 * out_channels)
        if position_shape is not None:
            self.position = nn.Parameter(torch.zeros(1, 2 * out_channels, *tuple(position_shape)[1:]))
        else:
            self.position = None

    def _params(self, za):
        h = self.conv(za)
        if self.position is not None:
            if tuple(h.shape[2:]) != tuple(self.position.shape[2:]):
                raise UsageError(f"this split prior was built for {list(self.position.shape[2:])} positions but "
                                 f"got shape {list(za.shape)}: its image size is fixed by its config")
            h = h + self.position
        return h[:, 0::2], h[:, 1::2].clamp(-SPLIT_LOG_SCALE_BOUND, SPLIT_LOG_SCALE_BOUND)

    def forward(self, x, context=None):
        mu, ls = self._params(context)
        return (x - mu) * torch.exp(-ls), -ls.reshape(x.shape[0], -1).sum(1)

    def inverse(self, z, context=None):
        mu, ls = self._params(context)
        return mu + z * torch.exp(ls), ls.reshape(z.shape[0], -1).sum(1)


class TopGaussian(Bijector):
    """Whitening by a learned gaussian with per-position mean and log-scale (Glow's learned top prior);
    with `num_classes`, a zero-initialised per-class, per-channel offset is added (Glow's y_condition).
    Needs `context=y` (long labels, shape (B,)) when class-conditional."""

    def __init__(self, shape: Sequence[int], num_classes: Optional[int] = None):
        super().__init__()
        c = shape[0]
        self.mean = nn.Parameter(torch.zeros(1, *shape))
        self.log_scale = nn.Parameter(torch.zeros(1, *shape))
        self.num_classes = num_classes
        if num_classes:
            self.class_embed = nn.Embedding(num_classes, 2 * c)
            nn.init.zeros_(self.class_embed.weight)

    def _params(self, n, y, x=None):
        mu, ls = self.mean, self.log_scale
        if x is not None and tuple(x.shape[1:]) != tuple(mu.shape[1:]):   # found by tests/test_fuzz.py
            raise UsageError(f"this flow was built for a top latent of shape {list(mu.shape[1:])} but got shape "
                             f"{list(x.shape[1:])}: its image size is fixed by its config (image_shape)")
        if self.num_classes:
            if y is None:
                raise ValueError("this model is class-conditional: pass labels y of shape (B,)")
            e = self.class_embed(y.long()).view(n, 2, -1, 1, 1)
            mu, ls = mu + e[:, 0], ls + e[:, 1]
        return mu, ls

    def forward(self, x, context=None):
        mu, ls = self._params(x.shape[0], context, x)
        return (x - mu) * torch.exp(-ls), (-ls.reshape(ls.shape[0], -1).sum(1)).expand(x.shape[0])

    def inverse(self, z, context=None):
        mu, ls = self._params(z.shape[0], context, z)
        return mu + z * torch.exp(ls), ls.reshape(ls.shape[0], -1).sum(1).expand(z.shape[0])


class Level(nn.Module):
    """One level: optional squeeze, a chain of steps, optional split (kept channels first)."""

    def __init__(self, steps: Sequence[Bijector], squeeze: bool = True, split: Optional[Bijector] = None,
                 keep_channels: Optional[int] = None):
        super().__init__()
        self.steps = Composite(steps)
        self.do_squeeze = squeeze
        self.split = split
        self.keep = keep_channels  # None: no split at this level


class MultiScale(Bijector):
    """A chain of Levels, then an optional `top` bijector on the last level's output. The context
    (class labels) goes to `top` only. `Level(split=None, keep_channels=k)` factors the part out
    unchanged (no learned split prior)."""

    def __init__(self, levels: Sequence[Level], top: Optional[Bijector] = None):
        super().__init__()
        self.levels = nn.ModuleList(levels)
        self.top = top

    def _levels(self) -> Sequence[Level]:
        return cast(Sequence[Level], self.levels)  # nn.ModuleList is untyped: it holds the Levels given above

    def forward(self, x, context=None):
        logdet = x.new_zeros(x.shape[0])
        outs: List[Tensor] = []
        h = x
        for lv in self._levels():
            if lv.do_squeeze:
                h = squeeze(h)
            h, ld = lv.steps(h, None)
            logdet = logdet + ld
            if lv.keep is not None:
                a, b = h[:, :lv.keep], h[:, lv.keep:]
                if lv.split is not None:
                    b, ld = lv.split(b, context=a)
                    logdet = logdet + ld
                outs.append(b)
                h = a
        if self.top is not None:
            h, ld = self.top(h, context)
            logdet = logdet + ld
        for lv in reversed(self._levels()):
            if lv.keep is not None:
                h = torch.cat([h, outs.pop()], 1)
            if lv.do_squeeze:
                h = unsqueeze(h)
        return h, logdet

    def _disassemble(self, z) -> Tuple[Tensor, List[Tensor]]:
        parts: List[Tensor] = []
        h = z
        for lv in self._levels():
            if lv.do_squeeze:
                h = squeeze(h)
            if lv.keep is not None:
                parts.append(h[:, lv.keep:])
                h = h[:, :lv.keep]
        return h, parts

    def latent_parts(self, z) -> List[Tensor]:
        """The per-level parts of z: [split of level 1, ..., split of level L-1, top]."""
        top, parts = self._disassemble(z)
        return parts + [top]

    def inverse(self, z, context=None):
        logdet = z.new_zeros(z.shape[0])
        h, parts = self._disassemble(z)
        if self.top is not None:
            h, ld = self.top.inverse(h, context)
            logdet = logdet + ld
        for lv in reversed(self._levels()):
            if lv.keep is not None:
                b = parts.pop()
                if lv.split is not None:
                    b, ld = lv.split.inverse(b, context=h)
                    logdet = logdet + ld
                h = torch.cat([h, b], 1)
            h, ld = lv.steps.inverse(h, None)
            logdet = logdet + ld
            if lv.do_squeeze:
                h = unsqueeze(h)
        return h, logdet
