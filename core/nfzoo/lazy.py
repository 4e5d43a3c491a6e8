"""Lazy package exports (PEP 562), for packages that must stay cheap to import.

A plugin's package is imported whenever nfzoo registers the plugin (`nfzoo --help`, `nfzoo list`), so its
top may not import torch; it still exports its main names, as zuko and timm do:

    # nfzoo_myplugin/__init__.py
    from nfzoo.lazy import lazy_exports

    _LAZY = {"MyConv": "conv", "my_flow": "models"}      # name -> submodule that defines it
    __all__ = sorted(_LAZY)
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY)

`from nfzoo_myplugin import MyConv` then imports nfzoo_myplugin.conv (and torch) on first use, and gives
the very object of that module.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, List, Mapping, Tuple


def lazy_exports(package: str,
                 names: Mapping[str, str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """(__getattr__, __dir__) for `package`: `names` maps each exported name to the submodule (relative to
    the package) that defines it. A name is imported on first access and then kept in the package's
    namespace; any other name is an AttributeError, and dir() lists the exports beside the globals."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> List[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__
