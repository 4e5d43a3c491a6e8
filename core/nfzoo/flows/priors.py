"""Priors of the core: standard normal and a learned diagonal gaussian (optionally class-conditional)."""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from nfzoo.flows.interfaces import Prior

LOG_2PI = math.log(2 * math.pi)


def _randn(shape, like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    # draw on the generator's device (CPU by default) so a seed gives the same numbers everywhere
    dev = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


class StandardNormal(Prior):
    """N(0, I) over `event_shape`. Sampling at temperature T draws N(0, T^2 I)."""

    _anchor: Tensor  # buffers, registered in __init__

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


class LatentMixture(Prior):
    """A mixture of K gaussians over the flattened latent, each with a low-rank-plus-diagonal covariance
    (loc_k, F_k F_k^T + diag(d_k), F_k of rank r): torch.distributions' MixtureSameFamily of
    LowRankMultivariateNormal. Its parameters are buffers fitted to the latents of the training images
    (`fit`, through nfzoo.flows.latent_prior.fit_latent_prior), not trained: it puts the prior's mass where the
    flow sends real images, so samples land where the flow's inverse was trained. Before `fit` it is
    N(0, I). log_prob is exact, so the model stays a flow with an exact likelihood. Sampling at
    temperature T scales each component's spread about its mean by T."""

    logits: Tensor  # buffers, registered in __init__
    loc: Tensor
    cov_factor: Tensor
    cov_diag: Tensor

    def __init__(self, event_shape: Sequence[int], components: int, rank: int):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        d = math.prod(self.event_shape)
        k, r = int(components), int(rank)
        if not (1 <= k <= 1024 and 0 <= r <= d):
            raise ValueError(f"latent_prior needs 1 <= components <= 1024 and 0 <= rank <= {d} (the latent's "
                             f"dimensions), got components={components}, rank={rank}")
        self.components, self.rank = k, r
        self.register_buffer("logits", torch.zeros(k))
        self.register_buffer("loc", torch.zeros(k, d))
        self.register_buffer("cov_factor", torch.zeros(k, d, r))
        self.register_buffer("cov_diag", torch.ones(k, d))

    def distribution(self) -> torch.distributions.Distribution:
        """The mixture as a torch Distribution over flattened latents (D,)."""
        from torch.distributions import Categorical, LowRankMultivariateNormal, MixtureSameFamily

        return MixtureSameFamily(Categorical(logits=self.logits),
                                 LowRankMultivariateNormal(self.loc, self.cov_factor, self.cov_diag))

    def log_prob(self, z, y=None):
        return self.distribution().log_prob(z.reshape(z.shape[0], -1))

    def sample(self, n, y=None, temperature=1.0, generator=None):
        dev = generator.device if generator is not None else self.logits.device
        k = torch.multinomial(torch.softmax(self.logits.to(dev), 0), n, replacement=True,
                              generator=generator).to(self.loc.device)
        e1 = _randn((n, self.rank, 1), self.loc, generator)
        e2 = _randn((n, self.loc.shape[1]), self.loc, generator)
        spread = (self.cov_factor[k] @ e1).squeeze(-1) + self.cov_diag[k].sqrt() * e2
        return (self.loc[k] + temperature * spread).reshape(n, *self.event_shape)

    @torch.no_grad()
    def fit(self, z: Tensor, groups: Optional[Tensor] = None, min_var: float = 1e-4) -> None:
        """Fit to latents z (N, *event_shape): component k on the latents whose group is k (`groups`, (N,)
        integers in [0, K); None: all in one, K must be 1). Each gets the mean, the top-`rank` principal
        directions of the covariance (F = V_r S_r from the SVD of the centred latents) and the variance
        they leave per dimension (at least `min_var`); the weights are the groups' shares."""
        z = z.reshape(z.shape[0], -1).double()
        if groups is None:
            groups = torch.zeros(z.shape[0], dtype=torch.long)
        groups = groups.long().reshape(-1)
        if groups.numel() != z.shape[0] or int(groups.min()) < 0 or int(groups.max()) >= self.components:
            raise ValueError(f"need one group in [0, {self.components}) per latent")
        for k in range(self.components):
            zk = z[groups == k]
            if zk.shape[0] < 2:
                raise ValueError(f"component {k} has {zk.shape[0]} latent(s): at least 2 are needed to fit it")
            mu = zk.mean(0)
            x = zk - mu
            _, s, vh = torch.linalg.svd(x / math.sqrt(zk.shape[0] - 1), full_matrices=False)
            r = min(self.rank, s.shape[0])
            f = torch.zeros(z.shape[1], self.rank, dtype=z.dtype)
            f[:, :r] = vh[:r].T * s[:r]
            var = x.pow(2).sum(0) / (zk.shape[0] - 1)
            self.loc[k] = mu.to(self.loc)
            self.cov_factor[k] = f.to(self.cov_factor)
            self.cov_diag[k] = (var - f.pow(2).sum(1)).clamp_min(min_var).to(self.cov_diag)
            self.logits[k] = math.log(zk.shape[0] / z.shape[0])
