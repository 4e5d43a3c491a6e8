"""nfzoo-diffused-flows: Diffused-Flows (papers/001), a normalizing flow whose prior is a diffusion model
on its latent, and the pixel-space DDPM baseline (Ho et al. 2020).

- `DiffusionPrior`: a diffusers `UNet2DModel` epsilon-predictor over image-shaped latents, a linear beta
  schedule, and DDPM's variational bound on -log p(z0) (L_T + sum_t L_{t-1} + L_0) estimated with one
  random t per example; `log_prob` is minus that bound, so every reported bpd is an upper bound.
- `ddpm` and `diffused-flows` architectures (`DiffusionFlowModel`); the flow of `diffused-flows` is
  glow or nsf from the registry, trained with the objective `elbo` (default), `two-stage` or `paper`.
- samplers `ddpm-ancestral`, `ddim` and `dpm-solver++` (diffusers' schedulers); sampling runs the reverse
  diffusion, then only the flow's inverse.
"""
__version__ = "0.1.0"
__all__ = ["DiffusionPrior", "NoiseSchedule", "DiffusionFlowModel"]


def __getattr__(name):   # lazy: registering the plugin must not import torch or diffusers
    if name in ("DiffusionPrior", "NoiseSchedule"):
        from . import diffusion

        return getattr(diffusion, name)
    if name == "DiffusionFlowModel":
        from . import models

        return models.DiffusionFlowModel
    raise AttributeError(f"module 'nfzoo_diffused_flows' has no attribute {name!r}")
