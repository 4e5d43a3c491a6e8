"""torch.compile for nfzoo's hot paths, with an eager fallback that says why.

`compile_module(module, what)` compiles a module's forward (what the trainer calls); `compile_flow(model,
what)` compiles a FlowModel's bijector in both directions in place, so `model.sample` (through `decode`:
the bijector's inverse, and the forward of the denoising step) and `model.log_prob` / `model.bpd` (the
bijector's forward) run compiled while everything around them (preprocessing, label checks, the prior's
seeded draws, which graph-break) stays eager.

torch.compile is lazy: an unusable compiler shows up only when the compiled function is first called.
Every compiled callable here is therefore guarded: a call that fails in compilation runs eagerly instead,
and from then on that callable is eager; the reason is reported once (`on_fallback`, or a
`CompileFallbackWarning`). What can be known before any call (torch.compile itself refusing, no C++
compiler for the CPU, no Triton for CUDA) is returned at once as the reason string.

Shapes are compiled static (`dynamic=False`): a batch size is one graph, so sampling in chunks (250 and a
last, smaller one) or evaluating in batches (and a last one) makes two graphs per function, well under
torch._dynamo's recompile limit (8); past it Dynamo runs that function eagerly itself.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import warnings
from typing import Any, Callable, Optional, Tuple

import torch

from nfzoo import compat

Reporter = Callable[[str], None]


class CompileFallbackWarning(UserWarning):
    """torch.compile could not compile a function at its first call; it runs eagerly (the message says why)."""


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    line = next((t.strip() for t in text if t.strip()), "")
    line = line if len(line) <= limit else line[:limit - 3] + "..."
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _module_device(module: torch.nn.Module) -> torch.device:
    p = next(iter(module.parameters()), None)
    if p is None:
        p = next(iter(module.buffers()), None)
    return p.device if p is not None else torch.device("cpu")


def _cpp_compilers() -> Tuple[str, ...]:
    """The C++ compilers inductor looks for on the CPU (its config.cpp.cxx: $CXX as read when torch's inductor
    was imported, else g++; clang++ on macOS). torch._inductor.config is private (`compat.inductor_config`):
    when it or that setting is missing, this is a pre-check only, so its default is assumed ($CXX, else g++)
    and a compiler that is missing after all shows when the first call fails to compile (then eager)."""
    try:
        cxx = compat.inductor_config().cpp.cxx
        names = tuple(c for c in (cxx if isinstance(cxx, (list, tuple)) else (cxx,)) if c)
    except Exception:                       # noqa: BLE001 - an inductor without that setting: its default
        names = ()
    return names or (os.environ.get("CXX") or "g++",)


def unavailable_reason(device: Any = "cpu") -> Optional[str]:
    """Why torch.compile (inductor) cannot compile for `device` on this machine, or None when it should:
    the CPU back-end builds C++ (needs the compiler named by $CXX, else g++: `_cpp_compilers`), CUDA needs
    Triton."""
    kind = torch.device(device).type
    if kind == "cpu":
        names = _cpp_compilers()
        if not any(shutil.which(c) for c in names):
            return (f"torch.compile needs a C++ compiler on the CPU: {' or '.join(names)} not found (install g++ "
                    "or set CXX); running eager")
    elif kind == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "torch.compile needs Triton on CUDA: the triton package is not installed; running eager"
    return None


class GuardedCompiled:
    """A compiled callable that falls back to its eager original when compilation fails at a call.

    `GuardedCompiled(compiled, eager, what, on_fallback)(*args)` returns `compiled(*args)`; if that raises,
    the call is repeated eagerly: when the eager call succeeds, the compiled one is dropped for good
    (`fallback_reason` says why; `on_fallback` hears it once), and when it fails too, its error (the real
    one, e.g. a bad shape) is raised and nothing is dropped."""

    def __init__(self, compiled: Callable, eager: Callable, what: str, on_fallback: Optional[Reporter] = None):
        self.compiled: Optional[Callable] = compiled
        self.eager = eager
        self.what = what
        self.on_fallback = on_fallback
        self.fallback_reason: Optional[str] = None
        functools.update_wrapper(self, eager, updated=())

    @property
    def is_compiled(self) -> bool:
        """True while calls go through the compiled function (False once it fell back)."""
        return self.compiled is not None

    def __call__(self, *args, **kwargs):
        if self.compiled is None:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as exc:            # noqa: BLE001 - any compile failure: run eager, say why
            result = self.eager(*args, **kwargs)      # a real error of the inputs raises here, as eager would
            self.compiled = None
            self.fallback_reason = f"torch.compile failed for {self.what}: {_first_line(exc)}; running eager"
            _report(self.fallback_reason, self.on_fallback)
            return result


def _report(reason: str, on_fallback: Optional[Reporter]) -> None:
    if on_fallback is not None:
        on_fallback(reason)
    else:
        warnings.warn(reason, CompileFallbackWarning, stacklevel=3)


def compile_callable(fn: Callable, what: str, device: Any = "cpu", on_fallback: Optional[Reporter] = None,
                     **options: Any) -> Tuple[Callable, Optional[str]]:
    """`torch.compile(fn, dynamic=False, **options)` guarded by `GuardedCompiled`: (the guarded callable,
    None), or (fn itself, a one-line reason) when it cannot compile for `device` (see `unavailable_reason`)
    or torch.compile refuses it. `what` names the work in messages ("sample", "eval", "train")."""
    reason = unavailable_reason(device)
    if reason is not None:
        return fn, reason
    options.setdefault("dynamic", False)
    try:
        compiled = torch.compile(fn, **options)
    except Exception as exc:                # noqa: BLE001 - e.g. a Python that Dynamo does not support
        return fn, f"torch.compile is unavailable for {what}: {_first_line(exc)}; running eager"
    return GuardedCompiled(compiled, fn, what, on_fallback), None


def compile_module(module: torch.nn.Module, what: str, on_fallback: Optional[Reporter] = None
                   ) -> Tuple[Callable, Optional[str]]:
    """Compile `module`'s forward for the work `what` ("train", "sample", "eval": named in messages).

    Returns (callable, None): call it as you would call the module; or (module, reason) when it cannot
    compile, reason being one line such as "torch.compile needs a C++ compiler on the CPU: g++ not found
    (install g++ or set CXX); running eager". A compile failure at a later call (torch.compile is lazy)
    makes that call and all after it eager, and `on_fallback(reason)` is called once (without one, a
    `CompileFallbackWarning` is issued). The module is not changed; its parameters are shared."""
    fn, reason = compile_callable(module, what, _module_device(module), on_fallback)
    return (module if reason is not None else fn), reason


def compile_flow(model: torch.nn.Module, what: str, on_fallback: Optional[Reporter] = None) -> Optional[str]:
    """Compile the bijector of a FlowModel in place, both directions, for the work `what` ("sample",
    "eval"): `model.bijector.forward` (log_prob, bpd, encode, the denoising step's score) and
    `model.bijector.inverse` (decode, hence sample) become guarded compiled functions (see the module's
    docstring); `eager_flow(model)` undoes it. Returns None, or the one-line reason why it runs eager."""
    bij = model.bijector
    eager_flow(model)
    device = _module_device(model)
    reasons = []
    for name in ("forward", "inverse"):
        fn, reason = compile_callable(getattr(bij, name), f"{what}, bijector {name}", device, on_fallback)
        if reason is not None:
            reasons.append(reason)
            continue
        object.__setattr__(bij, name, fn)        # an instance attribute: shadows the class's method
    return reasons[0] if reasons else None


def eager_flow(model: torch.nn.Module) -> None:
    """Undo `compile_flow`: the bijector's forward and inverse are its class's methods again."""
    bij = model.bijector
    for name in ("forward", "inverse"):
        if isinstance(bij.__dict__.get(name), GuardedCompiled):
            del vars(bij)[name]


def compiled_state(model: torch.nn.Module) -> Optional[bool]:
    """None when `compile_flow` was not applied to `model`; True while both directions still run compiled;
    False once either fell back to eager (its `fallback_reason` says why)."""
    parts = [model.bijector.__dict__.get(n) for n in ("forward", "inverse")]
    parts = [p for p in parts if isinstance(p, GuardedCompiled)]
    if not parts:
        return None
    return all(p.is_compiled for p in parts)
