"""The `tarflow` architecture: a TarFlowModel, images in [-1, 1] -> TarFlow -> N(0, I).

Preprocessing is TarFlow's: the dequantized image x = (k + u) / 256 is mapped to v = 2x - 1 in [-1, 1]
(log|det| = D ln 2), so `noise_sigma` is on the paper's [-1, 1] scale. Training adds N(0, sigma^2) noise
to v (fresh each step) and, for a class-conditional model, replaces each label by the unconditional one
(-1, the mean class embedding) with probability `label_dropout`, the classifier-free-guidance recipe.
Test bpd is the core's: the uniformly dequantized 8-bit image, no gaussian noise, so it is an exact
likelihood bound comparable with every other zoo flow,

    bpd = -(log N(z; 0, I) + log|det dz/dv| + D ln 2 - D ln 256) / (D ln 2),

i.e. TARFLOW.md's (nll_per_dim + ln 128) / ln 2 with the 8-bit step 1/256 of nfzoo's dequantization.
Samples are decoded with the KV-cache inverse and denoised by one score step of the flow itself
(nfzoo.FlowModel.denoise); the `tarflow` sampler adds classifier-free guidance.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Union

import torch
from torch import Tensor

from nfzoo.errors import ConfigError
from nfzoo.flows.interfaces import Sampler
from nfzoo.flows.model import FlowModel
from nfzoo.flows.priors import StandardNormal

from .flow import JACOBI_TOL, NULL_LABEL, TarFlow

LN2 = math.log(2.0)


class TarFlowModel(FlowModel):
    """A FlowModel over [-1, 1] images with a TarFlow bijector and a N(0, I) prior. `decode` takes the
    inverse's options (guidance, guidance_anneal, attn_temp, cache, jacobi, jacobi_tol, jacobi_iters);
    `sample` passes them from a sampler that has `decode_options` (the `tarflow` sampler)."""

    default_sampler = "tarflow"
    bijector: TarFlow

    def __init__(self, bijector: TarFlow, image_shape, num_classes: Optional[int] = None,
                 noise_sigma: float = 0.0, label_dropout: float = 0.0):
        super().__init__(bijector, StandardNormal(image_shape), image_shape, preprocess="shift",
                         num_classes=num_classes, noise_sigma=noise_sigma)
        label_dropout = float(label_dropout)
        if not 0.0 <= label_dropout < 1.0:
            raise ConfigError(f"label_dropout must be in [0, 1) (the share of training labels replaced by the "
                              f"unconditional one), got {label_dropout}")
        if label_dropout > 0 and num_classes is None:
            raise ConfigError("label_dropout is for class-conditional models: set num_classes, or drop it")
        self.label_dropout = label_dropout

    # ---------------------------------------------------------- [-1, 1] space
    def to_flow(self, x: Tensor):
        """[0, 1] -> [-1, 1]: v = 2x - 1, log|det| = D ln 2."""
        return 2.0 * x - 1.0, x.new_full((x.shape[0],), self.dim * LN2)

    def from_flow(self, v: Tensor) -> Tensor:
        """[-1, 1] -> [0, 1], clamped."""
        return ((v + 1.0) / 2.0).clamp(0.0, 1.0)

    # --------------------------------------------------------------- sampling
    def decode(self, z: Tensor, y: Optional[Tensor] = None, denoise: Optional[bool] = None,
               guidance: float = 0.0, guidance_anneal: bool = False, attn_temp: float = 1.0,
               cache: bool = True, jacobi: bool = False, jacobi_tol: float = JACOBI_TOL,
               jacobi_iters: Optional[int] = None, stats: Optional[List[Dict[str, int]]] = None) -> Tensor:
        """Latents -> images in [0, 1]: the TarFlow inverse (key/value cache unless cache=False; Jacobi
        decoding with `jacobi`, to tolerance `jacobi_tol`, at most `jacobi_iters` iterations per block before
        the sequential fallback, each block's counts appended to `stats`; with `guidance` g, guided against
        the unlabelled pass and / or the pass at attention temperature `attn_temp`: TarFlowBlock.inverse),
        then the score denoising step of a noise-augmented model unless denoise=False."""
        ctx = self.context(y, z.shape[0])
        v, _ = self.bijector.inverse(z, ctx, guidance=guidance, guidance_anneal=guidance_anneal,
                                     attn_temp=attn_temp, cache=cache, jacobi=jacobi, jacobi_tol=jacobi_tol,
                                     jacobi_iters=jacobi_iters, stats=stats)
        if self.noise_sigma > 0 and denoise is not False:
            v = self.denoise(v, y)
        return self.from_flow(v)

    @torch.no_grad()
    def sample(self, n: int, y: Optional[Tensor] = None, temperature: Optional[float] = None,
               generator: Optional[torch.Generator] = None, sampler: Union[str, Sampler, None] = None,
               denoise: Optional[bool] = None, **options) -> Tensor:
        """As FlowModel.sample; the sampler's `decode_options(**options)` (guidance, ...) go to `decode`."""
        temperature = self.default_temperature if temperature is None else temperature
        options = self.sampling_options(sampler, **options)
        s = self.get_sampler(sampler)
        z = s.sample(self, n, y=y, temperature=temperature, generator=generator, **options)
        decode_options = getattr(s, "decode_options", None)   # only some samplers have it (tarflow's)
        extra = decode_options(**options) if decode_options is not None else {}
        return self.decode(z.to(self.device), y, denoise=denoise, **extra)

    # --------------------------------------------------------------- training
    @property
    def training_draws_per_image(self) -> Optional[int]:
        """None (gaussian noise and label dropout draw more than the dequantization noise) unless the model
        is trained with neither."""
        if self.noise_sigma > 0 or self.label_dropout > 0:
            return None
        return self.dim

    def training_loss(self, x: Tensor, y: Optional[Tensor], phase: str, epoch: int, epochs: int,
                      generator: Optional[torch.Generator] = None):
        """Mean bpd of the noisy training batch (N(0, noise_sigma^2) on the [-1, 1] image), labels dropped
        to the unconditional one with probability `label_dropout`."""
        xd = self.dequantize(x, generator=generator)
        v, ld0 = self.to_flow(xd)
        dev = generator.device if generator is not None else v.device
        if self.noise_sigma > 0:
            eps = torch.randn(v.shape, generator=generator, device=dev, dtype=v.dtype).to(v.device)
            v = v + self.noise_sigma * eps
        ctx = self.context(y, x.shape[0])
        if ctx is not None and self.label_dropout > 0:
            drop = torch.rand(ctx.shape, generator=generator, device=dev).to(ctx.device) < self.label_dropout
            ctx = torch.where(drop, torch.full_like(ctx, NULL_LABEL), ctx)
        z, ld = self.bijector(v, ctx)
        lp = self.prior.log_prob(z) + ld + ld0 - self.dim * math.log(256.0)
        bpd = -lp / (self.dim * LN2)
        return bpd.mean(), bpd.detach()


def tarflow(image_shape=(1, 28, 28), patch_size: int = 4, hidden: int = 128, blocks: int = 4, layers: int = 2,
            heads: Optional[int] = None, num_classes: Optional[int] = None, noise_sigma: float = 0.1,
            label_dropout: float = 0.0, max_log_scale: float = 4.0) -> TarFlowModel:
    """TarFlow (Zhai et al. 2024): `blocks` autoregressive flow blocks over patch_size x patch_size patches,
    each a causal Transformer of width `hidden` with `layers` layers and `heads` heads (default hidden // 64),
    token order reversed in every other block; images on [-1, 1], trained with N(0, noise_sigma^2) noise
    (0: none) and denoised after sampling; `num_classes` for a class-conditional model (class embedding),
    trained with `label_dropout` for classifier-free guidance; `max_log_scale` bounds each block's |a|."""
    shape = tuple(int(s) for s in image_shape)
    flow = TarFlow(shape, patch_size=patch_size, hidden=hidden, blocks=blocks, layers=layers, heads=heads,
                   num_classes=num_classes, max_log_scale=max_log_scale)
    return TarFlowModel(flow, shape, num_classes=num_classes, noise_sigma=noise_sigma,
                        label_dropout=label_dropout)

