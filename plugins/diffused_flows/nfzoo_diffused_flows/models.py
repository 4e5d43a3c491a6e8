"""The `ddpm` and `diffused-flows` architectures: a FlowModel whose prior is a DiffusionPrior.

Diffused-Flows (papers/001): z0 = f(x) by a flow from the registry (glow or nsf), whose latent is laid
out with the image's shape (the multi-scale split and squeeze undone), so the U-Net sees space; the
gaussian prior of the flow is replaced by a diffusion model on z0. Objectives (`objective=`):

- `elbo` (default, end to end): -log p(x) <= -log|det df/dx| + DDPM's bound on -log p(z0) (L_T,
  weighted L_{t-1}, L_0), one random t per example. The flow and the U-Net minimise it together, and
  the reported bpd is this upper bound.
- `hybrid` (end to end): the flow gets the gradient of the same bound, the U-Net the gradient of DDPM's
  simple loss (unweighted eps MSE), from one U-Net call (the gradient into the U-Net's input is scaled per
  example by T w_i / ln 2, see DiffusionPrior.terms). `elbo` trains the U-Net on the bound's weights, which
  favour the small timesteps about 100:1 over the large ones that sampling starts from; on mnist5k its
  DDIM samples then left the latent distribution (RMS 6 against the data's 1.2). Reported bpd: the bound.
- `two-stage`: stage 1 trains the flow by maximum likelihood with a N(0, I) prior (`stage1_epochs`, or
  start from a trained flow with `init_flow=NAME`); stage 2 freezes it and trains the U-Net on its latents
  with DDPM's simple loss (unweighted eps MSE). Reported bpd: the bound, as for `elbo`.
- `paper`: the thesis's eq. 4.6 as printed (the eps MSE minus log|det|). Not a likelihood bound and
  unbounded below: scaling f by s adds D log s to log|det| while the eps MSE stays below about D (the net
  can predict 0), so it rewards growing the latent. Kept for the ablation only.

`ddpm` (Ho et al. 2020) is the same model with a fixed bijector (x - 1/2 -> [-1, 1]), trained with the
simple loss (`objective=simple`, default) or the bound (`objective=elbo`). Its bpd is the bound on the
uniformly dequantized 8-bit image with a continuous decoder L_0 (not Ho's discretized decoder), so it is
comparable with the flows' dequantized bpd.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

import torch
from torch import Tensor

from nfzoo.errors import ConfigError
from nfzoo.flows.interfaces import Bijector
from nfzoo.flows.model import FlowModel
from nfzoo.flows.priors import StandardNormal

from .diffusion import DiffusionPrior

LN2 = math.log(2.0)
DIFFUSED_OBJECTIVES = ("elbo", "hybrid", "two-stage", "paper")
DDPM_OBJECTIVES = ("simple", "elbo")


class FixedScale(Bijector):
    """z = s x with a fixed scalar s (DDPM's map of [-1/2, 1/2] images to [-1, 1]); log|det| = D log s."""

    def __init__(self, scale: float = 2.0):
        super().__init__()
        if not scale > 0:
            raise ConfigError(f"scale must be positive, got {scale}")
        self.scale = float(scale)

    def _ld(self, x: Tensor, sign: float) -> Tensor:
        return x.new_full((x.shape[0],), sign * x[0].numel() * math.log(self.scale))

    def forward(self, x, context=None):
        return x * self.scale, self._ld(x, 1.0)

    def inverse(self, z, context=None):
        return z / self.scale, self._ld(z, -1.0)


class DiffusionFlowModel(FlowModel):
    """A FlowModel with a DiffusionPrior: log_prob is minus the bound (a stochastic, unbiased estimate
    with one random timestep per image, from the generator given), and the trainer hooks carry the
    objectives. Sampling (the samplers of this plugin, or the prior's ancestral `sample`) runs the reverse
    diffusion and then only the bijector's inverse."""

    prior: DiffusionPrior
    default_sampler = "ddpm-ancestral"

    def __init__(self, bijector: Bijector, prior: DiffusionPrior, image_shape, objective: str,
                 preprocess: str = "shift", stage1_epochs: Optional[int] = None, init_flow: Optional[str] = None,
                 flow_architecture: Optional[str] = None, flow_config: Optional[Dict[str, Any]] = None):
        super().__init__(bijector, prior, image_shape, preprocess=preprocess)
        self.objective = objective
        self.stage1_epochs = stage1_epochs
        self.init_flow = init_flow
        self.flow_architecture = flow_architecture
        self.flow_config = flow_config or {}
        self.gaussian = StandardNormal(image_shape)     # stage 1 of two-stage: the flow's own ML prior
        self._scale_sum, self._scale_n, self._ld_sum = 0.0, 0, 0.0

    # ------------------------------------------------------------ densities
    def _latent(self, x: Tensor, generator: Optional[torch.Generator], noise: bool = True):
        xd = self.dequantize(x, generator=generator, noise=noise)
        v, ld0 = self.to_flow(xd)
        z, ld = self.bijector(v, None)
        return z, ld + ld0

    # draws more than the dequantization noise (class codes / diffusion times and noise): distributed
    # runs give each rank its own stream (nfzoo.distributed)
    @property
    def training_draws_per_image(self) -> Optional[int]:
        return None

    def log_prob(self, x, y=None, generator=None, noise=True):
        """Minus the bound on -log P(8-bit image), nats (B,): log|det| - bound(z0) - D log 256."""
        z, ld = self._latent(x, generator, noise)
        return ld - self.prior.nll_bound(z, generator) - self.dim * math.log(256.0)

    def _bpd(self, bound_z: Tensor, ld: Tensor) -> Tensor:
        return (bound_z - ld + self.dim * math.log(256.0)) / (self.dim * LN2)

    # ------------------------------------------------------------- training
    def _stage1(self, epochs: int) -> int:
        if self.stage1_epochs is not None:
            return int(self.stage1_epochs)
        return 0 if self.init_flow else epochs // 2

    def training_plan(self, n, epoch, epochs, generator):
        if self.objective != "two-stage":
            return super().training_plan(n, epoch, epochs, generator)
        phase = "flow" if epoch < self._stage1(epochs) else "diffusion"
        return [(phase, torch.randperm(n, generator=generator))]

    def phase_parameters(self, phase):
        if phase == "flow":
            return {id(p) for p in self.bijector.parameters()}
        if phase == "diffusion":
            return {id(p) for p in self.prior.parameters()}
        return None

    def training_loss(self, x, y, phase, epoch, epochs, generator=None):
        d = self.dim
        if phase == "flow":            # two-stage, stage 1: maximum likelihood with a N(0, I) prior
            z, ld = self._latent(x, generator)
            bpd = (-(self.gaussian.log_prob(z) + ld) + d * math.log(256.0)) / (d * LN2)
            self._track(z, ld)
            return bpd.mean(), bpd.detach()
        if phase == "diffusion":       # two-stage, stage 2: the frozen flow's latents, the simple loss
            with torch.no_grad():
                z, ld = self._latent(x, generator)
            r = self.prior.draw_terms(z, generator)
            self._track(z, ld)
            return (r["sq"] / d).mean(), self._bpd(r["bound"], ld).detach()
        z, ld = self._latent(x, generator)
        hybrid = self.objective == "hybrid"
        # hybrid: the U-Net term's gradient into z is T w_i / ln 2 times L_simple's, i.e. the bound's
        r = self.prior.draw_terms(z, generator, input_grad_scale=(lambda tw: tw / LN2) if hybrid else None)
        bpd = self._bpd(r["bound"], ld)
        self._track(z, ld)
        if self.objective == "simple":     # ddpm: Ho's L_simple (the bijector is fixed)
            return (r["sq"] / d).mean(), bpd.detach()
        if hybrid:                         # flow: the bound's gradient; U-Net: L_simple's
            flow_only = (self.prior.schedule.prior_kl(z) - ld) / (d * LN2)
            return (flow_only + r["sq"] / d).mean(), bpd.detach()
        if self.objective == "paper":      # eq. 4.6 as printed: eps MSE - log|det|, in bits per dim
            return ((r["sq"] - ld) / (d * LN2)).mean(), bpd.detach()
        return bpd.mean(), bpd.detach()    # elbo

    def _track(self, z: Tensor, ld: Tensor) -> None:
        self._scale_sum += float(z.detach().double().pow(2).mean()) * z.shape[0]
        self._ld_sum += float(ld.detach().double().sum())
        self._scale_n += z.shape[0]

    def epoch_metrics(self) -> Dict[str, Any]:
        """The latent's scale over the epoch: RMS of z0 = f(x) and log|det| per dimension."""
        if not self._scale_n:
            return {}
        out = {"latent_rms": math.sqrt(self._scale_sum / self._scale_n),
               "logdet_per_dim": self._ld_sum / self._scale_n / self.dim}
        self._scale_sum, self._scale_n, self._ld_sum = 0.0, 0, 0.0
        return out

    @torch.no_grad()
    def initialize(self, x, y=None, generator=None):
        """ActNorm's data-dependent init through the flow only, or the weights of a trained flow
        (`init_flow`: a pretrained name or model directory of the same architecture and config)."""
        if self.init_flow:
            self._load_flow(self.init_flow)
            return
        was = self.training
        self.train()
        self._latent(x, generator)
        self.train(was)

    def after_training(self, train_set) -> None:
        """Diffused-Flows: set the samplers' clip of the predicted z0 to the training latents' range
        (`latent_clip` in the config), unless the config fixed one."""
        if self.flow_architecture is not None and self.config.get("latent_clip") is None:
            self.prior.clip = fit_latent_clip(self, train_set)
            self.config["latent_clip"] = self.prior.clip

    def _load_flow(self, name: str) -> None:
        from nfzoo.loading.api import load

        src = load(name)
        if src.architecture != self.flow_architecture:
            raise ConfigError(f"init_flow={name!r} is a {src.architecture} model but this model's flow is "
                              f"{self.flow_architecture}; set --set flow={src.architecture} or another init_flow")
        mismatch = {k: (src.config.get(k), v) for k, v in self.flow_config.items() if src.config.get(k) != v}
        if mismatch:
            raise ConfigError(f"init_flow={name!r} was built with another config: "
                              + ", ".join(f"{k}={a!r} there, {b!r} here" for k, (a, b) in mismatch.items())
                              + ". Set the same flow keys (e.g. --set levels=..., steps=..., hidden=...).")
        self.bijector.load_state_dict(src.bijector.state_dict())


@torch.no_grad()
def fit_latent_clip(model: DiffusionFlowModel, dataset, batch_size: int = 500) -> float:
    """max |z0| over the encoded training split (bin centres, eval mode), rounded up to 3 decimals: the
    range the samplers clip the predicted z0 to (as pixel DDPM clips to [-1, 1])."""
    from nfzoo.data import iterate

    was = model.training
    model.eval()
    top = 0.0
    for x, _ in iterate(dataset, batch_size, shuffle=False):
        top = max(top, float(model.encode(x.to(model.device)).abs().max()))
    model.train(was)
    return math.ceil(top * 1000) / 1000


def _check_objective(objective: str, allowed: Sequence[str]) -> None:
    if objective not in allowed:
        raise ConfigError(f"objective must be one of {', '.join(allowed)}, got {objective!r}")


def _prior(image_shape, timesteps, beta_start, beta_end, unet_channels, unet_layers, unet_attention,
           unet_groups, clip) -> DiffusionPrior:
    return DiffusionPrior(image_shape, timesteps=timesteps, beta_start=beta_start, beta_end=beta_end,
                          channels=unet_channels, layers_per_block=unet_layers, attention=unet_attention,
                          groups=unet_groups, clip=clip)


def ddpm(image_shape=(1, 28, 28), timesteps: int = 1000, beta_start: Optional[float] = None,
         beta_end: Optional[float] = None, objective: str = "simple", unet_channels: Sequence[int] = (16, 32, 64),
         unet_layers: int = 1, unet_attention: bool = False, unet_groups: int = 8) -> DiffusionFlowModel:
    """DDPM (Ho et al. 2020) in pixel space: T = 1000, linear betas 1e-4..0.02, epsilon prediction by a
    diffusers UNet2DModel with time embedding (widths `unet_channels`, `unet_layers` resnet blocks per
    level, self-attention at the inner levels if `unet_attention`), predicted images clipped to [-1, 1]
    while sampling. objective: simple (Ho's L_simple) or elbo (the variational bound)."""
    _check_objective(objective, DDPM_OBJECTIVES)
    shape = tuple(int(s) for s in image_shape)
    prior = _prior(shape, timesteps, beta_start, beta_end, unet_channels, unet_layers, unet_attention,
                   unet_groups, clip=1.0)
    return DiffusionFlowModel(FixedScale(2.0), prior, shape, objective=objective)


FLOW_KEYS = ("levels", "steps", "hidden", "blocks", "preprocess")


def diffused_flows(image_shape=(1, 28, 28), flow: str = "glow", levels: int = 2, steps: int = 4,
                   hidden: int = 64, blocks: int = 0, preprocess: str = "shift",
                   flow_options: Optional[Dict[str, Any]] = None, objective: str = "elbo",
                   stage1_epochs: Optional[int] = None, init_flow: Optional[str] = None,
                   timesteps: int = 500, beta_start: Optional[float] = None, beta_end: Optional[float] = None,
                   unet_channels: Sequence[int] = (16, 32, 64), unet_layers: int = 1, unet_attention: bool = False,
                   unet_groups: int = 8, latent_clip: Optional[float] = None) -> DiffusionFlowModel:
    """Diffused-Flows: the flow `flow` (an architecture of the registry, glow or nsf; `levels`, `steps`,
    `hidden`, `blocks`, `preprocess` and any `flow_options` go to its builder) with a diffusion prior on
    its image-shaped latent (T = `timesteps`, the thesis's 500). objective: elbo (default), hybrid,
    two-stage or paper (see the module's docstring); two-stage trains the flow for `stage1_epochs`
    (default: half the epochs, or none when `init_flow` names a trained flow of the same config to start
    from).
    `latent_clip`: the samplers clip the predicted z0 to [-latent_clip, latent_clip]; set after training
    to the training latents' max |z0| (None: no clip)."""
    from nfzoo.loading.api import create_model

    _check_objective(objective, DIFFUSED_OBJECTIVES)
    if stage1_epochs is not None and objective != "two-stage":
        raise ConfigError(f"stage1_epochs is for objective=two-stage (this one is {objective}); drop it")
    shape = tuple(int(s) for s in image_shape)
    fcfg = {"image_shape": list(shape), "levels": levels, "steps": steps, "hidden": hidden, "blocks": blocks,
            "preprocess": preprocess, **(flow_options or {})}
    flow_model = create_model(flow, **fcfg)
    if flow_model.num_classes is not None or tuple(flow_model.prior.event_shape) != shape:
        raise ConfigError(f"flow={flow!r} does not give an unconditional latent shaped like the image "
                          f"{list(shape)}; use glow or nsf")
    if latent_clip is not None and not latent_clip > 0:
        raise ConfigError(f"latent_clip must be positive (or null for no clip), got {latent_clip}")
    prior = _prior(shape, timesteps, beta_start, beta_end, unet_channels, unet_layers, unet_attention,
                   unet_groups, clip=latent_clip)
    return DiffusionFlowModel(flow_model.bijector, prior, shape, objective=objective, preprocess=preprocess,
                              stage1_epochs=stage1_epochs, init_flow=init_flow, flow_architecture=flow,
                              flow_config={k: v for k, v in fcfg.items() if k != "image_shape"})
