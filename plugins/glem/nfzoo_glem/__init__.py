"""nfzoo-glem: GLEM (Gaussians Learned using Expectation Maximization) priors for normalizing flows.

- `MultiGaussianPrior`: one diagonal gaussian per class, Sigma_y = psi(S_y), psi(s) = a / (1 + exp(-b s)) + c,
  with the closed-form pairwise KL repulsion and RFCM (a full-covariance re-estimate for sampling).
- `glem` architecture (`GLEMFlow`): a Glow-style multi-scale flow with that prior, trained by the EM-like
  alternation (E: the flow on 90% of the data, gaussians fixed; M: the gaussians on the other 10%, flow
  fixed; then the flow on all data), classifies by argmax_y log N(f(x); mu_y, Sigma_y).
- `RFCMSampler`: the "rfcm" sampler, latents from the re-estimated full-covariance class gaussians.

Importing this package (as registering the plugin does) imports no torch; the names load on first use.
"""
from nfzoo.lazy import lazy_exports

__version__ = "0.2.0"
_LAZY = {"MultiGaussianPrior": "prior", "psi": "prior", "GLEMFlow": "models", "glem": "models",
         "RFCMSampler": "samplers"}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
