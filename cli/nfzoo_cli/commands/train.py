"""`nfzoo train`: train an architecture on a data set (one process, or DDP under torchrun / --nproc)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..toolkit import (
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_NPROC,
    check_run_dir,
    err,
    fail,
    finite,
    parse_sets,
    print_json,
    rich_progress,
    run_dir,
    seed_option,
)
from .ranks import command_argv, launch_ranks


class _RichTrainCallback:
    """The main process's report: a progress bar per epoch (bpd, it/s) and one line per finished epoch."""

    def __init__(self, epochs: int):
        self.progress = rich_progress(transient=False, stats=True, remaining=True)
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
        for name in ("ema", "swa"):
            if record.get(f"test_bpd_{name}") is not None:
                test += f" ({name} {record[f'test_bpd_{name}']:.4f})"
        if record.get("published"):
            test += f"; published: {record['published']}"
        self.progress.console.print(f"epoch {epoch}: train bpd {record['train_bpd']:.4f}{test}  "
                                    f"({record['seconds']:.1f} s)")

    def close(self):
        self.progress.stop()


class _SilentCallback:
    """Ranks other than 0 report nothing: the Trainer's hooks (nfzoo.training.trainer.TrainCallback) and any
    other do nothing."""

    def on_start(self, trainer):
        pass

    def on_epoch_start(self, epoch, steps):
        pass

    def on_step(self, step, loss, bpd, it_s):
        pass

    def on_epoch_end(self, epoch, record):
        pass

    def on_eval_progress(self, done, total):
        pass

    def __getattr__(self, name):
        return lambda *a, **k: None


def train_cmd(ctx: typer.Context, arch: Optional[str] = typer.Argument(None, help="architecture (see `nfzoo "
                                                                          "list`); none with --recipe"),
              dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="digits, mnist5k, mnist, "
                                                    "cifar10, ..., or folder:DIR (with --recipe: overrides "
                                                    "its stages')"),
              recipe: Optional[str] = typer.Option(None, "--recipe", help="run a recipe: a zoo model's name "
                                                   "(its whole training) or a recipe file (RUN/recipe.yaml); "
                                                   "options and --set override its train stages"),
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
              init_from: Optional[str] = typer.Option(None, "--init", help="start from the weights of this "
                                                      "pretrained model or model folder (same architecture and "
                                                      "tensor shapes): fine-tuning"),
              checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", min=0, max=10 ** 9,
                                                             help="steps between checkpoints [each epoch]"),
              ema: Optional[float] = typer.Option(None, "--ema", help="keep an exponential moving average of "
                                                  "the weights with this decay in (0, 1), e.g. 0.999 [off]"),
              swa_epochs: Optional[int] = typer.Option(None, "--swa-epochs", help="average the weights of the "
                                                       "last K epochs (SWA) [0: off]"),
              compile_: bool = typer.Option(False, "--compile", help="torch.compile the training step's "
                                            "forward (eager, with a warning saying why, where it cannot)"),
              log: List[str] = typer.Option([], "--log", help="also log to tensorboard (RUN_DIR/tb) and/or "
                                            "wandb; repeat or use a comma list"),
              seed: Optional[int] = seed_option(None, "random seed [0]"),
              data_root: Optional[str] = typer.Option(None, "--data-root", help="torchvision data folder"),
              download: bool = typer.Option(False, "--download", help="let torchvision download data"),
              image_size: Optional[int] = typer.Option(None, "--image-size", min=1, max=4096, help="folder data "
                                                       "sets: resize the shorter side to N, then center-crop N x N "
                                                       "(also --set channels=1|3, --set test_fraction=0.2)"),
              device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or auto [cpu]"),
              precision: Optional[str] = typer.Option(None, "--precision", help="fp32, bf16 or fp16 (CUDA "
                                                      "autocast of the nets; fp16 with a gradient scaler) [fp32]"),
              workers: Optional[int] = typer.Option(None, "--workers", min=0, max=256, help="processes reading "
                                                    "a file data set's images (0: the main one) [CPUs - 1, <= 8]"),
              accumulate: Optional[int] = typer.Option(None, "--accumulate", min=1, max=MAX_BATCH, help="run each "
                                                       "batch as K micro-batches, one optimizer step (gradient "
                                                       "accumulation; K divides --batch-size) [1]"),
              nproc: int = typer.Option(1, "--nproc", min=1, max=MAX_NPROC, help="processes on this host "
                                        "(launches torchrun; --batch-size stays the global batch)"),
              json_: bool = typer.Option(False, "--json", help="print the result document as JSON")):
    """Train ARCH on a data set; writes a loadable model directory, checkpoints and a bpd curve.
    Under torchrun (or with --nproc N) it trains with DistributedDataParallel."""
    import os
    from dataclasses import asdict

    from nfzoo.distributed import env_world
    from nfzoo.training.trainer import TrainConfig, Trainer, load_train_config

    given = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
             "warmup_steps": warmup, "lr_schedule": lr_schedule, "grad_clip": grad_clip,
             "checkpoint_every": checkpoint_every, "seed": seed, "data_root": data_root, "device": device,
             "precision": precision, "init_from": init_from, "ema": ema, "swa_epochs": swa_epochs,
             "workers": workers, "accumulate": accumulate}
    given = {k: v for k, v in given.items() if v is not None}
    model_cfg = parse_sets(sets)
    # --set image_size / channels / test_fraction (folders), image_column / label_column / streaming (hf:): data
    from nfzoo.data import DATA_OPTIONS as HF_OPTIONS
    from nfzoo.data import FOLDER_OPTIONS

    data_opts = {k: model_cfg.pop(k) for k in (*FOLDER_OPTIONS, *HF_OPTIONS) if k in model_cfg}
    if image_size is not None:
        data_opts["image_size"] = image_size
    if data_opts:
        given["data"] = data_opts
    if recipe is not None:
        return _train_recipe(ctx, recipe, arch, dataset, given, model_cfg, download, compile_, preset, out_dir,
                             resume, nproc, log, json_)
    if arch is None or dataset is None:
        fail("give the architecture and the data set (`nfzoo train ARCH --dataset DS`; `nfzoo list` lists "
             "architectures), or a recipe (`nfzoo train --recipe glow-mnist5k`)")
    if preset is not None:
        if resume:
            fail("--preset starts a run; --resume continues one as it was set up (drop --preset)")
        from nfzoo.loading.api import architecture_preset

        p = architecture_preset(arch, preset)
        given = {**p["train"], **given}
        model_cfg = {**p["model"], **model_cfg}
    if resume:
        if out_dir is None:
            fail("--resume needs --out DIR (the run to continue)")
        cfg = load_train_config(out_dir)
        if cfg.arch != arch or cfg.dataset != dataset:
            fail(f"--resume: {out_dir} trains {cfg.arch} on {cfg.dataset}, not {arch} on {dataset}")
        changed = {k for k, v in given.items() if k not in ("epochs", "workers") and getattr(cfg, k) != v}
        cfg.compile = compile_       # how the step runs, not what it computes: may change on --resume
        cfg.workers = workers if workers is not None else cfg.workers   # so may the readers of the images
        if changed or (model_cfg and any(cfg.model.get(k) != v for k, v in model_cfg.items())):
            fail(f"--resume continues the run as it was set up; only --epochs may change, besides --compile, "
                 f"--workers and --log (differs: {', '.join(sorted(changed | set(model_cfg))) or 'model config'})")
        if epochs is not None:
            cfg.epochs = epochs
    else:
        # unknown architecture / config keys are reported before anything is written
        from nfzoo.loading.api import architecture_config

        architecture_config(arch, **model_cfg)
        cfg = TrainConfig(arch=arch, dataset=dataset, model=model_cfg, download=download, compile=compile_,
                          **given)
        cfg.validate()
        if out_dir is None:
            if env_world() > 1:
                fail("under torchrun, pass --out DIR: every process must write to the same run")
            out_dir = run_dir(arch, dataset, stamp=True)
    check_run_dir(out_dir)           # a file, or a folder nobody can write to: exit 2 before any work
    from nfzoo.training.loggers import CallbackList, create_loggers

    # an unknown logger or one whose package is missing: exit 2 before any work
    loggers = create_loggers([n.strip() for item in log for n in item.split(",") if n.strip()])
    if nproc != 1:
        if not resume and out_dir.exists() and any(out_dir.iterdir()):
            fail(f"{out_dir} already holds files (a previous run?). Pass --resume to continue it, or "
                 "choose another --out; nothing was overwritten.")
        err.print(f"global batch {cfg.batch_size}, split across {nproc} processes", highlight=False)
        return launch_ranks(nproc, command_argv(ctx, extra={"out_dir": str(out_dir)}))
    main_rank = os.environ.get("RANK", "0") == "0"
    cb = _RichTrainCallback(cfg.epochs) if main_rank else _SilentCallback()
    if loggers:                      # they log on rank 0 only
        cb = CallbackList([cb, *loggers])
    try:
        trainer = Trainer(cfg, out_dir, cb, resume=resume)
        result = trainer.run()       # ends with a barrier: every rank has finished
    finally:
        cb.close()
    trainer.dist.close()             # as in sample and eval: the ranks shut the process group down together
    if not main_rank:
        return
    from nfzoo.training.recipes import RECIPE_NAME, recipe_of_run

    recipe_of_run(cfg).save(Path(result["out"]) / RECIPE_NAME)   # `nfzoo train --recipe RUN/recipe.yaml` again
    result["train_config"] = asdict(cfg)
    if json_:
        print_json(result)
    else:
        published = result.get("published")
        if published is not None:
            bpds = "  ".join(f"{k} {v:.4f}" for k, v in result["final_test_bpd"].items() if v is not None)
            err.print(f"[green]done[/]: {result['out']}  test bpd {bpds}; published: {published} "
                      f"(curve: {Path(result['out']) / 'curve.png'})")
        else:
            err.print(f"[green]done[/]: {result['out']}  test bpd {result['test_bpd']:.4f}  "
                      f"(curve: {Path(result['out']) / 'curve.png'})")


def _train_recipe(ctx, name, arch, dataset, given, model_cfg, download, compile_, preset, out_dir, resume, nproc,
                  log, json_):
    """`nfzoo train --recipe NAME_OR_FILE`: the recipe's stages in order (nfzoo.training.recipes.run_recipe), each
    train stage with the usual progress and loggers; the last stage's model ends in OUT."""
    import shlex

    from nfzoo.distributed import env_world
    from nfzoo.training.loggers import CallbackList, create_loggers
    from nfzoo.training.recipes import find_recipe, run_recipe

    if arch is not None:
        fail(f"--recipe names the architectures it trains: drop {arch!r} (or drop --recipe)")
    if preset is not None:
        fail("--preset and --recipe both set the run up: give one")
    if "init_from" in given:
        fail("--init: a recipe's stages say what they start from (its init_from); edit a copy of the recipe")
    if nproc != 1 or env_world() > 1:
        fail("--recipe runs on one process: run a stage on several with its own `nfzoo train ... --nproc N`")
    r = find_recipe(name)
    overrides = dict(given, **({"download": True} if download else {}), **({"compile": True} if compile_ else {}))
    r = r.with_overrides(overrides, model_cfg, dataset=dataset)
    names = [n.strip() for item in log for n in item.split(",") if n.strip()]
    create_loggers(names)            # an unknown logger or a missing package: exit 2 before any work
    if out_dir is None:
        if resume:
            fail("--resume needs --out DIR (the recipe's folder to continue)")
        out_dir = run_dir(r.model or Path(name).stem, "recipe", stamp=True)
    check_run_dir(out_dir)
    if not resume and out_dir.exists() and any(out_dir.iterdir()):
        fail(f"{out_dir} already holds files (a previous run?). Pass --resume to continue it, or choose another "
             "--out; nothing was overwritten.")

    def callback(stage, cfg):
        cb = _RichTrainCallback(cfg.epochs)
        return CallbackList([cb, *create_loggers(names)]) if names else cb

    def on_stage(i, stage, folder):
        err.print(f"[bold]stage {i}/{len(r.stages)}[/]: {stage.name} ({stage.kind.replace('_', '-')}) -> {folder}",
                  highlight=False)

    command = shlex.join(["nfzoo", *command_argv(ctx, drop=("json_",))])
    result = run_recipe(r, out_dir, resume=resume, train_callback=callback, on_stage=on_stage, command=command)
    if json_:
        print_json(result)
        return
    last = result["stages"][-1]["result"]
    number = next((f"{k} {last[k]:.4f}" for k in ("test_bpd_after", "test_bpd", "test_accuracy") if k in last), "")
    err.print(f"[green]done[/]: {result['out']} ({len(result['stages'])} stage(s); {number}; the recipe as it ran: "
              f"{Path(result['out']) / 'recipe.yaml'})", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `train` to `app`."""
    app.command("train")(train_cmd)
