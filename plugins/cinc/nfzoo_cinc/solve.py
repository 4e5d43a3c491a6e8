"""The CInC inverse: solving M x = y for a top-left padded k x k convolution M.

M x = conv2d(pad_top_left(x, (k-1)*dilation), W, dilation). Output pixel (h, w) reads input pixels
(h', w') with h' <= h and w' <= w, so pixel (h, w) of x depends, through M^-1, only on pixels of earlier
anti-diagonals (h' + w' < h + w) and on itself through the "own" tap W[:, :, k-1, k-1], a triangular
C x C matrix U. Writing R for the other taps,

    x[d] = U^-1 y[d] - (U^-1 R) * x[< d]          for every pixel of anti-diagonal d = h + w,

so the solve takes H + W - 1 sequential steps, each parallel over the batch, the pixels of the
diagonal and the channels (U^-1 y and U^-1 R are computed once per call). Back-ends, one entry point:

- `wavefront_solve`   pure torch (the CPU path, and CUDA when Triton is not there)
- the Triton kernel   nfzoo_cinc.triton_solve (chosen automatically for CUDA tensors)
- `sequential_solve`  the plain back-substitution of the original CInC code, pixel by pixel in raster
                      order and channel by channel (backend "sequential" runs it in float64, as the
                      original did): the test oracle and the published baseline, slow
- `dense_solve`       the materialised CHW x CHW operator and torch.linalg.solve_triangular: used by
                      `nfzoo bench cinc` only, as a reference point

U^-1 and U^-1 R come from nfzoo_cinc.taps, a leaf module, so the Triton back-end needs nothing from here.

`transpose=True` solves M^T x = y instead (what the adjoint of a solve needs): M^T is the same kind of
operator with W transposed in its channel axes, padded from the bottom-right, so it is the same solve run
on the image rotated by 180 degrees, as a wavefront from the bottom-right corner.
"""
from __future__ import annotations

import functools
import os
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .taps import factors, is_upper, own_tap


def conv_tl(x: Tensor, weight: Tensor, dilation: int = 1) -> Tensor:
    """M x: the top-left padded convolution (the CInC forward, the Inverse-Flow sampling direction)."""
    p = (weight.shape[-1] - 1) * dilation
    return F.conv2d(F.pad(x, (p, 0, p, 0)), weight, dilation=dilation)


def conv_tl_transposed(x: Tensor, weight: Tensor, dilation: int = 1) -> Tensor:
    """M^T x, as a bottom-right padded convolution with the channel-transposed weight."""
    return conv_tl(x.flip(-1, -2), weight.transpose(0, 1), dilation).flip(-1, -2)


@functools.lru_cache(maxsize=64)
def _plan(h: int, w: int, k: int, dilation: int, device: str):
    """Per anti-diagonal: flat indices (in the padded image) of its pixels, and of their k*k - 1 taps."""
    p = (k - 1) * dilation
    wp = w + p
    offsets = torch.tensor([-((k - 1 - i) * dilation * wp + (k - 1 - j) * dilation)
                            for i in range(k) for j in range(k)][:-1])
    plan = []
    for d in range(h + w - 1):
        hs = torch.arange(max(0, d - w + 1), min(h - 1, d) + 1)
        ws = d - hs
        base = (hs + p) * wp + (ws + p)
        plan.append((hs.to(device), ws.to(device), base.to(device),
                     (base[None, :] + offsets[:, None]).to(device)))
    return plan


def wavefront_solve(y: Tensor, weight: Tensor, dilation: int = 1, transpose: bool = False) -> Tensor:
    """Solve M x = y (or M^T x = y) by the anti-diagonal wavefront, in pure torch. Differentiable
    through autograd (Inverse-Flow uses its own adjoint instead)."""
    if transpose:
        return wavefront_solve(y.flip(-1, -2), weight.transpose(0, 1), dilation).flip(-1, -2)
    b, c, h, w = y.shape
    k = weight.shape[-1]
    p = (k - 1) * dilation
    u_inv, a = factors(weight)
    a = a[:, :, :-1].permute(2, 1, 0).reshape((k * k - 1) * c, c)  # (taps * C_in, C_out)
    yt = torch.einsum("ij,bjhw->bhwi", u_inv, y)                     # channels last
    xp = y.new_zeros(b, (h + p) * (w + p), c)
    for hs, ws, base, idx in _plan(h, w, k, dilation, str(y.device)):
        patches = xp[:, idx]                                          # (B, taps, n, C)
        n = base.shape[0]
        rhs = patches.permute(0, 2, 1, 3).reshape(b, n, -1) @ a       # (B, n, C)
        xp[:, base] = yt[:, hs, ws] - rhs
    x = xp.view(b, h + p, w + p, c)[:, p:, p:]
    return x.permute(0, 3, 1, 2).contiguous()


def sequential_solve(y: Tensor, weight: Tensor, dilation: int = 1, transpose: bool = False) -> Tensor:
    """The test oracle: plain back-substitution, pixel by pixel in raster order and, inside a pixel,
    channel by channel (the original CInC code, there in Cython on the CPU). Vectorised over the batch
    only. Slow by design; use it to check the fast paths."""
    if transpose:
        return sequential_solve(y.flip(-1, -2), weight.transpose(0, 1), dilation).flip(-1, -2)
    b, c, h, w = y.shape
    k = weight.shape[-1]
    p = (k - 1) * dilation
    u = own_tap(weight)
    rest = weight.clone()
    rest[:, :, -1, -1] = 0
    order = range(c - 1, -1, -1) if is_upper(weight) else range(c)
    xp = y.new_zeros(b, c, h + p, w + p)
    for i in range(h):
        for j in range(w):
            window = xp[:, :, i:i + p + 1:dilation, j:j + p + 1:dilation]     # (B, C, k, k)
            r = y[:, :, i, j] - torch.einsum("oikl,bikl->bo", rest, window)
            for ch in order:
                r_c = r[:, ch] - xp[:, :, i + p, j + p] @ u[ch]
                xp[:, ch, i + p, j + p] = r_c / u[ch, ch]
    return xp[:, :, p:, p:].contiguous()


def dense_operator(weight: Tensor, shape: Sequence[int], dilation: int = 1) -> Tuple[Tensor, Tensor]:
    """(M as a dense (CHW, CHW) matrix, in the index order (pixel, channel) with the channel order chosen
    so that M is lower triangular; that order, as a permutation of the flat CHW indices), for the image
    shape (C, H, W). For the bench only: it is O((CHW)^2) memory."""
    c, h, w = shape
    n = c * h * w
    eye = torch.eye(n, dtype=weight.dtype, device=weight.device).view(n, c, h, w)
    cols = conv_tl(eye, weight, dilation).reshape(n, n).T                 # M[:, j] = M e_j
    chan = torch.arange(c - 1, -1, -1) if is_upper(weight) else torch.arange(c)
    perm = (chan[None, :] * h * w + torch.arange(h * w)[:, None]).reshape(-1).to(weight.device)
    return cols[perm][:, perm], perm


def dense_solve(y: Tensor, weight: Tensor, dilation: int = 1, operator=None) -> Tensor:
    """Solve with torch.linalg.solve_triangular on the materialised operator (bench reference)."""
    b = y.shape[0]
    m, perm = operator if operator is not None else dense_operator(weight, tuple(y.shape[1:]), dilation)
    rhs = y.reshape(b, -1)[:, perm].T
    sol = torch.linalg.solve_triangular(m, rhs, upper=False)
    x = torch.empty_like(y.reshape(b, -1))
    x[:, perm] = sol.T
    return x.view_as(y)


def _use_triton(y: Tensor) -> bool:
    """Triton on CUDA where it was measured faster than the torch wavefront on the same GPU (an H100,
    docs/results/gpu/run2: 2-6x at 12 channels, 1.2-2x at 48 channels up to 16x16): up to 16 channels,
    or up to 256 pixels. Wider and larger, the torch wavefront's batched matmuls win, and it is used."""
    if os.environ.get("NFZOO_CINC_BACKEND", "").lower() == "torch":
        return False
    if not y.is_cuda:
        return False
    if y.shape[1] > 16 and y.shape[2] * y.shape[3] > 256:
        return False
    from . import triton_solve
    return triton_solve.available()


def solve(y: Tensor, weight: Tensor, dilation: int = 1, transpose: bool = False,
          backend: str = "auto") -> Tensor:
    """M^-1 y (or M^-T y): backend "auto" (Triton on CUDA, else torch), "torch", "triton",
    "sequential". Set NFZOO_CINC_BACKEND=torch to keep CUDA on the torch path."""
    if weight.dim() != 4 or weight.shape[0] != weight.shape[1] or weight.shape[2] != weight.shape[3]:
        raise ValueError(f"expected a square (C, C, k, k) weight, got {tuple(weight.shape)}")
    if y.dim() != 4 or y.shape[1] != weight.shape[0]:
        raise ValueError(f"expected (B, {weight.shape[0]}, H, W) input, got {tuple(y.shape)}")
    if backend == "auto":
        backend = "triton" if _use_triton(y) else "torch"
    if backend == "torch":
        return wavefront_solve(y, weight, dilation, transpose)
    if backend == "sequential":  # in float64, as the original code's back-substitution
        return sequential_solve(y.double(), weight.double(), dilation, transpose).to(y.dtype)
    if backend == "triton":
        from .triton_solve import triton_solve
        return triton_solve(y, weight, dilation, transpose)
    raise ValueError(f"unknown backend {backend!r}: use auto, torch, triton or sequential")
