"""InverseConv2d: the CInC conv turned around.

Normalizing direction (data -> latent, training):  z = M^-1 x   (the wavefront solve)
Sampling direction   (latent -> data):              x = M z      (one ordinary padded convolution)

M is the top-left padded k x k conv with a triangular own-pixel tap (nfzoo_cinc), log|det dz/dx| =
-H * W * sum_c log|diag_c|.

The solve has its own autograd.Function whose backward is the adjoint (not autograd through the H + W - 1
steps, and not the released code's per-tap impulse-response maps, which cost k^2 C^2 times the
activations): for z = M^-1 y and an upstream gradient g,

    dL/dy = M^-T g =: v          a solve with the transposed operator, a wavefront from the bottom-right
    dL/dW = -conv2d_weight(pad(z), v)   the ordinary conv weight gradient with input z, output-grad -v

It saves only z and the weight: O(activations) memory.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_weight

from nfzoo_cinc import solve as _solve
from nfzoo_cinc.conv import CInCConv2d


class InverseConvSolve(torch.autograd.Function):
    """z = M^-1 y with the adjoint backward described in the module docstring."""

    @staticmethod
    def forward(ctx, y, weight, dilation: int = 1, backend: str = "auto"):
        z = _solve.solve(y, weight, dilation, backend=backend)
        ctx.save_for_backward(z, weight)
        ctx.dilation, ctx.backend = dilation, backend
        return z

    @staticmethod
    def backward(ctx, g):
        z, weight = ctx.saved_tensors
        d = ctx.dilation
        v = _solve.solve(g.contiguous(), weight, d, transpose=True, backend=ctx.backend)
        grad_y = v if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            p = (weight.shape[-1] - 1) * d
            grad_w = -conv2d_weight(F.pad(z, (p, 0, p, 0)), weight.shape, v, dilation=d)
        return grad_y, grad_w, None, None


def inverse_conv_solve(y, weight, dilation: int = 1, backend: str = "auto"):
    """z = M^-1 y for the top-left padded conv M of `weight` (C, C, k, k), differentiable in y and weight
    through the adjoint backward (InverseConvSolve); `backend` as in nfzoo_cinc.solve.solve."""
    return InverseConvSolve.apply(y, weight, dilation, backend)


class InverseConv2d(CInCConv2d):
    """A CInC conv with its directions swapped. forward: z = M^-1 x (wavefront solve, adjoint
    backward); inverse: x = M z (one conv2d). `backend` picks the solve's back-end (auto: Triton on
    CUDA, else torch). Same parameters as CInCConv2d."""

    def forward(self, x, context=None):
        return inverse_conv_solve(x, self.weight(), self.dilation, self.backend), -self.logdet(x)

    def inverse(self, z, context=None):
        return _solve.conv_tl(z, self.weight(), self.dilation), self.logdet(z)
