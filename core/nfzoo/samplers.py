"""Samplers of the core."""
from __future__ import annotations

import torch

from .errors import UsageError
from .interfaces import Sampler


class AncestralSampler(Sampler):
    """Draw z from the prior (at temperature T), map it through the bijector's inverse."""

    name = "ancestral"

    def check(self, model, temperature=1.0, **options):
        if options:
            raise UsageError(f"the ancestral sampler takes no options (got {', '.join(sorted(options))}); "
                             "drop them, or choose a sampler that takes them (e.g. --sampler ddim --steps 20 "
                             "for a diffusion model)")

    @torch.no_grad()
    def sample(self, model, n, y=None, temperature=1.0, generator=None, **options):
        self.check(model, temperature, **options)
        ctx = model._context(y, n)
        z = model.prior.sample(n, ctx, temperature=temperature, generator=generator)
        v, _ = model.bijector.inverse(z.to(model.device), ctx)
        return model.from_flow(v)
