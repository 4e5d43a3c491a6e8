"""Priors of the core: standard normal and a learned diagonal gaussian (optionally class-conditional)."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from .interfaces import Prior

LOG_2PI = math.log(2 * math.pi)


def _randn(shape, like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    # draw on the generator's device (CPU by default) so a seed gives the same numbers everywhere
    dev = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


class StandardNormal(Prior):
    """N(0, I) over `event_shape`. Sampling at temperature T draws N(0, T^2 I)."""

    def __init__(self, event_shape: Sequence[int]):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def log_prob(self, z, y=None):
        d = z[0].numel()
        return -0.5 * (z.reshape(z.shape[0], -1) ** 2).sum(1) - 0.5 * d * LOG_2PI

    def sample(self, n, y=None, temperature=1.0, generator=None):
        return _randn((n, *self.event_shape), self._anchor, generator) * temperature


class DiagonalGaussian(Prior):
    """N(mu, diag(sigma^2)) with learned mu, log sigma; with `num_classes`, one (mu, sigma) per class."""

    def __init__(self, event_shape: Sequence[int], num_classes: Optional[int] = None):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        self.num_classes = num_classes
        rows = num_classes or 1
        self.mean = nn.Parameter(torch.zeros(rows, *self.event_shape))
        self.log_scale = nn.Parameter(torch.zeros(rows, *self.event_shape))

    def _params(self, y: Optional[Tensor], n: int):
        if self.num_classes is None:
            return self.mean.expand(n, *self.event_shape), self.log_scale.expand(n, *self.event_shape)
        if y is None:
            raise ValueError("this prior is class-conditional: pass labels y of shape (B,)")
        return self.mean[y], self.log_scale[y]

    def log_prob(self, z, y=None):
        mu, ls = self._params(y, z.shape[0])
        e = (z - mu) * torch.exp(-ls)
        lp = -0.5 * e ** 2 - ls - 0.5 * LOG_2PI
        return lp.reshape(z.shape[0], -1).sum(1)

    def sample(self, n, y=None, temperature=1.0, generator=None):
        mu, ls = self._params(y, n)
        return mu + torch.exp(ls) * temperature * _randn((n, *self.event_shape), mu, generator)
