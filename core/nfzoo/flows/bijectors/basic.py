"""Element-wise and channel-mixing bijectors: ActNorm, the LU 1x1 conv, squeeze, rescale."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nfzoo.errors import UsageError
from nfzoo.flows.interfaces import Bijector, fused_training


def _hw(x: torch.Tensor) -> int:
    return x.shape[2] * x.shape[3] if x.dim() == 4 else 1


class ActNorm(Bijector):
    """z = (x + b) * exp(s), per channel (Glow). Data-dependent init: on the first forward in training
    mode, b and s are set so that z has zero mean and unit variance per channel on that batch.
    log|det| = H * W * sum(s)."""

    initialized: torch.Tensor  # buffer, registered in __init__

    def __init__(self, channels: int, eps: float = 1e-6, dead_std: float = 1e-4):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))
        self.eps = eps
        # a channel that is (nearly) constant on the init batch keeps scale 1: normalising it would
        # give a huge scale that explodes as soon as the channel comes alive
        self.dead_std = dead_std
        # `initialized` as last read on the host, cached once set: reading the buffer on every training
        # forward would synchronise a GPU each call (load_state_dict and initialize refresh it)
        self._known_initialized = False

    def needs_init(self) -> bool:
        """Whether the next forward initialises b and s from its batch: in training mode, while the
        `initialized` buffer is 0. Once the buffer is seen set the answer is cached on the host."""
        if not self.training or self._known_initialized:
            return False
        self._known_initialized = bool(self.initialized)
        return not self._known_initialized

    def _load_from_state_dict(self, *args, **kwargs):
        self._known_initialized = False   # the loaded `initialized` is read again on the next forward
        super()._load_from_state_dict(*args, **kwargs)

    def _view(self, p, x):
        return p if x.dim() == 4 else p.view(1, -1)

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Data-dependent init (Glow): bias = -mean and log_scale = -log(std) per channel over the batch x, so
        z = (x + bias) * exp(log_scale) starts with zero mean and unit variance (std 1 below `dead_std`)."""
        dims = [0, 2, 3] if x.dim() == 4 else [0]
        mean = x.mean(dims, keepdim=True)
        std = x.std(dims, keepdim=True, unbiased=False) if x.shape[0] * _hw(x) > 1 else torch.ones_like(mean)
        self.bias.data.copy_((-mean).view_as(self.bias))
        std = torch.where(std < self.dead_std, torch.ones_like(std), std)
        self.log_scale.data.copy_((-torch.log(std + self.eps)).view_as(self.log_scale))
        self.initialized.fill_(1)
        self._known_initialized = True

    def forward(self, x, context=None):
        if self.needs_init():
            self.initialize(x)
        b, s = self._view(self.bias, x), self._view(self.log_scale, x)
        z = (x + b) * torch.exp(s)
        return z, (_hw(x) * s.sum()).expand(x.shape[0])

    def inverse(self, z, context=None):
        b, s = self._view(self.bias, z), self._view(self.log_scale, z)
        x = z * torch.exp(-s) - b
        return x, (-_hw(z) * s.sum()).expand(z.shape[0])


def mix_channels(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The 1x1 convolution z[b, o] = sum_c w[o, c] x[b, c] of (B, C, H, W) images as one (C, C) x (C, B H W)
    matrix product (returned as a (B, C, H, W) view of the (C, B, H, W) result): for the few channels of a
    flow's activations a fraction of what a convolution call costs, forward and backward."""
    b, c, h, wd = x.shape
    return (w @ x.transpose(0, 1).reshape(c, -1)).view(w.shape[0], b, h, wd).transpose(0, 1)


class InvConv1x1(Bijector):
    """Invertible 1x1 convolution, LU-parametrized (Glow): W = P L (U + diag(sign * exp(log_s))).
    P and sign are fixed at init (from a random rotation); log|det| = H * W * sum(log_s)."""

    perm: torch.Tensor  # buffers, registered in __init__
    sign: torch.Tensor
    lower_mask: torch.Tensor

    def __init__(self, channels: int):
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels))[0]
        p, lower, upper = torch.linalg.lu(w)
        diag = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign", torch.sign(diag))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(diag.abs()))

    def weight(self) -> torch.Tensor:
        """The conv's matrix W = P L (U + diag(sign * exp(log_s))), shape (C, C); log|det W| = sum(log_s)."""
        eye = torch.eye(self.perm.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def forward(self, x, context=None):
        w = self.weight()
        if x.dim() == 4 and fused_training(self):
            z = mix_channels(w, x)
        else:
            z = F.conv2d(x, w.view(*w.shape, 1, 1))
        return z, (_hw(x) * self.log_s.sum()).expand(x.shape[0])

    def forward_after(self, previous, x, context=None):
        """An ActNorm then this conv as one affine map of the channels (Glow's step starts so):
        W ((x + b) exp(s)) = W' x + W' b with W' = W diag(exp(s)); log|det| = H W (sum(s) + sum(log_s)).
        None for any other `previous`, for one still to be initialised, or for input that is not (B, C, H, W)."""
        if not isinstance(previous, ActNorm) or x.dim() != 4 or previous.needs_init():
            return None
        e = torch.exp(previous.log_scale).reshape(1, -1)
        w = self.weight() * e
        bias = w @ previous.bias.reshape(-1, 1)
        b, c, h, wd = x.shape
        z = torch.addmm(bias, w, x.transpose(0, 1).reshape(c, -1)).view(w.shape[0], b, h, wd).transpose(0, 1)
        return z, (h * wd * (previous.log_scale.sum() + self.log_s.sum())).expand(b)

    def inverse(self, z, context=None):
        w_inv = torch.linalg.inv(self.weight())
        x = F.conv2d(z, w_inv.view(*w_inv.shape, 1, 1))
        return x, (-_hw(z) * self.log_s.sum()).expand(z.shape[0])


class Squeeze(Bijector):
    """Space-to-depth 2x2: (B, C, H, W) -> (B, 4C, H/2, W/2). Volume preserving."""

    def forward(self, x, context=None):
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise UsageError(f"Squeeze needs an even height and width, got shape {list(x.shape)} ({h}x{w}): "
                             "use image sizes divisible by 2 ** levels")
        x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return x.reshape(b, c * 4, h // 2, w // 2), x.new_zeros(b)

    def inverse(self, z, context=None):
        b, c, h, w = z.shape
        z = z.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return z.reshape(b, c // 4, h * 2, w * 2), z.new_zeros(b)


def squeeze(x):
    """Space-to-depth 2x2: (B, C, H, W) -> (B, 4C, H/2, W/2) (Squeeze's forward without its log-det)."""
    return Squeeze()(x)[0]


def unsqueeze(z):
    """The inverse of `squeeze`: (B, 4C, H, W) -> (B, C, 2H, 2W)."""
    return Squeeze().inverse(z)[0]


class Rescale(Bijector):
    """z = x * exp(s), one learned scale per element of `shape` (NICE's diagonal scaling layer)."""

    def __init__(self, shape: Sequence[int]):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(*shape))

    def forward(self, x, context=None):
        return x * torch.exp(self.log_scale), self.log_scale.sum().expand(x.shape[0])

    def inverse(self, z, context=None):
        return z * torch.exp(-self.log_scale), (-self.log_scale.sum()).expand(z.shape[0])
