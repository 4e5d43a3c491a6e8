"""nfzoo-diffused-flows: Diffused-Flows (papers/001), a normalizing flow whose prior is a diffusion model
on its latent, and the pixel-space DDPM baseline (Ho et al. 2020).

- `DiffusionPrior`: a diffusers `UNet2DModel` epsilon-predictor over image-shaped latents, a linear beta
  schedule, and DDPM's variational bound on -log p(z0) (L_T + sum_t L_{t-1} + L_0) estimated with one
  random t per example; `log_prob` is minus that bound, so every reported bpd is an upper bound.
- `ddpm` and `diffused_flows` architectures (`DiffusionFlowModel`); the flow of `diffused-flows` is
  glow or nsf from the registry, trained with the objective `elbo` (default), `two-stage` or `paper`.
- `DiffusionSampler`: the samplers `ddpm-ancestral`, `ddim` and `dpm-solver++` (diffusers' schedulers);
  sampling runs the reverse diffusion, then only the flow's inverse.

Importing this package imports neither torch nor diffusers; the names load on first use.
"""
from nfzoo.lazy import lazy_exports

__version__ = "0.2.0"
_LAZY = {"DiffusionPrior": "diffusion", "NoiseSchedule": "diffusion", "DiffusionFlowModel": "models",
         "ddpm": "models", "diffused_flows": "models", "DiffusionSampler": "samplers"}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
