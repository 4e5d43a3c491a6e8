"""The Hub settings nfzoo reads from the environment, at call time (huggingface_hub reads some of them at
import): HF_ENDPOINT, HF_HUB_CACHE (HF_HOME, XDG_CACHE_HOME), HF_HUB_OFFLINE and NFZOO_HUB_TIMEOUT.
Torch-free; imports nothing beyond the standard library and nfzoo's errors.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from nfzoo.constants import DEFAULT_ENDPOINT, DEFAULT_TIMEOUT, TIMEOUT_ENV
from nfzoo.errors import UsageError

_TRUE = {"1", "ON", "YES", "TRUE"}


def endpoint() -> str:
    """HF_ENDPOINT without a trailing slash, else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def cache_dir() -> Path:
    """HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (as huggingface_hub resolves it)."""
    env = os.environ
    path = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if not path:
        home = env.get("HF_HOME") or os.path.join(
            env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
        path = os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(path)))


def offline() -> bool:
    """Whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is 1 / ON / YES / TRUE: no request may be made."""
    env = os.environ
    return (env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE") or "").upper() in _TRUE


def hub_timeout() -> float:
    """NFZOO_HUB_TIMEOUT: seconds that one Hub request may wait to connect, and between two reads (default
    30). A value that is not a positive, finite number of seconds is a UsageError naming the variable."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and 0 < value <= 86400):
        raise UsageError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds between 0 and 86400: set it to e.g. "
                         f"{TIMEOUT_ENV}=60, or unset it for the default of {DEFAULT_TIMEOUT:g} s.")
    return value


def not_writable(what: str, exc: BaseException) -> str:
    """A message for a cache that refused a write: `what` failed, why, and how to fix it."""
    return (f"{what} ({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}): make {cache_dir()} "
            "writable (fix its permissions) or set HF_HUB_CACHE to a folder you own")
