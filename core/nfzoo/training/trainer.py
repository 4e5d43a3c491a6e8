"""Training: the Trainer and what it reports (Callback). The Trainer builds the model, runs the epochs (the
learning-rate schedule, the model's training plan, the weight averages, the test bpd) and returns the run's
document; its state is shared with two parts mixed into it: the run folder it writes, checks and resumes from
(nfzoo.training.folder: checkpoints, preemption, the published model files) and the data-parallel steps
(nfzoo.training.parallel: batches cut across torchrun's processes, DDP, compiling).

Randomness comes only from explicit generators seeded from `seed` (model init, the per-epoch shuffle,
the dequantization noise), and their states are checkpointed, so `--resume` continues the same run.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol

import torch
from torch.optim.swa_utils import AveragedModel

from nfzoo.data import iterate
from nfzoo.errors import ConfigError, NfzooWarning, UsageError
from nfzoo.evaluation.bpd import evaluate_bpd
from nfzoo.safeio import atomic_write_json
from nfzoo.training.averaging import averaged_count, averaged_flow, choose_published, create_averages, swa_epoch
from nfzoo.training.checkpoints import CHECKPOINT_DIR
from nfzoo.training.config import TrainConfig, load_train_config
from nfzoo.training.folder import RunFolderMixin
from nfzoo.training.parallel import DataParallelMixin
from nfzoo.training.precision import enable_autocast, make_scaler

# the training API; the parts live in train_config, train_folder, train_parallel, checkpoints, data, evaluation,
# precision and plots
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


class TrainCallback(Protocol):
    """What the Trainer needs of its callback: a Callback, or any object with these hooks (on_step_metrics,
    on_warning and on_end are called where it has them)."""

    def on_start(self, trainer: "Trainer") -> None:
        """As Callback.on_start."""

    def on_epoch_start(self, epoch: int, steps: int) -> None:
        """As Callback.on_epoch_start."""

    def on_step(self, step: int, loss: float, bpd: float, it_s: float) -> None:
        """As Callback.on_step."""

    def on_epoch_end(self, epoch: int, record: Dict[str, Any]) -> None:
        """As Callback.on_epoch_end."""

    def on_eval_progress(self, done: int, total: int) -> None:
        """As Callback.on_eval_progress."""


class Trainer(RunFolderMixin, DataParallelMixin):
    """Trains `cfg.arch` on `cfg.dataset` into the run folder `out` (a new or empty folder; with
    resume=True, a run's folder, continued from its newest good checkpoint); `run()` returns the result
    document. The data sets are loaded and the settings checked here; the model is built by `run()`."""

    _total: Optional[int] = None   # total_steps(), once computed

    def __init__(self, cfg: TrainConfig, out: Path, callback: Optional[TrainCallback] = None,
                 resume: bool = False):
        cfg.validate()
        self.cfg, self.out = cfg, Path(out)
        self.cb: TrainCallback = callback or Callback()
        self.resume = resume
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out {self.out} is a file, not a folder: give a new folder for the run (or "
                             "an existing run's folder with --resume); nothing was written.")
        from nfzoo.data import load_dataset
        from nfzoo.loading import limits

        limits.check_numbers(cfg.model, key="--set")
        self.train_set = load_dataset(cfg.dataset, "train", cfg.data_root, cfg.download, **cfg.data)
        self.test_set = load_dataset(cfg.dataset, "test", cfg.data_root, cfg.download, **cfg.data)
        mc = dict(cfg.model)
        mc.setdefault("image_shape", list(self.train_set.image_shape))
        mc = {**mc, **limits.check_config(cfg.arch, {"image_shape": mc["image_shape"]})}
        if [int(s) for s in mc["image_shape"]] != list(self.train_set.image_shape):
            raise ConfigError(f"image_shape {mc['image_shape']} does not match the data set "
                              f"{cfg.dataset!r}, whose images are {list(self.train_set.image_shape)}")
        if mc.get("num_classes") is not None and getattr(self.train_set, "num_classes", None) is None:
            raise ConfigError(f"num_classes is set but {cfg.dataset!r} has no class labels")
        self.model_config = mc
        from nfzoo.distributed import context

        self.dist = context(cfg.device)   # one process, or torchrun's process group
        self.step = 0
        self.epoch = 0          # epochs completed
        self.pos = 0            # batches done in the current epoch
        self.history: List[Dict[str, Any]] = []
        self.averages: Dict[str, AveragedModel] = {}   # "ema" / "swa": torch's AveragedModel of self.model

    # -- setup
    def _build(self) -> None:
        from nfzoo.loading.api import build_model

        torch.manual_seed(self.cfg.seed)
        # checked against the limits (nfzoo.loading.limits) with the activations of one training batch
        self.model = build_model(self.cfg.arch, self.model_config, batch=self.cfg.batch_size).to(self.dist.device)
        if self.cfg.init_from and not self.resume:
            self._load_init(self.cfg.init_from)
        if self.cfg.precision != "fp32":
            enable_autocast(self.model, self.cfg.precision)
        self.scaler = make_scaler(self.cfg.precision, self.dist.device.type)
        self.conditional = self.model.num_classes is not None
        groups = [dict(g) for g in self.model.optimizer_groups()]
        opt_cls = torch.optim.Adam if self.cfg.optimizer == "adam" else torch.optim.Adamax
        self.opt = opt_cls(groups, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.noise = torch.Generator().manual_seed(self.cfg.seed + 1)
        if self.dist.enabled:
            torch.manual_seed(self.cfg.seed + 7919 * self.dist.rank)   # per-rank seed of the global RNG

    def _load_init(self, name: str) -> None:
        """`init_from`: the weights of a pretrained model (a zoo name, hf-hub: id or model folder) of the same
        architecture whose tensors have this model's names and shapes (the config may differ where it does
        not change them, e.g. scale_floor or noise_sigma): fine-tuning. ActNorm is then initialised already."""
        from nfzoo.flows.model import load_state_strict
        from nfzoo.loading.api import load

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

    # -- the schedule
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

    def steps_per_epoch(self, epoch: Optional[int] = None) -> int:
        """Optimizer steps of an epoch (the current one by default), every phase included."""
        return sum(self._n_batches(len(idx)) for _, idx in self._plan(self.epoch if epoch is None else epoch))

    def total_steps(self) -> int:
        """Optimizer steps of the whole run (computed once)."""
        if self._total is None:
            self._total = sum(self.steps_per_epoch(e) for e in range(self.cfg.epochs))
        return self._total

    # -- reporting
    def warn(self, message: str) -> None:
        """Report something that does not stop the run through the callback's `on_warning` (a Python
        warning, NfzooWarning, when the callback has none)."""
        report = getattr(self.cb, "on_warning", None)
        if callable(report):
            report(message)
        else:
            warnings.warn(message, NfzooWarning, stacklevel=3)

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
                split = getattr(self.train_set, "record", None)   # which images are held out (folders)
                atomic_write_json(self.out / "train.json", {"train": asdict(self.cfg),
                                                            "model_config": self.model_config,
                                                            **({"data": split} if split else {})})
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
                self.opt.zero_grad(set_to_none=True)
                loss, bpd, stop = self._forward_backward(phase, x, y, n_global, offset)
                keep = self.model.phase_parameters(phase)
                if keep is not None:   # parameters fixed in this phase take no step
                    for p in self.model.parameters():
                        if id(p) not in keep:
                            p.grad = None
                norm = None
                if self.scaler is not None:   # fp16: the true gradients, to clip and report
                    self.scaler.unscale_(self.opt)
                if self.cfg.grad_clip > 0:
                    norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
                    if not torch.isfinite(norm) and self.scaler is None:   # fp16 skips such a step
                        raise self._diverged(f"the gradient norm became {norm.item()}")
                self._optimizer_step()
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
                for m in (self.model, *(averaged_flow(a) for a in self.averages.values())):
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
        on_end = getattr(self.cb, "on_end", None)
        if callable(on_end):
            on_end(result)
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
