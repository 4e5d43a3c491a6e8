"""From a name to a checked, built, loaded model: the name rule (`parse_model_name`), where a name's files
come from (`resolve_source`), the config limits and the shape build that run before anything is
allocated, and the Python API that loads and creates models.

Modules: api, limits, pretrained, shape_build, sources. Its public names are exported lazily (importing the wing
imports no torch).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from nfzoo.lazy import lazy_exports

if TYPE_CHECKING:
    from .api import (
        architecture_config,
        architecture_preset,
        build_model,
        create_model,
        list_models,
        list_plugins,
        list_pretrained,
        load,
        load_directory,
    )
    from .limits import (
        check_config,
        check_numbers,
        check_weights_header,
        max_activation_bytes,
        max_params,
        name_mismatch,
    )
    from .pretrained import (
        ModelName,
        PretrainedEntry,
        embedded_sampling,
        is_path_like,
        local_path,
        parse_hub_id,
        parse_model_name,
        resolve_pretrained,
    )
    from .shape_build import BudgetExceeded, ModelPlan, plan_model, planning
    from .sources import Source, resolve_source

_LAZY = {
    "BudgetExceeded": "shape_build", "ModelName": "pretrained", "ModelPlan": "shape_build",
    "PretrainedEntry": "pretrained", "Source": "sources", "architecture_config": "api", "architecture_preset": "api",
    "build_model": "api", "check_config": "limits", "check_numbers": "limits", "check_weights_header": "limits",
    "create_model": "api", "embedded_sampling": "pretrained", "is_path_like": "pretrained", "list_models": "api",
    "list_plugins": "api", "list_pretrained": "api", "load": "api", "load_directory": "api",
    "local_path": "pretrained", "max_activation_bytes": "limits", "max_params": "limits", "name_mismatch": "limits",
    "parse_hub_id": "pretrained", "parse_model_name": "pretrained", "plan_model": "shape_build",
    "planning": "shape_build", "resolve_pretrained": "pretrained", "resolve_source": "sources",
}
__all__ = [
    "BudgetExceeded", "ModelName", "ModelPlan", "PretrainedEntry", "Source", "architecture_config",
    "architecture_preset", "build_model", "check_config", "check_numbers", "check_weights_header", "create_model",
    "embedded_sampling", "is_path_like", "list_models", "list_plugins", "list_pretrained", "load", "load_directory",
    "local_path", "max_activation_bytes", "max_params", "name_mismatch", "parse_hub_id", "parse_model_name",
    "plan_model", "planning", "resolve_pretrained", "resolve_source",
]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
