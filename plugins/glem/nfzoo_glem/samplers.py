"""GLEM's RFCM sampler: latents from the re-estimated full-covariance class gaussians."""
from __future__ import annotations

import torch

from nfzoo.errors import UsageError
from nfzoo.flows.interfaces import Sampler


class RFCMSampler(Sampler):
    """z ~ N(mu_y, V diag(l) V^T + diag(d)): the class's re-estimated full-covariance gaussian (RFCM),
    its covariance scaled by temperature^2; the model decodes z."""

    name = "rfcm"

    def check(self, model, temperature=1.0, **options):
        if options:
            raise UsageError(f"the rfcm sampler takes no options (got {', '.join(sorted(options))}); drop them")
        prior = model.prior
        if not hasattr(prior, "sample_rfcm"):
            raise UsageError("the rfcm sampler needs a GLEM model (a MultiGaussianPrior with RFCM); "
                             "drop --sampler rfcm "
                             "for other models")

    @torch.no_grad()
    def sample(self, model, n, y=None, temperature=1.0, generator=None, **options):
        """Latents from the RFCM gaussians of the classes y."""
        self.check(model, temperature, **options)
        return model.prior.sample(n, model.context(y, n), temperature=temperature, generator=generator,
                                  rfcm=True)
