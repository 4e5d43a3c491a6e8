"""Samplers of the core."""
from __future__ import annotations

import torch

from .interfaces import Sampler


class AncestralSampler(Sampler):
    """Draw z from the prior (at temperature T), map it through the bijector's inverse."""

    name = "ancestral"

    @torch.no_grad()
    def sample(self, model, n, y=None, temperature=1.0, generator=None, **options):
        if options:
            raise TypeError(f"the ancestral sampler takes no options, got {sorted(options)}")
        ctx = model._context(y, n)
        z = model.prior.sample(n, ctx, temperature=temperature, generator=generator)
        v, _ = model.bijector.inverse(z.to(model.device), ctx)
        return model.from_flow(v)
