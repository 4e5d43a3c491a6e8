"""Samplers of the core, and `create_sampler`: any registered sampler by name."""
from __future__ import annotations

from typing import Any

import torch

from nfzoo.errors import UsageError
from nfzoo.flows.interfaces import Sampler


def create_sampler(name: str, **kwargs: Any) -> Sampler:
    """The sampler registered as `name` (by the core or a plugin), built with `kwargs`:
    `create_sampler("ddim")`. An unknown name raises UnknownNameError naming the closest registered ones.

    >>> nfzoo.create_sampler("ancestral").name
    'ancestral'
    """
    from nfzoo.registry.plugins import get_registry

    return get_registry().get("samplers", name).load()(**kwargs)


class AncestralSampler(Sampler):
    """z ~ prior(. | y) at temperature T (the prior's own `sample`); the model decodes z."""

    name = "ancestral"
    from_prior = True

    def check(self, model, temperature=1.0, **options):
        if temperature != 1.0 and getattr(model.prior, "temperature_one_only", False):
            raise UsageError(f"this model's prior samples at temperature 1 only (got {temperature:g}); drop "
                             "--temperature")
        if options:
            raise UsageError(f"the ancestral sampler takes no options (got {', '.join(sorted(options))}); "
                             "drop them, or choose a sampler that takes them (e.g. --sampler ddim --steps 20 "
                             "for a diffusion model)")

    @torch.no_grad()
    def sample(self, model, n, y=None, temperature=1.0, generator=None, **options):
        self.check(model, temperature, **options)
        return model.prior.sample(n, model.context(y, n), temperature=temperature, generator=generator)
