"""Typed checks of the heads' options (from Python or `--set KEY=VALUE`, where a value may be any JSON or a
string): an integer or a finite number within bounds, else UsageError (exit 2) naming the option."""
from __future__ import annotations

import math
from typing import Any, Optional

from nfzoo.errors import UsageError


def int_option(name: str, value: Any, low: int = 0, high: Optional[int] = None) -> int:
    """`value` as an int in [low, high]; 3.0 counts as 3, "abc", 2.5, nan, inf and True do not."""
    ok = False
    if not isinstance(value, bool):
        if isinstance(value, int):
            ok = True
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value, ok = int(value), True
    rng = f"[{low}, {high}]" if high is not None else f">= {low}"
    if not ok or value < low or (high is not None and value > high):
        raise UsageError(f"{name} must be an integer {'in ' if high is not None else ''}{rng}, got {value!r}")
    return int(value)


def float_option(name: str, value: Any, low: Optional[float] = None, high: Optional[float] = None,
                 above: Optional[float] = None) -> float:
    """`value` as a finite float with low <= value <= high and value > above."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (low is None or v >= low) and (high is None or v <= high) and (above is None or v > above)
    if not ok:
        bounds = [b for b in (f">= {low:g}" if low is not None else "", f"> {above:g}" if above is not None
                              else "", f"<= {high:g}" if high is not None else "") if b]
        raise UsageError(f"{name} must be a finite number{' ' if bounds else ''}{' and '.join(bounds)}, got "
                         f"{value!r}")
    return float(value)
