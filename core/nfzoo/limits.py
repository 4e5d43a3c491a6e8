"""Config limits: a config is checked before anything is allocated (one place for every architecture,
plugins' included).

1. `check_config`: the common keys have the right types and sane ranges (image_shape, levels, steps,
   hidden, blocks, num_classes), every number is finite and fits in 64 bits, nesting is shallow.
2. `plan_model`: the builder runs once as a *shape build*: torch's factory functions (torch.empty, zeros,
   randn, ...) are intercepted; each one's size is learned on the `meta` device first and counted against
   a budget before anything is allocated, and large tensors stay on `meta` (small ones are real, so a
   builder may read them). The parameters and buffers are counted and the activation memory of one batch
   is estimated, against limits:
       NFZOO_MAX_PARAMS          parameters + buffers of a model        (default 1e9)
       NFZOO_MAX_ACTIVATION_GB   estimated activations of one batch, GiB (default 64)
   A builder that cannot run with tensors on `meta` (it reads a large tensor's values) is built for real
   under the same budget, so it can allocate at most about NFZOO_MAX_PARAMS numbers before it is refused.
   The number of modules a build creates is capped too, so a config cannot make a build loop for minutes.
3. `check_weights_header`: the shapes and dtypes the model expects are compared with a safetensors
   file's header (no tensor data is read) before the real model is built.
Refusals are ConfigError (exit code 2) naming the key.
"""
from __future__ import annotations

import inspect
import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

from .errors import ConfigError, CorruptFileError

DEFAULT_MAX_PARAMS = 1_000_000_000
DEFAULT_MAX_ACTIVATION_GB = 64.0
MAX_MODULES = 20_000             # modules one build may create (a bound on the time a build takes)
MAX_DEPTH = 16                   # nesting of lists / objects in a config
MAX_ABS = 2 ** 63                # every number in a config fits in a signed 64-bit integer
META_ABOVE = 1 << 16             # shape build: tensors of at least this many elements stay on `meta`

# the common keys (DESIGN: the same for every image architecture): (lowest, highest) when present
INT_KEYS = {"levels": (1, 12), "steps": (1, 512), "hidden": (1, 65536), "blocks": (0, 64)}
MAX_CHANNELS, MAX_SIDE, MAX_CLASSES = 64, 4096, 100_000


def max_params() -> int:
    return int(_env_number("NFZOO_MAX_PARAMS", DEFAULT_MAX_PARAMS))


def max_activation_bytes() -> int:
    return int(_env_number("NFZOO_MAX_ACTIVATION_GB", DEFAULT_MAX_ACTIVATION_GB) * 2 ** 30)


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}={raw!r} must be a positive number (unset it for the default {default:g})")
    return value


def _where(source: Optional[str]) -> str:
    return f"{source}: " if source else ""


def _first_line(exc: BaseException) -> str:
    """An exception's message without a C++ backtrace (torch appends one to some of its errors)."""
    text = str(exc).strip().split("\n")[0].strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# ----------------------------------------------------------------- 1. types and ranges
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and math.isfinite(v) \
        and v.is_integer()


def check_numbers(value: Any, source: Optional[str] = None, key: str = "config") -> None:
    """Every number finite and below 2^63 in absolute value, nesting at most MAX_DEPTH deep (iterative:
    a deeply nested document cannot exhaust the stack)."""
    stack = [(value, key, 0)]
    while stack:
        v, k, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{_where(source)}{k} is nested more than {MAX_DEPTH} levels deep; a model "
                              "config is flat (numbers, strings, short lists). Fix or re-create the config.")
        if isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        if isinstance(v, (int, float)):
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{_where(source)}{k} is {v}; config values must be finite numbers.")
            if abs(v) >= MAX_ABS:
                raise ConfigError(f"{_where(source)}{k} = {v:g} is beyond any sane setting (|value| must be "
                                  "below 2^63).")
        elif isinstance(v, dict):
            stack.extend((item, f"{k}.{name}", depth + 1) for name, item in v.items())
        elif isinstance(v, (list, tuple)):
            stack.extend((item, f"{k}[{i}]", depth + 1) for i, item in enumerate(v))


def check_config(arch: str, config: Dict[str, Any], source: Optional[str] = None) -> Dict[str, Any]:
    """Type and range checks of the common keys (when present) and of every number; returns the config
    with integral floats of those keys made ints (64.0 -> 64)."""
    check_numbers(config, source, key=f"{arch} config")
    out = dict(config)
    where = _where(source)
    if "image_shape" in out:
        shape = out["image_shape"]
        ok = isinstance(shape, (list, tuple)) and len(shape) == 3 and all(_is_int(s) and s >= 1 for s in shape)
        if not ok:
            raise ConfigError(f"{where}image_shape of {arch} must be [channels, height, width], three integers "
                              f">= 1; got {shape!r}")
        c, h, w = (int(s) for s in shape)
        if c > MAX_CHANNELS or h > MAX_SIDE or w > MAX_SIDE:
            raise ConfigError(f"{where}image_shape {[c, h, w]} of {arch} is too large: at most {MAX_CHANNELS} "
                              f"channels and {MAX_SIDE} pixels a side. Resize the images.")
        out["image_shape"] = [c, h, w]
    for key, (lo, hi) in INT_KEYS.items():
        if key not in out:
            continue
        v = out[key]
        if not _is_int(v) or not lo <= v <= hi:
            raise ConfigError(f"{where}{key} of {arch} must be an integer in [{lo}, {hi}], got {v!r}")
        out[key] = int(v)
    if "num_classes" in out and out["num_classes"] is not None:
        v = out["num_classes"]
        if not _is_int(v) or not 1 <= v <= MAX_CLASSES:
            raise ConfigError(f"{where}num_classes of {arch} must be null (unconditional) or an integer in "
                              f"[1, {MAX_CLASSES}], got {v!r}")
        out["num_classes"] = int(v)
    return out


# ----------------------------------------------------------------- 2. the shape build
_state = threading.local()


def planning() -> bool:
    """True inside a shape build (a builder that builds another architecture is counted as a whole)."""
    return getattr(_state, "depth", 0) > 0


def _constructors():
    try:
        from torch.utils._device import _device_constructors

        return _device_constructors()
    except Exception:  # a torch without the private helper: the common factory functions
        import torch

        return {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
                torch.randperm, torch.arange, torch.linspace, torch.logspace, torch.eye, torch.tensor,
                torch.as_tensor}


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
            if func not in _constructors():
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
    from torch.utils._pytree import tree_leaves

    return [t for t in tree_leaves(obj) if isinstance(t, torch.Tensor)]


def _new_bytes(out, args, kwargs) -> int:
    """Bytes of the tensors in `out` that are new storage (not an input returned in place, not a view)."""
    inputs = {id(t) for t in _tensors((args, kwargs))}
    return sum(t.numel() * t.element_size() for t in _tensors(out)
               if id(t) not in inputs and t._base is None and t.device.type != "meta")


def _meta_output_bytes(func, args, kwargs) -> Optional[int]:
    """The bytes an operation would allocate, from a run on `meta` copies of its tensors (no data); None
    when it cannot run on `meta`."""
    import torch
    from torch.utils._pytree import tree_map

    if not _tensors((args, kwargs)):
        return None
    try:
        def meta(x):
            if isinstance(x, torch.Tensor):
                return x if x.device.type == "meta" else x.detach().to("meta")
            return None if isinstance(x, torch.Generator) else x
        margs, mkwargs = tree_map(meta, (args, kwargs))
        mkwargs = {k: v for k, v in mkwargs.items() if not (k == "generator" and v is None)}
        out = func(*margs, **mkwargs)
    except Exception:
        return None
    inputs = {id(t) for t in _tensors((margs, mkwargs))}
    return sum(t.numel() * t.element_size() for t in _tensors(out) if id(t) not in inputs and t._base is None)


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


def _activation_bytes(model, image_shape) -> int:
    """A rough estimate of the activations one image keeps for the backward pass: every convolution's
    output at the resolution after the first 2x2 squeeze (H*W/4 positions), every other layer with
    parameters one image-sized tensor, float32."""
    import torch

    if not image_shape:
        return 0
    c, h, w = (int(s) for s in image_shape)
    d, positions = c * h * w, max(1, h * w // 4)
    elems = d
    for m in model.modules():
        if next(m.children(), None) is not None or next(m.parameters(recurse=False), None) is None:
            continue
        out_ch = getattr(m, "out_channels", None)
        if isinstance(m, torch.nn.modules.conv._ConvNd) and isinstance(out_ch, int):
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

    def refuse(exc: BudgetExceeded):
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
            except ConfigError:
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


# ----------------------------------------------------------------- 3. weights against the config
FLOAT_CODES = {"F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2"}
_CODE = {"U8": "torch.uint8", "I8": "torch.int8", "I16": "torch.int16", "I32": "torch.int32",
         "I64": "torch.int64", "BOOL": "torch.bool", "U16": "torch.uint16", "U32": "torch.uint32",
         "U64": "torch.uint64"}


def check_weights_header(plan: ModelPlan, weights: os.PathLike, config_source: str) -> None:
    """The weights file's tensor names, shapes and dtypes against what the config builds, from the
    header alone: ConfigError naming the tensors and both files on a mismatch; CorruptFileError for a
    tensor of the wrong kind (integer or bool where the model has floats)."""
    from .safeio import safetensors_header

    header = safetensors_header(weights)
    own = plan.state
    missing = sorted(set(own) - set(header))
    unexpected = sorted(set(header) - set(own))
    intro = (f"the weights in {weights} do not match the model that {config_source} builds "
             f"({plan.arch})")
    fix = " Check that the config belongs to these weights (or re-create them)."
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
        raise ConfigError(intro + ": " + "; ".join(parts) + "." + fix)
    bad = [f"{k}: file {list(header[k][0])} vs config {list(shape)}" for k, (shape, _) in own.items()
           if tuple(header[k][0]) != tuple(shape)]
    if bad:
        raise ConfigError(f"{intro}: {len(bad)} tensors have other shapes ({'; '.join(bad[:3])}).{fix}")
    for k, (_, dtype) in own.items():
        code = header[k][1]
        if dtype.is_floating_point and code not in FLOAT_CODES:
            raise CorruptFileError(f"tensor {k} in {weights} has dtype {code}, but the model's is {dtype}: "
                                   "weights must be floating point; the file was not loaded.")
        if not dtype.is_floating_point and _CODE.get(code) != str(dtype):
            raise CorruptFileError(f"tensor {k} in {weights} has dtype {code}, but the model's is {dtype}; "
                                   "the file was not loaded.")
