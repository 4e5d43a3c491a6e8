"""A DDPM over image-shaped tensors, as an nfzoo Prior.

Notation (Ho et al. 2020), with 0-based timestep indices i = t - 1 in [0, T) as diffusers counts them:
    alpha_i = 1 - beta_i,  abar_i = prod_{s <= i} alpha_s            (a product: thesis eq. 4.3 prints a mean)
    z_i = sqrt(abar_i) z0 + sqrt(1 - abar_i) eps                      (square roots: eq. 4.5 drops one)
The reverse model is p(z_{i-1} | z_i) = N(mu_theta(z_i, i), sigma_i^2 I) with the posterior variance
sigma_i^2 = beta_i (1 - abar_{i-1}) / (1 - abar_i) (diffusers' "fixed_small"), mu_theta from the U-Net's
epsilon prediction, and the decoder p(z0 | z_1) = N(mu_theta(z_1, 0), beta_0 I) (a continuous density:
z0 is a real-valued latent, and pixel-space DDPM works on uniformly dequantized images).

DDPM's variational bound on -log p(z0), in nats:
    L_T     = KL(q(z_T | z0) || N(0, I))                                   (closed form)
    L_{i-1} = KL(q(z_{i-1} | z_i, z0) || p(z_{i-1} | z_i)) = w_i ||eps - eps_theta(z_i, i)||^2,  i >= 1
              with w_i = beta_i / (2 alpha_i (1 - abar_{i-1}))
    L_0     = -log p(z0 | z_1) = D/2 log(2 pi beta_0) + ||eps - eps_theta(z_1, 0)||^2 / (2 alpha_0)
and bound = L_T + sum_i L_i. L_T and L_0's constant are exact; the sum of the squared-error terms is
estimated without bias by T w_i ||eps - eps_theta||^2 at one random i per example, the i of a batch
stratified over [0, T) (each example's i is still uniform; the batch covers the timesteps evenly). Putting
L_0's constant (about -3.7 nats per dimension for beta_0 = 1e-4) into the sampled term instead would keep
the estimate unbiased but give it a variance of thousands of bits per dimension.

The linear schedule defaults to Ho's beta in [1e-4, 0.02] at T = 1000 and is scaled by 1000 / T for other
T (so T = 500 covers the same noise range in fewer, larger steps; tiny test T cap beta at 0.999).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from nfzoo.errors import ConfigError, UsageError
from nfzoo.flows import interfaces

SAMPLER_KINDS = ("ddpm", "ddim", "dpm-solver++")


def default_betas(timesteps: int) -> Tuple[float, float]:
    """Ho et al.'s linear range for T = 1000, scaled by 1000 / T (beta_end capped at 0.999 for T < 21)."""
    s = 1000.0 / timesteps
    end = min(0.02 * s, 0.999)
    return min(1e-4 * s, end), end


class NoiseSchedule:
    """The linear beta schedule and every derived quantity, in float64."""

    def __init__(self, timesteps: int, beta_start: float, beta_end: float):
        if timesteps < 1:
            raise ConfigError(f"timesteps must be >= 1, got {timesteps}")
        if not (0 < beta_start <= beta_end < 1):
            raise ConfigError(f"betas must satisfy 0 < beta_start <= beta_end < 1, got {beta_start}, "
                              f"{beta_end} (for T = {timesteps} the default is {default_betas(timesteps)})")
        self.T = int(timesteps)
        # the same float32 linspace as diffusers' "linear" schedule, then float64 for the products
        self.betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float32).double()
        self.alphas = 1.0 - self.betas
        self.abar = torch.cumprod(self.alphas, 0)
        self.abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.abar[:-1]])
        self.posterior_var = self.betas * (1 - self.abar_prev) / (1 - self.abar)
        w = self.betas / (2 * self.alphas * (1 - self.abar_prev).clamp_min(1e-300))
        w[0] = 1.0 / (2 * self.alphas[0])
        self.weights = w                                     # per-timestep weight of ||eps - eps_theta||^2
        self.decoder_const = 0.5 * math.log(2 * math.pi * float(self.betas[0]))   # L_0's constant, per dim

    def prior_kl(self, z0: Tensor) -> Tensor:
        """L_T = KL(q(z_T | z0) || N(0, I)) per example (B,)."""
        a = float(self.abar[-1])
        kl = 0.5 * (a * z0 ** 2 + (1 - a) - 1 - math.log(1 - a))
        return kl.reshape(z0.shape[0], -1).sum(1)


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the backward multiplies each example's gradient by its factor c (B,)."""

    @staticmethod
    def forward(ctx, x: Tensor, c: Tensor) -> Tensor:
        ctx.save_for_backward(c)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g: Tensor):
        (c,) = ctx.saved_tensors
        return g * c.view(-1, *([1] * (g.dim() - 1))), None


def _randn(shape, like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    dev = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


class DiffusionPrior(interfaces.DiffusionPrior):
    """A diffusion model over latents of shape `event_shape` = (C, H, W): a diffusers UNet2DModel that
    predicts the noise, with the schedule of `NoiseSchedule`. `log_prob` is minus the variational bound
    (one random timestep per example: an unbiased estimate of the bound, so a lower bound on log p only
    in expectation); `sample` is DDPM's ancestral sampler over all T steps. It implements the core's
    capability `nfzoo.flows.interfaces.DiffusionPrior` (which export, inpainting and scoring ask for)."""

    temperature_one_only = True   # the reverse process has no temperature: samplers refuse T != 1
    _anchor: Tensor               # a 0-d buffer that follows the module's device (registered in __init__)

    def __init__(self, event_shape: Sequence[int], timesteps: int = 1000, beta_start: Optional[float] = None,
                 beta_end: Optional[float] = None, channels: Sequence[int] = (16, 32, 64),
                 layers_per_block: int = 1, attention: bool = False, groups: int = 8,
                 clip: Optional[float] = None):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        if len(self.event_shape) != 3:
            raise ConfigError(f"the diffusion prior needs image-shaped latents (C, H, W), got "
                              f"{self.event_shape}")
        c, h, w = self.event_shape
        channels = tuple(int(ch) for ch in channels)
        if not channels or any(ch < 1 for ch in channels):
            raise ConfigError(f"unet_channels must be a non-empty list of positive widths, got {channels}")
        f = 2 ** (len(channels) - 1)
        if h % f or w % f:
            fit = max(k for k in range(1, len(channels) + 1) if h % 2 ** (k - 1) == 0 and w % 2 ** (k - 1) == 0)
            raise ConfigError(
                f"the U-Net cannot take a {h}x{w} latent: its {len(channels)} resolution levels halve the size "
                f"{len(channels) - 1} times, so H and W must be divisible by {f}. Use at most {fit} widths in "
                f"unet_channels (e.g. --set unet_channels={list(channels[:fit])}) or another image size.")
        if any(ch % groups for ch in channels):
            raise ConfigError(f"every U-Net width must be divisible by unet_groups={groups} (group norm), got "
                              f"{list(channels)}")
        if timesteps < 1:   # NoiseSchedule's own check, made before default_betas divides by T
            raise ConfigError(f"timesteps must be >= 1, got {timesteps}")
        b0, b1 = default_betas(timesteps)
        self.schedule = NoiseSchedule(timesteps, b0 if beta_start is None else beta_start,
                                      b1 if beta_end is None else beta_end)
        self.clip = clip
        # diffusers' documented top-level name; its lazy __init__ hides it from pyright
        from diffusers import UNet2DModel  # pyright: ignore[reportPrivateImportUsage]

        k = len(channels)
        down = tuple("AttnDownBlock2D" if attention and 0 < j < k - 1 else "DownBlock2D" for j in range(k))
        up = tuple("AttnUpBlock2D" if attention and 0 < j < k - 1 else "UpBlock2D" for j in range(k))
        self.unet = UNet2DModel(sample_size=(h, w), in_channels=c, out_channels=c, block_out_channels=channels,
                                layers_per_block=layers_per_block, down_block_types=down, up_block_types=up,
                                norm_num_groups=groups, add_attention=attention)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    @property
    def timesteps(self) -> int:
        """T, the schedule's number of timesteps."""
        return self.schedule.T

    def alphas_cumprod(self) -> Tensor:
        """The schedule's abar (float64, (T,))."""
        return self.schedule.abar

    @property
    def dim(self) -> int:
        return math.prod(self.event_shape)

    def eps(self, z: Tensor, i: Tensor) -> Tensor:
        """The U-Net's noise prediction at 0-based timesteps i (B,)."""
        return self.unet(z, i).sample

    def noised(self, z0: Tensor, i: Tensor, eps: Tensor) -> Tensor:
        """z_i = sqrt(abar_i) z0 + sqrt(1 - abar_i) eps."""
        ab = self.schedule.abar.to(z0.device)[i].to(z0.dtype).view(-1, *([1] * (z0.dim() - 1)))
        return ab.sqrt() * z0 + (1 - ab).sqrt() * eps

    def terms(self, z0: Tensor, i: Tensor, eps: Tensor,
              input_grad_scale: Optional[Callable[[Tensor], Tensor]] = None) -> Dict[str, Tensor]:
        """One U-Net call at timesteps i with noise eps: the per-example squared error ||eps - eps_theta||^2
        ("sq"), the bound's term L_i ("term", nats; L_0 with its constant) and the bound estimate
        L_T + D log(2 pi beta_0) / 2 + T w_i ||eps - eps_theta||^2 ("bound", unbiased when i is uniform).
        `input_grad_scale(w)` (a function of the per-example weights T w_i, or None): the gradient that
        reaches z_i (and through it z0) from the U-Net is multiplied per example by it, the U-Net's own
        gradient is not (the `hybrid` objective)."""
        sch = self.schedule
        zi = self.noised(z0, i, eps)
        w = sch.weights.to(z0.device)[i].to(z0.dtype)
        if input_grad_scale is not None:
            zi = _ScaleGrad.apply(zi, input_grad_scale(sch.T * w))
        err = self.eps(zi, i) - eps
        sq = (err ** 2).reshape(z0.shape[0], -1).sum(1)
        term = w * sq + (i == 0).to(z0.dtype) * (self.dim * sch.decoder_const)
        bound = sch.prior_kl(z0) + self.dim * sch.decoder_const + sch.T * w * sq
        return {"sq": sq, "term": term, "bound": bound, "i": i}

    def draw_timesteps(self, n: int, like: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """n timesteps, each uniform on [0, T), stratified: i_j = floor((pi_j + u_j) T / n) with pi a
        random permutation and u_j ~ U[0, 1)."""
        dev = generator.device if generator is not None else like.device
        perm = torch.randperm(n, generator=generator, device=dev).double()
        u = torch.rand(n, generator=generator, device=dev, dtype=torch.float64)
        i = torch.floor((perm + u) * self.schedule.T / n).long().clamp_(0, self.schedule.T - 1)
        return i.to(like.device)

    def draw_terms(self, z0: Tensor, generator: Optional[torch.Generator] = None,
                   input_grad_scale: Optional[Callable[[Tensor], Tensor]] = None) -> Dict[str, Tensor]:
        """`terms` at one random timestep (stratified over the batch) and noise per example."""
        i = self.draw_timesteps(z0.shape[0], z0, generator)
        return self.terms(z0, i, _randn(z0.shape, z0, generator), input_grad_scale)

    def nll_bound(self, z0: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Unbiased one-sample estimate of DDPM's bound on -log p(z0), nats, (B,)."""
        return self.draw_terms(z0, generator)["bound"]

    def full_bound(self, z0: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """The bound summed over every timestep (T U-Net calls; for tests and small T)."""
        total = self.schedule.prior_kl(z0)
        for i in range(self.schedule.T):
            ii = torch.full((z0.shape[0],), i, dtype=torch.long, device=z0.device)
            total = total + self.terms(z0, ii, _randn(z0.shape, z0, generator))["term"]
        return total

    def log_prob(self, z, y=None):
        return -self.nll_bound(z)

    # ------------------------------------------------------------ sampling
    def scheduler(self, kind: str):
        """A diffusers scheduler over this prior's schedule: ddpm (ancestral), ddim or dpm-solver++
        (2nd-order multistep). With fewer steps than T, every one spaces its steps "trailing" (they start
        at t = T, where the prior N(0, I) holds; diffusers' default for DDPM, "leading", starts at
        T - T/steps)."""
        # the modules that define them (diffusers' lazy top-level __init__ hides its names from pyright)
        from diffusers.schedulers.scheduling_ddim import DDIMScheduler
        from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
        from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler

        sch = self.schedule
        common: Dict[str, Any] = dict(num_train_timesteps=sch.T, beta_start=float(sch.betas[0]),
                                      beta_end=float(sch.betas[-1]), beta_schedule="linear",
                                      prediction_type="epsilon")
        # the predicted z0 is clipped to [-clip, clip] (the data's range: [-1, 1] for pixel DDPM, the
        # training latents' for Diffused-Flows). DDPM and DDIM do it through diffusers' clip_sample (DDIM
        # re-derives its noise from the clipped z0, see reverse); DPM-Solver++ (a data-prediction
        # solver) is given the clipped z0 itself (prediction_type "sample"). Without the clip the
        # deterministic samplers drift off the latent distribution of an imperfect model (a digits model:
        # |z0| 90% quantile 10.8 with DDIM 50 vs 1.7 for the data and the ancestral sampler; 1.9 with it).
        clip: Dict[str, Any] = dict(clip_sample=self.clip is not None, clip_sample_range=float(self.clip or 1.0))
        if kind == "ddpm":
            return DDPMScheduler(variance_type="fixed_small", timestep_spacing="trailing", **clip, **common)
        if kind == "ddim":
            return DDIMScheduler(set_alpha_to_one=True, timestep_spacing="trailing", **clip, **common)
        if kind == "dpm-solver++":
            if self.clip is not None:
                common["prediction_type"] = "sample"
            return DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", solver_order=2,
                                               timestep_spacing="trailing", lower_order_final=True,
                                               **common)
        raise UsageError(f"unknown diffusion sampler {kind!r}; choose one of {', '.join(SAMPLER_KINDS)}")

    def ddim_schedule(self) -> Dict[str, Any]:
        """The settings of `scheduler("ddim")` (what the ddim sampler runs) as plain values: see
        `nfzoo.flows.interfaces.DiffusionPrior.ddim_schedule`."""
        sch = self.scheduler("ddim")
        c = sch.config
        return {"alphas_cumprod": [float(a) for a in sch.alphas_cumprod.float()],
                "final_alpha_cumprod": float(sch.final_alpha_cumprod),
                "num_train_timesteps": int(c["num_train_timesteps"]),
                "timestep_spacing": str(c["timestep_spacing"]), "prediction_type": str(c["prediction_type"]),
                "clip_sample_range": float(c["clip_sample_range"]) if c["clip_sample"] else None,
                "use_clipped_model_output": bool(c["clip_sample"]), "init_noise_sigma": float(sch.init_noise_sigma)}

    def check_steps(self, steps: Optional[int]) -> int:
        """`steps` (1..T) or T for None; UsageError otherwise."""
        if steps is None:
            return self.schedule.T
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.schedule.T:
            raise UsageError(f"--steps must be an integer from 1 to the model's T = {self.schedule.T}, got "
                             f"{steps!r}")
        return steps

    @staticmethod
    def check_eta(kind: str, eta: Optional[float]) -> float:
        if eta is None:
            return 0.0
        if kind != "ddim":
            raise UsageError(f"--eta is an option of the ddim sampler only (this is {kind}); drop --eta or "
                             "use --sampler ddim")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
            raise UsageError(f"--eta must be a number from 0 (deterministic DDIM) to 1 (the ancestral sampler "
                             f"over the same steps), got {eta!r}")
        return float(eta)

    def clipped_z0(self, z: Tensor, i: Tensor) -> Tensor:
        """The z0 predicted from z_i, clipped to [-clip, clip]."""
        ab = self.schedule.abar.to(z.device)[i].to(z.dtype).view(-1, *([1] * (z.dim() - 1)))
        z0 = (z - (1 - ab).sqrt() * self.eps(z, i)) / ab.sqrt()
        return z0 if self.clip is None else z0.clamp(-self.clip, self.clip)

    @torch.no_grad()
    def reverse(self, n: int, kind: str = "ddpm", steps: Optional[int] = None,
                generator: Optional[torch.Generator] = None, progress=None, eta: Optional[float] = None) -> Tensor:
        """Run the reverse diffusion from N(0, I) to z0 with a diffusers scheduler; (n, C, H, W).

        `eta` (ddim only, default 0): the DDIM noise scale, sigma_t = eta * sqrt((1 - abar_prev) / (1 - abar_t)
        * (1 - abar_t / abar_prev)) (Song et al. 2021, eq. 16). 0 is deterministic for a seed; 1 is the
        ancestral sampler over the same (respaced) steps, the same update as kind ddpm with those steps."""
        steps = self.check_steps(steps)
        eta = self.check_eta(kind, eta)
        sch = self.scheduler(kind)
        sch.set_timesteps(steps, device=self._anchor.device)
        z = _randn((n, *self.event_shape), self._anchor.float(), generator) * sch.init_noise_sigma
        # DDIM: the noise in the direction term is re-derived from the clipped z0 (GLIDE's convention;
        # diffusers keeps the raw prediction unless asked). With the raw one, clipped z0 and direction
        # disagree, and the error grows with the number of steps: ddpm-mnist5k's FID (200 samples) at
        # DDIM 100 was 45.6 with the raw noise and 18.7 re-derived (27.1 unclipped); at 20 steps 21.4 / 21.5.
        kw: Dict[str, Any] = {"eta": eta, "use_clipped_model_output": self.clip is not None} if kind == "ddim" else {}
        if kind != "ddim" or eta > 0:
            kw["generator"] = generator
        for j, t in enumerate(sch.timesteps):
            i = torch.full((n,), int(t), dtype=torch.long, device=z.device)
            out = self.clipped_z0(z, i) if sch.config["prediction_type"] == "sample" else self.eps(z, i)
            # diffusers annotates DDPM's and DDIM's `timestep` as int; they take the tensor of
            # `sch.timesteps` as their own pipelines pass it
            res = sch.step(out, t, z, **kw)  # pyright: ignore[reportArgumentType]
            assert not isinstance(res, tuple)   # return_dict=True (the default): a SchedulerOutput
            z = res.prev_sample
            if progress:
                progress(j + 1, len(sch.timesteps))
        return z

    def sample(self, n, y=None, temperature=1.0, generator=None):
        if temperature != 1.0:
            raise UsageError("diffusion priors sample at temperature 1 only (got "
                             f"{temperature:g}); drop --temperature")
        return self.reverse(n, "ddpm", None, generator)
