"""The core interfaces: Bijector, Prior, Sampler (it draws latents; FlowModel decodes them), and the
capability DiffusionPrior (a Prior that is a noise-predicting diffusion model), which code that treats
diffusion priors differently (export, inpainting, scoring) asks for with `isinstance`.

Direction convention (as nflows and zuko): `forward` maps data to latent (the normalizing direction),
`inverse` maps latent to data. Both return `(output, logdet)` with logdet of shape (B,):
forward's logdet is log|det d z / d x|, inverse's is log|det d x / d z| (so the two sum to 0).
"""
from __future__ import annotations

import abc
from typing import Any, Dict, Optional, Sequence, Tuple, cast

import torch
from torch import Tensor, nn


class Bijector(nn.Module):
    """An invertible map with a tractable log-determinant."""

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """x -> (z, logdet): the normalizing direction, data to latent; logdet = log|det dz/dx|, shape (B,)."""
        raise NotImplementedError

    def inverse(self, z: Tensor, context: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """z -> (x, logdet): latent to data; logdet = log|det dx/dz| (minus forward's), shape (B,)."""
        raise NotImplementedError

    def forward_after(self, previous: "Bijector", x: Tensor,
                      context: Optional[Tensor] = None) -> Optional[Tuple[Tensor, Tensor]]:
        """self(previous(x)) computed as one map, (z, logdet of both), or None when this bijector has no such
        fused form for `previous` (then the two run one after the other). A Composite asks for it only in
        a training step (`fused_training`), so a fused form may differ from the two maps by float rounding.
        Default: None."""
        return None


def fused_training(module: nn.Module) -> bool:
    """Whether `module` computes with its fused training forms: in training mode while autograd records (a
    training step). They are the same maps up to float rounding, cheaper forward and backward. Evaluation,
    sampling and the no-grad forward of the data-dependent initialisation (`FlowModel.initialize`) compute
    layer by layer, exactly as the published weights were measured."""
    return module.training and torch.is_grad_enabled()


def _zeros(x: Tensor) -> Tensor:
    return x.new_zeros(x.shape[0])


class Composite(Bijector):
    """A chain of bijectors: forward runs them in order, inverse in reverse order. In a training step
    (`fused_training`) a bijector may compute itself together with the one before it
    (`Bijector.forward_after`)."""

    def __init__(self, bijectors: Sequence[Bijector]):
        super().__init__()
        self.bijectors = nn.ModuleList(bijectors)

    def forward(self, x, context=None):
        chain = cast(Sequence[Bijector], self.bijectors)  # nn.ModuleList is untyped
        logdet: Optional[Tensor] = None
        i, n = 0, len(chain)
        while i < n:
            fuse = i + 1 < n and fused_training(self)
            out = chain[i + 1].forward_after(chain[i], x, context) if fuse else None
            if out is None:
                out = chain[i](x, context)
                i += 1
            else:
                i += 2
            x, ld = out
            logdet = ld if logdet is None else logdet + ld
        return x, (_zeros(x) if logdet is None else logdet)

    def inverse(self, z, context=None):
        logdet = _zeros(z)
        for b in reversed(cast(Sequence[Bijector], self.bijectors)):  # nn.ModuleList is untyped
            z, ld = b.inverse(z, context)
            logdet = logdet + ld
        return z, logdet


class Prior(nn.Module):
    """A base distribution over latents of shape (B, *event_shape)."""

    event_shape: Tuple[int, ...]
    temperature_one_only: bool = False
    """True for a prior that samples at temperature 1 only (a diffusion prior): samplers refuse others in
    `check`, before any work."""

    def log_prob(self, z: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """log p(z | y), summed over every dimension but the batch: shape (B,)."""
        raise NotImplementedError

    def sample(self, n: int, y: Optional[Tensor] = None, temperature: float = 1.0,
               generator: Optional[torch.Generator] = None) -> Tensor:
        """n latents (n, *event_shape) given labels y, at `temperature` (the scale of the standard deviation)."""
        raise NotImplementedError


DDIM_SCHEDULE_KEYS = ("alphas_cumprod", "final_alpha_cumprod", "num_train_timesteps", "timestep_spacing",
                      "prediction_type", "clip_sample_range", "use_clipped_model_output", "init_noise_sigma")
"""The keys of `DiffusionPrior.ddim_schedule()`, in the order the export writes them."""


class DiffusionPrior(Prior, metaclass=abc.ABCMeta):
    """A Prior that is a diffusion model over latents of shape `event_shape`: a network that predicts the
    noise of z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps at 0-based timesteps t in [0, T), with the
    cumulative products abar_t of its noise schedule. A prior has this capability by subclassing this
    class and implementing its abstract methods (nothing is inferred from attribute names): the export
    (a U-Net graph and the runner's DDIM loop), RePaint inpainting and likelihood scoring (whose bpd is
    then a stochastic estimate of a variational bound, averaged over several draws) ask for it with
    `isinstance(model.prior, DiffusionPrior)`. Its `log_prob` is minus such a bound (an estimate, not an
    exact log-density), and it samples at temperature 1 only."""

    temperature_one_only = True

    @property
    @abc.abstractmethod
    def timesteps(self) -> int:
        """T, the number of training timesteps: the network takes 0-based timesteps 0 .. T - 1."""

    @abc.abstractmethod
    def alphas_cumprod(self) -> Tensor:
        """abar_t = prod_{s <= t} (1 - beta_s) for t = 0 .. T - 1: a float64 tensor of shape (T,)."""

    @abc.abstractmethod
    def eps(self, z: Tensor, t: Tensor) -> Tensor:
        """The network's noise prediction for the noisy latents z (B, *event_shape) at the 0-based integer
        timesteps t (B,); same shape as z. Traceable: the export records it as the `unet` graph."""

    @abc.abstractmethod
    def clipped_z0(self, z: Tensor, t: Tensor) -> Tensor:
        """The clean latent predicted from z_t, (z - sqrt(1 - abar_t) eps(z, t)) / sqrt(abar_t), clipped to the
        range the prior's samplers clip it to (unclipped if they do not)."""

    @abc.abstractmethod
    def check_steps(self, steps: Optional[int]) -> int:
        """The number of reverse steps to run: `steps` when it is an integer from 1 to T, T when it is None;
        UsageError naming the allowed range otherwise."""

    @abc.abstractmethod
    def ddim_schedule(self) -> Dict[str, Any]:
        """The DDIM sampler's settings as plain numbers and strings (JSON), one entry per name of
        DDIM_SCHEDULE_KEYS: alphas_cumprod (T floats, as the sampler computes in float32),
        final_alpha_cumprod (the abar after the last step; 1.0 runs the last step to abar = 1),
        num_train_timesteps (T), timestep_spacing (how S < T steps are chosen; "trailing": they start at
        t = T - 1), prediction_type ("epsilon": the network predicts the noise), clip_sample_range (the
        clip of the predicted z0, or None for no clip), use_clipped_model_output (whether the noise is
        re-derived from the clipped z0) and init_noise_sigma (the scale of the first z_T ~ N(0, I))."""


class Sampler:
    """Draws latents for a FlowModel: `sample(model, n, y, temperature, generator, **options) -> z`, of
    shape (n, *model.prior.event_shape); `FlowModel.sample` decodes them into images. Registered by name
    (`register_samplers`) and built with `nfzoo.create_sampler(name)`."""

    name = "sampler"
    from_prior = False
    """True if the latents are the prior's own samples (Prior.sample): labels then choose a class only if
    the prior keeps one density per class."""

    def check(self, model, temperature: float = 1.0, **options) -> None:
        """Raise UsageError (naming the fix) if this sampler cannot run on `model` with these options;
        the CLI calls it before any long work. Default: accept."""

    def sample(self, model, n: int, y: Optional[Tensor] = None, temperature: float = 1.0,
               generator: Optional[torch.Generator] = None, **options) -> Tensor:
        """n latents for `model` (labels y for a class-conditional one, through `model.context(y, n)`)."""
        raise NotImplementedError
