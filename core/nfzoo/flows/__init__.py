"""What a flow is and how it samples: the interfaces (Bijector, Prior, DiffusionPrior, Sampler), FlowModel,
the core's bijectors, priors, samplers and architectures, the fitted latent prior, seeded generation and
the sampling pipeline, torch.compile of the hot paths.

Modules: architectures, compiling, generation, interfaces, latent_prior, model, pipeline, priors, samplers. Its
public names are exported lazily (importing the wing imports no torch).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from nfzoo.lazy import lazy_exports

if TYPE_CHECKING:
    from .architectures import check_shape, flow_model, glow, multiscale_flow, nice, nsf, realnvp
    from .compiling import (
        CompileFallbackWarning,
        GuardedCompiled,
        compile_callable,
        compile_flow,
        compile_module,
        compiled_state,
        eager_flow,
        unavailable_reason,
    )
    from .generation import (
        SamplingLabels,
        check_seed,
        chunk_generator,
        chunks,
        constant_labels,
        cycle_labels,
        generate,
        generate_all,
        labels_of,
        model_device,
        per_class_labels,
        sampling_labels,
    )
    from .interfaces import Bijector, Composite, DiffusionPrior, Prior, Sampler
    from .latent_prior import attach, check_spec, fit_latent_prior, refit_model
    from .model import FlowModel, check_tensors, load_state_strict, to_unit
    from .pipeline import LabelPlan, SampleOutput, SamplingPipeline, compile_model
    from .priors import DiagonalGaussian, LatentMixture, StandardNormal
    from .samplers import AncestralSampler, create_sampler

_LAZY = {
    "AncestralSampler": "samplers", "Bijector": "interfaces", "CompileFallbackWarning": "compiling",
    "Composite": "interfaces", "DiagonalGaussian": "priors", "DiffusionPrior": "interfaces", "FlowModel": "model",
    "GuardedCompiled": "compiling", "LabelPlan": "pipeline", "LatentMixture": "priors", "Prior": "interfaces",
    "SampleOutput": "pipeline", "Sampler": "interfaces", "SamplingLabels": "generation",
    "SamplingPipeline": "pipeline", "StandardNormal": "priors", "attach": "latent_prior", "check_seed": "generation",
    "check_shape": "architectures", "check_spec": "latent_prior", "check_tensors": "model",
    "chunk_generator": "generation", "chunks": "generation", "compile_callable": "compiling",
    "compile_flow": "compiling", "compile_model": "pipeline", "compile_module": "compiling",
    "compiled_state": "compiling", "constant_labels": "generation", "create_sampler": "samplers",
    "cycle_labels": "generation", "eager_flow": "compiling", "fit_latent_prior": "latent_prior",
    "flow_model": "architectures", "generate": "generation", "generate_all": "generation", "glow": "architectures",
    "labels_of": "generation", "load_state_strict": "model", "model_device": "generation",
    "multiscale_flow": "architectures", "nice": "architectures", "nsf": "architectures",
    "per_class_labels": "generation", "realnvp": "architectures", "refit_model": "latent_prior",
    "sampling_labels": "generation", "to_unit": "model", "unavailable_reason": "compiling",
}
__all__ = [
    "AncestralSampler", "Bijector", "CompileFallbackWarning", "Composite", "DiagonalGaussian", "DiffusionPrior",
    "FlowModel", "GuardedCompiled", "LabelPlan", "LatentMixture", "Prior", "SampleOutput", "Sampler",
    "SamplingLabels", "SamplingPipeline", "StandardNormal", "attach", "check_seed", "check_shape", "check_spec",
    "check_tensors", "chunk_generator", "chunks", "compile_callable", "compile_flow", "compile_model",
    "compile_module", "compiled_state", "constant_labels", "create_sampler", "cycle_labels", "eager_flow",
    "fit_latent_prior", "flow_model", "generate", "generate_all", "glow", "labels_of", "load_state_strict",
    "model_device", "multiscale_flow", "nice", "nsf", "per_class_labels", "realnvp", "refit_model",
    "sampling_labels", "to_unit", "unavailable_reason",
]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
