"""The settings of a training run (`TrainConfig`: what `nfzoo train` takes and train.json saves), checked
field by field, and `load_train_config`, which reads them back from a run's folder for `--resume`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Optional

from nfzoo.errors import ConfigError, UsageError
from nfzoo.flows.generation import SEED_MAX
from nfzoo.safeio import read_json


@dataclass
class TrainConfig:
    """The settings of one training run: architecture, data set, optimisation and run control. `validate`
    checks them; `from_dict` reads a saved copy (train.json, a checkpoint's state.json) strictly."""

    arch: str
    dataset: str
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"          # adam | adamax
    warmup_steps: int = 200
    lr_schedule: str = "constant"    # constant | cosine (decays to 0 at the last step, after warm-up)
    grad_clip: float = 50.0          # max global gradient norm (0: off)
    weight_decay: float = 0.0
    seed: int = 0
    checkpoint_every: int = 0        # steps between checkpoints; 0: once per epoch
    init_batch: int = 512            # images for the data-dependent (ActNorm) initialisation
    eval_batch: int = 500
    eval_every: int = 1              # epochs between test-bpd evaluations (the last epoch always)
    data_root: Optional[str] = None
    download: bool = False
    device: str = "cpu"              # cpu | cuda | auto (one GPU per process under torchrun)
    precision: str = "fp32"          # fp32 | bf16 | fp16 (CUDA: the nets under autocast; fp16: GradScaler)
    model: Dict[str, Any] = field(default_factory=dict)  # architecture config (`--set KEY=VALUE`)
    data: Dict[str, Any] = field(default_factory=dict)   # data options (folder: image_size, channels, test_fraction;
    #                                                      hf: image_column, label_column, streaming)
    init_from: Optional[str] = None  # start from this pretrained model's weights (same architecture, shapes)
    ema: Optional[float] = None      # EMA decay in (0, 1) of the weights after every step (None: no EMA)
    swa_epochs: int = 0              # SWA: average the weights at the end of the last K epochs (0: no SWA)
    compile: bool = False            # torch.compile the training forward (nfzoo.flows.compiling; eager if it cannot)
    workers: Optional[int] = None    # image-reading processes (0: the main one; None: default_workers())
    accumulate: int = 1              # micro-batches per batch (gradient accumulation); batch_size divisible by it

    def validate(self) -> None:
        """Types and ranges of every setting; a bad one raises UsageError naming its option (`.key` is the
        field's name)."""
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name))
        for key, lo in (("epochs", 1), ("batch_size", 1), ("warmup_steps", 0), ("checkpoint_every", 0),
                        ("init_batch", 1), ("eval_batch", 1), ("eval_every", 1), ("accumulate", 1)):
            v = getattr(self, key)
            if v < lo or v > MAX_COUNT:
                raise _field_error(key, f"must be an integer in [{lo}, {MAX_COUNT}], got {v}")
        if not 0 <= self.seed <= SEED_MAX:    # one seed range for the project (nfzoo.flows.generation.check_seed)
            raise _field_error("seed", f"must be an integer in [0, {SEED_MAX}] (2^32 - 1), got {self.seed}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise _field_error("ema", f"must be an EMA decay in (0, 1) such as 0.999 (the weight of the running "
                                      f"average at each step), got {self.ema}")
        if not 0 <= self.swa_epochs <= self.epochs:
            raise _field_error("swa_epochs", f"must be an integer in [0, {self.epochs}] (the number of last "
                                             f"epochs to average, at most --epochs), got {self.swa_epochs}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise _field_error("lr", f"must be a positive number, got {self.lr}")
        if not (self.grad_clip >= 0 and math.isfinite(self.grad_clip)):
            raise _field_error("grad_clip", f"must be a finite number >= 0 (0: no clipping), got {self.grad_clip}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise _field_error("weight_decay", f"must be a finite number >= 0, got {self.weight_decay}")
        if self.workers is not None and not 0 <= self.workers <= MAX_WORKERS:
            raise _field_error("workers", f"must be an integer in [0, {MAX_WORKERS}] (0: read in the main process), "
                                          f"got {self.workers}")
        if self.batch_size % self.accumulate:
            raise _field_error("accumulate", f"must divide --batch-size ({self.batch_size}) into equal micro-batches, "
                                             f"got {self.accumulate}: give a divisor of {self.batch_size}")
        for key, allowed in (("lr_schedule", ("constant", "cosine")), ("optimizer", ("adam", "adamax")),
                             ("device", ("cpu", "cuda", "auto")), ("precision", ("fp32", "bf16", "fp16"))):
            if getattr(self, key) not in allowed:
                raise _field_error(key, f"must be {' or '.join(map(repr, allowed))}, got {getattr(self, key)!r}")
        if self.precision in ("bf16", "fp16") and self.device == "cpu":
            raise UsageError(f"--precision {self.precision} is for CUDA (autocast on a GPU): add --device cuda, or "
                             "drop it (on the CPU, training runs in fp32)")

    @classmethod
    def from_dict(cls, doc: Any, source: str) -> "TrainConfig":
        """A TrainConfig from a saved document (train.json's or state.json's "train"): unknown or missing
        keys and bad values are ConfigError naming the file and the key."""
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: \"train\" must be an object of training settings, got "
                              f"{type(doc).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(doc) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown training setting(s) {', '.join(map(repr, unknown))}. "
                              "The file was edited or comes from another version; start a new run.")
        missing = [k for k in ("arch", "dataset") if k not in doc]
        if missing:
            raise ConfigError(f"{source}: the training settings lack {', '.join(map(repr, missing))}.")
        try:
            cfg = cls(**doc)
            cfg.validate()
        except UsageError as exc:
            key = getattr(exc, "key", None)
            raise ConfigError(f"{source}: bad training setting" + (f" {key!r}" if key else "") + f": {exc}. "
                              "The file was edited or is corrupt; fix it or start a new run.") from None
        return cfg


MAX_COUNT = 2 ** 31 - 1
MAX_WORKERS = 256
_INT = ("epochs", "batch_size", "warmup_steps", "seed", "checkpoint_every", "init_batch", "eval_batch",
        "eval_every", "swa_epochs", "accumulate")
_FLOAT = ("lr", "grad_clip", "weight_decay")
_STR = ("arch", "dataset", "optimizer", "lr_schedule", "device", "precision")


def _option(key: str) -> str:
    return {"warmup_steps": "--warmup"}.get(key, "--" + key.replace("_", "-"))


class _FieldError(UsageError):
    """A bad TrainConfig setting (a UsageError); `key` is the field's name."""

    key: str


def _field_error(key: str, message: str) -> UsageError:
    exc = _FieldError(f"{_option(key)} ({key}) {message}")
    exc.key = key
    return exc


def _check_type(key: str, v: Any) -> None:
    if key in _INT:
        ok = isinstance(v, int) and not isinstance(v, bool)
        want = "an integer"
    elif key in _FLOAT:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        want = "a number"
    elif key in _STR:
        ok, want = isinstance(v, str), "a string"
    elif key == "workers":
        ok, want = v is None or (isinstance(v, int) and not isinstance(v, bool)), "an integer or null"
    elif key == "ema":
        ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
        want = "a number in (0, 1) or null"
    elif key in ("data_root", "init_from"):
        ok, want = v is None or isinstance(v, str), "a name, a path or null"
    elif key in ("download", "compile"):
        ok, want = isinstance(v, bool), "true or false"
    elif key == "model":
        ok, want = isinstance(v, dict), "an object of architecture settings"
    elif key == "data":
        ok, want = isinstance(v, dict), "an object of data options (image_size, channels, test_fraction, ...)"
    else:
        return
    if not ok:
        raise _field_error(key, f"must be {want}, got {v!r}")


def default_workers() -> int:
    """The data-loading processes of a run that does not set `workers`: one per CPU but one, at most 8. They
    change how fast a file data set is read, never what is read (the order and the random numbers are the
    main process's)."""
    import os

    return max(0, min(8, (os.cpu_count() or 1) - 1))


def load_train_config(out: Path) -> TrainConfig:
    """The settings of the run in `out` (its train.json), checked: a missing, edited or corrupt file is a
    ConfigError (exit code 2) that names the file and the key."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a training run's folder.")
    path = out / "train.json"
    if not path.is_file():
        raise UsageError(f"{out} holds no training run (no train.json). Start one without --resume.")
    doc = read_json(path, "training settings")
    if not isinstance(doc, dict) or "train" not in doc:
        raise ConfigError(f"{path} is not an nfzoo training run's settings: it needs a \"train\" object.")
    return TrainConfig.from_dict(doc["train"], str(path))
