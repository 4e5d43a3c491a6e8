"""GLEM's prior: one learned diagonal gaussian per class, the pairwise KL repulsion, and RFCM.

Sigma_y = diag(psi(S_y)) with psi(s) = a / (1 + exp(-b s)) + c (a, b, c > 0), so every variance lies in
(c, a + c) whatever S is: the covariances stay positive definite, and bounded, which also bounds the
variance part of the KL term. Algorithm 1's initialisation: mu_y = 0 and S_y = 0, i.e. every class starts
as the same isotropic gaussian N(0, (a/2 + c) I), and training pulls them apart.

The repulsion (GLEM's L_KLD) is R = - mean over ordered pairs y != y' of KL(N_y || N_y') / D (nats per
dimension; the mean over the K(K-1) pairs and the division by D make its weight lambda independent of the
number of classes and of the image size). Only the gaussians' parameters receive its gradient.
Stability: with the flow fixed (GLEM's M-step) the mean-part of the loss NLL + lambda R is a quadratic in
the means whose curvature stays positive while lambda < (K - 1) c / (2 K (a + c)) (0.09 for K = 10 and
the public a=1, b=1, c=0.25); above that the means run apart without limit. The annealed lambda of the
`glem` architecture starts below it.

RFCM (re-estimated full covariance matrices): after training, each class's mean and covariance are
re-estimated from the projected training data, and samples can be drawn from those gaussians. A full
D x D covariance per class is estimated from a few hundred samples in D = 784 (or 3072) dimensions, so
it is singular and too big to ship; it is stored as a rank-r principal part plus the exact per-dimension
residual variances (Sigma = V diag(l) V^T + diag(d), with the diagonal of Sigma equal to the sample
variances): the empirical covariance itself when r >= n - 1, otherwise its r leading directions.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from nfzoo.flows.interfaces import Prior

LOG_2PI = math.log(2 * math.pi)


def psi(s: Tensor, a: float = 1.0, b: float = 1.0, c: float = 0.25) -> Tensor:
    """a / (1 + exp(-b s)) + c, entrywise: maps any real S to a variance in (c, a + c)."""
    return a * torch.sigmoid(b * s) + c


def _randn(shape, like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    dev = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


class MultiGaussianPrior(Prior):
    """N(mu_y, diag(psi(S_y))) for each class y over latents of shape `event_shape` (or a flat `dim`).
    `dims` (flat indices into the latent) restricts the class gaussians to those dimensions (a multi-scale
    flow's final latent); the others get a standard normal, which no class changes. `shared=True` makes it
    monomodal (one gaussian for every class)."""

    # buffers (registered in __init__; the rfcm_* ones only when rfcm_rank > 0)
    dims: Tensor
    rest: Tensor
    rfcm_mean: Tensor
    rfcm_basis: Tensor
    rfcm_scale: Tensor
    rfcm_resid: Tensor
    rfcm_fitted: Tensor

    def __init__(self, num_classes: int, event_shape: Sequence[int], a: float = 1.0, b: float = 1.0,
                 c: float = 0.25, shared: bool = False, rfcm_rank: int = 0,
                 dims: Optional[Union[Sequence[int], Tensor]] = None):
        super().__init__()
        if isinstance(event_shape, int):
            event_shape = (event_shape,)
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not (a > 0 and b > 0 and c > 0):
            raise ValueError(f"psi needs a, b, c > 0 (covariances must stay positive), got a={a}, b={b}, c={c}")
        self.event_shape = tuple(int(s) for s in event_shape)
        self.num_classes = int(num_classes)
        self.total_dim = math.prod(self.event_shape)
        idx = torch.arange(self.total_dim) if dims is None else torch.as_tensor(dims, dtype=torch.long).flatten()
        if idx.numel() == 0 or len(set(idx.tolist())) != idx.numel() or not (0 <= int(idx.min()) and
                                                                              int(idx.max()) < self.total_dim):
            raise ValueError(f"dims must be distinct flat indices in [0, {self.total_dim})")
        rest = torch.ones(self.total_dim, dtype=torch.bool)
        rest[idx] = False
        self.register_buffer("dims", idx, persistent=False)
        self.register_buffer("rest", torch.nonzero(rest).flatten(), persistent=False)
        self.dim = idx.numel()          # dimensions under the class gaussians (D in the KL normalisation)
        self.a, self.b, self.c = float(a), float(b), float(c)
        self.shared = bool(shared)
        rows = 1 if self.shared else self.num_classes
        self.mean = nn.Parameter(torch.zeros(rows, self.dim))
        self.S = nn.Parameter(torch.zeros(rows, self.dim))
        self.rfcm_rank = int(rfcm_rank)
        k, d, r = self.num_classes, self.dim, self.rfcm_rank
        if r > 0:
            self.register_buffer("rfcm_mean", torch.zeros(k, d))
            self.register_buffer("rfcm_basis", torch.zeros(k, d, r))   # V (orthonormal columns)
            self.register_buffer("rfcm_scale", torch.zeros(k, r))      # sqrt(l)
            self.register_buffer("rfcm_resid", torch.zeros(k, d))      # sqrt(d)
            self.register_buffer("rfcm_fitted", torch.zeros(()))

    # --------------------------------------------------------------- params
    def variances(self) -> Tensor:
        """Sigma's diagonals, (rows, D), rows = num_classes (or 1 if shared)."""
        return psi(self.S, self.a, self.b, self.c)

    def _rows(self, y: Optional[Tensor], n: int) -> Tensor:
        if self.shared:
            return torch.zeros(n, dtype=torch.long, device=self.mean.device)
        if y is None:
            raise ValueError("this prior is class-conditional: pass labels y of shape (B,)")
        y = torch.as_tensor(y, device=self.mean.device).long().reshape(-1)
        if y.numel() == 1 and n > 1:
            y = y.expand(n)
        return y

    # ------------------------------------------------------------ densities
    def log_prob(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """log N(z; mu_y, Sigma_y), shape (B,)."""
        rows = self._rows(y, z.shape[0])
        zf, other = self._parts(z)
        var = self.variances()[rows]
        return -0.5 * (((zf - self.mean[rows]) ** 2) / var + torch.log(var) + LOG_2PI).sum(1) + other

    def log_prob_all(self, z: Tensor) -> Tensor:
        """log N(z; mu_y, Sigma_y) for every class y, shape (B, num_classes) (one pass, by matmuls)."""
        zf, other = self._parts(z)
        var = self.variances()
        inv = 1.0 / var
        quad = (zf * zf) @ inv.t() - 2.0 * zf @ (self.mean * inv).t() + (self.mean ** 2 * inv).sum(1)
        out = -0.5 * (quad + torch.log(var).sum(1) + self.dim * LOG_2PI) + other[:, None]
        return out.expand(-1, self.num_classes) if self.shared else out

    def _parts(self, z: Tensor):
        """(the class dimensions of z (B, dim), log N(0, I) of the other dimensions (B,))."""
        zf = z.reshape(z.shape[0], -1)
        if self.rest.numel() == 0:
            return zf, zf.new_zeros(zf.shape[0])
        r = zf[:, self.rest]
        return zf[:, self.dims], -0.5 * (r * r + LOG_2PI).sum(1)

    def _assemble(self, n: int, class_part: Tensor, temperature: float, eps: Tensor) -> Tensor:
        z = eps * temperature
        z[:, self.dims] = class_part
        return z.reshape(n, *self.event_shape)

    # -------------------------------------------------------------- KL term
    def kl_matrix(self) -> Tensor:
        """KL(N_i || N_j) in nats for every pair, (rows, rows), closed form for diagonal gaussians:
        1/2 sum_d [var_i/var_j + (mu_j - mu_i)^2/var_j - 1 + log var_j - log var_i]."""
        var = self.variances()
        inv = 1.0 / var
        mu = self.mean
        trace = var @ inv.t()
        diff = mu[None, :, :] - mu[:, None, :]               # [i, j] = mu_j - mu_i
        maha = torch.einsum("ijd,jd->ij", diff * diff, inv)
        logv = torch.log(var).sum(1)
        return 0.5 * (trace + maha - self.dim + logv[None, :] - logv[:, None])

    def repulsion(self) -> Tensor:
        """GLEM's L_KLD normalised: - mean_{y != y'} KL(N_y || N_y') / D (a scalar, <= 0)."""
        k = self.mean.shape[0]
        if k < 2:
            return self.mean.new_zeros(())
        kl = self.kl_matrix()
        off = kl.sum() - kl.diagonal().sum()
        return -off / (k * (k - 1) * self.dim)

    # ------------------------------------------------------------- sampling
    def sample(self, n: int, y: Optional[Tensor] = None, temperature: float = 1.0,
               generator: Optional[torch.Generator] = None, rfcm: bool = False) -> Tensor:
        """n latents from the class gaussians (covariance scaled by temperature^2, as Glow's T);
        `rfcm=True` draws from the re-estimated full-covariance gaussians instead."""
        if rfcm:   # RFCM keeps one estimate per class, shared gaussian or not
            if y is None:
                raise ValueError("RFCM sampling needs labels y")
            rows = torch.as_tensor(y, device=self.mean.device).long().reshape(-1).expand(n)
            return self.sample_rfcm(n, rows, temperature, generator)
        rows = self._rows(y, n)
        eps = _randn((n, self.total_dim), self.mean, generator)
        z = self.mean[rows] + self.variances()[rows].sqrt() * temperature * eps[:, self.dims]
        return self._assemble(n, z, temperature, eps)

    # ----------------------------------------------------------------- RFCM
    @property
    def rfcm_ready(self) -> bool:
        return self.rfcm_rank > 0 and bool(self.rfcm_fitted > 0)

    @torch.no_grad()
    def fit_rfcm(self, z: Tensor, y: Tensor) -> None:
        """Re-estimate each class's mean and covariance from latents z (N, ...) with labels y (N,)."""
        if self.rfcm_rank <= 0:
            raise ValueError("this prior was built with rfcm_rank=0: it keeps no RFCM estimate")
        zf = z.reshape(z.shape[0], -1)[:, self.dims].double()
        y = torch.as_tensor(y).long().to(zf.device)
        r = self.rfcm_rank
        for k in range(self.num_classes):
            zk = zf[y == k]
            if zk.shape[0] < 2:
                raise ValueError(f"RFCM needs at least 2 training latents of class {k}, got {zk.shape[0]}")
            mu = zk.mean(0)
            zc = (zk - mu) / math.sqrt(zk.shape[0] - 1)       # Sigma = zc^T zc
            _, sv, vh = torch.linalg.svd(zc, full_matrices=False)
            m = min(r, sv.shape[0])
            basis, lam = vh[:m].t(), sv[:m] ** 2
            diag = (zc * zc).sum(0)
            resid = (diag - (basis ** 2 * lam).sum(1)).clamp_min(1e-6 * float(diag.mean()))
            self.rfcm_mean[k] = mu.to(self.rfcm_mean)
            self.rfcm_basis[k].zero_()
            self.rfcm_scale[k].zero_()
            self.rfcm_basis[k, :, :m] = basis.to(self.rfcm_basis)
            self.rfcm_scale[k, :m] = lam.sqrt().to(self.rfcm_scale)
            self.rfcm_resid[k] = resid.sqrt().to(self.rfcm_resid)
        self.rfcm_fitted.fill_(1.0)

    def rfcm_covariance(self, k: int) -> Tensor:
        """The RFCM covariance of class k as a dense (D, D) matrix (for tests and inspection)."""
        v = self.rfcm_basis[k] * self.rfcm_scale[k]
        return v @ v.t() + torch.diag(self.rfcm_resid[k] ** 2)

    def sample_rfcm(self, n: int, rows: Tensor, temperature: float = 1.0,
                    generator: Optional[torch.Generator] = None) -> Tensor:
        if not self.rfcm_ready:
            raise ValueError("no RFCM estimate in this model: fit it with model.fit_rfcm(train_set) "
                             "(training a glem model fits it at the end)")
        e1 = _randn((n, self.rfcm_rank), self.rfcm_mean, generator)
        eps = _randn((n, self.total_dim), self.rfcm_mean, generator)
        low = torch.einsum("ndr,nr->nd", self.rfcm_basis[rows], self.rfcm_scale[rows] * e1)
        z = self.rfcm_mean[rows] + temperature * (low + self.rfcm_resid[rows] * eps[:, self.dims])
        return self._assemble(n, z, temperature, eps)
