"""nfzoo: a plugin-based registry of normalizing-flow generative models with a model zoo.

Importing nfzoo is cheap: torch is imported only when a torch-backed name is first used.
"""
from __future__ import annotations

from typing import Any

from .hookspecs import hookimpl

__version__ = "0.1.0"

_LAZY = {
    "Bijector": "nfzoo.interfaces", "Prior": "nfzoo.interfaces", "Sampler": "nfzoo.interfaces",
    "Composite": "nfzoo.interfaces", "DiffusionPrior": "nfzoo.interfaces", "FlowModel": "nfzoo.model",
    "create_sampler": "nfzoo.samplers",
    "list_models": "nfzoo.api", "list_pretrained": "nfzoo.api", "list_plugins": "nfzoo.api",
    "create_model": "nfzoo.api", "load": "nfzoo.api", "SamplingPipeline": "nfzoo.pipeline",
    "testing": "nfzoo.testing", "bijectors": "nfzoo.bijectors", "priors": "nfzoo.priors",
    "hub": "nfzoo.hub", "publish": "nfzoo.publish",
}

__all__ = ["hookimpl", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__ == f"nfzoo.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nfzoo' has no attribute {name!r}")
