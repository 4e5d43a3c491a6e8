"""nfzoo: a plugin-based registry of normalizing-flow generative models with a model zoo.

Importing nfzoo is cheap: torch is imported only when a torch-backed name is first used.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nfzoo.registry.hookspecs import hookimpl

if TYPE_CHECKING:                  # what the names below are, for IDEs and type checkers (imported lazily)
    from nfzoo import hub, testing
    from nfzoo.flows import bijectors, priors
    from nfzoo.flows.interfaces import Bijector, Composite, DiffusionPrior, Prior, Sampler
    from nfzoo.flows.model import FlowModel
    from nfzoo.flows.pipeline import SamplingPipeline
    from nfzoo.flows.samplers import create_sampler
    from nfzoo.hub import publish
    from nfzoo.loading.api import create_model, list_models, list_plugins, list_pretrained, load

__version__ = "0.2.0"

_LAZY = {
    "Bijector": "nfzoo.flows.interfaces", "Prior": "nfzoo.flows.interfaces", "Sampler": "nfzoo.flows.interfaces",
    "Composite": "nfzoo.flows.interfaces", "DiffusionPrior": "nfzoo.flows.interfaces", "FlowModel": "nfzoo.flows.model",
    "create_sampler": "nfzoo.flows.samplers",
    "list_models": "nfzoo.loading.api", "list_pretrained": "nfzoo.loading.api", "list_plugins": "nfzoo.loading.api",
    "create_model": "nfzoo.loading.api", "load": "nfzoo.loading.api", "SamplingPipeline": "nfzoo.flows.pipeline",
    "testing": "nfzoo.testing", "bijectors": "nfzoo.flows.bijectors", "priors": "nfzoo.flows.priors",
    "hub": "nfzoo.hub", "publish": "nfzoo.hub.publish",
}

__all__ = ["hookimpl", "__version__", "Bijector", "Prior", "Sampler", "Composite", "DiffusionPrior", "FlowModel",
           "create_sampler", "list_models", "list_pretrained", "list_plugins", "create_model", "load",
           "SamplingPipeline", "testing", "bijectors", "priors", "hub", "publish"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__.rpartition(".")[2] == name else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nfzoo' has no attribute {name!r}")
