"""Training and evaluation.

A run directory (`--out`) holds:
    config.json, model.safetensors   the latest model (a loadable FlowModel directory)
    train.json                        the training settings, for `--resume`
    history.json, curve.png           train / test bpd per epoch
    checkpoints/step-NNNNNNNN/        the last two checkpoints: model, optimizer and RNG states, position
Every file is written atomically; a checkpoint folder is renamed into place only once complete, and its
manifest holds the sha256 of each file, so a torn or corrupt checkpoint is detected and never loaded.

Randomness comes only from explicit generators seeded from `seed` (model init, the per-epoch shuffle,
the dequantization noise), and their states are checkpointed, so `--resume` continues the same run.

Under torchrun (several processes) the model is wrapped in DistributedDataParallel, each global batch is
split across the ranks, the data-dependent initialisation runs on rank 0 and is broadcast, and only rank 0
writes files; nfzoo.distributed says how the work and the random numbers are split. `batch_size` is the
global batch, whatever the number of processes.
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch

from .errors import ConfigError, CorruptFileError, PreemptedError, TrainingDivergedError, UsageError
from .safeio import atomic_write_json, load_tensors, read_json, save_tensors, sha256_file

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
        if self.epochs < 1 or self.batch_size < 1:
            raise UsageError("--epochs and --batch-size must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"--lr must be a positive number, got {self.lr}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise UsageError(f"--lr-schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.optimizer not in ("adam", "adamax"):
            raise UsageError(f"--optimizer must be 'adam' or 'adamax', got {self.optimizer!r}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise UsageError(f"--device must be cpu, cuda or auto, got {self.device!r}")
        if self.precision not in ("fp32", "bf16"):
            raise UsageError(f"--precision must be fp32 or bf16, got {self.precision!r}")
        if self.precision == "bf16" and self.device == "cpu":
            raise UsageError("--precision bf16 is for CUDA (autocast on a GPU): add --device cuda, or drop it")


class Callback:
    """What the trainer reports while it runs. The CLI renders these with rich."""

    def on_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_start(self, epoch: int, steps: int) -> None: ...
    def on_step(self, step: int, loss: float, bpd: float, it_s: float) -> None: ...
    def on_epoch_end(self, epoch: int, record: Dict[str, Any]) -> None: ...
    def on_eval_progress(self, done: int, total: int) -> None: ...


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


def verify_checkpoint(path: Path) -> Dict[str, Any]:
    manifest = read_json(path / "manifest.json", "checkpoint manifest")
    for name, digest in manifest["sha256"].items():
        f = path / name
        if not f.is_file() or sha256_file(f) != digest:
            raise CorruptFileError(f"checkpoint file {f} is missing or does not match its sha256; "
                                   "this checkpoint is not used.")
    return manifest


# ------------------------------------------------------------------ trainer
class Trainer:
    def __init__(self, cfg: TrainConfig, out: Path, callback: Optional[Callback] = None,
                 resume: bool = False):
        cfg.validate()
        self.cfg, self.out, self.cb = cfg, Path(out), callback or Callback()
        self.resume = resume
        from .data import load_dataset

        self.train_set = load_dataset(cfg.dataset, "train", cfg.data_root, cfg.download)
        self.test_set = load_dataset(cfg.dataset, "test", cfg.data_root, cfg.download)
        mc = dict(cfg.model)
        mc.setdefault("image_shape", list(self.train_set.image_shape))
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
        from .api import create_model

        torch.manual_seed(self.cfg.seed)
        self.model = create_model(self.cfg.arch, **self.model_config).to(self.dist.device)
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
            out.mkdir(parents=True, exist_ok=True)

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
        """Restore the newest checkpoint that verifies; corrupt ones are skipped (and reported)."""
        from .model import load_state_strict

        self.skipped: List[str] = []
        for path in reversed(list_checkpoints(self.out)):
            try:
                verify_checkpoint(path)
                meta = read_json(path / "state.json", "checkpoint state")
                model_t = load_tensors(path / "model.safetensors")
                state_t = load_tensors(path / "state.safetensors")
            except (CorruptFileError, ConfigError) as exc:
                self.skipped.append(f"{path.name}: {exc}")
                continue
            load_state_strict(self.model, model_t, str(path))
            _optimizer_from_tensors(self.opt, {k: v for k, v in state_t.items() if k.startswith("state.")},
                                    meta["optimizer"])
            self.noise.set_state(state_t["rng.noise"])
            torch.set_rng_state(state_t["rng.torch"])
            self.step, self.epoch, self.pos = meta["step"], meta["epoch"], meta["pos"]
            self.history = meta["history"]
            return path
        return None

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
            shuffle = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + self.epoch)
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
    doc = read_json(Path(out) / "train.json", "training settings")
    return TrainConfig(**doc["train"])
