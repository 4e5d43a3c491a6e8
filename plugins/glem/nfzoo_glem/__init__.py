"""nfzoo-glem: GLEM (Gaussians Learned using Expectation Maximization) priors for normalizing flows.

- `MultiGaussianPrior`: one diagonal gaussian per class, Sigma_y = psi(S_y), psi(s) = a / (1 + exp(-b s)) + c,
  with the closed-form pairwise KL repulsion and RFCM (a full-covariance re-estimate for sampling).
- `glem` architecture (`GLEMFlow`): a Glow-style multi-scale flow with that prior, trained by the EM-like
  alternation (E: the flow on 90% of the data, gaussians fixed; M: the gaussians on the other 10%, flow
  fixed; then the flow on all data), classifies by argmax_y log N(f(x); mu_y, Sigma_y).
"""
__version__ = "0.1.0"
__all__ = ["MultiGaussianPrior", "psi"]


def __getattr__(name):   # lazy: registering the plugin (nfzoo_glem.plugin) must not import torch
    if name in __all__:
        from . import prior

        return getattr(prior, name)
    raise AttributeError(f"module 'nfzoo_glem' has no attribute {name!r}")
