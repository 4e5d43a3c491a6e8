"""The core interfaces: Bijector, Prior, Sampler (it draws latents; FlowModel decodes them).

Direction convention (as nflows and zuko): `forward` maps data to latent (the normalizing direction),
`inverse` maps latent to data. Both return `(output, logdet)` with logdet of shape (B,):
forward's logdet is log|det d z / d x|, inverse's is log|det d x / d z| (so the two sum to 0).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn


class Bijector(nn.Module):
    """An invertible map with a tractable log-determinant."""

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """x -> (z, logdet): the normalizing direction, data to latent; logdet = log|det dz/dx|, shape (B,)."""
        raise NotImplementedError

    def inverse(self, z: Tensor, context: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """z -> (x, logdet): latent to data; logdet = log|det dx/dz| (minus forward's), shape (B,)."""
        raise NotImplementedError


def _zeros(x: Tensor) -> Tensor:
    return x.new_zeros(x.shape[0])


class Composite(Bijector):
    """A chain of bijectors: forward runs them in order, inverse in reverse order."""

    def __init__(self, bijectors: Sequence[Bijector]):
        super().__init__()
        self.bijectors = nn.ModuleList(bijectors)

    def forward(self, x, context=None):
        logdet = _zeros(x)
        for b in self.bijectors:
            x, ld = b(x, context)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z, context=None):
        logdet = _zeros(z)
        for b in reversed(self.bijectors):
            z, ld = b.inverse(z, context)
            logdet = logdet + ld
        return z, logdet


class Prior(nn.Module):
    """A base distribution over latents of shape (B, *event_shape)."""

    event_shape: Tuple[int, ...]
    temperature_one_only: bool = False
    """True for a prior that samples at temperature 1 only (a diffusion prior): samplers refuse others in
    `check`, before any work."""

    def log_prob(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """log p(z | y), summed over every dimension but the batch: shape (B,)."""
        raise NotImplementedError

    def sample(self, n: int, y: Optional[Tensor] = None, temperature: float = 1.0,
               generator: Optional[torch.Generator] = None) -> Tensor:
        """n latents (n, *event_shape) given labels y, at `temperature` (the scale of the standard deviation)."""
        raise NotImplementedError


class Sampler:
    """Draws latents for a FlowModel: `sample(model, n, y, temperature, generator, **options) -> z`, of
    shape (n, *model.prior.event_shape); `FlowModel.sample` decodes them into images. Registered by name
    (`register_samplers`) and built with `nfzoo.create_sampler(name)`."""

    name = "sampler"
    from_prior = False
    """True if the latents are the prior's own samples (Prior.sample): labels then choose a class only if
    the prior keeps one density per class."""

    def check(self, model, temperature: float = 1.0, **options) -> None:
        """Raise UsageError (naming the fix) if this sampler cannot run on `model` with these options;
        the CLI calls it before any long work. Default: accept."""

    def sample(self, model, n: int, y: Optional[Tensor] = None, temperature: float = 1.0,
               generator: Optional[torch.Generator] = None, **options) -> Tensor:
        """n latents for `model` (labels y for a class-conditional one, through `model.context(y, n)`)."""
        raise NotImplementedError
