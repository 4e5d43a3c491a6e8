"""Plugin discovery (pluggy + the `nfzoo` entry-point group) and the registries built from the hooks.

Loading happens once, lazily, the first time anything asks for a registry. Nothing here imports torch:
targets stay "module:attribute" strings until `Entry.load()` is called.
"""
from __future__ import annotations

import fnmatch
import importlib
import importlib.metadata as md
import os
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import pluggy

from nfzoo.errors import PluginConflictError, UnknownNameError
from nfzoo.registry import hookspecs

ENTRY_POINT_GROUP = "nfzoo"
ALLOW_ENV = "NFZOO_LOAD_PLUGINS"
KINDS = ("bijectors", "priors", "samplers", "architectures", "pretrained", "heads", "eval_tasks", "benchmarks",
         "datasets")
SINGULAR = {"bijectors": "bijector", "priors": "prior", "samplers": "sampler",
            "architectures": "architecture", "pretrained": "pretrained model", "heads": "head",
            "eval_tasks": "eval task", "benchmarks": "benchmark", "datasets": "data set"}


@dataclass
class Entry:
    """One registered name: what it points at, who registered it, and its metadata."""

    kind: str
    name: str
    target: Any
    plugin: str
    metadata: Dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        """The registration's one-line description ('' when it has none)."""
        return self.metadata.get("description", "")

    def load(self) -> Any:
        """Resolve a lazy "module:attribute" target (importing the module) or return the object."""
        if isinstance(self.target, str) and ":" in self.target:
            module, _, attr = self.target.partition(":")
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
            return obj
        return self.target

    def to_json(self) -> Dict[str, Any]:
        """The entry as `nfzoo list --json` prints it: name, kind, plugin, target and the JSON-able metadata."""
        target = self.target if isinstance(self.target, str) else _qualname(self.target)
        meta = {k: v for k, v in self.metadata.items() if _jsonable(v)}
        return {"name": self.name, "kind": SINGULAR[self.kind], "plugin": self.plugin,
                "target": target, **meta}


@dataclass
class PluginInfo:
    """A plugin as `nfzoo plugins` shows it: name, version, the hooks it implements, its module, and its
    load error (None when it loaded)."""
    name: str
    version: Optional[str]
    hooks: List[str]
    module: str
    error: Optional[str] = None
    builtin: bool = False

    def to_json(self) -> Dict[str, Any]:
        """The plugin as `nfzoo plugins --json` prints it."""
        return {"name": self.name, "version": self.version, "hooks": self.hooks, "module": self.module,
                "builtin": self.builtin, "error": self.error}


def _qualname(obj: Any) -> str:
    mod = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{mod}:{name}" if mod else str(name)


def _jsonable(v: Any) -> bool:
    import json

    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def unknown_allowed_message(name: str, installed: List[str]) -> str:
    """The load error shown for a name in NFZOO_LOAD_PLUGINS that no installed plugin has (with the closest
    installed name)."""
    import difflib

    close = difflib.get_close_matches(name, installed, n=1, cutoff=0.5)
    return (f"not installed: {ALLOW_ENV} names {name!r} but no installed plugin has that name"
            + (f" (did you mean {close[0]!r}?)" if close else "") + f"; installed: {', '.join(installed)}")


class PluginRegistry:
    """Holds the plugin manager, the list of plugins (loaded or failed) and one registry per kind."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._loaded = False
        self.pm = pluggy.PluginManager("nfzoo")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: Dict[str, PluginInfo] = {}
        self._registries: Optional[Dict[str, Dict[str, Entry]]] = None

    # ---------------------------------------------------------------- loading
    def load(self) -> None:
        """Load the built-ins and every allowed plugin's entry point, once; a plugin that fails to import is
        recorded with its error, never raised."""
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            allow = os.environ.get(ALLOW_ENV)
            allowed = None if allow is None else {s.strip() for s in allow.split(",") if s.strip()}
            # the core's built-ins always load, through the same hooks as any plugin
            from nfzoo import __version__
            from nfzoo.registry import builtins as _builtins

            self._add("nfzoo", _builtins, __version__, "nfzoo.registry.builtins", True)
            eps = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
            installed = sorted({ep.name for ep in eps} | {"nfzoo"})
            for name in sorted((allowed or set()) - set(installed)):   # a typo would hide every plugin
                self.plugins[name] = PluginInfo(name, None, [], "", error=unknown_allowed_message(name, installed))
            for ep in eps:
                if ep.name in self.plugins:
                    continue
                builtin = False
                if allowed is not None and ep.name not in allowed:
                    continue
                dist = getattr(ep, "dist", None)
                version = dist.version if dist is not None else None
                try:
                    module = ep.load()
                except Exception as exc:  # a broken plugin is reported, never fatal
                    self.plugins[ep.name] = PluginInfo(
                        ep.name, version, [], ep.value, builtin=builtin,
                        error=f"{type(exc).__name__}: {exc}\n" + traceback.format_exc(limit=3))
                    continue
                self._add(ep.name, module, version, ep.value, builtin)

    def _add(self, name: str, module: Any, version: Optional[str], where: str, builtin: bool) -> None:
        try:
            self.pm.register(module, name=name)
        except ValueError as exc:
            self.plugins[name] = PluginInfo(name, version, [], where, builtin=builtin, error=str(exc))
            return
        hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or [])
        self.plugins[name] = PluginInfo(name, version, hooks, where, builtin=builtin)

    def unknown_allowed(self) -> List[str]:
        """The names in NFZOO_LOAD_PLUGINS that no installed plugin has (each is listed by `nfzoo plugins`
        with an error that names the installed ones)."""
        self.load()
        return [n for n, p in self.plugins.items() if p.error and p.error.startswith("not installed:")]

    def register_plugin(self, module: Any, name: str) -> None:
        """Register a plugin object by hand (tests, notebooks). Registries are rebuilt on next use."""
        self.load()
        with self._lock:
            self._add(name, module, None, getattr(module, "__name__", repr(module)), False)
            self._registries = None

    def unregister_plugin(self, name: str) -> None:
        """Forget a plugin and everything it registered."""
        with self._lock:
            plugin = self.pm.get_plugin(name)
            if plugin is not None:
                self.pm.unregister(plugin)
            self.plugins.pop(name, None)
            self._registries = None

    # ------------------------------------------------------------- registries
    def _build(self) -> Dict[str, Dict[str, Entry]]:
        self.load()
        with self._lock:
            if self._registries is not None:
                return self._registries
            regs: Dict[str, Dict[str, Entry]] = {k: {} for k in KINDS}
            for kind in KINDS:
                caller = getattr(self.pm.hook, f"register_{kind}")
                # pluggy calls in LIFO order; sort by plugin name so the order is stable
                for impl in sorted(caller.get_hookimpls(), key=lambda i: i.plugin_name):
                    impl.function(register=self._register_fn(regs[kind], kind, impl.plugin_name))
            self._registries = regs
            return regs

    @staticmethod
    def _register_fn(reg: Dict[str, Entry], kind: str, plugin: str) -> Callable[..., None]:
        def register(name: str, target: Any, **metadata: Any) -> None:
            if name in reg:
                other = reg[name].plugin
                raise PluginConflictError(
                    f"{SINGULAR[kind]} {name!r} is registered by two plugins: {other!r} and {plugin!r}. "
                    f"Uninstall one of them, or load only one with {ALLOW_ENV}=... ")
            reg[name] = Entry(kind, name, target, plugin, dict(metadata))
        return register

    def registry(self, kind: str) -> Dict[str, Entry]:
        """Name -> Entry of one kind ('bijectors', 'architectures', ...), from every loaded plugin."""
        return self._build()[kind]

    def get(self, kind: str, name: str) -> Entry:
        """The entry `name` of a kind; an UnknownNameError naming the closest names when there is none."""
        reg = self.registry(kind)
        if name not in reg:
            raise UnknownNameError(SINGULAR[kind], name, reg.keys(),
                                   hint="`nfzoo list --pretrained`" if kind == "pretrained" else "")
        return reg[name]

    def list(self, kind: str, pattern: str = "*") -> List[Entry]:
        """The entries of a kind whose names match the fnmatch `pattern`, sorted by name."""
        return [e for n, e in sorted(self.registry(kind).items()) if fnmatch.fnmatch(n, pattern)]

    def add_commands(self, app: Any) -> None:
        """Let every plugin add its typer commands to `app` (the `register_commands` hook)."""
        self.load()
        self.pm.hook.register_commands(app=app)


_REGISTRY = PluginRegistry()


def get_registry() -> PluginRegistry:
    """The process's PluginRegistry (`reset()` replaces it)."""
    return _REGISTRY


def reset() -> None:
    """Forget everything loaded (tests use it after changing NFZOO_LOAD_PLUGINS or installed plugins)."""
    global _REGISTRY
    importlib.invalidate_caches()
    _REGISTRY = PluginRegistry()
