"""The typer app. Commands parse their arguments, call the core, and render the results with rich.
`--help`, `list`, `info` and `plugins` do not import torch."""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from .exits import NfzooGroup, exit_codes
from .options import (GRID_MAX, MAX_BATCH, MAX_COUNT, MAX_EPOCHS, MAX_NPROC, MAX_SAMPLES, MAX_STEPS,
                      check_output_dir, check_output_file, check_run_dir, finite, parse_device, parse_sets,
                      sample_output, seed_callback)
from .render import err, fail, out, print_json

# NfzooGroup: every command, a plugin's included, turns errors into exit codes in one place (exits.py)
app = typer.Typer(name="nfzoo", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  cls=NfzooGroup,
                  help="nfzoo: normalizing-flow models you can list, pull, sample, train, evaluate and "
                       "extend with plugins.")

_parse_device = parse_device   # the old private names, kept for plugins written against them


def handle_errors(fn: Callable) -> Callable:
    """Kept for plugins written before the app mapped errors itself: every command now runs inside
    `nfzoo_cli.exits.exit_codes()` (the app's group does it), so this decorator is no longer needed."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with exit_codes():
            return fn(*args, **kwargs)
    return wrapper


def _reg():
    from nfzoo.plugins import get_registry

    return get_registry()


# -------------------------------------------------------------------- list
@app.command("list")
def list_cmd(pattern: str = typer.Argument("*", help="fnmatch pattern, e.g. 'glow*'"),
             pretrained: bool = typer.Option(False, "--pretrained", help="list pretrained models"),
             json_: bool = typer.Option(False, "--json", help="print JSON")):
    """List architectures (or pretrained models) matching PATTERN."""
    kind = "pretrained" if pretrained else "architectures"
    entries = _reg().list(kind, pattern)
    sources = {}
    if pretrained:  # embedded / cached / hub / unpublished: no torch, no network
        from nfzoo.hub import source_of

        sources = {e.name: source_of(e) for e in entries}
    if json_:
        print_json([dict(e.to_json(), **({"source": sources[e.name]} if pretrained else {}))
                    for e in entries])
        return
    from rich.table import Table

    table = Table(title="pretrained models" if pretrained else "architectures", title_justify="left")
    table.add_column("name", style="bold")
    if pretrained:
        table.add_column("architecture")
        table.add_column("dataset")
        table.add_column("source")
    table.add_column("plugin")
    table.add_column("description")
    for e in entries:
        row = [e.name]
        if pretrained:
            row += [str(e.metadata.get("architecture", "")), str(e.metadata.get("dataset", "")),
                    sources[e.name]]
        table.add_row(*row, e.plugin, e.description)
    out.print(table)
    if not entries:
        err.print(f"nothing matches {pattern!r}")


# -------------------------------------------------------------------- info
@app.command("info")
def info_cmd(name: str = typer.Argument(..., help="an architecture, pretrained model, bijector, ..."),
             json_: bool = typer.Option(False, "--json", help="print JSON")):
    """Describe a registered name: its plugin, paper, and config keys with their defaults."""
    from nfzoo.errors import UnknownNameError
    from nfzoo.inspection import signature_defaults
    from nfzoo.plugins import KINDS

    reg = _reg()
    found = [reg.registry(k)[name] for k in KINDS if name in reg.registry(k)]
    if not found:
        every = {n for k in KINDS for n in reg.registry(k)}
        raise UnknownNameError("name", name, every, hint="See `nfzoo list` and `nfzoo list --pretrained`.")
    docs = []
    for e in found:
        doc = e.to_json()
        if e.kind in ("architectures", "bijectors", "priors", "samplers"):
            defaults = signature_defaults(e.target)
            if defaults is not None:
                doc["config" if e.kind == "architectures" else "arguments"] = defaults
        if e.kind == "pretrained":
            from nfzoo.hub import source_of

            doc["source"] = source_of(e)
        docs.append(doc)
    if json_:
        print_json(docs[0] if len(docs) == 1 else docs)
        return
    for doc in docs:
        out.print(f"[bold]{doc['name']}[/] ({doc['kind']}, plugin {doc['plugin']})")
        for k, v in doc.items():
            if k in ("name", "kind", "plugin"):
                continue
            if isinstance(v, dict):
                out.print(f"  {k}:")
                for kk, vv in v.items():
                    out.print(f"    {kk} = {json.dumps(vv)}", highlight=False)
            else:
                out.print(f"  {k}: {v}", highlight=False)


# ----------------------------------------------------------------- plugins
@app.command("plugins")
def plugins_cmd(json_: bool = typer.Option(False, "--json", help="print JSON")):
    """List the loaded plugins, their versions and hooks, and any plugin that failed to load."""
    from nfzoo.api import list_plugins

    plugins = list_plugins()
    heads = _reg().list("heads")
    for p in plugins:
        p["heads"] = [e.name for e in heads if e.plugin == p["name"]]
    if json_:
        print_json(plugins)
        return
    from rich.table import Table

    table = Table(title="plugins", title_justify="left")
    for col in ("name", "version", "hooks", "status"):
        table.add_column(col)
    for p in plugins:
        status = "[red]failed: " + p["error"].splitlines()[0] + "[/]" if p["error"] else (
            "built-in" if p["builtin"] else "ok")
        table.add_row(p["name"], p["version"] or "", ", ".join(p["hooks"]), status)
    out.print(table)
    if heads:
        table = Table(title="heads (application tools on any model)", title_justify="left")
        for col in ("name", "plugin", "command", "eval tasks", "description"):
            table.add_column(col)
        for e in heads:
            table.add_row(e.name, e.plugin, "nfzoo " + e.metadata["command"] if e.metadata.get("command") else "",
                          ", ".join(e.metadata.get("eval_tasks") or {}), e.description)
        out.print(table)


# ------------------------------------------------------------------ sample
@app.command("sample")
def sample_cmd(ctx: typer.Context, model: str = typer.Option(..., "--model", "-m", help="pretrained name, family name or "
                                         "model directory"),
               n: Optional[int] = typer.Option(None, "-n", min=1, max=MAX_COUNT, help="number of samples (per "
                                               "class with --per-class) [default: 64, or 8 per class]; a "
                                               f"FILE.png grid holds at most {GRID_MAX}"),
               temperature: float = typer.Option(1.0, "--temperature", "-t", callback=finite(0),
                                                 help="prior temperature"),
               label: Optional[int] = typer.Option(None, "--label", min=0, max=2 ** 31 - 1,
                                                   help="class label (conditional models)"),
               per_class: bool = typer.Option(False, "--per-class", help="one row per class"),
               sampler: Optional[str] = typer.Option(None, "--sampler", help="a registered sampler"),
               steps: Optional[int] = typer.Option(None, "--steps", min=1, max=MAX_STEPS,
                                                   help="sampler steps (diffusion)"),
               eta: Optional[float] = typer.Option(None, "--eta", callback=finite(0, 1), help="DDIM noise "
                                                   "scale: 0 deterministic [default], 1 ancestral over the "
                                                   "same steps"),
               seed: int = typer.Option(0, "--seed", callback=seed_callback,
                                        help="random seed (an integer in [0, 2^32 - 1])"),
               out_path: str = typer.Option("samples.png", "--out", "-o",
                                            help=f"FILE.png for a grid (at most {GRID_MAX} images), or DIR "
                                            "for one PNG per sample, streamed in constant memory (and "
                                            f"grid.png of the first {GRID_MAX}); DIR must be new or empty"),
               overwrite: bool = typer.Option(False, "--overwrite", help="--out DIR may hold files: replace "
                                              "those of the same names"),
               device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, ..."),
               nproc: int = typer.Option(1, "--nproc", min=1, max=MAX_NPROC, help="processes on this host "
                                         "(launches torchrun); the images do not depend on it")):
    """Sample images from a model and write them as a PNG grid (or a folder of PNGs). Samples come in
    seeded chunks of 250, so under torchrun (or with --nproc N) the ranks share the work and the images
    are the same as on one process. The destination is checked before any sampling."""
    kind = sample_output(out_path)              # "file" (a grid) or "dir"; refuses "" and x.jpg
    out_p = Path(out_path)
    if nproc != 1:
        parse_device(device)
        if kind == "dir":          # checked (and made) once here: the ranks then fill it together
            check_output_dir(out_p, overwrite=overwrite)
        else:
            check_output_file(out_p)
        return _launch_ranks(nproc, _command_argv(ctx, extra={"overwrite": True} if kind == "dir" else None))
    from nfzoo.distributed import context, env_world

    dev = _rank_device(device)
    dist = context("cuda" if dev.startswith("cuda") else "cpu") if env_world() > 1 else None
    main_rank = dist is None or dist.is_main
    import torch

    import nfzoo
    from nfzoo.generation import constant_labels, cycle_labels, per_class_labels
    from nfzoo.plugins import get_registry

    m = nfzoo.load(model, device=dev)
    if sampler is not None:
        m.sampler = get_registry().get("samplers", sampler).load()()
    options = _sampler_options(steps, eta)
    m.sampler.check(m, temperature=temperature, **options)
    if (label is not None or per_class) and m.num_classes is None:
        fail(f"{model} is unconditional: --label and --per-class need a class-conditional model")
    if label is not None and not 0 <= label < m.num_classes:
        fail(f"--label must be in [0, {m.num_classes - 1}], got {label}")
    # labels are a rule made per chunk (nfzoo.generation), never a tensor of all n
    if per_class:
        k = n or 8
        y, total, nrow = per_class_labels(k), m.num_classes * k, k
    else:
        k = n or 64
        y, total = (None if label is None else constant_labels(label)), k
        if y is None and m.num_classes is not None:   # a conditional model: every class in turn
            y = cycle_labels(m.num_classes)
            if main_rank:
                err.print(f"{model} is class-conditional: sampling classes 0..{m.num_classes - 1} in turn "
                          "(--label L for one class, --per-class for a row per class)", highlight=False)
        nrow = max(1, int(math.ceil(math.sqrt(k))))
    if kind == "file" and total > GRID_MAX:
        fail(f"a grid holds at most {GRID_MAX} images and this asks for {total}: write one PNG per sample "
             f"with --out DIR (it streams in constant memory; DIR/grid.png shows the first {GRID_MAX})")
    # the destination is checked before any sampling (every rank checks; nobody writes before all did)
    if kind == "file":
        check_output_file(out_p)
    else:
        check_output_dir(out_p, overwrite=overwrite)
    if dist is not None:
        dist.barrier()
    from contextlib import nullcontext

    from nfzoo.generation import generate, generate_all
    from nfzoo.imageio import save_grid_png, save_single_png

    status = err.status(f"sampling {total} images from {model}") if main_rank else nullcontext()
    if kind == "file":
        with status:
            x = generate_all(m, total, y, temperature, seed, options, dist)
        if main_rank:
            save_grid_png(x, out_p, nrow)
        written = str(out_p)
    else:
        first = []                 # the first GRID_MAX images, for grid.png; nothing else is kept
        with status:
            for start, x, _ in generate(m, total, y, temperature, seed, options, dist):
                for j in range(x.shape[0]):   # each at its own size; grayscale stays gray
                    save_single_png(x[j], out_p / f"{start + j:06d}.png")
                if start < GRID_MAX:
                    first.append(x[:GRID_MAX - start].clone())
                del x
        first = torch.cat(first) if first else torch.empty(0, *m.image_shape)
        first = dist.gather_tensor(first) if dist is not None else first
        if main_rank:
            save_grid_png(first, out_p / "grid.png", nrow if total <= GRID_MAX else 32)
        written = f"{out_p}/ ({total} PNGs and grid.png)"
    if dist is not None:   # the ranks leave together and shut the process group down (no race at exit)
        dist.barrier()
        dist.close()
    if main_rank:
        err.print(f"wrote {written}")


# ------------------------------------------------------------------- train
class _RichTrainCallback:
    def __init__(self, epochs: int):
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                                 TimeRemainingColumn(), console=err, transient=False)
        self.epochs = epochs
        self.task = None

    def on_start(self, trainer):
        err.print(f"training {trainer.cfg.arch} on {trainer.cfg.dataset} -> {trainer.out} "
                  f"({sum(p.numel() for p in trainer.model.parameters()):,} parameters)")
        self.progress.start()

    def on_epoch_start(self, epoch, steps):
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(f"epoch {epoch}/{self.epochs}", total=steps, stats="")

    def on_step(self, step, loss, bpd, it_s):
        self.progress.update(self.task, advance=1, stats=f"bpd {bpd:.3f}  {it_s:.1f} it/s")

    def on_eval_progress(self, done, total):
        """The test bpd's progress is not shown (it takes seconds)."""

    def on_warning(self, message):
        """Something to know that does not stop training (a corrupt checkpoint skipped on --resume)."""
        self.progress.console.print(f"[yellow]warning:[/] {message}", highlight=False)

    def on_epoch_end(self, epoch, record):
        test = f"  test bpd {record['test_bpd']:.4f}" if record.get("test_bpd") is not None else ""
        self.progress.console.print(f"epoch {epoch}: train bpd {record['train_bpd']:.4f}{test}  "
                                    f"({record['seconds']:.1f} s)")

    def close(self):
        self.progress.stop()


def _command_argv(ctx, drop=("nproc",), extra=None) -> List[str]:
    """The running command's arguments, rebuilt from click's parsed parameters (for torchrun to start
    the same command on N processes): those given on the command line, less `drop`, with `extra` values."""

    argv: List[str] = [ctx.info_name]
    extra = extra or {}
    for p in ctx.command.params:
        if p.name in drop:
            continue
        v = extra.get(p.name, ctx.params.get(p.name))
        src = ctx.get_parameter_source(p.name)
        if p.name not in extra and src is not None and src.name == "DEFAULT":
            continue
        if p.param_type_name == "argument":
            argv.append(str(v))
        elif getattr(p, "is_flag", False):
            if v:
                argv.append(p.opts[0])
        elif isinstance(v, (list, tuple)):
            for item in v:
                argv += [p.opts[0], str(item)]
        elif v is not None:
            argv += [p.opts[0], str(v)]
    return argv


def _launch_ranks(nproc: int, argv: List[str]) -> None:
    """`--nproc N`: run the same command on N processes of this host through torchrun."""
    from nfzoo.distributed import env_world, launch

    if nproc < 1:
        fail(f"--nproc must be >= 1, got {nproc}")
    if env_world() > 1:
        fail("--nproc launches torchrun: do not pass it to a process torchrun started")
    err.print(f"launching {nproc} processes with torchrun", highlight=False)
    rc = launch(argv, nproc)
    if rc == 143:
        fail("SIGTERM: the processes wrote a checkpoint and stopped; continue with the same command and "
             "--resume", 143)
    if rc != 0:
        fail(f"torchrun exited with status {rc} (the processes' messages are above)", 1)


def _rank_device(device: Optional[str]) -> str:
    """The device of this process: under torchrun with CUDA, the GPU of its LOCAL_RANK."""
    import os

    dev = _parse_device(device)
    if dev == "cuda" and os.environ.get("LOCAL_RANK") is not None:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return dev


class _SilentCallback:
    """Ranks other than 0 report nothing."""

    def __getattr__(self, name):
        return lambda *a, **k: None


@app.command("train")
def train_cmd(ctx: typer.Context, arch: str = typer.Argument(..., help="architecture (see `nfzoo list`)"),
              dataset: str = typer.Option(..., "--dataset", "-d", help="digits, mnist5k, mnist, cifar10, "
                                          "..., or folder:DIR"),
              epochs: Optional[int] = typer.Option(None, "--epochs", min=1, max=MAX_EPOCHS,
                                                   help="epochs [default: 10]"),
              batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, max=MAX_BATCH,
                                                       help="batch size [default: 64]"),
              lr: Optional[float] = typer.Option(None, "--lr", callback=finite(above=0),
                                                 help="learning rate [default: 1e-3]"),
              optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adam or adamax"),
              warmup: Optional[int] = typer.Option(None, "--warmup", min=0, max=10 ** 9,
                                                   help="linear warm-up steps [200]"),
              lr_schedule: Optional[str] = typer.Option(None, "--lr-schedule",
                                                        help="constant or cosine [constant]"),
              grad_clip: Optional[float] = typer.Option(None, "--grad-clip", callback=finite(0),
                                                        help="max gradient norm (0: off) [50]"),
              sets: List[str] = typer.Option([], "--set", help="KEY=VALUE architecture config"),
              preset: Optional[str] = typer.Option(None, "--preset", help="a named setting of the "
                                                   "architecture (model config and training settings; "
                                                   "explicit options override it), e.g. glem's cifar100"),
              out_dir: Optional[Path] = typer.Option(None, "--out", help="run directory "
                                                     "[default: runs/ARCH-DATASET-TIME]"),
              resume: bool = typer.Option(False, "--resume", help="continue the run in --out"),
              checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", min=0, max=10 ** 9,
                                                             help="steps between checkpoints [each epoch]"),
              seed: Optional[int] = typer.Option(None, "--seed", callback=seed_callback,
                                                 help="random seed, an integer in [0, 2^32 - 1] [0]"),
              data_root: Optional[str] = typer.Option(None, "--data-root", help="torchvision data folder"),
              download: bool = typer.Option(False, "--download", help="let torchvision download data"),
              device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto [cpu]"),
              precision: Optional[str] = typer.Option(None, "--precision",
                                                      help="fp32 or bf16 (CUDA autocast of the nets) [fp32]"),
              nproc: int = typer.Option(1, "--nproc", min=1, max=MAX_NPROC, help="processes on this host "
                                        "(launches torchrun; --batch-size stays the global batch)"),
              json_: bool = typer.Option(False, "--json", help="print the result document as JSON")):
    """Train ARCH on a data set; writes a loadable model directory, checkpoints and a bpd curve.
    Under torchrun (or with --nproc N) it trains with DistributedDataParallel."""
    import time as _time
    from dataclasses import asdict

    from nfzoo.training import TrainConfig, Trainer, load_train_config

    from nfzoo.distributed import env_world

    given = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
             "warmup_steps": warmup, "lr_schedule": lr_schedule, "grad_clip": grad_clip, "checkpoint_every": checkpoint_every,
             "seed": seed, "data_root": data_root, "device": device, "precision": precision}
    given = {k: v for k, v in given.items() if v is not None}
    model_cfg = parse_sets(sets)
    if preset is not None:
        if resume:
            fail("--preset starts a run; --resume continues one as it was set up (drop --preset)")
        from nfzoo.api import architecture_preset

        p = architecture_preset(arch, preset)
        given = {**p["train"], **given}
        model_cfg = {**p["model"], **model_cfg}
    if resume:
        if out_dir is None:
            fail("--resume needs --out DIR (the run to continue)")
        cfg = load_train_config(out_dir)
        if cfg.arch != arch or cfg.dataset != dataset:
            fail(f"--resume: {out_dir} trains {cfg.arch} on {cfg.dataset}, not {arch} on {dataset}")
        changed = {k for k, v in given.items() if k != "epochs" and getattr(cfg, k) != v}
        if changed or (model_cfg and any(cfg.model.get(k) != v for k, v in model_cfg.items())):
            fail(f"--resume continues the run as it was set up; only --epochs may change "
                 f"(differs: {', '.join(sorted(changed | set(model_cfg))) or 'model config'})")
        if epochs is not None:
            cfg.epochs = epochs
    else:
        # unknown architecture / config keys are reported before anything is written
        from nfzoo.api import architecture_config

        architecture_config(arch, **model_cfg)
        cfg = TrainConfig(arch=arch, dataset=dataset, model=model_cfg, download=download, **given)
        cfg.validate()
        if out_dir is None:
            if env_world() > 1:
                fail("under torchrun, pass --out DIR: every process must write to the same run")
            out_dir = Path("runs") / f"{arch}-{dataset.replace(':', '_').replace('/', '_')}-" \
                                     f"{_time.strftime('%Y%m%d-%H%M%S')}"
    check_run_dir(out_dir)           # a file, or a folder nobody can write to: exit 2 before any work
    if nproc != 1:
        if not resume and out_dir.exists() and any(out_dir.iterdir()):
            fail(f"{out_dir} already holds files (a previous run?). Pass --resume to continue it, or "
                 "choose another --out; nothing was overwritten.")
        err.print(f"global batch {cfg.batch_size}, split across {nproc} processes", highlight=False)
        return _launch_ranks(nproc, _command_argv(ctx, extra={"out_dir": str(out_dir)}))
    import os

    main_rank = os.environ.get("RANK", "0") == "0"
    cb = _RichTrainCallback(cfg.epochs) if main_rank else _SilentCallback()
    try:
        trainer = Trainer(cfg, out_dir, cb, resume=resume)
        result = trainer.run()       # ends with a barrier: every rank has finished
    finally:
        cb.close()
    trainer.dist.close()             # as in sample and eval: the ranks shut the process group down together
    if not main_rank:
        return
    result["train_config"] = asdict(cfg)
    if json_:
        print_json(result)
    else:
        err.print(f"[green]done[/]: {result['out']}  test bpd {result['test_bpd']:.4f}  "
                  f"(curve: {Path(result['out']) / 'curve.png'})")


# -------------------------------------------------------------------- eval
EVAL_TASKS = ("bpd", "classify")   # plus the tasks heads add (metadata eval_tasks of register_heads)
FEATURE_EXTRACTORS = ("oracle", "inception")


@app.command("eval")
def eval_cmd(ctx: typer.Context, model: str = typer.Argument(..., help="pretrained name or model directory"),
             dataset: str = typer.Option(..., "--dataset", "-d", help="data set (its test split)"),
             task: str = typer.Option("bpd", "--task", help="bpd | classify, or a task a head adds (`nfzoo "
                                      "plugins` lists them: cnn-a, augment, anonymize, ood with nfzoo-heads)"),
             sets: List[str] = typer.Option([], "--set", help="KEY=VALUE options of a head's task, e.g. "
                                            "--set epochs=4 --set box=8,8,20,20"),
             split: str = typer.Option("test", "--split", help="test or train"),
             batch_size: int = typer.Option(500, "--batch-size", min=1, max=MAX_BATCH),
             seed: int = typer.Option(0, "--seed", callback=seed_callback, help="seed of the dequantization "
                                      "noise and the samples (an integer in [0, 2^32 - 1])"),
             samples: int = typer.Option(0, "--samples", min=0, max=MAX_SAMPLES, help="also draw N samples and "
                                         "report FID, Coverage and Density against the split (0: off)"),
             oracle: Optional[str] = typer.Option(None, "--oracle", help="oracle directory (`nfzoo "
                                                  "train-oracle`) whose features the sample metrics use "
                                                  "[mnist5k: the zoo's oracle-mnist5k]"),
             features: str = typer.Option("oracle", "--features", help="oracle | inception (torchvision's "
                                          "weights, only if already in the torch hub cache)"),
             temperature: float = typer.Option(1.0, "--temperature", "-t", callback=finite(0),
                                               help="sampling temperature"),
             sampler: Optional[str] = typer.Option(None, "--sampler", help="a registered sampler for "
                                                   "--samples (e.g. rfcm for GLEM models)"),
             steps: Optional[int] = typer.Option(None, "--steps", min=1, max=MAX_STEPS,
                                                 help="sampler steps (diffusion samplers)"),
             eta: Optional[float] = typer.Option(None, "--eta", callback=finite(0, 1), help="DDIM noise scale "
                                                 "for --samples: 0 deterministic [default], 1 ancestral over "
                                                 "the same steps"),
             k: int = typer.Option(5, "--k", min=1, max=10_000, help="nearest neighbours for Coverage and "
                                   "Density"),
             data_root: Optional[str] = typer.Option(None, "--data-root"),
             device: Optional[str] = typer.Option(None, "--device"),
             nproc: int = typer.Option(1, "--nproc", min=1, max=MAX_NPROC, help="processes on this host "
                                       "(launches torchrun): the test set and the samples are split across them"),
             json_: bool = typer.Option(False, "--json", help="print JSON")):
    """Evaluate a model on a data set's test split: exact bpd (or likelihood classification accuracy),
    and with --samples N the FID, Coverage and Density of N samples against that split. Under torchrun
    (or with --nproc N) the bpd and the samples are computed in shards, and rank 0 reports."""
    from nfzoo.distributed import context, env_world
    from nfzoo.errors import UnknownNameError, UsageError

    if nproc != 1:
        _parse_device(device)
        return _launch_ranks(nproc, _command_argv(ctx))
    if env_world() > 1 and task not in ("bpd",):
        raise UsageError(f"--task {task} runs on one process; only --task bpd (with --samples) is sharded "
                         "across processes: drop --nproc / torchrun")

    head_tasks = _head_eval_tasks()
    if task not in EVAL_TASKS and task not in head_tasks:
        raise UnknownNameError("eval task", task, [*EVAL_TASKS, *head_tasks])
    if task in head_tasks:
        return _head_eval(head_tasks[task], task, model, dataset, sets, samples, temperature, sampler, steps,
                          eta, oracle, seed, data_root, device, json_)
    if sets:
        raise UsageError(f"--set is for the tasks heads add ({', '.join(head_tasks) or 'none installed'}), "
                         f"not for --task {task}")
    if features not in FEATURE_EXTRACTORS:
        raise UnknownNameError("feature extractor", features, FEATURE_EXTRACTORS)
    if samples < 0 or samples == 1:
        raise UsageError(f"--samples must be 0 (off) or >= 2, got {samples}")
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise UsageError(f"--temperature must be a finite number >= 0, got {temperature}")
    if k < 1:
        raise UsageError(f"--k must be >= 1, got {k}")
    dev = _rank_device(device)
    dist = context("cuda" if dev.startswith("cuda") else "cpu") if env_world() > 1 else None
    main_rank = dist is None or dist.is_main
    import nfzoo
    from nfzoo.data import load_dataset
    from nfzoo.errors import ConfigError

    m = nfzoo.load(model, device=dev)
    if sampler is not None:
        from nfzoo.plugins import get_registry

        m.sampler = get_registry().get("samplers", sampler).load()()
    if samples:
        m.sampler.check(m, temperature=temperature, **_sampler_options(steps, eta))
    ds = load_dataset(dataset, split, data_root)
    if tuple(ds.image_shape) != m.image_shape:
        raise ConfigError(f"{model} takes images of shape {list(m.image_shape)} but {dataset} has "
                          f"{list(ds.image_shape)}")
    if samples and k >= len(ds):
        raise UsageError(f"--k must be below the number of images in {dataset}/{split} ({len(ds)})")
    net, oracle_from = None, None   # the oracle (OracleNet), and where it came from
    if samples:
        # the feature extractor is settled before any long work starts (a bad --oracle exits 2 at once)
        from nfzoo.oracle import find_oracle

        if features == "inception":   # an --oracle then only gives the label reliability
            from nfzoo.metrics import require_inception_weights

            require_inception_weights()
        elif oracle is None and dataset != "mnist5k":
            raise UsageError(f"the sample metrics on {dataset!r} need --oracle DIR (an oracle trained "
                             f"on it: `nfzoo train-oracle --dataset {dataset} --out DIR`) or "
                             "--features inception")
        if oracle is not None or features == "oracle":
            net, oracle_from = find_oracle(oracle, dataset, device=dev)
            if tuple(net.image_shape) != m.image_shape:
                raise ConfigError(f"the oracle {oracle_from} takes images of shape {list(net.image_shape)} "
                                  f"but {model} makes {list(m.image_shape)}")
    from rich.progress import Progress

    with Progress(console=err, transient=True, disable=not main_rank) as prog:
        t = prog.add_task(f"{task} on {dataset}/{split}", total=len(ds))

        def progress(done, total):
            prog.update(t, completed=done, total=total)
        if task == "bpd":
            from nfzoo.training import evaluate_bpd

            res = evaluate_bpd(m, ds, batch_size, seed=seed, progress=progress, dist=dist)
        else:
            from nfzoo.evaluation import evaluate_classification

            res = evaluate_classification(m, ds, batch_size, progress=progress)
        if samples:
            from nfzoo.metrics import evaluate_samples

            prog.update(t, description=f"{samples} samples vs {dataset}/{split}", completed=0)
            sres = evaluate_samples(m, ds, samples, oracle=net, seed=seed, temperature=temperature,
                                    feature_extractor=features, k=k, progress=progress,
                                    sample_options=_sampler_options(steps, eta), dist=dist)
    if dist is not None:   # as in sample: leave together, process group shut down, before rank 0 prints
        dist.barrier()
        dist.close()
    if not main_rank:
        return
    doc = {"model": model, "dataset": dataset, "split": split, "task": task, **res}
    if samples:
        doc.update({"oracle": oracle_from, "sampler": m.sampler.name, **sres})
        doc.update(_sampler_options(steps, eta))
        if sres["nonfinite_samples"]:
            err.print(f"[yellow]warning:[/] {sres['nonfinite_samples']} of {samples} samples had "
                      "non-finite pixels and were left out of the metrics", highlight=False)
    if json_:
        print_json(doc)
        return
    key = "bpd" if task == "bpd" else "accuracy"
    line = f"{model} on {dataset}/{split}: {key} = {res[key]:.4f} ({res['images']} images)"
    if "bpd_marginal" in res:
        line += f"; bpd of the class mixture p(x) = {res['bpd_marginal']:.4f}"
    out.print(line)
    if samples:
        line = (f"{samples} samples (T={temperature:g}) vs {sres['n_real']} images, {sres['features']} "
                f"features: FID = {sres['fid']:.4f}, coverage = {sres['coverage']:.4f}, "
                f"density = {sres['density']:.4f} (k={k})")
        if "label_reliability" in sres:
            line += f", label reliability = {sres['label_reliability']:.4f}"
        out.print(line, highlight=False)


def _head_eval_tasks() -> dict:
    """{task name: (head entry, lazy target)} from the heads' `eval_tasks` metadata."""
    tasks = {}
    for e in _reg().list("heads"):
        for name, target in (e.metadata.get("eval_tasks") or {}).items():
            tasks[name] = (e, target)
    return tasks


def _sampler_options(steps: Optional[int], eta: Optional[float]) -> dict:
    """The sampler options given on the command line (the sampler's check validates them)."""
    return {k: v for k, v in (("steps", steps), ("eta", eta)) if v is not None}


def _head_eval(found, task, model, dataset, sets, samples, temperature, sampler, steps, eta, oracle, seed,
               data_root, device, json_):
    """Run a head's evaluation: fn(model, dataset, seed=, data_root=, device=, progress=, model_name=,
    **options); options come from --set, and --samples (n), --temperature, --steps, --eta, --oracle when
    given."""
    import inspect

    from nfzoo.errors import UsageError
    from nfzoo.plugins import Entry

    entry, target = found
    fn = Entry("heads", task, target, entry.plugin).load()
    options = parse_sets(sets)
    for key, value, default in (("n", samples, 0), ("temperature", temperature, 1.0), ("steps", steps, None),
                                ("eta", eta, None), ("oracle", oracle, None)):
        if value != default:
            options[key] = value
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    fixed = ("model", "dataset", "seed", "data_root", "device", "progress", "model_name")
    own = [p for p in params if p not in fixed and params[p].kind != params[p].VAR_KEYWORD]
    unknown = [k for k in options if k not in params or k in fixed]
    if unknown and not takes_any:
        raise UsageError(f"--task {task} has no option(s) {', '.join(unknown)}; its options: {', '.join(own)} "
                         "(--samples sets n)")
    dev = _parse_device(device)
    import nfzoo

    m = nfzoo.load(model, device=dev)
    if sampler is not None:
        from nfzoo.plugins import get_registry

        m.sampler = get_registry().get("samplers", sampler).load()()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as prog:
        bar = prog.add_task(task, total=None)

        def progress(stage, done, total):
            prog.update(bar, description=stage, completed=done, total=total)
        doc = fn(m, dataset, seed=seed, data_root=data_root, device=dev, progress=progress, model_name=model,
                 **options)
    doc = {"model": model, "dataset": dataset, **doc}
    summary = doc.pop("summary", [])
    if json_:
        print_json(doc)
        return
    out.print(f"{model}, --task {task} on {dataset}:", highlight=False)
    for line in summary:
        out.print("  " + line, highlight=False)


# ------------------------------------------------------------ train-oracle
@app.command("train-oracle")
def train_oracle_cmd(dataset: str = typer.Option("mnist5k", "--dataset", "-d", help="labelled data set "
                                                 "(its fixed train split; accuracy on its test split)"),
                     out_dir: Optional[Path] = typer.Option(None, "--out", help="oracle directory "
                                                            "[default: runs/oracle-DATASET]"),
                     epochs: int = typer.Option(20, "--epochs", min=1, max=MAX_EPOCHS, help="epochs"),
                     batch_size: int = typer.Option(64, "--batch-size", min=1, max=MAX_BATCH),
                     lr: float = typer.Option(3e-3, "--lr", callback=finite(above=0),
                                              help="peak learning rate (one-cycle)"),
                     seed: int = typer.Option(0, "--seed", callback=seed_callback,
                                              help="random seed (an integer in [0, 2^32 - 1])"),
                     data_root: Optional[str] = typer.Option(None, "--data-root"),
                     json_: bool = typer.Option(False, "--json", help="print the result document as JSON")):
    """Train the oracle CNN whose features `nfzoo eval --samples` uses for FID, Coverage and Density."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nfzoo.oracle import train_oracle

    if out_dir is None:
        out_dir = Path("runs") / f"oracle-{dataset.replace(':', '_').replace('/', '_')}"
    check_run_dir(out_dir)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as prog:
        bar = prog.add_task("oracle epoch 1", total=None)
        state = {"epoch": 1}

        def on_step(done, total):
            prog.update(bar, completed=done, total=total,
                        description=f"oracle epoch {state['epoch']}/{epochs}")

        def on_epoch(r):
            state["epoch"] = r["epoch"] + 1
            prog.console.print(f"epoch {r['epoch']}: loss {r['train_loss']:.4f}  train acc "
                               f"{r['train_accuracy']:.4f}  test acc {r['test_accuracy']:.4f}  "
                               f"({r['seconds']:.1f} s)", highlight=False)
        res = train_oracle(dataset, epochs=epochs, seed=seed, out=out_dir, batch_size=batch_size, lr=lr,
                           data_root=data_root, progress=on_epoch, step_progress=on_step)
    res.pop("oracle", None)
    if json_:
        print_json(res)
    else:
        err.print(f"[green]done[/]: {res['out']}  test accuracy {res['test_accuracy']:.4f} on "
                  f"{res['test_images']} images  ({res['seconds']:.0f} s)")


# ------------------------------------------------------------------- bench
@app.command("bench")
def bench_cmd(what: Optional[str] = typer.Argument(None, help="benchmark name (none: list them)"),
              quick: bool = typer.Option(False, "--quick", help="a short run (smoke test)"),
              device: str = typer.Option("cpu", "--device", help="cpu or cuda (benchmarks that take it)"),
              json_: bool = typer.Option(False, "--json", help="print JSON")):
    """Run a benchmark: timings against a baseline measured in the same run, as ratios."""
    reg = _reg()
    if what is None:
        entries = reg.list("benchmarks")
        if json_:
            print_json([e.to_json() for e in entries])
        else:
            for e in entries:
                out.print(f"[bold]{e.name}[/]  {e.description}")
        return
    fn = reg.get("benchmarks", what).load()
    kwargs = {}
    if device != "cpu":
        import inspect

        import torch

        from nfzoo.errors import UsageError

        if not device.startswith("cuda"):
            raise UsageError(f"unknown --device {device!r}: use cpu or cuda")
        if not torch.cuda.is_available():
            raise UsageError("--device cuda: torch sees no CUDA device here; run on a GPU machine or drop "
                             "--device")
        if "device" not in inspect.signature(fn).parameters:
            raise UsageError(f"bench {what} runs on the CPU only: drop --device")
        kwargs["device"] = device
    doc = fn(quick=quick, log=lambda msg: err.print(msg, highlight=False), **kwargs)
    if json_:
        print_json(doc)
        return
    from rich.table import Table

    table = Table(title=f"bench {what} ({doc.get('device', '')})", title_justify="left")
    cols = ["case", "baseline", "candidate", "baseline_s", "candidate_s", "ratio"]
    for c in cols:
        table.add_column(c)
    for r in doc["rows"]:
        table.add_row(*[_fmt(r.get(c)) for c in cols])
    out.print(table)
    for r in doc["rows"]:  # the measurements beyond the ratio, one line per case
        extra = {k: v for k, v in r.items() if k not in cols}
        if extra:
            out.print(f"[bold]{r['case']}[/]: " + ", ".join(f"{k} {_fmt(v)}" for k, v in extra.items()),
                      highlight=False)
    for note in doc.get("notes", []):
        out.print(f"note: {note}", highlight=False)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


# ------------------------------------------------------------ zoo and hub
def _size(n: Optional[int]) -> str:
    if n is None:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


class _PullProgress:
    """A rich progress display on stderr, fed by nfzoo.hub with (file, bytes done, total) per file; it
    starts with the first byte, so a pull that downloads nothing prints nothing here."""

    def __init__(self):
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), console=err, transient=False)
        self.tasks: dict = {}

    def __call__(self, name: str, done: int, total: Optional[int]) -> None:
        if not self.tasks:
            self.progress.start()
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=total)
        self.progress.update(self.tasks[name], completed=done, total=total)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.tasks:
            self.progress.stop()


@app.command("pull")
def pull_cmd(name: str = typer.Argument(..., help="pretrained name, family name, or hf-hub:ORG/NAME[@REV]"),
             revision: Optional[str] = typer.Option(None, "--revision", help="commit sha, branch or tag "
                                                    "[default: the commit the zoo index pins]"),
             force: bool = typer.Option(False, "--force", help="download again even if cached"),
             json_: bool = typer.Option(False, "--json", help="print the result as JSON")):
    """Download a pretrained model's files into the Hugging Face cache and check their sha256."""
    from nfzoo import hub

    if Path(name).is_dir():
        fail(f"{name} is a local directory: there is nothing to pull")
    spec = hub.spec_for(name, revision)
    with _PullProgress() as report:
        res = hub.resolve(spec, download=True, force=force, progress=report)
    if json_:
        print_json(res.to_json())
    elif res.source == "embedded":
        err.print(f"{res.name} is embedded in the zoo package ({res.path}): nothing to download")
    else:
        what = f"pulled {', '.join(res.downloaded)}" if res.downloaded else "already cached"
        err.print(f"[green]{what}[/]: {res.name} = {res.repo_id}@{res.revision[:10]} -> {res.path}",
                  highlight=False, soft_wrap=True)


@app.command("push")
def push_cmd(directory: Path = typer.Argument(..., help="model directory (config.json + model.safetensors)"),
             repo_id: str = typer.Option(..., "--repo-id", help="ORG/NAME on the Hub (created if needed)"),
             revision: Optional[str] = typer.Option(None, "--revision", help="branch to commit to [main]"),
             token: Optional[str] = typer.Option(None, "--token",
                                                 help="Hub token [HF_TOKEN or the saved login]"),
             private: bool = typer.Option(False, "--private", help="create the repo private"),
             message: Optional[str] = typer.Option(None, "--message", "-m", help="commit message"),
             json_: bool = typer.Option(False, "--json", help="print the result as JSON")):
    """Upload a model directory to the Hub: config.json, model.safetensors and a README.md model card
    (generated when the directory has none). Prints the commit sha and sha256 pins for the zoo index."""
    from nfzoo import publish

    with err.status(f"pushing {directory} to {repo_id}"):
        doc = publish.push(directory, repo_id, token=token, revision=revision, private=private or None,
                       commit_message=message)
    if json_:
        print_json(doc)
        return
    err.print(f"[green]pushed[/] {directory} to {doc['repo_id']} ({doc['branch']}) at {doc['revision']}",
              highlight=False)
    out.print(json.dumps({k: doc[k] for k in ("repo_id", "revision", "files")}, indent=2), highlight=False)


cache_app = typer.Typer(name="cache", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                        help="The Hugging Face cache entries of nfzoo models: ls, verify (sha256), rm.")
app.add_typer(cache_app, name="cache")


@cache_app.command("ls")
def cache_ls_cmd(name: Optional[str] = typer.Argument(None, help="a pretrained name or hf-hub:ORG/NAME"),
                 json_: bool = typer.Option(False, "--json", help="print JSON")):
    """List the cached revisions of nfzoo models."""
    from nfzoo import cache
    from nfzoo.hub_settings import cache_dir

    rows = [cache.public(r) for r in cache.cache_list(name)]
    if json_:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"nfzoo models in {cache_dir()}", title_justify="left")
    for col in ("name", "repo", "revision", "refs", "pinned", "files", "size"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["repo_id"], r["revision"][:10], ", ".join(r["refs"]),
                      "yes" if r["pinned"] else "", ", ".join(r["files"]), _size(r["size"]))
    out.print(table)
    if not rows:
        err.print("no nfzoo model is cached" + (f" for {name}" if name else ""))


@cache_app.command("verify")
def cache_verify_cmd(name: Optional[str] = typer.Argument(None, help="a pretrained name or hf-hub:ORG/NAME"),
                     json_: bool = typer.Option(False, "--json", help="print JSON")):
    """Recompute the sha256 of cached files and compare with the zoo index (exit 1 on a mismatch)."""
    from nfzoo import cache

    docs = cache.cache_verify(name)
    bad = [(d, f, r) for d in docs for f, r in d["results"].items() if r["status"] in ("mismatch", "missing")]
    if json_:
        print_json(docs)
    else:
        for d in docs:
            mark = "[green]ok[/]" if d["ok"] else "[red]BAD[/]"
            out.print(f"{mark}  {d['name']}  {d['repo_id']}@{d['revision'][:10]}  "
                      + ", ".join(f"{f}: {r['status']}" for f, r in d["results"].items()), highlight=False)
        if not docs:
            err.print("no nfzoo model is cached" + (f" for {name}" if name else ""))
    if bad:
        names = sorted({d["name"] for d, _, _ in bad})
        files = ", ".join(f"{d['name']}/{f}" for d, f, _ in bad)
        fail(f"{len(bad)} cached file(s) do not match their sha256 ({files}): run `nfzoo pull {names[0]} "
             f"--force` (or `nfzoo cache rm {names[0]}`).", 1)


@cache_app.command("rm")
def cache_rm_cmd(name: Optional[str] = typer.Argument(None, help="a pretrained name or hf-hub:ORG/NAME"),
                 revision: Optional[str] = typer.Option(None, "--revision",
                                                        help="only this commit sha or ref"),
                 all_: bool = typer.Option(False, "--all", help="every cached nfzoo model"),
                 json_: bool = typer.Option(False, "--json", help="print JSON")):
    """Remove cached revisions of a model (or of every nfzoo model with --all)."""
    from nfzoo import cache

    if (name is None) != all_:
        fail("give a model NAME (see `nfzoo cache ls`) or --all" if name is None else
             "give a model NAME or --all, not both")
    doc = cache.cache_remove(name, revision)
    if json_:
        print_json(doc)
        return
    for r in doc["removed"]:
        err.print(f"removed {r['name']} {r['repo_id']}@{r['revision'][:10]}", highlight=False)
    err.print(f"freed {_size(doc['freed'])}" if doc["removed"] else "nothing to remove")


# ------------------------------------------------------------------- main
_commands_added = False


def build_app() -> typer.Typer:
    """The app with the plugins' commands (register_commands) added once."""
    global _commands_added
    if not _commands_added:
        _commands_added = True
        try:
            _reg().add_commands(app)
        except Exception as exc:  # a plugin's broken command must not take the CLI down
            err.print(f"[yellow]warning:[/] a plugin failed to add its commands: {exc}")
        for name in _reg().unknown_allowed():   # NFZOO_LOAD_PLUGINS=typo would otherwise hide every plugin
            err.print(f"[yellow]warning:[/] {_reg().plugins[name].error}", highlight=False, soft_wrap=True)
    return app


def main() -> None:
    build_app()()
