"""Monotonic rational-quadratic splines (Durkan et al. 2019, "Neural Spline Flows"), element-wise.

Inside [-B, B] the map is a K-bin rational-quadratic spline through knots (x_k, y_k) with derivatives
d_k at the knots; outside it is the identity (linear tails, boundary derivatives fixed to 1).
In bin k, with xi = (x - x_k) / w_k and s_k = h_k / w_k:
    y = y_k + h_k (s_k xi^2 + d_k xi (1 - xi)) / (s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3


def _knots(raw: torch.Tensor, bound: float, min_size: float):
    k = raw.shape[-1]
    sizes = min_size + (1 - min_size * k) * torch.softmax(raw, dim=-1)
    cum = F.pad(torch.cumsum(sizes, dim=-1), (1, 0), value=0.0)
    cum = 2 * bound * cum - bound
    cum[..., 0] = -bound
    cum[..., -1] = bound
    return cum, cum[..., 1:] - cum[..., :-1]


def rational_quadratic_spline(x, raw_widths, raw_heights, raw_derivs, inverse=False, bound=3.0):
    """Apply the spline (or its inverse) to x. raw_* have shape x.shape + (K,), (K,), (K - 1,).
    Returns (y, log|dy/dx|) element-wise (for the inverse: log|dx/dy| of the inverse map)."""
    inside = (x >= -bound) & (x <= bound)
    xin = torch.where(inside, x, torch.zeros_like(x))  # computed everywhere, kept only inside
    cumw, widths = _knots(raw_widths, bound, MIN_BIN_WIDTH)
    cumh, heights = _knots(raw_heights, bound, MIN_BIN_HEIGHT)
    # boundary derivatives are 1 so the spline joins the identity tails smoothly; softplus(0) = log 2,
    # so the scaling makes a zero raw derivative give derivative 1 (the identity at zero init)
    one = torch.ones_like(xin).unsqueeze(-1)
    derivs = torch.cat([one, MIN_DERIVATIVE + F.softplus(raw_derivs) * ((1 - MIN_DERIVATIVE)
                                                                        / math.log(2.0)), one], dim=-1)

    knots = cumh if inverse else cumw
    idx = torch.searchsorted(knots[..., 1:-1].contiguous(), xin.unsqueeze(-1).contiguous(), right=True)

    def pick(t):
        return t.gather(-1, idx).squeeze(-1)

    x_k, w_k, y_k, h_k = pick(cumw), pick(widths), pick(cumh), pick(heights)
    d_k = pick(derivs[..., :-1])
    d_k1 = pick(derivs[..., 1:])
    s_k = h_k / w_k
    if not inverse:
        xi = (xin - x_k) / w_k
        t = xi * (1 - xi)
        denom = s_k + (d_k1 + d_k - 2 * s_k) * t
        y = y_k + h_k * (s_k * xi ** 2 + d_k * t) / denom
        deriv = s_k ** 2 * (d_k1 * xi ** 2 + 2 * s_k * t + d_k * (1 - xi) ** 2) / denom ** 2
        out, logdet = y, torch.log(deriv)
    else:
        dy = xin - y_k
        c2 = d_k1 + d_k - 2 * s_k
        a = h_k * (s_k - d_k) + dy * c2
        b = h_k * d_k - dy * c2
        c = -s_k * dy
        disc = (b ** 2 - 4 * a * c).clamp_min(0)
        xi = (2 * c) / (-b - torch.sqrt(disc))
        t = xi * (1 - xi)
        denom = s_k + c2 * t
        deriv = s_k ** 2 * (d_k1 * xi ** 2 + 2 * s_k * t + d_k * (1 - xi) ** 2) / denom ** 2
        out, logdet = xi * w_k + x_k, -torch.log(deriv)
    return torch.where(inside, out, x), torch.where(inside, logdet, torch.zeros_like(logdet))
