"""The CLI's public toolkit for commands (nfzoo's and plugins'): shared option validators for numbers
and output paths, --device and --set parsing. Nothing here imports torch at import time.

Every numeric option of every command is range-checked when it is parsed (exit 2 with click's "Invalid
value for '--x'" message): integers through typer's `min=` / `max=` (a bound on both sides, so that a
huge number never reaches torch), floats through `finite(...)`, which also refuses nan and inf; seeds
through `seed_callback`, which applies the core's own rule (nfzoo.generation.check_seed).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from .render import fail

# sane upper bounds of counts on the command line (a bound on both sides of every integer option)
MAX_COUNT = 10 ** 12       # images to write one by one (sample -n with --out DIR streams any of these)
MAX_BATCH = 1_000_000      # --batch-size
MAX_EPOCHS = 1_000_000     # --epochs
MAX_STEPS = 1_000_000      # sampler steps, warm-up steps, checkpoint interval
MAX_NPROC = 1024           # --nproc (processes on one host)
MAX_SAMPLES = 10_000_000   # eval --samples (their features are kept for FID)
GRID_MAX = 1024            # images in one PNG grid (sample --out FILE.png); more: --out DIR
OTHER_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
                        ".pnm", ".ico", ".avif", ".heic")


def finite(minimum: Optional[float] = None, maximum: Optional[float] = None,
           above: Optional[float] = None) -> Callable[[Optional[float]], Optional[float]]:
    """A typer callback for a float option: a finite number (not nan / inf), >= minimum, > above,
    <= maximum. None (an option not given) passes."""
    def check(value: Optional[float]) -> Optional[float]:
        if value is None:
            return value
        if not math.isfinite(value):
            raise typer.BadParameter(f"{value} is not a finite number")
        if minimum is not None and value < minimum:
            raise typer.BadParameter(f"{value} is below {minimum:g}; it must be >= {minimum:g}")
        if above is not None and not value > above:
            raise typer.BadParameter(f"{value} must be > {above:g}")
        if maximum is not None and value > maximum:
            raise typer.BadParameter(f"{value} is above {maximum:g}; it must be <= {maximum:g}")
        return value
    return check


def seed_callback(value: Optional[int]) -> Optional[int]:
    """A typer callback for --seed: the core's rule (an integer in [0, nfzoo.generation.SEED_MAX])."""
    if value is None:
        return value
    from nfzoo.errors import UsageError
    from nfzoo.generation import check_seed

    try:
        return check_seed(value)
    except UsageError as exc:
        raise typer.BadParameter(str(exc)) from None


def seed_option(default: Optional[int] = 0, help: str = "random seed") -> Any:
    """The --seed option every command shares (range-checked by `seed_callback`)."""
    return typer.Option(default, "--seed", help=help + " (an integer in [0, 2^32 - 1])",
                        callback=seed_callback)


def parse_device(device: Optional[str]) -> str:
    """--device: cpu, cuda, cuda:N (None: cuda when available, else cpu). Imports torch."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, ValueError, TypeError) as exc:
        fail(f"bad --device {device!r}: {exc}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        fail(f"--device {device}: no CUDA device is available here; use --device cpu")
    return device


def parse_sets(items: List[str]) -> dict:
    """--set KEY=VALUE ...: values parse as JSON (numbers, lists, true/false/null), else stay strings.
    Which keys and values are valid is the receiver's to check (a config, a head's options)."""
    out_: dict = {}
    for item in items:
        if "=" not in item:
            fail(f"--set needs KEY=VALUE, got {item!r} (e.g. --set levels=2 --set hidden=32)")
        key, _, raw = item.partition("=")
        if not key.strip():
            fail(f"--set needs KEY=VALUE with a non-empty KEY, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            value = {"none": None, "null": None, "true": True, "false": False}.get(raw.lower(), raw)
        out_[key.strip()] = value
    return out_


# ------------------------------------------------------------------------------------------ output paths
_PROBE = ".nfzoo-write-check-"     # the probe files (another rank's may be there for an instant)


def _probe_writable(directory: Path, what: str, value: str) -> None:
    """Create (and remove) a file in `directory`: the only test that holds for root, read-only mounts and
    /proc alike."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=_PROBE, dir=directory)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        fail(f"{what} {value}: cannot write in {directory} ({exc.strerror or exc}); choose a folder you "
             "can write to (nothing was written)")


def _no_nul(raw: str, what: str) -> None:
    if "\x00" in raw:
        fail(f"{what} {raw!r}: a path cannot hold a NUL character")


def _existing_ancestor(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_file(path: os.PathLike, what: str = "--out", suffix: str = ".png") -> Path:
    """A file to be written at the end of a command, checked before the work starts: not empty, the
    expected suffix, not a folder, and its folder (made if missing) writable. Exit 2 otherwise."""
    raw = str(path)
    if not raw.strip():
        fail(f"{what} is empty: give a file name ending in {suffix}")
    _no_nul(raw, what)
    p = Path(raw)
    if p.suffix.lower() != suffix:
        fail(f"{what} {raw}: only {suffix} files are written; give a name ending in {suffix}")
    if p.is_dir():
        fail(f"{what} {raw} is a folder; give a file name ending in {suffix}")
    ancestor = _existing_ancestor(p.parent)
    if not ancestor.is_dir():
        fail(f"{what} {raw}: {ancestor} is a file, not a folder")
    _probe_writable(ancestor, what, raw)
    return p


def check_output_dir(path: os.PathLike, what: str = "--out", overwrite: bool = False) -> Path:
    """A folder to be filled by a command, checked (and made) before the work starts: not empty as a
    name, not a file, empty unless `overwrite`, writable. Exit 2 otherwise."""
    raw = str(path)
    if not raw.strip():
        fail(f"{what} is empty: give a folder name")
    _no_nul(raw, what)
    p = Path(raw)
    if p.exists() and not p.is_dir():
        fail(f"{what} {raw} is a file, not a folder; choose another --out")
    if p.is_dir() and not overwrite and any(not q.name.startswith(_PROBE) for q in p.iterdir()):
        fail(f"{what} {raw} is a folder that already holds files: choose a new or empty folder, or pass "
             "--overwrite to replace the files of the same names (nothing was written)")
    ancestor = _existing_ancestor(p)
    if not ancestor.is_dir():
        fail(f"{what} {raw}: {ancestor} is a file, not a folder")
    _probe_writable(ancestor, what, raw)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{what} {raw}: cannot make the folder ({exc.strerror or exc}); choose another --out")
    _probe_writable(p, what, raw)
    return p


def check_run_dir(path: os.PathLike, what: str = "--out") -> Path:
    """A folder a command writes into over its run (a training run), checked before the work starts: not
    a file, and writable (it, or the nearest folder above it that exists). Exit 2 otherwise."""
    raw = str(path)
    if not raw.strip():
        fail(f"{what} is empty: give a folder name")
    _no_nul(raw, what)
    p = Path(raw)
    if p.exists() and not p.is_dir():
        fail(f"{what} {raw} is a file, not a folder; choose another {what}")
    ancestor = _existing_ancestor(p)
    if not ancestor.is_dir():
        fail(f"{what} {raw}: {ancestor} is a file, not a folder")
    _probe_writable(ancestor, what, raw)
    return p


def sample_output(raw: str) -> str:
    """What `sample --out` names: "file" (a .png grid) or "dir" (one PNG per sample). Refuses an empty
    name and image suffixes other than .png (only PNG is written)."""
    if not str(raw).strip():
        fail("--out is empty: give FILE.png for a grid or DIR for one PNG per sample")
    _no_nul(str(raw), "--out")
    suffix = Path(raw).suffix.lower()
    if suffix == ".png":
        return "file"
    if suffix in OTHER_IMAGE_SUFFIXES:
        fail(f"--out {raw}: only PNG is written; give FILE.png for a grid or DIR (a name without an image "
             "suffix) for one PNG per sample")
    return "dir"
