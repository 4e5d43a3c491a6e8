"""LeakyAffine: y = x for x >= 0 and y = a * x for x < 0, with a = exp(s) per channel (a learned slope).
log|det| = sum over negative entries of s."""
from typing import Optional

import torch
from torch import nn

import nfzoo
from nfzoo.flows.architectures import multiscale_flow
from nfzoo.flows.bijectors import ActNorm, AffineCoupling, Composite, InvConv1x1
from nfzoo.flows.model import FlowModel
from nfzoo.flows.priors import StandardNormal


class LeakyAffine(nfzoo.Bijector):
    def __init__(self, channels: int):
        super().__init__()
        self.log_slope = nn.Parameter(torch.full((1, channels, 1, 1), -0.1))

    def forward(self, x, context=None):
        s = self.log_slope.expand_as(x)
        neg = x < 0
        z = torch.where(neg, x * torch.exp(s), x)
        return z, (s * neg).reshape(x.shape[0], -1).sum(1)

    def inverse(self, z, context=None):
        s = self.log_slope.expand_as(z)
        neg = z < 0
        x = torch.where(neg, z * torch.exp(-s), z)
        return x, (-s * neg).reshape(z.shape[0], -1).sum(1)


def leaky_glow(image_shape=(1, 28, 28), levels: int = 2, steps: int = 2, hidden: int = 32,
               num_classes: Optional[int] = None) -> FlowModel:
    def make_steps(c, _):
        return [Composite([ActNorm(c), InvConv1x1(c), AffineCoupling(c, hidden), LeakyAffine(c)])
                for _ in range(steps)]
    flow = multiscale_flow(image_shape, levels, make_steps, num_classes=num_classes)
    return FlowModel(flow, StandardNormal(image_shape), image_shape, num_classes=num_classes)
