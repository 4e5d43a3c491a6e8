"""The run folder of a training run (`--out`): the Trainer's part that writes it, checks it and resumes from
it. RunFolderMixin is mixed into nfzoo.training.trainer.Trainer and works on the trainer's state (cfg, out, dist,
model, opt, noise, step, epoch, pos, history, averages).

A run directory holds:
    config.json, model.safetensors   the latest model (a loadable FlowModel directory)
    train.json                        the training settings, for `--resume`
    history.json, curve.png           train / test bpd per epoch
    checkpoints/step-NNNNNNNN/        the last two checkpoints: model, optimizer and RNG states, position
    ema/, swa/, raw/                  with weight averaging (--ema, --swa-epochs; training.averaging): each average
                                      as a model folder, and at the end the raw weights; the top-level model is
                                      then the one of the three with the lowest final test bpd ("published")
Every file is written atomically; a checkpoint folder is renamed into place only once complete, and its
manifest holds the sha256 of each file. A checkpoint is loaded only if every file it needs is listed in its
manifest and matches, and its state and weights are well-formed (nfzoo.training.checkpoints); a torn, corrupt or
edited one is skipped, reported (Callback.on_warning), and the one before it used. train.json and
state.json are checked key by key: a bad value is an error naming the file and the key.

A run that diverges stops with TrainingDivergedError and keeps its last good checkpoint; one preempted by
SIGTERM writes a checkpoint of its exact position first (PreemptedError), from which `--resume` continues.
Only rank 0 writes files.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

import torch

from nfzoo.errors import ConfigError, CorruptFileError, PreemptedError, TrainingDivergedError, UsageError
from nfzoo.evaluation.plots import write_curve
from nfzoo.safeio import atomic_write_json, read_json
from nfzoo.training.averaging import averaged_count, averaged_flow, create_averages
from nfzoo.training.checkpoints import checkpoint_path, list_checkpoints, restore_checkpoint, write_checkpoint

if TYPE_CHECKING:
    from torch.optim.swa_utils import AveragedModel

    from nfzoo.distributed import DistContext
    from nfzoo.flows.model import FlowModel
    from nfzoo.training.config import TrainConfig


class RunFolderMixin:
    """The Trainer's run folder: creating it, its checkpoints (written, verified, restored or skipped), what a
    divergence or a SIGTERM leaves in it, and the model files and history it publishes after each epoch."""

    # the trainer's state this part works on (set by nfzoo.training.trainer.Trainer), and its methods it calls
    cfg: TrainConfig
    out: Path
    resume: bool
    dist: DistContext
    model: FlowModel
    model_config: Dict[str, Any]
    opt: torch.optim.Optimizer
    scaler: Optional[torch.amp.GradScaler]   # fp16's gradient scaler: its state is in state.json ("scaler")
    noise: torch.Generator
    step: int
    epoch: int
    pos: int
    history: List[Dict[str, Any]]
    averages: Dict[str, AveragedModel]
    warn: Callable[[str], None]
    _final_bpds: Callable[[Dict[str, Any]], Dict[str, Optional[float]]]

    # -- the folder
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

    # -- checkpoints
    def save_checkpoint(self) -> Path:
        """Write a checkpoint (nfzoo.training.checkpoints; rank 0 only: the ranks hold the same state; the shared
        noise generator's too, and the per-rank streams are derived from the step)."""
        if not self.dist.is_main:
            return checkpoint_path(self.out, self.step)
        return write_checkpoint(
            self.out, self.step, self.model, self.opt,
            rng={"noise": self.noise.get_state(), "torch": torch.get_rng_state()},
            state={"step": self.step, "epoch": self.epoch, "pos": self.pos, "history": self.history,
                   "model_config": self.model_config, "train": asdict(self.cfg),
                   **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {})},
            averages=self.averages)

    def load_checkpoint(self) -> Optional[Path]:
        """Restore the newest checkpoint that verifies (nfzoo.training.checkpoints.restore_checkpoint: every file
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
                if self.scaler is not None:
                    if "scaler" not in meta:
                        raise CorruptFileError(f"{path / 'state.json'} has no \"scaler\" (the fp16 gradient "
                                               "scaler's state); this checkpoint is not used.")
                    self.scaler.load_state_dict(meta["scaler"])
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

    # -- what a stopped run leaves
    def _diverged(self, what: str) -> TrainingDivergedError:
        cks = list_checkpoints(self.out)
        kept = (f"the last good checkpoint ({cks[-1].name}) and model files in {self.out} are kept"
                if cks else f"no checkpoint had been written yet; nothing in {self.out} was overwritten")
        return TrainingDivergedError(
            f"{what} at step {self.step} (epoch {self.epoch + 1}): training stopped; {kept}. Try a lower "
            f"--lr (now {self.cfg.lr:g}), a longer warm-up, or a smaller --set hidden=...")

    def _preempted(self) -> PreemptedError:
        path = self.save_checkpoint()
        self.dist.barrier()
        return PreemptedError(f"SIGTERM at step {self.step} (epoch {self.epoch + 1}, batch {self.pos}): wrote "
                              f"the checkpoint {path.name} in {self.out}; continue with `nfzoo train ... "
                              f"--out {self.out} --resume`")

    # -- after each epoch
    def _save_models(self, record: Dict[str, Any]) -> None:
        """Rank 0, after an epoch: the model files at the top of the run (the raw weights; after the last
        epoch of a run that averages, the published ones), each average begun in its folder (ema/, swa/),
        and at the end the raw weights in raw/ and the choice in train.json."""
        published = record.get("published")
        top = self.model if published in (None, "raw") else averaged_flow(self.averages[published])
        top.save_pretrained(self.out)
        for name, avg in self.averages.items():
            if averaged_count(avg):
                averaged_flow(avg).save_pretrained(self.out / name)
        if published is not None:
            self.model.save_pretrained(self.out / "raw")
            doc = read_json(self.out / "train.json", "training settings")
            doc.update(published=published, final_test_bpd=self._final_bpds(record))
            atomic_write_json(self.out / "train.json", doc)

    def _write_history(self) -> None:
        atomic_write_json(self.out / "history.json", self.history)
        write_curve(self.history, self.out / "curve.png",
                    title=f"{self.cfg.arch} on {self.cfg.dataset}")
