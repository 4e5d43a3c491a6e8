"""The private torch and huggingface_hub APIs nfzoo uses, in one place, each behind a small accessor.

nfzoo relies on a few names that torch and huggingface_hub do not promise to keep (underscore modules and
attributes, a private keyword of `make_fx`, torch.fx.experimental's symbolic shapes). Every one of them is
reached through this module, and only through it (tests/test_compat.py checks the sources), so that:

- the versions they were checked with are written down (`CHECKED`);
- on another version, a name that moved or went away fails at once with a `CompatError` naming the missing
  API, the version installed, the version checked and the fix, instead of silently or far from the cause.

`missing()` resolves every accessor and returns the problems (an empty list on a checked version).
Accessors import lazily (this module is torch-free until one is called) and keep the modules they imported.

Where each one is used:
    torch.utils._pytree (tree_leaves, tree_map)              export_trace, shape_build
    torch.utils._python_dispatch (TorchDispatchMode,
        _disable_current_modes)                              export_trace (FoldConstants)
    torch._subclasses.fake_tensor (FakeTensor, FakeTensorMode),
    torch.fx.experimental.symbolic_shapes (ShapeEnv, DimDynamic,
        StatelessSymbolicContext, SymInt.node.expr)           export_trace (fake inputs, symbolic batch)
    torch._dispatch.python.enable_python_dispatcher,
    make_fx(_allow_non_fake_inputs=True), torch._decomp      export_trace (trace)
    torch.distributions.Distribution._validate_args          export_trace (validation off while tracing)
    torch.utils._device._device_constructors, Tensor._base   shape_build (the allocation budget)
    torch._inductor.config (cpp.cxx)                         compiling (which C++ compiler inductor needs)
    torch._logging.set_logs                                  pipeline.compile_model (`--compile`: Dynamo's logs)
    huggingface_hub.utils._http (_GLOBAL_CLIENT_FACTORY,
        default_client_factory, its logger's name)           hub_http (hooks on the client factory)
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Dict, List, Tuple

from nfzoo.errors import NfzooError

CHECKED: Dict[str, str] = {"torch": "2.14.1", "huggingface_hub": "2.5.0"}
"""The versions of torch and huggingface_hub whose private APIs this module was checked against."""


class CompatError(NfzooError):
    """A private torch / huggingface_hub API that nfzoo uses is missing from the installed version (exit code
    1). The message names the API, the installed and the checked version, and the fix."""

    exit_code = 1

    def __init__(self, api: str, package: str, detail: str = ""):
        installed = installed_version(package)
        checked = CHECKED.get(package, "?")
        msg = (f"nfzoo needs {api}, a private {package} API, and the installed {package} {installed} does not "
               f"have it{' (' + detail + ')' if detail else ''}. nfzoo's use of it was checked with {package} "
               f"{checked} (nfzoo.compat.CHECKED): install that version (pip install '{package}=={checked}'), "
               f"or update nfzoo/compat.py for {package} {installed}.")
        super().__init__(msg)
        self.api, self.package, self.installed, self.checked = api, package, installed, checked
        self._detail = detail

    def __reduce__(self):   # pickled (e.g. from a worker process) with the arguments it was made from
        return type(self), (self.api, self.package, self._detail)


def installed_version(package: str) -> str:
    """The installed version of `package` (its __version__), or "(not installed)"."""
    try:
        return str(getattr(importlib.import_module(package), "__version__", "?")).split("+")[0]
    except ImportError:
        return "(not installed)"


_modules: Dict[str, Any] = {}
_checked: set = set()


def clear_cache() -> None:
    """Forget the modules the accessors imported and the checks they made (for tests that take an API
    away)."""
    _modules.clear()
    _checked.clear()


def _module(module: str, api: str, package: str) -> Any:
    if module not in _modules:
        try:
            _modules[module] = importlib.import_module(module)
        except ImportError as exc:
            raise CompatError(api, package, f"no module {module}: {exc}") from None
    return _modules[module]


def _private(module: str, name: str, package: str = "torch") -> Any:
    """`module.name` (the module imported on first use, the name read at each call: some are mutable
    globals); CompatError naming it when the module or the name is missing."""
    mod = _module(module, f"{module}.{name}", package)
    try:
        return getattr(mod, name)
    except AttributeError:
        raise CompatError(f"{module}.{name}", package) from None


# ------------------------------------------------------------------------------ torch: pytrees
def tree_leaves(tree: Any) -> list:
    """torch.utils._pytree.tree_leaves: the leaves of nested lists / tuples / dicts."""
    return _private("torch.utils._pytree", "tree_leaves")(tree)


def tree_map(fn: Callable, tree: Any) -> Any:
    """torch.utils._pytree.tree_map: `tree` with every leaf replaced by fn(leaf)."""
    return _private("torch.utils._pytree", "tree_map")(fn, tree)


# ------------------------------------------------------------------------------ torch: tracing
def torch_dispatch_mode() -> type:
    """torch.utils._python_dispatch.TorchDispatchMode, the base of a dispatch mode (FoldConstants)."""
    return _private("torch.utils._python_dispatch", "TorchDispatchMode")


def disable_current_modes():
    """torch.utils._python_dispatch._disable_current_modes(): a context in which no dispatch mode is active."""
    return _private("torch.utils._python_dispatch", "_disable_current_modes")()


def fake_tensor_class() -> type:
    """torch._subclasses.fake_tensor.FakeTensor (a tensor with metadata and no data)."""
    return _private("torch._subclasses.fake_tensor", "FakeTensor")


def fake_tensor_mode(**kwargs: Any):
    """torch._subclasses.fake_tensor.FakeTensorMode(**kwargs)."""
    return _private("torch._subclasses.fake_tensor", "FakeTensorMode")(**kwargs)


def symbolic_shapes() -> Tuple[type, type, type]:
    """(ShapeEnv, DimDynamic, StatelessSymbolicContext) of torch.fx.experimental.symbolic_shapes."""
    mod = "torch.fx.experimental.symbolic_shapes"
    return _private(mod, "ShapeEnv"), _private(mod, "DimDynamic"), _private(mod, "StatelessSymbolicContext")


def symbolic_expr(value: Any) -> Any:
    """The sympy expression of a SymInt (`value.node.expr`, torch.fx.experimental's symbolic node)."""
    try:
        return value.node.expr
    except AttributeError:
        raise CompatError("torch.SymInt.node.expr", "torch") from None


def enable_python_dispatcher():
    """torch._dispatch.python.enable_python_dispatcher(): a context in which Python decompositions run."""
    return _private("torch._dispatch.python", "enable_python_dispatcher")()


def get_decompositions(ops: list) -> Dict[Any, Callable]:
    """torch._decomp.get_decompositions(ops): the Python references of the given aten ops."""
    return _private("torch._decomp", "get_decompositions")(ops)


def make_fx_allowing_real_inputs(fn: Callable, **kwargs: Any) -> Callable:
    """torch.fx.experimental.proxy_tensor.make_fx(fn, _allow_non_fake_inputs=True, **kwargs): a tracer that
    lets real tensors (weights, constants) meet fake ones."""
    make_fx = _private("torch.fx.experimental.proxy_tensor", "make_fx")
    if "make_fx" not in _checked:
        try:
            params = inspect.signature(make_fx).parameters
        except (TypeError, ValueError):
            params = {}
        if "_allow_non_fake_inputs" not in params:
            raise CompatError("the keyword _allow_non_fake_inputs of torch.fx.experimental.proxy_tensor.make_fx",
                              "torch")
        _checked.add("make_fx")
    return make_fx(fn, _allow_non_fake_inputs=True, **kwargs)


def default_validate_args() -> bool:
    """torch.distributions.Distribution._validate_args: whether distributions check their arguments by default
    (the setter, Distribution.set_default_validate_args, is public; this getter is not)."""
    from torch.distributions import Distribution

    value = getattr(Distribution, "_validate_args", None)
    if not isinstance(value, bool):
        raise CompatError("torch.distributions.Distribution._validate_args", "torch")
    return value


# ------------------------------------------------------------------------------ torch: shape build
def device_constructors() -> frozenset:
    """torch.utils._device._device_constructors(): torch's factory functions (torch.empty, zeros, randn, ...),
    the functions that take a `device`."""
    return frozenset(_private("torch.utils._device", "_device_constructors")())


def view_base(tensor: Any) -> Any:
    """Tensor._base: the tensor a view was made from, None for a tensor with its own storage."""
    try:
        return tensor._base
    except AttributeError:
        raise CompatError("torch.Tensor._base", "torch") from None


# ------------------------------------------------------------------------------ torch: compile
def inductor_config() -> Any:
    """torch._inductor.config (its cpp.cxx names the C++ compiler inductor builds CPU kernels with)."""
    return _module("torch._inductor.config", "torch._inductor.config", "torch")


def quiet_dynamo_logs() -> None:
    """torch._logging.set_logs(dynamo=logging.ERROR): Dynamo's notes on graph breaks (which cost speed, not
    correctness) are not printed; TORCH_LOGS still overrides this (the caller leaves it alone when set)."""
    import logging

    _private("torch._logging", "set_logs")(dynamo=logging.ERROR)


# ------------------------------------------------------------------------------ huggingface_hub
HF_HTTP = "huggingface_hub.utils._http"


def hf_client_factory() -> Callable:
    """The client factory huggingface_hub makes its HTTP clients with now (huggingface_hub.utils._http's
    _GLOBAL_CLIENT_FACTORY, else its default_client_factory); `set_client_factory` is the public setter."""
    current = _private(HF_HTTP, "_GLOBAL_CLIENT_FACTORY", "huggingface_hub")
    return current if current is not None else _private(HF_HTTP, "default_client_factory", "huggingface_hub")


def hf_http_logger_name() -> str:
    """The name of the logger of huggingface_hub's HTTP module (it logs "Trying to resume download...")."""
    return _module(HF_HTTP, HF_HTTP, "huggingface_hub").__name__


# ------------------------------------------------------------------------------ checks
ACCESSORS: Dict[str, Callable[[], Any]] = {
    "torch.utils._pytree.tree_leaves": lambda: tree_leaves([1]),
    "torch.utils._pytree.tree_map": lambda: tree_map(lambda v: v, [1]),
    "torch.utils._python_dispatch.TorchDispatchMode": torch_dispatch_mode,
    "torch.utils._python_dispatch._disable_current_modes":
        lambda: _private("torch.utils._python_dispatch", "_disable_current_modes"),
    "torch._subclasses.fake_tensor.FakeTensor": fake_tensor_class,
    "torch._subclasses.fake_tensor.FakeTensorMode": lambda: _private("torch._subclasses.fake_tensor",
                                                                     "FakeTensorMode"),
    "torch.fx.experimental.symbolic_shapes": symbolic_shapes,
    "torch._dispatch.python.enable_python_dispatcher": lambda: _private("torch._dispatch.python",
                                                                        "enable_python_dispatcher"),
    "torch._decomp.get_decompositions": lambda: _private("torch._decomp", "get_decompositions"),
    "make_fx(_allow_non_fake_inputs=True)": lambda: make_fx_allowing_real_inputs(lambda: None),
    "torch.distributions.Distribution._validate_args": default_validate_args,
    "torch.utils._device._device_constructors": device_constructors,
    "torch.Tensor._base": lambda: view_base(__import__("torch").zeros(1)),
    "torch._inductor.config": inductor_config,
    "torch._logging.set_logs": lambda: _private("torch._logging", "set_logs"),
    "huggingface_hub.utils._http client factory": hf_client_factory,
    "huggingface_hub.utils._http logger": hf_http_logger_name,
}
"""Each private API and a call that resolves it (without side effects), for `missing()`."""


def missing() -> List[str]:
    """The messages of the private APIs the installed torch / huggingface_hub lack ([] when all are there)."""
    problems = []
    for resolve in ACCESSORS.values():
        try:
            resolve()
        except CompatError as exc:
            problems.append(str(exc))
    return problems
