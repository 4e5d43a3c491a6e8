"""The `tarflow` sampler: z ~ N(0, T^2 I), decoded by the TarFlow inverse with its key/value cache (one
Transformer step per patch per block; or Jacobi decoding, fixed-point iterations over all patches at once),
classifier-free guidance for class-conditional models, then the model's one-step score denoising (Tweedie:
x + sigma^2 grad log p(x), one backward pass through the flow)."""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import torch

from nfzoo.errors import UsageError
from nfzoo.flows.interfaces import Sampler

from .flow import JACOBI_TOL

MAX_GUIDANCE = 100.0
MAX_JACOBI_TOL = 1.0
OPTIONS = ("guidance", "guidance_anneal", "attn_temp", "jacobi", "jacobi_tol", "jacobi_iters")


class TarFlowSampler(Sampler):
    """Latents from the standard normal at temperature T; options (for `TarFlowModel.decode`):
    `guidance` g >= 0: (a, b) <- (a, b) + g ((a, b) - (a, b)_weak) at every step, the weak pass without the
    label (class-conditional models) and with its attention logits divided by `attn_temp` (> 0; != 1 is
    how an unconditional model is guided); 0, the default, is the plain inverse. `guidance_anneal` (1: g
    grows linearly with the patch index, from g / (T - 1) to g; 0: constant, the default).

    `jacobi` (1: Jacobi decoding, 0: the sequential inverse, the default): every block solved by fixed-point
    iterations over all its patches in one causal pass each (TarFlowBlock.inverse), a patch fixed once no
    value changes by more than `jacobi_tol` (> 0, default 1e-3, on the [-1, 1] scale), the patches not fixed
    after `jacobi_iters` iterations (an integer >= 1; default: patches - 1, which is always exact) decoded
    sequentially. Guidance works with either."""

    name = "tarflow"
    from_prior = True

    def check(self, model, temperature: float = 1.0, guidance: Optional[float] = None,
              guidance_anneal: Optional[float] = None, attn_temp: Optional[float] = None,
              jacobi: Optional[float] = None, jacobi_tol: Optional[float] = None,
              jacobi_iters: Optional[float] = None, **options: Any) -> None:
        from .models import TarFlowModel

        if options:
            raise UsageError(f"the tarflow sampler takes the options {', '.join(OPTIONS[:-1])} and {OPTIONS[-1]}, "
                             f"got {', '.join(sorted(options))}; drop them (--steps and --eta are for diffusion "
                             "samplers)")
        if not isinstance(model, TarFlowModel):
            raise UsageError(f"the tarflow sampler needs a TarFlow model; this {model.architecture or 'model'} "
                             "has its own sampler: drop --sampler tarflow")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
            raise UsageError(f"temperature must be a finite number >= 0, got {temperature!r}")
        if guidance is not None:
            if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or \
                    not (math.isfinite(guidance) and 0 <= guidance <= MAX_GUIDANCE):
                raise UsageError(f"guidance must be a number in [0, {MAX_GUIDANCE:g}] (0: no guidance), got "
                                 f"{guidance!r}")
        if attn_temp is not None and (isinstance(attn_temp, bool) or not isinstance(attn_temp, (int, float)) or
                                      not (math.isfinite(attn_temp) and 0 < attn_temp <= MAX_GUIDANCE)):
            raise UsageError(f"attn_temp must be a number in (0, {MAX_GUIDANCE:g}] (1: the model's own "
                             f"attention), got {attn_temp!r}")
        if guidance and model.num_classes is None and (attn_temp is None or attn_temp == 1):
            raise UsageError("guidance of an unconditional TarFlow is against a pass at another attention "
                             "temperature: set attn_temp (e.g. 1.5), or guidance 0")
        if guidance_anneal is not None and guidance_anneal not in (0, 1):
            raise UsageError(f"guidance_anneal must be 0 (constant guidance) or 1 (growing with the patch "
                             f"index), got {guidance_anneal!r}")
        if jacobi is not None and jacobi not in (0, 1):
            raise UsageError(f"jacobi must be 1 (Jacobi decoding) or 0 (the sequential inverse), got {jacobi!r}")
        if not jacobi and (jacobi_tol is not None or jacobi_iters is not None):
            raise UsageError("jacobi_tol and jacobi_iters are options of Jacobi decoding: add jacobi=1 (e.g. "
                             "--sampler-option jacobi=1 --sampler-option jacobi_tol=1e-3), or drop them")
        if jacobi_tol is not None and (isinstance(jacobi_tol, bool) or not isinstance(jacobi_tol, (int, float)) or
                                       not (math.isfinite(jacobi_tol) and 0 < jacobi_tol <= MAX_JACOBI_TOL)):
            raise UsageError(f"jacobi_tol must be a number in (0, {MAX_JACOBI_TOL:g}] (the largest change of a "
                             f"fixed patch, on the [-1, 1] scale), got {jacobi_tol!r}")
        if jacobi_iters is not None and (isinstance(jacobi_iters, bool) or
                                         not isinstance(jacobi_iters, (int, float)) or
                                         not math.isfinite(jacobi_iters) or jacobi_iters != int(jacobi_iters) or
                                         jacobi_iters < 1):
            raise UsageError(f"jacobi_iters must be an integer >= 1 (the iterations per block before the "
                             f"sequential fallback), got {jacobi_iters!r}")

    @torch.no_grad()
    def sample(self, model, n: int, y=None, temperature: float = 1.0,
               generator: Optional[torch.Generator] = None, **options: Any) -> torch.Tensor:
        """n latents N(0, T^2 I) (the labels y act in `decode`, through the inverse)."""
        self.check(model, temperature, **options)
        return model.prior.sample(n, None, temperature=temperature, generator=generator)

    def decode_options(self, guidance: Optional[float] = None, guidance_anneal: Optional[float] = None,
                       attn_temp: Optional[float] = None, jacobi: Optional[float] = None,
                       jacobi_tol: Optional[float] = None, jacobi_iters: Optional[float] = None,
                       **_: Any) -> Dict[str, Any]:
        """The keywords of TarFlowModel.decode for these options."""
        out: Dict[str, Any] = {"guidance": float(guidance or 0.0), "guidance_anneal": bool(guidance_anneal),
                               "attn_temp": 1.0 if attn_temp is None else float(attn_temp)}
        if jacobi:
            out.update(jacobi=True, jacobi_tol=JACOBI_TOL if jacobi_tol is None else float(jacobi_tol),
                       jacobi_iters=None if jacobi_iters is None else int(jacobi_iters))
        return out
