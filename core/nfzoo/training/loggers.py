"""Training logs for experiment trackers (`nfzoo train --log tensorboard|wandb`), as Trainer callbacks.

Per optimizer step: `train/loss`, `train/bpd` (the batch's), `train/lr` (the scheduled learning rate) and
`train/grad_norm` (the total gradient norm before clipping); per epoch, at the epoch's last step: every number
of its history.json record as `epoch/<key>` (`epoch/train_bpd`, `epoch/test_bpd`, `epoch/test_bpd_ema`, ...)
and `samples`, a grid of 16 samples of the raw model (seeded with the run's seed, at the model's default
temperature; a sampler that takes `steps` (a diffusion model) gets GRID_STEPS of them; one that cannot sample
so is skipped with a note). Sampling runs under `torch.random.fork_rng`, so logging never changes the training.
history.json and curve.png are written as without logs. Under torchrun only rank 0 logs.

TensorBoard (`torch.utils.tensorboard`, the optional `tensorboard` package) writes event files in RUN_DIR/tb/;
wandb (when installed) logs to `wandb.init(project=$WANDB_PROJECT or "nfzoo", config=the run's settings,
dir=RUN_DIR, mode=$WANDB_MODE)`.
"""
from __future__ import annotations

import importlib
import inspect
import os
import warnings
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from nfzoo.errors import NfzooWarning, UnknownNameError, UsageError
from nfzoo.training.trainer import Callback, Trainer

LOGGERS = ("tensorboard", "wandb")
"""The names `--log` takes."""
GRID_SAMPLES = 16
"""Samples in the per-epoch grid (4 x 4)."""
GRID_STEPS = 20
"""Steps given to a sampler that takes `steps` (a diffusion model's: its default is every one of T, often
1000), so that the grid costs about as much as a few training steps."""
_INSTALL = {"tensorboard": "pip install 'nfzoo[tensorboard]'", "wandb": "pip install wandb"}


def create_loggers(names: Sequence[str]) -> List[Callback]:
    """One logger callback per name in `names` (each of LOGGERS, once), checked before any training: an unknown
    name is an UnknownNameError, a logger whose package is not installed a UsageError that says how to install
    it (both exit code 2)."""
    out: List[Callback] = []
    for name in dict.fromkeys(names):
        if name not in LOGGERS:
            raise UnknownNameError("logger", name, LOGGERS, hint="--log takes tensorboard or wandb.")
        try:
            module = importlib.import_module(name)
        except ImportError:
            raise UsageError(f"--log {name} needs the {name} package: install {name} ({_INSTALL[name]})") from None
        out.append(TensorBoardLogger() if name == "tensorboard" else WandbLogger(module))
    return out


class CallbackList(Callback):
    """Several callbacks as one: every hook goes to each callback that has it, in order. A warning goes to
    each callback with an `on_warning` of its own (a renderer), or else becomes one Python warning."""

    def __init__(self, callbacks: Sequence[Any]):
        self.callbacks = [c for c in callbacks if c is not None]

    def _each(self, hook: str, *args) -> None:
        for c in self.callbacks:
            fn = getattr(c, hook, None)
            if callable(fn):
                fn(*args)

    def on_start(self, trainer) -> None:
        """Each callback's on_start."""
        self._each("on_start", trainer)

    def on_epoch_start(self, epoch: int, steps: int) -> None:
        """Each callback's on_epoch_start."""
        self._each("on_epoch_start", epoch, steps)

    def on_step(self, step: int, loss: float, bpd: float, it_s: float) -> None:
        """Each callback's on_step."""
        self._each("on_step", step, loss, bpd, it_s)

    def on_step_metrics(self, step: int, metrics: Dict[str, float]) -> None:
        """Each callback's on_step_metrics."""
        self._each("on_step_metrics", step, metrics)

    def on_epoch_end(self, epoch: int, record: Dict[str, Any]) -> None:
        """Each callback's on_epoch_end."""
        self._each("on_epoch_end", epoch, record)

    def on_eval_progress(self, done: int, total: int) -> None:
        """Each callback's on_eval_progress."""
        self._each("on_eval_progress", done, total)

    def on_end(self, result: Dict[str, Any]) -> None:
        """Each callback's on_end."""
        self._each("on_end", result)

    def on_warning(self, message: str) -> None:
        """Each callback that renders warnings (an on_warning other than Callback's default), else one
        Python warning (NfzooWarning)."""
        handlers = [c for c in self.callbacks if callable(getattr(c, "on_warning", None))
                    and getattr(type(c), "on_warning", None) is not Callback.on_warning]
        if not handlers:
            warnings.warn(message, NfzooWarning, stacklevel=2)
        for c in handlers:
            c.on_warning(message)

    def close(self) -> None:
        """Close every callback that can be (loggers flush their files), each even if another fails."""
        errors = []
        for c in self.callbacks:
            fn = getattr(c, "close", None)
            if callable(fn):
                try:
                    fn()
                except Exception as exc:   # the others still close; the first failure is raised after
                    errors.append(exc)
        if errors:
            raise errors[0]


def sample_grid(model, seed: int = 0, n: int = GRID_SAMPLES) -> Tuple[Optional[torch.Tensor], Optional[str]]:
    """(grid, None): n samples of `model` (seeded with `seed`, default temperature; labels 0, 1, ... for a
    class-conditional model) as one image grid (3, H, W) in [0, 1], sqrt(n) a row; or (None, why) when the
    model cannot sample so. A sampler that takes `steps` gets GRID_STEPS (its own default if it refuses
    them). The global random state is left as it was, and so is the model's train / eval mode."""
    from torchvision.utils import make_grid

    sampler = model.get_sampler()
    takes_steps = "steps" in inspect.signature(sampler.sample).parameters
    labels = None
    if model.num_classes is not None:
        labels = torch.arange(n, device=model.device) % model.num_classes
    tries = [(y, kw) for y in ([labels, None] if labels is not None else [None])
             for kw in ([{"steps": GRID_STEPS}, {}] if takes_steps else [{}])]
    dev = model.device
    devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    was = model.training
    model.eval()
    why = ""
    try:
        with torch.random.fork_rng(devices=devices):
            for y, kw in tries:
                try:
                    x = model.sample(n, y=y, generator=torch.Generator().manual_seed(seed), **kw)
                    break
                except UsageError as exc:
                    why = str(exc)
            else:
                return None, f"the sample grid is skipped: {sampler.name} cannot sample this model here ({why})"
    finally:
        model.train(was)
    x = torch.nan_to_num(x.detach().float().cpu(), nan=0.0).clamp(0, 1)
    return make_grid(x, nrow=max(1, round(n ** 0.5)), padding=1, pad_value=1.0), None


class _RunLogger(Callback):
    """What the loggers share: rank 0 only, the metrics of each step and epoch, the sample grid."""

    def __init__(self):
        self.trainer: Optional[Trainer] = None
        self.active = False
        self._noted = False

    def on_start(self, trainer) -> None:
        """Open the log (rank 0 only; the other ranks' loggers do nothing)."""
        self.trainer = trainer
        self.active = trainer.dist.is_main
        if self.active:
            self._open(trainer)

    def on_step_metrics(self, step: int, metrics: Dict[str, float]) -> None:
        """train/loss, train/bpd, train/lr, train/grad_norm at `step`."""
        if self.active:
            self._scalars({f"train/{k}": float(v) for k, v in metrics.items() if v is not None}, step)

    def on_epoch_end(self, epoch: int, record: Dict[str, Any]) -> None:
        """Every number of the epoch's record as epoch/<key>, and the sample grid, at the epoch's last step."""
        if not self.active:
            return
        assert self.trainer is not None, "active: on_start has set the trainer"
        step = int(record["step"])
        values = {f"epoch/{k}": float(v) for k, v in record.items()
                  if k not in ("epoch", "step", "processes") and isinstance(v, (int, float))
                  and not isinstance(v, bool)}
        self._scalars({**values, "epoch/epoch": float(epoch)}, step)
        grid, why = sample_grid(self.trainer.model, seed=self.trainer.cfg.seed)
        if grid is not None:
            self._image(grid, step)
        elif not self._noted and why is not None:   # no grid: why says why
            self._noted = True
            self.trainer.warn(why)

    def on_end(self, result: Dict[str, Any]) -> None:
        """The run finished: close the log."""
        self.close()

    def close(self) -> None:
        """Flush and close the log (again: nothing)."""
        if self.active:
            self.active = False
            self._close()

    # what each logger implements
    def _open(self, trainer) -> None:
        raise NotImplementedError

    def _scalars(self, values: Dict[str, float], step: int) -> None:
        raise NotImplementedError

    def _image(self, grid: torch.Tensor, step: int) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


class TensorBoardLogger(_RunLogger):
    """`--log tensorboard`: torch.utils.tensorboard's SummaryWriter in RUN_DIR/tb/ (scalars by tag, the grid as
    the image `samples`)."""

    def _open(self, trainer) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(trainer.out / "tb"))

    def _scalars(self, values: Dict[str, float], step: int) -> None:
        for tag, v in values.items():
            self.writer.add_scalar(tag, v, global_step=step)

    def _image(self, grid: torch.Tensor, step: int) -> None:
        self.writer.add_image("samples", grid, global_step=step, dataformats="CHW")

    def _close(self) -> None:
        self.writer.close()


class WandbLogger(_RunLogger):
    """`--log wandb`: a wandb run (project $WANDB_PROJECT or "nfzoo", named after the run folder, the training
    settings as its config, files in RUN_DIR, mode $WANDB_MODE), `wandb.log` of the same scalars and the grid
    as a wandb.Image `samples`."""

    def __init__(self, wandb: Any):
        super().__init__()
        self.wandb = wandb

    def _open(self, trainer) -> None:
        config = {**asdict(trainer.cfg), "model_config": trainer.model_config}
        self.run = self.wandb.init(project=os.environ.get("WANDB_PROJECT") or "nfzoo", name=trainer.out.name,
                                   config=config, dir=str(trainer.out), mode=os.environ.get("WANDB_MODE"))

    def _scalars(self, values: Dict[str, float], step: int) -> None:
        self.wandb.log(values, step=step)

    def _image(self, grid: torch.Tensor, step: int) -> None:
        u8 = (grid * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
        self.wandb.log({"samples": self.wandb.Image(u8, caption=f"step {step}")}, step=step)

    def _close(self) -> None:
        finish = getattr(self.run, "finish", None) or self.wandb.finish
        finish()
