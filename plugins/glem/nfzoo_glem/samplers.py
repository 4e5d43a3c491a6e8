"""GLEM's RFCM sampler: latents from the re-estimated full-covariance class gaussians."""
from __future__ import annotations

import torch

from nfzoo.interfaces import Sampler


class RFCMSampler(Sampler):
    name = "rfcm"

    @torch.no_grad()
    def sample(self, model, n, y=None, temperature=1.0, generator=None, **options):
        if options:
            raise TypeError(f"the rfcm sampler takes no options, got {sorted(options)}")
        prior = model.prior
        if not hasattr(prior, "sample_rfcm"):
            raise TypeError("the rfcm sampler needs a GLEM model (a MultiGaussianPrior with RFCM)")
        ctx = model._context(y, n)
        z = prior.sample(n, ctx, temperature=temperature, generator=generator, rfcm=True)
        return model.decode(z.to(model.device), ctx)
