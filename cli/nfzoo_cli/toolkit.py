"""The CLI's public toolkit, for nfzoo's own commands and for the commands plugins add through
`register_commands(app)`: rich consoles, JSON output and errors, --device and --set parsing, the options
every command shares and their range checks, output-path checks, progress bars, run-directory names, and
loading a model with a sampler. Plugins import from here only; nothing here imports torch at import time.

A command needs no error decorator: what it raises becomes a message and an exit code in one place,
`nfzoo_cli.exits` (the app's click group runs every command inside it, plugins' included).

Every numeric option of every command is range-checked when it is parsed (exit 2 with click's "Invalid
value for '--x'" message): integers through typer's `min=` / `max=` (a bound on both sides, so that a
huge number never reaches torch), floats through `finite(...)`, which also refuses nan and inf; seeds
through `seed_callback`, which applies the core's own rule (nfzoo.flows.generation.check_seed).
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, List, NoReturn, Optional, Tuple

import typer
from rich.console import Console

out = Console()                  # results (tables, lines) on stdout
err = Console(stderr=True)       # progress, messages and errors on stderr

# sane upper bounds of counts on the command line (a bound on both sides of every integer option)
MAX_COUNT = 10 ** 12       # images to write one by one (sample -n with --out DIR streams any of these)
MAX_BATCH = 1_000_000      # --batch-size
MAX_EPOCHS = 1_000_000     # --epochs
MAX_STEPS = 1_000_000      # sampler steps, warm-up steps, checkpoint interval
MAX_NPROC = 1024           # --nproc (processes on one host)
MAX_SAMPLES = 10_000_000   # eval --samples (their features are kept for FID)


# ------------------------------------------------------------------------------------- output, errors
def print_json(doc: Any) -> None:
    """Print `doc` as one indented JSON document on stdout (values JSON cannot hold become strings):
    what `--json` prints, and nothing else goes to stdout then."""
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 2) -> NoReturn:
    """Stop the command: `error: <message>` on stderr and exit `code` (2 bad usage or input, 1 failed
    while running). Raises typer.Exit; never returns."""
    from rich.markup import escape  # a message is text: "nfzoo[tensorboard]" is not markup

    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


MAX_MESSAGE = 500          # characters of an unexpected error's text that a message shows


def one_line(text: str) -> str:
    """The message without torch's C++ backtrace ("Exception raised from ...") and at most one line for
    an unexpected error's text, cut to a sane length (what nfzoo_cli.exits prints, and the gallery shows)."""
    text = str(text)
    cut = text.find("Exception raised from")
    if cut >= 0:
        text = text[:cut]
    text = text.strip()
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + " ..."
    return text or "(no message)"


# ------------------------------------------------------------------------------------ shared options
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
    """A typer callback for --seed: the core's rule (an integer in [0, nfzoo.flows.generation.SEED_MAX])."""
    if value is None:
        return value
    from nfzoo.errors import UsageError
    from nfzoo.flows.generation import check_seed

    try:
        return check_seed(value)
    except UsageError as exc:
        raise typer.BadParameter(str(exc)) from None


def seed_option(default: Optional[int] = 0, help: str = "random seed") -> Any:
    """The --seed option every command shares (range-checked by `seed_callback`)."""
    return typer.Option(default, "--seed", help=help + " (an integer in [0, 2^32 - 1])",
                        callback=seed_callback)


def temperature_option(help: str = "prior temperature") -> Any:
    """The --temperature / -t option of the sampling commands: a finite number >= 0; None (not given):
    the model's measured default (FlowModel.default_temperature, `nfzoo info MODEL` shows it; 1 when the
    model has none)."""
    return typer.Option(None, "--temperature", "-t", callback=finite(0),
                        help=f"{help} [default: the model's measured one (nfzoo info MODEL), else 1]",
                        show_default=False)


def parse_device(device: Optional[str]) -> str:
    """--device: cpu, cuda, cuda:N or another device torch names (None: cuda when available, else cpu).
    Under torchrun "cuda" is this process's GPU, cuda:LOCAL_RANK. A name torch does not know, or cuda on
    a machine without a GPU: exit 2. Imports torch."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        torch.device(device)
    except (RuntimeError, ValueError, TypeError) as exc:
        fail(f"bad --device {device!r}: {exc}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        fail(f"--device {device}: no CUDA device is available here; use --device cpu")
    if device == "cuda" and os.environ.get("LOCAL_RANK") is not None:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
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
        out_[key.strip()] = parse_value(raw)
    return out_


def parse_value(raw: str) -> Any:
    """A KEY=VALUE value: JSON (numbers, lists, true/false/null) or, failing that, the string itself
    (none / null / true / false in any case as None / bool)."""
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return {"none": None, "null": None, "true": True, "false": False}.get(raw.lower(), raw)


# ----------------------------------------------------------------------------------- models, samplers
MAX_SAMPLER_OPTIONS = 16
MAX_OPTION_TEXT = 200


def sampler_option() -> Any:
    """The `--sampler-option KEY=VALUE` option (repeatable) of the commands that sample."""
    return typer.Option([], "--sampler-option", metavar="KEY=VALUE",
                        help="an option of the sampler, repeatable; the sampler checks it (e.g. tarflow's "
                        "--sampler-option guidance=1 --sampler-option attn_temp=1.5)")


def parse_sampler_options(items: List[str]) -> dict:
    """--sampler-option KEY=VALUE ...: KEY an identifier, given once; VALUE a number, true / false / null or
    a short string (JSON scalars; no lists or objects, no inf or nan). The sampler's `check` says which
    keys it takes."""
    if len(items) > MAX_SAMPLER_OPTIONS:
        fail(f"--sampler-option is given {len(items)} times; at most {MAX_SAMPLER_OPTIONS}")
    out_: dict = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier() or len(item) > MAX_OPTION_TEXT:
            fail(f"--sampler-option needs KEY=VALUE with KEY a name (letters, digits, _) and at most "
                 f"{MAX_OPTION_TEXT} characters in all, got {item[:MAX_OPTION_TEXT]!r} (e.g. --sampler-option "
                 "guidance=1)")
        if key in out_:
            fail(f"--sampler-option {key} is given twice; give each option once")
        value = parse_value(raw)
        if isinstance(value, (list, dict)):
            fail(f"--sampler-option {key}= takes a number, true / false or a word, not {raw!r}")
        if isinstance(value, float) and not math.isfinite(value):
            fail(f"--sampler-option {key}= must be a finite number, got {raw!r}")
        out_[key] = value
    return out_


def sampler_options(model: Any, steps: Optional[int] = None, eta: Optional[float] = None,
                    extra: Optional[List[str]] = None, sampler: Optional[str] = None) -> dict:
    """The options `sampler` (None: `model`'s own) runs with: those given on the command line ({"steps": ...,
    "eta": ...}, those not None, and the --sampler-option items `extra`) over the model's measured ones
    (`FlowModel.sampling_options`); the sampler's `check` validates them."""
    given = parse_sampler_options(extra or [])
    for k, v in (("steps", steps), ("eta", eta)):
        if v is not None:
            if k in given:
                fail(f"--sampler-option {k}= repeats --{k}: give it once")
            given[k] = v
    return model.sampling_options(sampler, **given)


def load_model(name: str, device: Optional[str] = None, sampler: Optional[str] = None) -> Any:
    """`nfzoo.load(name)` on `parse_device(device)`, with the registered sampler `sampler` (by name,
    `nfzoo.create_sampler`) in place of the model's own when one is given. `name` follows nfzoo's one name
    rule (nfzoo.loading.pretrained.parse_model_name): a bare name is the zoo's, a path a folder, `hf-hub:ORG/NAME`
    a Hub repo, `ORG/NAME` the folder if it exists, else that Hub repo; Hub files come from the cache
    (`nfzoo pull` downloads them)."""
    import nfzoo

    m = nfzoo.load(name, device=parse_device(device))
    if sampler is not None:
        m.sampler = nfzoo.create_sampler(sampler)
    return m


# ------------------------------------------------------------------------------------------ progress
def rich_progress(transient: bool = True, disable: bool = False, stats: bool = False,
                  remaining: bool = False) -> Any:
    """A rich Progress on stderr with the columns every command shows: description, bar, done/total and
    time elapsed; `stats=True` adds the task field `stats` (a text), `remaining=True` the time left. Use it
    as a context manager, or start() / stop() it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
    columns += [TextColumn("{task.fields[stats]}")] if stats else []
    columns += [TimeElapsedColumn()] + ([TimeRemainingColumn()] if remaining else [])
    return Progress(*columns, console=err, transient=transient, disable=disable)


def progress_task(prog: Any, description: str,
                  total: Optional[int] = None) -> Callable[[int, Optional[int]], None]:
    """A new task of `prog` and the `progress(done, total)` callback that the core's long functions take."""
    task = prog.add_task(description, total=total)
    return lambda done, total: prog.update(task, completed=done, total=total)


# ---------------------------------------------------------------------------------------- output paths
_PROBE = ".nfzoo-write-check-"     # the probe files (another rank's may be there for an instant)


def run_dir(*names: str, stamp: bool = False) -> Path:
    """The default folder of a run, runs/NAME-NAME[-YYYYmmdd-HHMMSS], each name made safe for a path
    (':' and '/' become '_'): `run_dir("glow", "folder:a/b", stamp=True)` is runs/glow-folder_a_b-<time>."""
    parts = [n.replace(":", "_").replace("/", "_") for n in names]
    return Path("runs") / "-".join(parts + ([time.strftime("%Y%m%d-%H%M%S")] if stamp else []))


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


def no_nul(raw: str, what: str) -> None:
    """Exit 2 if the path `raw` (given as option `what`) holds a NUL character."""
    if "\x00" in raw:
        fail(f"{what} {raw!r}: a path cannot hold a NUL character")


def _writable_ancestor(path: Path, what: str, raw: str) -> None:
    """The nearest folder at or above `path` that exists must be a folder we can write in."""
    ancestor = path.absolute()
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        fail(f"{what} {raw}: {ancestor} is a file, not a folder")
    _probe_writable(ancestor, what, raw)


def _folder_name(path: os.PathLike, what: str) -> Tuple[str, Path]:
    """A folder option's value: not empty, no NUL, not the name of a file."""
    raw = str(path)
    if not raw.strip():
        fail(f"{what} is empty: give a folder name")
    no_nul(raw, what)
    p = Path(raw)
    if p.exists() and not p.is_dir():
        fail(f"{what} {raw} is a file, not a folder; choose another {what}")
    return raw, p


def check_output_file(path: os.PathLike, what: str = "--out", suffix: str = ".png") -> Path:
    """A file to be written at the end of a command, checked before the work starts: not empty, the
    expected suffix, not a folder, and its folder (made if missing) writable. Exit 2 otherwise."""
    raw = str(path)
    if not raw.strip():
        fail(f"{what} is empty: give a file name ending in {suffix}")
    no_nul(raw, what)
    p = Path(raw)
    if p.suffix.lower() != suffix:
        fail(f"{what} {raw}: only {suffix} files are written; give a name ending in {suffix}")
    if p.is_dir():
        fail(f"{what} {raw} is a folder; give a file name ending in {suffix}")
    _writable_ancestor(p.parent, what, raw)
    return p


def holds_files(folder: Path) -> bool:
    """Whether an existing folder holds files (the toolkit's own write probes aside)."""
    return any(not q.name.startswith(_PROBE) for q in folder.iterdir())


def check_output_dir(path: os.PathLike, what: str = "--out", overwrite: bool = False) -> Path:
    """A folder to be filled by a command, checked (and made) before the work starts: not empty as a
    name, not a file, empty unless `overwrite`, writable. Exit 2 otherwise."""
    raw, p = _folder_name(path, what)
    if p.is_dir() and not overwrite and holds_files(p):
        fail(f"{what} {raw} is a folder that already holds files: choose a new or empty folder, or pass "
             "--overwrite to replace the files of the same names (nothing was written)")
    _writable_ancestor(p, what, raw)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{what} {raw}: cannot make the folder ({exc.strerror or exc}); choose another {what}")
    _probe_writable(p, what, raw)
    return p


def check_run_dir(path: os.PathLike, what: str = "--out") -> Path:
    """A folder a command writes into over its run (a training run), checked before the work starts: not
    a file, and writable (it, or the nearest folder above it that exists). Exit 2 otherwise."""
    raw, p = _folder_name(path, what)
    _writable_ancestor(p, what, raw)
    return p
