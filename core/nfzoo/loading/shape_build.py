"""The shape build: a config's model is built once without allocating it, and its size is checked against
the limits (nfzoo.loading.limits) before the real model is built.

`plan_model` runs the builder with torch's factory functions (torch.empty, zeros, randn, ...)
intercepted; each one's size is learned on the `meta` device first and counted against a budget before
anything is allocated, and large tensors stay on `meta` (small ones are real, so a builder may read them).
The parameters and buffers are counted and the activation memory of one batch is estimated, against
    NFZOO_MAX_PARAMS          parameters + buffers of a model        (default 1e9)
    NFZOO_MAX_ACTIVATION_GB   estimated activations of one batch, GiB (default 64)
A builder that cannot run with tensors on `meta` (it reads a large tensor's values) is built for real
under the same budget, so it can allocate at most about NFZOO_MAX_PARAMS numbers before it is refused.
The number of modules a build creates is capped too, so a config cannot make a build loop for minutes.
Refusals are ConfigError (exit code 2) naming the likely key.
"""
from __future__ import annotations

import inspect
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, NoReturn, Optional, Tuple

from nfzoo import compat
from nfzoo.errors import ConfigError
from nfzoo.loading.limits import _where, max_activation_bytes, max_params

MAX_MODULES = 20_000             # modules one build may create (a bound on the time a build takes)
META_ABOVE = 1 << 16             # tensors of at least this many elements stay on `meta`

_state = threading.local()


def planning() -> bool:
    """True inside a shape build (a builder that builds another architecture is counted as a whole)."""
    return getattr(_state, "depth", 0) > 0


class BudgetExceeded(ConfigError):
    """A build would allocate more bytes, or create more modules, than the limits allow."""

    def __init__(self, message: str, modules: bool = False):
        super().__init__(message)
        self.modules = modules


def _guard_mode(budget: int, meta_above: Optional[int]):
    """A TorchFunctionMode that counts the bytes a build allocates. Factory functions (torch.empty, zeros,
    randn, ...) have their result's size learned on `meta` first and are refused before allocating; with
    `meta_above`, results of at least that many elements are returned on `meta` (a shape build); without
    it (a real build) the outputs of all other torch operations are counted too."""
    import torch
    from torch.overrides import TorchFunctionMode

    data_ctors = {torch.tensor, torch.as_tensor, torch.asarray, torch.scalar_tensor}
    constructors = compat.device_constructors()      # torch's factory functions (a private list)

    class Guard(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.bytes = 0

        def _add(self, n: int) -> None:
            self.bytes += n
            if self.bytes > budget:
                raise BudgetExceeded(f"allocate more than {_human(budget)}")

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func not in constructors:
                if meta_above is not None:
                    return func(*args, **kwargs)
                # a real build: every operation's new tensors are counted, before they are allocated
                # when the operation can run on `meta` (its output's shape does not depend on values)
                size = _meta_output_bytes(func, args, kwargs)
                if size is not None:
                    self._add(size)
                out = func(*args, **kwargs)
                if size is None:
                    self._add(_new_bytes(out, args, kwargs))
                return out
            if func in data_ctors or "out" in kwargs:   # from data already in memory
                out = func(*args, **kwargs)
                self._add(_new_bytes(out, args, kwargs))
                return out
            probe_kw = {k: v for k, v in kwargs.items() if k not in ("generator", "pin_memory")}
            probe_kw["device"] = "meta"
            probe = func(*args, **probe_kw)
            self._add(probe.numel() * probe.element_size())
            dev = kwargs.get("device")
            if meta_above is not None and (probe.numel() >= meta_above or (dev is not None and
                                                                            torch.device(dev).type == "meta")):
                return probe
            return func(*args, **kwargs)

    return Guard()


def _human(n: float) -> str:
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def _tensors(obj) -> list:
    import torch

    return [t for t in compat.tree_leaves(obj) if isinstance(t, torch.Tensor)]


def _new_bytes(out, args, kwargs) -> int:
    """Bytes of the tensors in `out` that are new storage (not an input returned in place, not a view)."""
    inputs = {id(t) for t in _tensors((args, kwargs))}
    return sum(t.numel() * t.element_size() for t in _tensors(out)
               if id(t) not in inputs and compat.view_base(t) is None and t.device.type != "meta")


def _meta_output_bytes(func, args, kwargs) -> Optional[int]:
    """The bytes an operation would allocate, from a run on `meta` copies of its tensors (no data); None
    when it cannot run on `meta`."""
    import torch

    if not _tensors((args, kwargs)):
        return None
    try:
        def meta(x):
            if isinstance(x, torch.Tensor):
                return x if x.device.type == "meta" else x.detach().to("meta")
            return None if isinstance(x, torch.Generator) else x
        margs, mkwargs = compat.tree_map(meta, (args, kwargs))
        mkwargs = {k: v for k, v in mkwargs.items() if not (k == "generator" and v is None)}
        out = func(*margs, **mkwargs)
    except Exception:
        return None
    inputs = {id(t) for t in _tensors((margs, mkwargs))}
    return sum(t.numel() * t.element_size() for t in _tensors(out)
               if id(t) not in inputs and compat.view_base(t) is None)


@contextmanager
def _module_cap() -> Iterator[None]:
    from torch.nn.modules.module import register_module_module_registration_hook

    owner = threading.get_ident()
    count = [0]

    def hook(module, name, submodule):
        if threading.get_ident() == owner:
            count[0] += 1
            if count[0] > MAX_MODULES:
                raise BudgetExceeded(f"create more than {MAX_MODULES:,} modules", modules=True)
        return None

    handle = register_module_module_registration_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@dataclass
class ModelPlan:
    """What a config builds, learned without allocating it: parameter and buffer counts, the estimated
    activation bytes of one image, and the state dict's {name: (shape, dtype)}. `model` is the real model
    when the builder had to run for real (it cannot run on `meta`), else None."""
    arch: str
    config: Dict[str, Any]
    parameters: int
    buffers: int
    activation_bytes_per_image: int
    state: Dict[str, Tuple[Tuple[int, ...], Any]] = field(default_factory=dict)
    model: Any = None


def _convolutions() -> tuple:
    """torch's convolution layers (the public subclasses of its private _ConvNd; the Lazy ones subclass them)."""
    from torch import nn

    return (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _activation_bytes(model, image_shape) -> int:
    """A rough estimate of the activations one image keeps for the backward pass: every convolution's
    output at the resolution after the first 2x2 squeeze (H*W/4 positions), every other layer with
    parameters one image-sized tensor, float32."""
    if not image_shape:
        return 0
    convs = _convolutions()
    c, h, w = (int(s) for s in image_shape)
    d, positions = c * h * w, max(1, h * w // 4)
    elems = d
    for m in model.modules():
        if next(m.children(), None) is not None or next(m.parameters(recurse=False), None) is None:
            continue
        out_ch = getattr(m, "out_channels", None)
        if isinstance(m, convs) and isinstance(out_ch, int):
            elems += out_ch * positions
        else:
            elems += d
    return 4 * elems


def _culprit(builder: Callable, config: Dict[str, Any], keys: Optional[Tuple[str, ...]] = None) -> str:
    """The config key that most exceeds its default (by ratio): the likely cause of a size refusal."""
    try:
        defaults = {k: p.default for k, p in inspect.signature(builder).parameters.items()
                    if p.default is not inspect.Parameter.empty}
    except (TypeError, ValueError):
        defaults = {}

    def size(v):
        if isinstance(v, bool):
            return None
        if isinstance(v, (int, float)):
            return float(abs(v))
        if isinstance(v, (list, tuple)) and v and all(isinstance(i, (int, float)) and not isinstance(i, bool)
                                                      for i in v):
            return float(math.prod(abs(i) for i in v))
        return None

    best, best_ratio = None, 0.0
    for k, v in config.items():
        if keys is not None and k not in keys:
            continue
        now, base = size(v), size(defaults.get(k))
        if now is None:
            continue
        ratio = now / base if base else now
        if ratio > best_ratio:
            best, best_ratio = k, ratio
    if best is None:
        return ""
    default = defaults.get(best)
    return f"; most likely `{best}` ({config[best]!r}" + (f", the default is {default!r})" if default is not None
                                                          else ")")


def plan_model(arch: str, builder: Callable, kwargs: Dict[str, Any], config: Dict[str, Any], batch: int = 1,
               source: Optional[str] = None) -> ModelPlan:
    """Run the builder as a shape build (see the module's docstring) and check the model's size against
    NFZOO_MAX_PARAMS and its activations for a batch of `batch` images against NFZOO_MAX_ACTIVATION_GB."""
    import torch

    limit = max_params()
    act_limit = max_activation_bytes()
    where = _where(source)
    help_ = ("Lower it, or raise the limit with NFZOO_MAX_PARAMS=N if this machine has the memory.")

    def refuse(exc: BudgetExceeded) -> NoReturn:
        if exc.modules:   # a count of layers, not their size
            counts = tuple(k for k in config if k not in ("image_shape", "hidden"))
            raise ConfigError(f"{where}building {arch} with this config would {exc} (the most a model may "
                              f"have){_culprit(builder, config, counts)}. Use fewer steps, levels or blocks."
                              ) from None
        raise ConfigError(f"{where}building {arch} with this config would {exc} (the limit is "
                          f"{limit:.3g} parameters and buffers){_culprit(builder, config)}. {help_}") from None

    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        model = shape_model = None
        for meta_above in (META_ABOVE, 1 << 24):
            try:
                with torch.random.fork_rng(devices=[]), _module_cap(), _guard_mode(8 * limit, meta_above):
                    shape_model = builder(**kwargs)
                break
            except BudgetExceeded as exc:
                refuse(exc)
            except (ConfigError, compat.CompatError):
                raise
            except Exception:
                continue   # the builder reads the values of a tensor left on `meta`
        if shape_model is None:   # build it for real, every allocation counted
            try:
                with _module_cap(), _guard_mode(4 * limit, None):
                    model = shape_model = builder(**kwargs)
            except BudgetExceeded as exc:
                refuse(exc)
    finally:
        _state.depth -= 1
    params = {id(p): p.numel() for p in shape_model.parameters()}
    bufs = {id(b): b.numel() for b in shape_model.buffers()}
    n_params, n_bufs = sum(params.values()), sum(bufs.values())
    if n_params + n_bufs > limit:
        raise ConfigError(f"{where}{arch} with this config has {n_params:,} parameters and {n_bufs:,} buffer "
                          f"numbers, over the limit of {limit:.3g}{_culprit(builder, config)}. {help_}")
    per_image = _activation_bytes(shape_model, config.get("image_shape"))
    if per_image * max(1, batch) > act_limit:
        gib = per_image * max(1, batch) / 2 ** 30
        raise ConfigError(
            f"{where}{arch} with this config needs about {gib:,.1f} GiB of activations for a batch of {batch} "
            f"image(s), over the limit of {act_limit / 2 ** 30:g} GiB"
            f"{_culprit(builder, config, ('image_shape', 'hidden', 'steps', 'levels', 'blocks'))}. Use smaller "
            "images or a smaller model" + (" or batch" if batch > 1 else "")
            + ", or raise the limit with NFZOO_MAX_ACTIVATION_GB=N.")
    state = {k: (tuple(v.shape), v.dtype) for k, v in shape_model.state_dict().items()}
    return ModelPlan(arch, config, n_params, n_bufs, per_image, state, model)
