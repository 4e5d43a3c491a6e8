"""Quad-coupling: a coupling on four channel blocks, three of them transformed.

    x = [x1, x2, x3, x4] (channel blocks)
    y1 = x1
    y2 = (x2 + t1(x1)) * s1(x1)
    y3 = (x3 + t2(x1, x2)) * s2(x1, x2)
    y4 = (x4 + t3(x1, x2, x3)) * s3(x1, x2, x3)          s = f + (1 - f) sigmoid(h + 2), log|det| = sum log s

with f = `scale_floor` (0: the thesis's sigmoid(h + 2); f > 0 bounds what the sequential inverse divides by).

The forward (data -> latent) reads only the original inputs, so its three nets are independent; the
inverse is sequential: x2 from x1, then x3 from (x1, x2), then x4 from (x1, x2, x3). (The released code
took x1 from the wrong block in the inverse; the round trip is tested here.)
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F
from torch import nn

from nfzoo import Bijector
from nfzoo.flows.bijectors.coupling import DEFAULT_SCALE_FLOOR, ZeroConv2d, check_scale_floor, sigmoid_log_scale


def split_sizes(channels: int) -> List[int]:
    """Four blocks as even as possible (the first ones larger)."""
    base, extra = divmod(channels, 4)
    return [base + (1 if i < extra else 0) for i in range(4)]


class QuadNet(nn.Module):
    """conv3x3 - ReLU - conv1x1 - ReLU - zero-initialised conv3x3 (output scale exp(3 s), s = 0 at
    init, as Glow's Conv2dZeros): outputs (shift, scale logits)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, hidden, 1)
        self.out = ZeroConv2d(hidden, 2 * out_channels)

    def forward(self, x):
        return self.out(F.relu(self.conv2(F.relu(self.conv1(x)))))


class QuadCoupling(Bijector):
    """Quad-coupling on (B, C, H, W) with C >= 4; `hidden` channels in each of the three nets."""

    def __init__(self, channels: int, hidden: int = 64, scale_floor: float = DEFAULT_SCALE_FLOOR):
        super().__init__()
        self.scale_floor = check_scale_floor(scale_floor)
        if channels < 4:
            raise ValueError(f"QuadCoupling needs at least 4 channels (four blocks), got {channels}; "
                             "squeeze the input first")
        self.sizes = split_sizes(channels)
        s = self.sizes
        self.nets = nn.ModuleList([QuadNet(s[0], s[1], hidden), QuadNet(s[0] + s[1], s[2], hidden),
                                   QuadNet(s[0] + s[1] + s[2], s[3], hidden)])

    def _affine(self, h):
        shift, logit = h.chunk(2, dim=1)
        return shift, sigmoid_log_scale(logit, self.scale_floor)

    def forward(self, x, context=None):
        x1, x2, x3, x4 = torch.split(x, self.sizes, dim=1)
        conds = [x1, torch.cat([x1, x2], 1), torch.cat([x1, x2, x3], 1)]
        outs, logdet = [x1], x.new_zeros(x.shape[0])
        for net, cond, xb in zip(self.nets, conds, (x2, x3, x4)):
            shift, log_s = self._affine(net(cond))
            outs.append((xb + shift) * torch.exp(log_s))
            logdet = logdet + log_s.flatten(1).sum(1)
        return torch.cat(outs, 1), logdet

    def inverse(self, z, context=None):
        y1, y2, y3, y4 = torch.split(z, self.sizes, dim=1)
        xs, logdet = [y1], z.new_zeros(z.shape[0])
        for net, yb in zip(self.nets, (y2, y3, y4)):
            shift, log_s = self._affine(net(torch.cat(xs, 1)))
            xs.append(yb * torch.exp(-log_s) - shift)
            logdet = logdet - log_s.flatten(1).sum(1)
        return torch.cat(xs, 1), logdet
