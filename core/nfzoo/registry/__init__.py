"""Plugins and what they register: pluggy discovery through the `nfzoo` entry points, the hooks a plugin
implements, the core's own registrations, and descriptions of registered things that import nothing.

Modules: builtins, hookspecs, inspection, plugins. Its public names are exported lazily (importing the wing imports
no torch).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from nfzoo.lazy import lazy_exports

if TYPE_CHECKING:
    from .hookspecs import (
        EvalTask,
        register_architectures,
        register_benchmarks,
        register_bijectors,
        register_commands,
        register_eval_tasks,
        register_heads,
        register_pretrained,
        register_priors,
        register_samplers,
    )
    from .inspection import signature_defaults
    from .plugins import Entry, PluginInfo, PluginRegistry, get_registry, reset, unknown_allowed_message

_LAZY = {
    "Entry": "plugins", "EvalTask": "hookspecs", "PluginInfo": "plugins", "PluginRegistry": "plugins",
    "get_registry": "plugins", "register_architectures": "hookspecs", "register_benchmarks": "hookspecs",
    "register_bijectors": "hookspecs", "register_commands": "hookspecs", "register_eval_tasks": "hookspecs",
    "register_heads": "hookspecs", "register_pretrained": "hookspecs", "register_priors": "hookspecs",
    "register_samplers": "hookspecs", "reset": "plugins", "signature_defaults": "inspection",
    "unknown_allowed_message": "plugins",
}
__all__ = [
    "Entry", "EvalTask", "PluginInfo", "PluginRegistry", "get_registry", "register_architectures",
    "register_benchmarks", "register_bijectors", "register_commands", "register_eval_tasks", "register_heads",
    "register_pretrained", "register_priors", "register_samplers", "reset", "signature_defaults",
    "unknown_allowed_message",
]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
