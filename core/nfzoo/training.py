"""Training: the Trainer and what it reports (Callback). One module: the loop, resuming, preemption, the
weight averages and the DDP wrapping share the trainer's state.

A run directory (`--out`) holds:
    config.json, model.safetensors   the latest model (a loadable FlowModel directory)
    train.json                        the training settings, for `--resume`
    history.json, curve.png           train / test bpd per epoch
    checkpoints/step-NNNNNNNN/        the last two checkpoints: model, optimizer and RNG states, position
    ema/, swa/, raw/                  with weight averaging (--ema, --swa-epochs; nfzoo.averaging): each average
                                      as a model folder, and at the end the raw weights; the top-level model is
                                      then the one of the three with the lowest final test bpd ("published")
Every file is written atomically; a checkpoint folder is renamed into place only once complete, and its
manifest holds the sha256 of each file. A checkpoint is loaded only if every file it needs is listed in its
manifest and matches, and its state and weights are well-formed (nfzoo.checkpoints); a torn, corrupt or
edited one is skipped, reported (Callback.on_warning), and the one before it used. train.json and
state.json are checked key by key: a bad value is an error naming the file and the key.

Randomness comes only from explicit generators seeded from `seed` (model init, the per-epoch shuffle,
the dequantization noise), and their states are checkpointed, so `--resume` continues the same run.

Under torchrun (several processes) the model is wrapped in DistributedDataParallel, each global batch is
split across the ranks, the data-dependent initialisation runs on rank 0 and is broadcast, and only rank 0
writes files; nfzoo.distributed says how the work and the random numbers are split. `batch_size` is the
global batch, whatever the number of processes.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from .averaging import averaged_count, choose_published, create_averages, swa_epoch
from .checkpoints import (CHECKPOINT_DIR, checkpoint_path, list_checkpoints, restore_checkpoint,
                          write_checkpoint)
from .data import iterate, load_batches
from .errors import ConfigError, CorruptFileError, NfzooWarning, PreemptedError, TrainingDivergedError, UsageError
from .evaluation import evaluate_bpd
from .plots import write_curve
from .precision import enable_bf16
from .safeio import atomic_write_json, read_json
from .train_config import TrainConfig, load_train_config

# the training API; the parts live in train_config, checkpoints, data, evaluation, precision and plots
__all__ = ["Trainer", "TrainConfig", "Callback", "load_train_config", "evaluate_bpd"]


class Callback:
    """What the trainer reports while it runs. The CLI renders these with rich."""

    def on_start(self, trainer: "Trainer") -> None:
        """Once, before the first step (the model initialised or restored). Default: nothing."""

    def on_epoch_start(self, epoch: int, steps: int) -> None:
        """Epoch `epoch` (from 1) begins; it has `steps` optimizer steps. Default: nothing."""

    def on_step(self, step: int, loss: float, bpd: float, it_s: float) -> None:
        """After optimizer step `step`: the batch's loss and mean bpd, images per second. Default: nothing."""

    def on_step_metrics(self, step: int, metrics: Dict[str, float]) -> None:
        """After on_step, for loggers: {"loss", "bpd" (this rank's batch), "lr" (the scheduled learning rate
        of the step, before a group's lr_scale), "grad_norm" (the total gradient norm before clipping, as
        clip_grad_norm_ returns it)}. Default: nothing."""

    def on_epoch_end(self, epoch: int, record: Dict[str, Any]) -> None:
        """Epoch `epoch` ended; `record` is its history.json entry (train / test bpd). Default: nothing."""

    def on_eval_progress(self, done: int, total: int) -> None:
        """`done` of `total` test images scored in the epoch's evaluation. Default: nothing."""

    def on_warning(self, message: str) -> None:
        """Something the user should know that does not stop the run (a corrupt checkpoint skipped on
        --resume). Default: a Python warning (NfzooWarning), which is printed on stderr."""
        warnings.warn(message, NfzooWarning, stacklevel=2)

    def on_end(self, result: Dict[str, Any]) -> None:
        """The run finished (every file written); `result` is run()'s document. Default: nothing."""


# ------------------------------------------------------------------ trainer
class Trainer:
    """Trains `cfg.arch` on `cfg.dataset` into the run folder `out` (a new or empty folder; with
    resume=True, a run's folder, continued from its newest good checkpoint); `run()` returns the result
    document. The data sets are loaded and the settings checked here; the model is built by `run()`."""

    def __init__(self, cfg: TrainConfig, out: Path, callback: Optional[Callback] = None,
                 resume: bool = False):
        cfg.validate()
        self.cfg, self.out, self.cb = cfg, Path(out), callback or Callback()
        self.resume = resume
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out {self.out} is a file, not a folder: give a new folder for the run (or "
                             "an existing run's folder with --resume); nothing was written.")
        from . import limits
        from .data import load_dataset

        limits.check_numbers(cfg.model, key="--set")
        self.train_set = load_dataset(cfg.dataset, "train", cfg.data_root, cfg.download)
        self.test_set = load_dataset(cfg.dataset, "test", cfg.data_root, cfg.download)
        mc = dict(cfg.model)
        mc.setdefault("image_shape", list(self.train_set.image_shape))
        mc = {**mc, **limits.check_config(cfg.arch, {"image_shape": mc["image_shape"]})}
        if [int(s) for s in mc["image_shape"]] != list(self.train_set.image_shape):
            raise ConfigError(f"image_shape {mc['image_shape']} does not match the data set "
                              f"{cfg.dataset!r}, whose images are {list(self.train_set.image_shape)}")
        if mc.get("num_classes") is not None and getattr(self.train_set, "num_classes", None) is None:
            raise ConfigError(f"num_classes is set but {cfg.dataset!r} has no class labels")
        self.model_config = mc
        from .distributed import context

        self.dist = context(cfg.device)   # one process, or torchrun's process group
        self.step = 0
        self.epoch = 0          # epochs completed
        self.pos = 0            # batches done in the current epoch
        self.history: List[Dict[str, Any]] = []
        self.averages: Dict[str, Any] = {}   # "ema" / "swa": torch's AveragedModel of self.model

    # -- setup
    def _build(self) -> None:
        from .api import build_model

        torch.manual_seed(self.cfg.seed)
        # checked against the limits (nfzoo.limits) with the activations of one training batch
        self.model = build_model(self.cfg.arch, self.model_config, batch=self.cfg.batch_size).to(self.dist.device)
        if self.cfg.init_from and not self.resume:
            self._load_init(self.cfg.init_from)
        if self.cfg.precision == "bf16":
            enable_bf16(self.model)
        self.conditional = self.model.num_classes is not None
        groups = [dict(g) for g in self.model.optimizer_groups()]
        opt_cls = torch.optim.Adam if self.cfg.optimizer == "adam" else torch.optim.Adamax
        self.opt = opt_cls(groups, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.noise = torch.Generator().manual_seed(self.cfg.seed + 1)
        if self.dist.enabled:
            torch.manual_seed(self.cfg.seed + 7919 * self.dist.rank)   # per-rank seed of the global RNG

    def _prepare_out(self) -> None:
        out = self.out
        if self.resume:
            return
        # every rank looks before rank 0 writes (a collective), so all of them stop alike
        if self.dist.any(out.exists() and any(out.iterdir())):
            raise UsageError(f"{out} already holds files (a previous run?). Pass --resume to continue "
                             "it, or choose another --out; nothing was overwritten.")
        if self.dist.is_main:
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"cannot create the run folder --out {out} ({exc.strerror or exc}); choose "
                                 "a writable folder.") from None

    def _lr(self, step: int) -> float:
        """Linear warm-up over warmup_steps, then constant or a cosine decay to 0 at the last step.
        (A parameter group's `lr_scale`, from the model's optimizer_groups, multiplies it.)"""
        w = self.cfg.warmup_steps
        lr = self.cfg.lr * min(1.0, (step + 1) / w) if w > 0 else self.cfg.lr
        if self.cfg.lr_schedule == "cosine":
            total = self.total_steps()
            t = min(1.0, max(0, step - w) / max(1, total - w))
            lr *= 0.5 * (1 + math.cos(math.pi * t))
        return lr

    def _shuffle_generator(self, epoch: int) -> torch.Generator:
        """The generator of epoch `epoch`'s order: seeded with seed * 1000003 + epoch, wrapped at 2^64 as
        torch wraps seeds (so every seed up to 2^63 - 1 works)."""
        return torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + epoch) % 2 ** 64)

    def _plan(self, epoch: int, generator: Optional[torch.Generator] = None):
        """The epoch's phases [(phase, dataset indices)], from the model (FlowModel.training_plan)."""
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return self.model.training_plan(len(self.train_set), epoch, self.cfg.epochs, gen)

    def _n_batches(self, n: int) -> int:
        """Global batches in a phase of n images. With several processes a last batch smaller than the
        number of processes is dropped (every rank must get at least one image)."""
        bs, w = self.cfg.batch_size, self.dist.world
        nb = math.ceil(n / bs)
        if w > 1 and 0 < n % bs < w:
            nb -= 1
        return nb

    def steps_per_epoch(self, epoch: Optional[int] = None) -> int:
        """Optimizer steps of an epoch (the current one by default), every phase included."""
        return sum(self._n_batches(len(idx)) for _, idx in self._plan(self.epoch if epoch is None else epoch))

    def total_steps(self) -> int:
        """Optimizer steps of the whole run (computed once)."""
        if getattr(self, "_total", None) is None:
            self._total = sum(self.steps_per_epoch(e) for e in range(self.cfg.epochs))
        return self._total

    def _batches(self, plan, start: int):
        """(phase, x, y, global batch size, offset of this rank's piece in it) for the epoch's batches
        from batch `start` on; x, y are this rank's contiguous piece of the global batch."""
        from .distributed import shard

        bs, w, r = self.cfg.batch_size, self.dist.world, self.dist.rank
        for phase, order in plan:
            nb = self._n_batches(len(order))
            if start >= nb:
                start -= nb
                continue
            groups = [order[i * bs:(i + 1) * bs] for i in range(start, nb)]
            cuts = [shard(len(g), w, r) for g in groups]
            pieces = [g[a:b] for g, (a, b) in zip(groups, cuts)]
            for (x, y), g, (a, _) in zip(load_batches(self.train_set, pieces), groups, cuts):
                yield phase, x, y, len(g), a
            start = 0

    # -- checkpoints
    def save_checkpoint(self) -> Path:
        """Write a checkpoint (nfzoo.checkpoints; rank 0 only: the ranks hold the same state; the shared
        noise generator's too, and the per-rank streams are derived from the step)."""
        if not self.dist.is_main:
            return checkpoint_path(self.out, self.step)
        return write_checkpoint(
            self.out, self.step, self.model, self.opt,
            rng={"noise": self.noise.get_state(), "torch": torch.get_rng_state()},
            state={"step": self.step, "epoch": self.epoch, "pos": self.pos, "history": self.history,
                   "model_config": self.model_config, "train": asdict(self.cfg)},
            averages=self.averages)

    def load_checkpoint(self) -> Optional[Path]:
        """Restore the newest checkpoint that verifies (nfzoo.checkpoints.restore_checkpoint: every file
        listed in its manifest and matching; then its state, weights and optimizer state well-formed). A
        checkpoint that does not is skipped and reported through the callback's `on_warning` (a Python
        warning, NfzooWarning, when the callback has none), and the one before it is tried. The run's weight
        averages (--ema, --swa-epochs) are restored from the same checkpoint, which must hold them."""
        self.skipped: List[str] = []
        self.averages = create_averages(self.model, self.cfg.ema, self.cfg.swa_epochs)
        for path in reversed(list_checkpoints(self.out)):
            try:
                meta, rng = restore_checkpoint(path, self.model, self.opt, rng=("noise", "torch"),
                                               averages=self.averages)
                self.noise.set_state(rng["noise"])
                torch.set_rng_state(rng["torch"])
            except (CorruptFileError, ConfigError) as exc:
                self._skip(path, str(exc))
                continue
            except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
                self._skip(path, f"{path}: cannot restore it ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''}); this checkpoint is not used.")
                continue
            self.step, self.epoch, self.pos = meta["step"], meta["epoch"], meta["pos"]
            self.history = meta["history"]
            return path
        return None

    def _skip(self, path: Path, reason: str) -> None:
        self.skipped.append(f"{path.name}: {reason}")
        self.warn(f"skipped the checkpoint {path.name}: {reason}")

    def warn(self, message: str) -> None:
        """Report something that does not stop the run through the callback's `on_warning` (a Python
        warning, NfzooWarning, when the callback has none)."""
        report = getattr(self.cb, "on_warning", None)
        if callable(report):
            report(message)
        else:
            warnings.warn(message, NfzooWarning, stacklevel=3)

    def _diverged(self, what: str) -> TrainingDivergedError:
        cks = list_checkpoints(self.out)
        kept = (f"the last good checkpoint ({cks[-1].name}) and model files in {self.out} are kept"
                if cks else f"no checkpoint had been written yet; nothing in {self.out} was overwritten")
        return TrainingDivergedError(
            f"{what} at step {self.step} (epoch {self.epoch + 1}): training stopped; {kept}. Try a lower "
            f"--lr (now {self.cfg.lr:g}), a longer warm-up, or a smaller --set hidden=...")

    # -- the loop
    def run(self) -> Dict[str, Any]:
        """Train to the last epoch. SIGTERM (in the main thread) finishes the step under way, writes a
        checkpoint of the exact position and raises PreemptedError; `resume=True` continues from it."""
        import signal
        import threading

        self._sigterm = False
        if threading.current_thread() is not threading.main_thread():
            return self._run()

        def on_sigterm(signum, frame):
            self._sigterm = True
        previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            return self._run()
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _preempted(self) -> PreemptedError:
        path = self.save_checkpoint()
        self.dist.barrier()
        return PreemptedError(f"SIGTERM at step {self.step} (epoch {self.epoch + 1}, batch {self.pos}): wrote "
                              f"the checkpoint {path.name} in {self.out}; continue with `nfzoo train ... "
                              f"--out {self.out} --resume`")

    def _run(self) -> Dict[str, Any]:
        self._build()  # a config that cannot build a model fails here, before anything is written
        self._prepare_out()
        resumed_from = None
        if self.resume:
            saved = self.out / "train.json"
            if not saved.is_file():
                raise UsageError(f"--resume: {self.out} holds no training run (no train.json). Start one "
                                 "without --resume.")
            resumed_from = self.load_checkpoint()
            if resumed_from is None:
                raise UsageError(f"--resume: no usable checkpoint in {self.out / CHECKPOINT_DIR}"
                                 + (f" ({'; '.join(self.skipped)})" if self.skipped else "")
                                 + ". Start again without --resume in a new --out.")
        else:
            if self.dist.is_main:
                atomic_write_json(self.out / "train.json", {"train": asdict(self.cfg),
                                                            "model_config": self.model_config})
            self._initialize()
        self._wrap()
        if not self.resume:   # after the broadcast: every rank averages from rank 0's initialised weights
            self.averages = create_averages(self.model, self.cfg.ema, self.cfg.swa_epochs)
        self.cb.on_start(self)
        self._total = None
        while self.epoch < self.cfg.epochs:
            self.model.train()
            spe = self.steps_per_epoch()
            ck_every = self.cfg.checkpoint_every or spe
            self.cb.on_epoch_start(self.epoch + 1, spe)
            shuffle = self._shuffle_generator(self.epoch)
            plan = self._plan(self.epoch, shuffle)
            t0, seen, bpd_sum, n_sum = time.perf_counter(), 0, 0.0, 0
            for phase, x, y, n_global, offset in self._batches(plan, self.pos):
                lr = self._lr(self.step)
                for g in self.opt.param_groups:
                    g["lr"] = lr * g.get("lr_scale", 1.0)
                x, y = x.to(self.dist.device), y.to(self.dist.device)
                loss, bpd, scaled, stop = self._forward(phase, x, y, n_global, offset)
                self.opt.zero_grad(set_to_none=True)
                scaled.backward()
                keep = self.model.phase_parameters(phase)
                if keep is not None:   # parameters fixed in this phase take no step
                    for p in self.model.parameters():
                        if id(p) not in keep:
                            p.grad = None
                norm = None
                if self.cfg.grad_clip > 0:
                    norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
                    if not torch.isfinite(norm):
                        raise self._diverged(f"the gradient norm became {norm.item()}")
                self.opt.step()
                if "ema" in self.averages:
                    self.averages["ema"].update_parameters(self.model)
                self.step += 1
                self.pos += 1
                seen += 1
                bpd_sum += bpd.detach().sum().item()
                n_sum += x.shape[0]
                loss_v, bpd_v = loss.item(), bpd.mean().item()
                self.cb.on_step(self.step, loss_v, bpd_v, seen / (time.perf_counter() - t0))
                self._step_metrics(loss_v, bpd_v, lr, norm)
                if self.step % ck_every == 0 and self.pos < spe:
                    self.save_checkpoint()
                if stop:
                    raise self._preempted()
            bpd_sum, n_sum = self.dist.all_reduce_sum([bpd_sum, n_sum])
            record: Dict[str, Any] = {"epoch": self.epoch + 1, "step": self.step,
                                      "train_bpd": bpd_sum / max(n_sum, 1),
                                      "seconds": time.perf_counter() - t0}
            if self.dist.enabled:
                record["processes"] = self.dist.world
            record.update(self.model.epoch_metrics())
            self.epoch += 1
            self.pos = 0
            if "swa" in self.averages and swa_epoch(self.epoch, self.cfg.epochs, self.cfg.swa_epochs):
                self.averages["swa"].update_parameters(self.model)
            last = self.epoch == self.cfg.epochs
            if last:   # e.g. statistics fitted on the training split (each average fits its own)
                for m in (self.model, *(a.module for a in self.averages.values())):
                    m.after_training(self.train_set)
            if self.epoch % self.cfg.eval_every == 0 or last:
                record["test_bpd"] = self._test_bpd(self.model)
                for name, avg in self.averages.items():
                    if averaged_count(avg):
                        record[f"test_bpd_{name}"] = self._test_bpd(avg.module)
            if last and self.averages:
                record["published"] = choose_published(self._final_bpds(record))
            self.history.append(record)
            if self.dist.is_main:
                self._save_models(record)
                self.save_checkpoint()
                self._write_history()
            self.cb.on_epoch_end(self.epoch, record)
            if self.dist.any(self._sigterm) and self.epoch < self.cfg.epochs:
                raise self._preempted()
        self.dist.barrier()   # the files are written before any rank reports the run done
        last = self.history[-1] if self.history else {}
        result = {"out": str(self.out), "arch": self.cfg.arch, "dataset": self.cfg.dataset,
                  "epochs": self.epoch, "steps": self.step, "train_bpd": last.get("train_bpd"),
                  "test_bpd": last.get("test_bpd"), "history": self.history,
                  "resumed_from": resumed_from.name if resumed_from else None,
                  "processes": self.dist.world, "global_batch_size": self.cfg.batch_size,
                  "parameters": sum(p.numel() for p in self.model.parameters())}
        if self.averages:
            result["published"] = last.get("published")
            result["final_test_bpd"] = self._final_bpds(last)
        if callable(getattr(self.cb, "on_end", None)):
            self.cb.on_end(result)
        return result

    # -- evaluation, weight averages and what is published
    def _test_bpd(self, model) -> float:
        return evaluate_bpd(model, self.test_set, self.cfg.eval_batch, seed=self.cfg.seed,
                            progress=self.cb.on_eval_progress, dist=self.dist)["bpd"]

    def _final_bpds(self, record: Dict[str, Any]) -> Dict[str, Optional[float]]:
        """{"raw": test bpd, "ema": ..., "swa": ...} of an epoch's record, for the averages this run keeps."""
        return {"raw": record.get("test_bpd"), **{n: record.get(f"test_bpd_{n}") for n in self.averages}}

    def _step_metrics(self, loss: float, bpd: float, lr: float, norm: Optional[torch.Tensor]) -> None:
        report = getattr(self.cb, "on_step_metrics", None)
        if not callable(report) or getattr(report, "__func__", None) is Callback.on_step_metrics:
            return
        if norm is None:   # no clipping: the same total norm, measured only
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        report(self.step, {"loss": loss, "bpd": bpd, "lr": lr, "grad_norm": float(norm)})

    def _save_models(self, record: Dict[str, Any]) -> None:
        """Rank 0, after an epoch: the model files at the top of the run (the raw weights; after the last
        epoch of a run that averages, the published ones), each average begun in its folder (ema/, swa/),
        and at the end the raw weights in raw/ and the choice in train.json."""
        published = record.get("published")
        top = self.model if published in (None, "raw") else self.averages[published].module
        top.save_pretrained(self.out)
        for name, avg in self.averages.items():
            if averaged_count(avg):
                avg.module.save_pretrained(self.out / name)
        if published is not None:
            self.model.save_pretrained(self.out / "raw")
            doc = read_json(self.out / "train.json", "training settings")
            doc.update(published=published, final_test_bpd=self._final_bpds(record))
            atomic_write_json(self.out / "train.json", doc)

    def _load_init(self, name: str) -> None:
        """`init_from`: the weights of a pretrained model (a zoo name, hf-hub: id or model folder) of the same
        architecture whose tensors have this model's names and shapes (the config may differ where it does
        not change them, e.g. scale_floor or noise_sigma): fine-tuning. ActNorm is then initialised already."""
        from .api import load
        from .model import load_state_strict

        src = load(name, device="cpu")
        if src.architecture != self.cfg.arch:
            raise ConfigError(f"init_from={name!r} is a {src.architecture} model; this run trains {self.cfg.arch}: "
                              "start from a model of the same architecture")
        load_state_strict(self.model, src.state_dict(), source=f"init_from={name}")

    def _initialize(self) -> None:
        """Data-dependent initialisation (ActNorm) on rank 0; _wrap broadcasts the result. A run that starts
        from a pretrained model's weights (init_from) keeps them."""
        if not self.dist.is_main or self.cfg.init_from:
            return
        n = min(self.cfg.init_batch, len(self.train_set))
        gen = torch.Generator().manual_seed(self.cfg.seed + 2)
        x, y = next(iterate(self.train_set, n, True, gen))
        self.model.initialize(x.to(self.dist.device), y.to(self.dist.device) if self.conditional else None,
                              generator=gen)

    def _wrap(self) -> None:
        """With several processes: rank 0's parameters and buffers to every rank, then DDP. With `compile`,
        the module whose forward the step calls (DDP's, or the model's training_loss) is compiled
        (nfzoo.compiling.compile_module; why it runs eager, if it does, goes to `warn`)."""
        self.ddp = None
        self._loss_fn = None
        if self.dist.enabled:
            self._ddp()
        if self.cfg.compile:
            from .compiling import compile_module

            target = self.ddp if self.ddp is not None else _TrainingLoss(self.model)
            fn, reason = compile_module(target, "train", on_fallback=self.warn)
            if reason is not None:
                self.warn(reason)
            else:
                self._loss_fn = fn

    def _ddp(self) -> None:
        """Rank 0's parameters and buffers to every rank, then the DistributedDataParallel of the loss."""
        import torch.distributed as tdist
        from torch.nn.parallel import DistributedDataParallel

        with torch.no_grad():
            for t in list(self.model.parameters()) + list(self.model.buffers()):
                tdist.broadcast(t.data, src=0)
        import inspect

        from .model import FlowModel

        ids = [self.dist.local_rank] if self.dist.device.type == "cuda" else None
        # phased models (GLEM, Diffused-Flows' two-stage) leave parameters out of some steps' graphs
        unused = type(self.model).training_plan is not FlowModel.training_plan
        # buffers were broadcast above; they change only at initialisation, so no sync per forward
        sync = ({"forward_sync_buffers": False}
                if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                else {"broadcast_buffers": False})
        self.ddp = DistributedDataParallel(_TrainingLoss(self.model), device_ids=ids,
                                           find_unused_parameters=unused, **sync)

    def _forward(self, phase, x, y, n_global: int, offset: int):
        """(loss, per-image bpd, the loss to differentiate, stop after this step) of this rank's piece.
        Every rank agrees on divergence and on SIGTERM (one small all-reduce per step)."""
        from .distributed import mix_seed, skip_uniform

        yy = y if self.conditional else None
        kw = dict(phase=phase, epoch=self.epoch, epochs=self.cfg.epochs)
        if not self.dist.enabled:
            loss, bpd = (self._loss_fn or self.model.training_loss)(x, yy, generator=self.noise, **kw)
            if not torch.isfinite(loss):
                raise self._diverged(f"the loss became {loss.item()}")
            return loss, bpd, loss, self._sigterm
        draws = self.model.training_draws_per_image
        if draws is not None:   # this piece's images get the noise they get on one process
            state = self.noise.get_state()
            skip_uniform(self.noise, offset * draws)
            gen = self.noise
        else:
            gen = torch.Generator().manual_seed(mix_seed(self.cfg.seed, self.step, self.dist.rank))
        loss, bpd = (self._loss_fn or self.ddp)(x, yy, generator=gen, **kw)
        if draws is not None:   # every rank leaves the step where one process would
            self.noise.set_state(state)
            skip_uniform(self.noise, n_global * draws)
        bad, stop = self.dist.all_reduce_sum([0.0 if torch.isfinite(loss) else 1.0, float(self._sigterm)])
        if bad:
            raise self._diverged(f"the loss became non-finite (on {int(bad)} of {self.dist.world} ranks)")
        # DDP averages the ranks' gradients: weight each by its share of the global batch
        return loss, bpd, loss * (x.shape[0] * self.dist.world / n_global), bool(stop)

    def _write_history(self) -> None:
        atomic_write_json(self.out / "history.json", self.history)
        write_curve(self.history, self.out / "curve.png",
                    title=f"{self.cfg.arch} on {self.cfg.dataset}")


class _TrainingLoss(torch.nn.Module):
    """The model's training_loss as a module's forward, for DistributedDataParallel."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, y, generator=None, **kw):
        return self.model.training_loss(x, y, generator=generator, **kw)
