"""Config limits: a config is checked before anything is allocated (one place for every architecture,
plugins' included).

1. `check_config`: the common keys have the right types and sane ranges (image_shape, levels, steps,
   hidden, blocks, num_classes), every number is finite and fits in 64 bits, nesting is shallow.
2. The size limits a model must fit (`max_params`, `max_activation_bytes`), which the shape build
   (nfzoo.loading.shape_build.plan_model) checks before anything is allocated:
       NFZOO_MAX_PARAMS          parameters + buffers of a model        (default 1e9)
       NFZOO_MAX_ACTIVATION_GB   estimated activations of one batch, GiB (default 64)
3. `check_weights_header`: the shapes and dtypes the model expects are compared with a safetensors
   file's header (no tensor data is read) before the real model is built.
Refusals are ConfigError (exit code 2) naming the key.
"""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Dict, Optional

from nfzoo.errors import ConfigError, CorruptFileError

if TYPE_CHECKING:   # for the annotation only: shape_build imports this module
    from nfzoo.loading.shape_build import ModelPlan

DEFAULT_MAX_PARAMS = 1_000_000_000
DEFAULT_MAX_ACTIVATION_GB = 64.0
MAX_DEPTH = 16                   # nesting of lists / objects in a config
MAX_ABS = 2 ** 63                # every number in a config fits in a signed 64-bit integer

# the common keys (DESIGN: the same for every image architecture): (lowest, highest) when present
INT_KEYS = {"levels": (1, 12), "steps": (1, 512), "hidden": (1, 65536), "blocks": (0, 64)}
MAX_CHANNELS, MAX_SIDE, MAX_CLASSES = 64, 4096, 100_000


def max_params() -> int:
    """The cap on a model's parameters and buffers: NFZOO_MAX_PARAMS (default 1e9)."""
    return int(_env_number("NFZOO_MAX_PARAMS", DEFAULT_MAX_PARAMS))


def max_activation_bytes() -> int:
    """The cap on one batch's activations, in bytes: NFZOO_MAX_ACTIVATION_GB (default 64) * 2^30."""
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


# ----------------------------------------------------------------- 3. weights against the config
FLOAT_CODES = {"F16", "BF16", "F32", "F64", "F8_E4M3", "F8_E5M2"}
_CODE = {"U8": "torch.uint8", "I8": "torch.int8", "I16": "torch.int16", "I32": "torch.int32",
         "I64": "torch.int64", "BOOL": "torch.bool", "U16": "torch.uint16", "U32": "torch.uint32",
         "U64": "torch.uint64"}


def name_mismatch(own, found) -> str:
    """'missing N tensors (e.g. ...); M unexpected tensors (e.g. ...)' comparing the names a model has
    (`own`) with those of a file (`found`); empty when they are the same."""
    missing = sorted(set(own) - set(found))
    unexpected = sorted(set(found) - set(own))
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
    return "; ".join(parts)


def check_weights_header(plan: ModelPlan, weights: os.PathLike, config_source: str) -> None:
    """The weights file's tensor names, shapes and dtypes against what the config builds, from the
    header alone: ConfigError naming the tensors and both files on a mismatch; CorruptFileError for a
    tensor of the wrong kind (integer or bool where the model has floats)."""
    from nfzoo.safeio import safetensors_header

    header = safetensors_header(weights)
    own = plan.state
    intro = (f"the weights in {weights} do not match the model that {config_source} builds "
             f"({plan.arch})")
    fix = " Check that the config belongs to these weights (or re-create them)."
    names = name_mismatch(own, header)
    if names:
        raise ConfigError(intro + ": " + names + "." + fix)
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
