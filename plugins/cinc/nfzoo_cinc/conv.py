"""CInC conv: an invertible k x k convolution (top-left padding, triangular own-pixel channel mix), and
the FInC unit (four such convs padded from the four corners, unit diagonal, solved in one call).

Forward (data -> latent) is the convolution; inverse is the wavefront solve of nfzoo_cinc.solve.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from nfzoo import Bijector

from .solve import conv_tl, solve


class MaskedKernel(nn.Module):
    """A (C, C, k, k) conv weight whose own-pixel tap [:, :, k-1, k-1] is upper triangular with diagonal
    sign * exp(log_diag) (never 0, so the operator is always invertible), or exactly 1 (`unit_diagonal`).
    The mask multiplies the raw weight inside the graph, so masked entries get exactly zero gradient."""

    mask: torch.Tensor     # buffers, registered in __init__
    sign: torch.Tensor

    def __init__(self, channels: int, kernel_size: int = 3, init_std: float = 0.05,
                 unit_diagonal: bool = False):
        super().__init__()
        c, k = channels, kernel_size
        if k < 1:
            raise ValueError(f"kernel_size must be >= 1, got {k}")
        self.raw = nn.Parameter(torch.randn(c, c, k, k) * init_std / math.sqrt(max(k * k - 1, 1)))
        mask = torch.ones(c, c, k, k)
        mask[:, :, -1, -1] = torch.triu(torch.ones(c, c), 1)
        self.register_buffer("mask", mask, persistent=False)
        self.unit_diagonal = unit_diagonal
        if unit_diagonal:
            self.log_diag = None
        else:
            self.log_diag = nn.Parameter(torch.zeros(c))
        self.register_buffer("sign", torch.ones(c))

    def diagonal(self) -> torch.Tensor:
        """The own tap's diagonal, (C,): sign * exp(log_diag), or the signs alone with a unit diagonal."""
        if self.log_diag is None:
            return self.sign
        return self.sign * torch.exp(self.log_diag)

    def log_abs_det_per_pixel(self) -> torch.Tensor:
        """sum_c log|diag_c|: the operator's log|det| per pixel (0 with a unit diagonal)."""
        if self.log_diag is None:
            return self.raw.new_zeros(())
        return self.log_diag.sum()

    def forward(self) -> torch.Tensor:
        """The masked weight, (C, C, k, k), with the diagonal placed on the own tap."""
        c, k = self.raw.shape[0], self.raw.shape[-1]
        own = torch.zeros(c, c, k, k, dtype=self.raw.dtype, device=self.raw.device)
        own[:, :, -1, -1] = torch.diag(self.diagonal())
        return self.raw * self.mask + own


class CInCConv2d(Bijector):
    """z = M x, M the top-left padded k x k conv whose own-pixel tap is upper triangular:
    log|det M| = H * W * sum_c log|W_own[c, c]|. Inverse: anti-diagonal wavefront solve (H + W - 1
    sequential steps; Triton on CUDA, torch on CPU). `backend` picks the inverse back-end."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: int = 1, init_std: float = 0.05,
                 backend: str = "auto"):
        super().__init__()
        self.kernel = MaskedKernel(channels, kernel_size, init_std)
        self.dilation = dilation
        self.backend = backend

    def weight(self) -> torch.Tensor:
        """The conv weight W, (C, C, k, k) (see MaskedKernel)."""
        return self.kernel()

    def logdet(self, x) -> torch.Tensor:
        """log|det M| for inputs shaped like x, per sample: H * W * sum_c log|diag_c|."""
        return (x.shape[-2] * x.shape[-1] * self.kernel.log_abs_det_per_pixel()).expand(x.shape[0])

    def forward(self, x, context=None):
        return conv_tl(x, self.weight(), self.dilation), self.logdet(x)

    def inverse(self, z, context=None):
        return solve(z, self.weight(), self.dilation, backend=self.backend), -self.logdet(z)


_FLIPS = ((), (-1,), (-2,), (-2, -1))  # TL, TR, BL, BR: the flips that bring each corner to top-left


class FInCUnit(Bijector):
    """FInC Flow's unit: the channels in four groups, each convolved by its own k x k conv padded from one
    corner (top-left, top-right, bottom-left, bottom-right) with a unit diagonal (log-det 0). Flipping
    groups 2-4 brings all four to the top-left form, so the inverse is one wavefront solve of a
    block-diagonal operator over all channels. Needs channels divisible by 4."""

    def __init__(self, channels: int, kernel_size: int = 3, init_std: float = 0.05, backend: str = "auto"):
        super().__init__()
        if channels % 4:
            raise ValueError(f"FInCUnit needs channels divisible by 4 (four corner groups), got {channels}")
        self.group = channels // 4
        self.kernels = nn.ModuleList(MaskedKernel(self.group, kernel_size, init_std, unit_diagonal=True)
                                     for _ in range(4))
        self.backend = backend

    def _block(self) -> torch.Tensor:
        """The block-diagonal top-left operator acting on the corner-flipped groups."""
        g = self.group
        ws = [k() for k in self.kernels]
        kk = ws[0].shape[-1]
        out = ws[0].new_zeros(4 * g, 4 * g, kk, kk)
        for i, w in enumerate(ws):
            out[i * g:(i + 1) * g, i * g:(i + 1) * g] = w
        return out

    def _flip(self, x):
        parts = x.chunk(4, dim=1)
        return torch.cat([p.flip(f) if f else p for p, f in zip(parts, _FLIPS)], dim=1)

    def forward(self, x, context=None):
        z = self._flip(conv_tl(self._flip(x), self._block()))
        return z, x.new_zeros(x.shape[0])

    def inverse(self, z, context=None):
        x = self._flip(solve(self._flip(z), self._block(), backend=self.backend))
        return x, z.new_zeros(z.shape[0])
