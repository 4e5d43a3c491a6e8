"""The CInC wavefront solve as one Triton kernel (the CUDA path).

One program per image sweeps the H + W - 1 anti-diagonals in order; inside a diagonal, all its pixels
(a block of BLOCK_P lanes) and all channels (BLOCK_C lanes) are computed at once as

    x[:, d] = (U^-1 y)[:, d] - sum over taps t != own, input channels c' of (U^-1 R)[:, c', t] x[c', d - t]

then stored, and a barrier makes them visible to the next diagonal. The sum over input channels is a
loop of outer products over input channels ("fma", the default) or one tl.dot per tap ((C_out, C_in) tap
matrix times the (C_in, pixels) shifted tile; float32 only, IEEE precision, no TF32). On an H100
(docs/results/gpu/run2) the dot form was no faster at 12 channels and up to 10x slower at 48, so it is
kept only as an option (kernel="dot"), tested for correctness. With REVERSE the image is read and
written rotated by 180 degrees: that is the transposed solve (a wavefront from the bottom-right), used by
the adjoint of Inverse-Flow. Any H, W >= 1, float32 or float64.

Triton decides at import whether it interprets (TRITON_INTERPRET=1: runs on CPU tensors, for the tests)
or compiles for the GPU, so the test suite imports this module in a subprocess with that variable set.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .taps import factors

try:
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - triton missing (e.g. a CPU-only torch build)
    triton = None


def available() -> bool:
    return triton is not None


if triton is not None:
    @triton.jit
    def _wavefront_kernel(yt_ptr, a_ptr, x_ptr, C, H, W, DIL,
                          K: tl.constexpr, REVERSE: tl.constexpr,
                          BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, USE_DOT: tl.constexpr):
        b = tl.program_id(0)
        cs = tl.arange(0, BLOCK_C)
        cmask = cs < C
        lanes = tl.arange(0, BLOCK_P)
        img = b * C * H * W
        for d in range(0, H + W - 1):
            h0 = tl.maximum(d - W + 1, 0)
            hs = h0 + lanes
            ws = d - hs
            pmask = (hs < H) & (hs <= d) & (ws >= 0)
            if REVERSE:
                pix = (H - 1 - hs) * W + (W - 1 - ws)
            else:
                pix = hs * W + ws
            mask2 = cmask[:, None] & pmask[None, :]
            acc = tl.load(yt_ptr + img + cs[:, None] * H * W + pix[None, :], mask=mask2, other=0.0)
            # triton's stubs type static_range as not iterable; the compiler unrolls it
            for t in tl.static_range(K * K - 1):  # pyright: ignore[reportGeneralTypeIssues]
                di = (K - 1 - t // K) * DIL
                dj = (K - 1 - t % K) * DIL
                nh = hs - di
                nw = ws - dj
                nmask = pmask & (nh >= 0) & (nw >= 0)
                if REVERSE:
                    npix = (H - 1 - nh) * W + (W - 1 - nw)
                else:
                    npix = nh * W + nw
                if USE_DOT:
                    xt = tl.load(x_ptr + img + cs[:, None] * H * W + npix[None, :],
                                 mask=cmask[:, None] & nmask[None, :], other=0.0)
                    at = tl.load(a_ptr + (cs[:, None] * C + cs[None, :]) * (K * K) + t,
                                 mask=cmask[:, None] & cmask[None, :], other=0.0)
                    acc -= tl.dot(at, xt, input_precision="ieee")
                else:
                    for ci in range(0, C):
                        xv = tl.load(x_ptr + img + ci * H * W + npix, mask=nmask, other=0.0)
                        av = tl.load(a_ptr + (cs * C + ci) * (K * K) + t, mask=cmask, other=0.0)
                        acc -= av[:, None] * xv[None, :]
            tl.store(x_ptr + img + cs[:, None] * H * W + pix[None, :], acc, mask=mask2)
            tl.debug_barrier()


def triton_solve(y: Tensor, weight: Tensor, dilation: int = 1, transpose: bool = False,
                 kernel: str = "auto") -> Tensor:
    """M^-1 y (or M^-T y with transpose=True) with the Triton kernel. No autograd. kernel: "fma" (or
    "auto", the same) or "dot" (float32 only; slower where measured)."""
    if triton is None:
        raise RuntimeError("triton is not installed: use backend='torch' (pip install triton)")
    if kernel not in ("auto", "dot", "fma"):
        raise ValueError(f"unknown kernel {kernel!r}: use auto, dot or fma")
    use_dot = kernel == "dot"
    if use_dot and y.dtype != torch.float32:
        raise ValueError(f"the dot kernel is float32 only, got {y.dtype}: use kernel='fma'")
    w = weight.transpose(0, 1) if transpose else weight
    u_inv, a = factors(w.detach())
    y = y.detach()
    yt = torch.einsum("ij,bjhw->bihw", u_inv, y).contiguous()
    a = a.contiguous()
    x = torch.zeros_like(yt)
    b, c, h, wd = y.shape
    k = weight.shape[-1]
    block_c = triton.next_power_of_2(c)
    block_p = triton.next_power_of_2(min(h, wd))
    if use_dot:  # tl.dot tiles are at least 16 x 16
        block_c, block_p = max(block_c, 16), max(block_p, 16)
    # num_warps is a launch option of the jitted kernel, not one of its parameters as pyright reads them
    _wavefront_kernel[(b,)](yt, a, x, c, h, wd, dilation, K=k, REVERSE=bool(transpose),
                            BLOCK_C=block_c, BLOCK_P=block_p, USE_DOT=use_dot,
                            num_warps=4)  # pyright: ignore[reportCallIssue]
    return x
