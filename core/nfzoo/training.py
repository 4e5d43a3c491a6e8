"""Training and evaluation.

A run directory (`--out`) holds:
    config.json, model.safetensors   the latest model (a loadable FlowModel directory)
    train.json                        the training settings, for `--resume`
    history.json, curve.png           train / test bpd per epoch
    checkpoints/step-NNNNNNNN/        the last two checkpoints: model, optimizer and RNG states, position
Every file is written atomically; a checkpoint folder is renamed into place only once complete, and its
manifest holds the sha256 of each file. A checkpoint is loaded only if every file it needs is listed in its
manifest and matches, and its state and weights are well-formed (verify_checkpoint); a torn, corrupt or
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
import re
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

from .errors import (ConfigError, CorruptFileError, NfzooWarning, PreemptedError, TrainingDivergedError,
                     UsageError)
from .safeio import atomic_write_json, load_tensors, read_json, save_tensors, sha256_file
from .generation import SEED_MAX

CHECKPOINT_DIR = "checkpoints"
KEEP_CHECKPOINTS = 2


@dataclass
class TrainConfig:
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
    precision: str = "fp32"          # fp32 | bf16 (CUDA: the coupling nets under bf16 autocast)
    model: Dict[str, Any] = field(default_factory=dict)  # architecture config (`--set KEY=VALUE`)

    def validate(self) -> None:
        """Types and ranges of every setting; a bad one raises UsageError naming its option (`.key` is the
        field's name)."""
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name))
        for key, lo in (("epochs", 1), ("batch_size", 1), ("warmup_steps", 0), ("checkpoint_every", 0),
                        ("init_batch", 1), ("eval_batch", 1), ("eval_every", 1)):
            v = getattr(self, key)
            if v < lo or v > MAX_COUNT:
                raise _field_error(key, f"must be an integer in [{lo}, {MAX_COUNT}], got {v}")
        if not 0 <= self.seed <= SEED_MAX:    # one seed range for the project (nfzoo.generation.check_seed)
            raise _field_error("seed", f"must be an integer in [0, {SEED_MAX}] (2^32 - 1), got {self.seed}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise _field_error("lr", f"must be a positive number, got {self.lr}")
        if not (self.grad_clip >= 0 and math.isfinite(self.grad_clip)):
            raise _field_error("grad_clip", f"must be a finite number >= 0 (0: no clipping), got {self.grad_clip}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise _field_error("weight_decay", f"must be a finite number >= 0, got {self.weight_decay}")
        for key, allowed in (("lr_schedule", ("constant", "cosine")), ("optimizer", ("adam", "adamax")),
                             ("device", ("cpu", "cuda", "auto")), ("precision", ("fp32", "bf16"))):
            if getattr(self, key) not in allowed:
                raise _field_error(key, f"must be {' or '.join(map(repr, allowed))}, got {getattr(self, key)!r}")
        if self.precision == "bf16" and self.device == "cpu":
            raise UsageError("--precision bf16 is for CUDA (autocast on a GPU): add --device cuda, or drop it")

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
_INT = ("epochs", "batch_size", "warmup_steps", "seed", "checkpoint_every", "init_batch", "eval_batch",
        "eval_every")
_FLOAT = ("lr", "grad_clip", "weight_decay")
_STR = ("arch", "dataset", "optimizer", "lr_schedule", "device", "precision")


def _option(key: str) -> str:
    return {"warmup_steps": "--warmup"}.get(key, "--" + key.replace("_", "-"))


def _field_error(key: str, message: str) -> UsageError:
    exc = UsageError(f"{_option(key)} ({key}) {message}")
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
    elif key == "data_root":
        ok, want = v is None or isinstance(v, str), "a path or null"
    elif key == "download":
        ok, want = isinstance(v, bool), "true or false"
    elif key == "model":
        ok, want = isinstance(v, dict), "an object of architecture settings"
    else:
        return
    if not ok:
        raise _field_error(key, f"must be {want}, got {v!r}")


class Callback:
    """What the trainer reports while it runs. The CLI renders these with rich."""

    def on_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_start(self, epoch: int, steps: int) -> None: ...
    def on_step(self, step: int, loss: float, bpd: float, it_s: float) -> None: ...
    def on_epoch_end(self, epoch: int, record: Dict[str, Any]) -> None: ...
    def on_eval_progress(self, done: int, total: int) -> None: ...

    def on_warning(self, message: str) -> None:
        """Something the user should know that does not stop the run (a corrupt checkpoint skipped on
        --resume). Default: a Python warning (NfzooWarning), which is printed on stderr."""
        warnings.warn(message, NfzooWarning, stacklevel=2)


# ---------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_bpd(model, dataset, batch_size: int = 500, seed: int = 0,
                 progress: Optional[Callable[[int, int], None]] = None, dist=None) -> Dict[str, Any]:
    """Exact test bpd: every image, eval mode, uniform dequantization noise from a seeded generator
    (the standard dequantized bound, the same number on every run). With a distributed context `dist`,
    each rank scores a contiguous shard and the sums are all-reduced; where the model declares its draws
    per image, each image gets the noise it gets on one process, so the result does not depend on the
    number of ranks."""
    from .distributed import mix_seed, skip_uniform

    model.eval()
    gen = torch.Generator().manual_seed(seed)
    order = None
    if dist is not None and dist.enabled:
        a, b = dist.shard(len(dataset))
        order = torch.arange(a, b)
        draws = model.training_draws_per_image
        if draws is not None:
            skip_uniform(gen, a * draws)
        else:
            gen = torch.Generator().manual_seed(mix_seed(seed, dist.rank))
    total, n, total_marginal = 0.0, 0, 0.0
    conditional = model.num_classes is not None
    # a class-conditional model that scores every class at once (GLEM's class_log_likelihoods) also
    # reports the bpd of the mixture p(x) = mean_y p(x | y), comparable with an unconditional model's,
    # from the same pass (and so the same noise)
    mixture = conditional and hasattr(model, "class_log_likelihoods")
    bits = model.dim * math.log(2.0)
    for x, y in iterate(dataset, batch_size, shuffle=False, order=order):
        x, y = x.to(model.device), y.to(model.device)
        if mixture:
            ll = model.class_log_likelihoods(x, generator=gen, noise=True)
            b = -ll.gather(1, y.long()[:, None]).squeeze(1) / bits
            marginal = -(torch.logsumexp(ll, 1) - math.log(model.num_classes)) / bits
            total_marginal += marginal.double().sum().item()
        else:
            b = model.bpd(x, y if conditional else None, generator=gen)
        if not torch.isfinite(b).all():
            raise TrainingDivergedError("the model gives a non-finite bpd on the evaluation data")
        total += b.double().sum().item()
        n += x.shape[0]
        if progress:
            progress(n, len(dataset))
    if dist is not None and dist.enabled:
        total, n, total_marginal = dist.all_reduce_sum([total, n, total_marginal])
        n = int(n)
    out = {"bpd": total / n, "images": n}
    if mixture:
        out["bpd_marginal"] = total_marginal / n
    return out


def iterate(dataset, batch_size: int, shuffle: bool, generator: Optional[torch.Generator] = None,
            start: int = 0, order: Optional[torch.Tensor] = None):
    """Batches (images in [0, 1], labels) from batch `start` of a (possibly shuffled) epoch; `order`
    (dataset indices) replaces the epoch's order."""
    n = len(dataset)
    if order is None:
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    n = len(order)
    yield from load_batches(dataset, [order[i:i + batch_size] for i in range(start * batch_size, n, batch_size)])


def load_batches(dataset, index_lists):
    """(images, labels) for each list of dataset indices, in order (a DataLoader with 2 workers for
    datasets read from files)."""
    from .data import ArrayDataset

    if isinstance(dataset, ArrayDataset):
        for idx in index_lists:
            yield dataset.batch(idx)
        return
    from torch.utils.data import DataLoader

    lists = [idx.tolist() if torch.is_tensor(idx) else list(idx) for idx in index_lists]
    if not lists:
        return
    for x, y in DataLoader(dataset, batch_sampler=lists, num_workers=2):
        yield x, torch.as_tensor(y)


# ------------------------------------------------------------- checkpoints
def _optimizer_to_tensors(opt: torch.optim.Optimizer):
    sd = opt.state_dict()
    tensors, extra = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state.{pid}.{k}"] = v
            else:
                extra[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": extra}


def _optimizer_from_tensors(opt: torch.optim.Optimizer, tensors, meta) -> None:
    state: Dict[int, Dict[str, Any]] = {}
    for key, v in tensors.items():
        _, pid, k = key.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def list_checkpoints(out: Path) -> List[Path]:
    d = out / CHECKPOINT_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_dir() and p.name.startswith("step-"))


CHECKPOINT_FILES = ("model.safetensors", "state.safetensors", "state.json")


def verify_checkpoint(path: Path) -> Dict[str, Any]:
    """The checkpoint's manifest, once every file the checkpoint needs (CHECKPOINT_FILES) is listed in it
    with a sha256 that the file matches; anything else raises CorruptFileError (the checkpoint is not
    used). A manifest without "sha256", with an empty or ill-formed one, or listing other names is not
    trusted."""
    mpath = path / "manifest.json"
    manifest = read_json(mpath, "checkpoint manifest")
    digests = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(digests, dict):
        raise CorruptFileError(f"{mpath} has no \"sha256\" object (file name -> sha256); this checkpoint is "
                               "not used.")
    missing = [f for f in CHECKPOINT_FILES if f not in digests]
    if missing:
        raise CorruptFileError(f"{mpath} lists no sha256 for {', '.join(missing)}; this checkpoint is not "
                               "used.")
    for name, digest in digests.items():
        if name not in CHECKPOINT_FILES:
            raise CorruptFileError(f"{mpath} lists an unknown file {name!r}; this checkpoint is not used.")
        if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            raise CorruptFileError(f"{mpath}: the sha256 of {name} is not 64 hex digits ({digest!r}); this "
                                   "checkpoint is not used.")
        f = path / name
        if not f.is_file() or sha256_file(f) != digest:
            raise CorruptFileError(f"checkpoint file {f} is missing or does not match its sha256; "
                                   "this checkpoint is not used.")
    return manifest


def _check_state(meta: Any, source: str) -> Dict[str, Any]:
    """A checkpoint's state.json: the position (non-negative integers), the history and the optimizer's
    settings, well-formed; else CorruptFileError naming the key."""
    def bad(key: str, want: str, got: Any):
        return CorruptFileError(f"{source}: {key!r} must be {want}, got {got!r:.80}; this checkpoint is not used.")
    if not isinstance(meta, dict):
        raise bad("state", "an object", meta)
    for key in ("step", "epoch", "pos"):
        v = meta.get(key)
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT):
            raise bad(key, "an integer >= 0", v)
    hist = meta.get("history")
    if not (isinstance(hist, list) and all(isinstance(r, dict) for r in hist)):
        raise bad("history", "a list of objects", hist)
    opt = meta.get("optimizer")
    if not (isinstance(opt, dict) and isinstance(opt.get("param_groups"), list)
            and all(isinstance(g, dict) for g in opt["param_groups"]) and isinstance(opt.get("scalars"), dict)):
        raise bad("optimizer", "an object with \"param_groups\" (a list) and \"scalars\" (an object)", opt)
    for key in opt["scalars"]:
        pid, _, name = key.partition(".")
        if not (pid.isdigit() and name):
            raise bad(f"optimizer.scalars.{key}", "keyed \"<param id>.<name>\"", key)
    return meta


# ------------------------------------------------------------------ trainer
class Trainer:
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

    # -- setup
    def _build(self) -> None:
        from .api import build_model

        torch.manual_seed(self.cfg.seed)
        # checked against the limits (nfzoo.limits) with the activations of one training batch
        self.model = build_model(self.cfg.arch, self.model_config, batch=self.cfg.batch_size).to(self.dist.device)
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
        return sum(self._n_batches(len(idx)) for _, idx in self._plan(self.epoch if epoch is None else epoch))

    def total_steps(self) -> int:
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
        """Write a checkpoint (rank 0 only: the ranks hold the same state; the shared noise generator's
        too, and the per-rank streams are derived from the step)."""
        ckdir = self.out / CHECKPOINT_DIR
        if not self.dist.is_main:
            return ckdir / f"step-{self.step:08d}"
        ckdir.mkdir(parents=True, exist_ok=True)
        final = ckdir / f"step-{self.step:08d}"
        if final.exists():
            return final
        tmp = ckdir / f".tmp-step-{self.step:08d}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_tensors(self.model.state_dict(), tmp / "model.safetensors")
        opt_tensors, opt_meta = _optimizer_to_tensors(self.opt)
        rng = {"noise": self.noise.get_state(), "torch": torch.get_rng_state()}
        save_tensors({**opt_tensors, **{f"rng.{k}": v for k, v in rng.items()}}, tmp / "state.safetensors")
        atomic_write_json(tmp / "state.json", {
            "step": self.step, "epoch": self.epoch, "pos": self.pos, "history": self.history,
            "optimizer": opt_meta, "model_config": self.model_config, "train": asdict(self.cfg)})
        files = ["model.safetensors", "state.safetensors", "state.json"]
        atomic_write_json(tmp / "manifest.json", {"step": self.step,
                                                  "sha256": {f: sha256_file(tmp / f) for f in files}})
        tmp.rename(final)  # the checkpoint appears whole or not at all
        for old in list_checkpoints(self.out)[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def load_checkpoint(self) -> Optional[Path]:
        """Restore the newest checkpoint that verifies (verify_checkpoint: every file listed in its manifest
        and matching; then its state, weights and optimizer state well-formed). A checkpoint that does not
        is skipped and reported through the callback's `on_warning` (a Python warning, NfzooWarning, when
        the callback has none), and the one before it is tried."""
        from .model import check_tensors, load_state_strict

        self.skipped: List[str] = []
        for path in reversed(list_checkpoints(self.out)):
            try:
                verify_checkpoint(path)
                meta = _check_state(read_json(path / "state.json", "checkpoint state"), str(path / "state.json"))
                model_t = load_tensors(path / "model.safetensors")
                state_t = load_tensors(path / "state.safetensors")
                check_tensors(self.model, model_t, str(path / "model.safetensors"))
                for key in ("rng.noise", "rng.torch"):
                    t = state_t.get(key)
                    if t is None or t.dtype != torch.uint8 or t.dim() != 1:
                        raise CorruptFileError(f"{path / 'state.safetensors'} has no valid {key} (a uint8 "
                                               "vector); this checkpoint is not used.")
                load_state_strict(self.model, model_t, str(path))
                _optimizer_from_tensors(self.opt, {k: v for k, v in state_t.items() if k.startswith("state.")},
                                        meta["optimizer"])
                self.noise.set_state(state_t["rng.noise"])
                torch.set_rng_state(state_t["rng.torch"])
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
        message = f"skipped the checkpoint {path.name}: {reason}"
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
                for g in self.opt.param_groups:
                    g["lr"] = self._lr(self.step) * g.get("lr_scale", 1.0)
                x, y = x.to(self.dist.device), y.to(self.dist.device)
                loss, bpd, scaled, stop = self._forward(phase, x, y, n_global, offset)
                self.opt.zero_grad(set_to_none=True)
                scaled.backward()
                keep = self.model.phase_parameters(phase)
                if keep is not None:   # parameters fixed in this phase take no step
                    for p in self.model.parameters():
                        if id(p) not in keep:
                            p.grad = None
                if self.cfg.grad_clip > 0:
                    norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
                    if not torch.isfinite(norm):
                        raise self._diverged(f"the gradient norm became {norm.item()}")
                self.opt.step()
                self.step += 1
                self.pos += 1
                seen += 1
                bpd_sum += bpd.detach().sum().item()
                n_sum += x.shape[0]
                self.cb.on_step(self.step, loss.item(), bpd.mean().item(), seen / (time.perf_counter() - t0))
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
            if self.epoch == self.cfg.epochs:
                self.model.after_training(self.train_set)   # e.g. statistics fitted on the training split
            if self.epoch % self.cfg.eval_every == 0 or self.epoch == self.cfg.epochs:
                record["test_bpd"] = evaluate_bpd(self.model, self.test_set, self.cfg.eval_batch,
                                                  seed=self.cfg.seed, progress=self.cb.on_eval_progress,
                                                  dist=self.dist)["bpd"]
            self.history.append(record)
            if self.dist.is_main:
                self.model.save_pretrained(self.out)
                self.save_checkpoint()
                self._write_history()
            self.cb.on_epoch_end(self.epoch, record)
            if self.dist.any(self._sigterm) and self.epoch < self.cfg.epochs:
                raise self._preempted()
        self.dist.barrier()   # the files are written before any rank reports the run done
        last = self.history[-1] if self.history else {}
        return {"out": str(self.out), "arch": self.cfg.arch, "dataset": self.cfg.dataset,
                "epochs": self.epoch, "steps": self.step, "train_bpd": last.get("train_bpd"),
                "test_bpd": last.get("test_bpd"), "history": self.history,
                "resumed_from": resumed_from.name if resumed_from else None,
                "processes": self.dist.world, "global_batch_size": self.cfg.batch_size,
                "parameters": sum(p.numel() for p in self.model.parameters())}

    def _initialize(self) -> None:
        """Data-dependent initialisation (ActNorm) on rank 0; _wrap broadcasts the result."""
        if not self.dist.is_main:
            return
        n = min(self.cfg.init_batch, len(self.train_set))
        gen = torch.Generator().manual_seed(self.cfg.seed + 2)
        x, y = next(iterate(self.train_set, n, True, gen))
        self.model.initialize(x.to(self.dist.device), y.to(self.dist.device) if self.conditional else None,
                              generator=gen)

    def _wrap(self) -> None:
        """With several processes: rank 0's parameters and buffers to every rank, then DDP."""
        self.ddp = None
        if not self.dist.enabled:
            return
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
            loss, bpd = self.model.training_loss(x, yy, generator=self.noise, **kw)
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
        loss, bpd = self.ddp(x, yy, generator=gen, **kw)
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


def enable_bf16(model) -> None:
    """Run the model's networks (modules with `mixed_precision = True`, e.g. the coupling nets) under
    bf16 autocast, their outputs cast back to float32: the flow's own transforms, log-determinants,
    priors and the loss stay in float32. The state dict is unchanged."""
    import functools

    if next(model.parameters()).device.type != "cuda":
        raise UsageError("bf16 autocast is for CUDA: move the model to a GPU (--device cuda)")

    def wrap(forward):
        @functools.wraps(forward)
        def run(*args, **kwargs):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = forward(*args, **kwargs)
            return out.float() if torch.is_tensor(out) else out
        return run

    wrapped: List[str] = []
    for name, m in model.named_modules():   # parents come before their children
        if getattr(m, "mixed_precision", False) and not any(name.startswith(w + ".") for w in wrapped):
            m.forward = wrap(m.forward)
            wrapped.append(name)


def write_curve(history: List[Dict[str, Any]], path: Path, title: str = "") -> None:
    """Train / test bpd per epoch as a PNG (matplotlib, written atomically)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .safeio import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ep = [r["epoch"] for r in history]
    ax.plot(ep, [r["train_bpd"] for r in history], marker="o", ms=3, label="train bpd")
    test = [(r["epoch"], r["test_bpd"]) for r in history if r.get("test_bpd") is not None]
    if test:
        ax.plot(*zip(*test), marker="s", ms=3, label="test bpd")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per dimension")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


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
