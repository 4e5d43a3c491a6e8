"""Diffusion samplers (diffusers' schedulers): the reverse diffusion gives the latent z0, which the model
decodes (only the flow's inverse: its forward is never called)."""
from __future__ import annotations

import torch

from nfzoo.errors import UsageError
from nfzoo.flows.interfaces import Sampler

NAMES = {"ddpm": "ddpm-ancestral", "ddim": "ddim", "dpm-solver++": "dpm-solver++"}


class DiffusionSampler(Sampler):
    """`kind`: ddpm (ancestral, as in DDPM and the thesis; all T steps by default, fewer are respaced),
    ddim or dpm-solver++ (2nd-order multistep). Options: `steps` (1..T, default T); `eta` (ddim only, 0..1,
    default 0: deterministic for a seed; 1: the ancestral sampler over the same steps)."""

    def __init__(self, kind: str = "ddpm"):
        if kind not in NAMES:
            raise UsageError(f"unknown diffusion sampler {kind!r}; choose one of {', '.join(NAMES)}")
        self.kind = kind
        self.name = NAMES[kind]

    def check(self, model, temperature=1.0, steps=None, eta=None, **options):
        from .diffusion import DiffusionPrior

        if options:
            allowed = "steps and eta" if self.kind == "ddim" else "steps only"
            raise UsageError(f"the {self.name} sampler takes the options {allowed}, got {sorted(options)}")
        if not isinstance(model.prior, DiffusionPrior):
            raise UsageError(f"the {self.name} sampler needs a model with a diffusion prior (ddpm, "
                             f"diffused-flows); this {model.architecture or 'model'} has a "
                             f"{type(model.prior).__name__}. Drop --sampler to use its own.")
        if temperature != 1.0:
            raise UsageError(f"the {self.name} sampler samples at temperature 1 only (got {temperature:g}); "
                             "drop --temperature")
        model.prior.check_steps(steps)
        model.prior.check_eta(self.kind, eta)

    @torch.no_grad()
    def sample(self, model, n, y=None, temperature=1.0, generator=None, steps=None, progress=None, eta=None,
               **options):
        """z0 from the reverse diffusion over `steps` steps (`progress(done, total)` after each)."""
        self.check(model, temperature=temperature, steps=steps, eta=eta, **options)
        if y is not None:
            raise UsageError("diffusion models here are unconditional: drop the labels")
        return model.prior.reverse(n, self.kind, steps, generator, progress=progress, eta=eta)


def ancestral() -> DiffusionSampler:
    """The registered `ddpm-ancestral` sampler."""
    return DiffusionSampler("ddpm")


def ddim() -> DiffusionSampler:
    """The registered `ddim` sampler."""
    return DiffusionSampler("ddim")


def dpm_solver_pp() -> DiffusionSampler:
    """The registered `dpm-solver++` sampler."""
    return DiffusionSampler("dpm-solver++")
