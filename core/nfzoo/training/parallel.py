"""The data-parallel part of the Trainer: how an epoch's batches are cut across processes and how a step's
loss is computed there. DataParallelMixin is mixed into nfzoo.training.trainer.Trainer and works on the trainer's
state (cfg, dist, model, noise, step, epoch).

Under torchrun (several processes) the model is wrapped in DistributedDataParallel, each global batch is
split across the ranks, the data-dependent initialisation runs on rank 0 and is broadcast, and only rank 0
writes files; nfzoo.distributed says how the work and the random numbers are split. `batch_size` is the
global batch, whatever the number of processes. With `compile`, the module the step calls is compiled
(nfzoo.flows.compiling). On one process the step is the model's training_loss as it is.

With `accumulate` K, each rank's piece of a batch runs as K micro-batches (torch.tensor_split: sizes within one
image), each loss weighted by its share of the batch, their gradients summed into one optimizer step (under
DDP the gradients are synchronised on the last micro-batch only). The noise follows the images: a model that
says how many numbers it draws per image (training_draws_per_image) gets the same noise as with K = 1, so the
step equals the whole batch's up to the floating-point order. With fp16 the losses are scaled (GradScaler).
File data sets are read by `workers` processes (TrainConfig.workers), which change neither the order nor
any random number.
"""
from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import torch

from nfzoo.data import load_batches

if TYPE_CHECKING:
    from torch.nn.parallel import DistributedDataParallel

    from nfzoo.distributed import DistContext
    from nfzoo.errors import TrainingDivergedError
    from nfzoo.flows.model import FlowModel
    from nfzoo.training.config import TrainConfig


class DataParallelMixin:
    """The Trainer's batches and steps across processes: each rank's piece of a global batch, the DDP
    wrapping (rank 0's weights broadcast first), compiling, and the per-step forward that keeps the noise
    streams and the divergence / SIGTERM decisions the same on every rank."""

    # the trainer's state this part works on (set by nfzoo.training.trainer.Trainer), and its methods it calls
    cfg: TrainConfig
    dist: DistContext
    model: FlowModel
    train_set: Any          # a data set of nfzoo.data.load_dataset
    noise: torch.Generator
    opt: torch.optim.Optimizer
    scaler: Optional[torch.amp.GradScaler]   # fp16's gradient scaler (nfzoo.training.precision.make_scaler)
    step: int
    epoch: int
    conditional: bool
    _sigterm: bool
    warn: Callable[[str], None]
    _diverged: Callable[[str], TrainingDivergedError]
    _shuffle_generator: Callable[[int], torch.Generator]
    # set by _wrap: the DDP of the loss (several processes), the compiled step (with `compile`)
    ddp: Optional[DistributedDataParallel]
    _loss_fn: Optional[Callable[..., Tuple[torch.Tensor, torch.Tensor]]]
    _reader: Dict[str, object]   # the kept DataLoader of a file data set (load_batches' `keep`)

    def _n_batches(self, n: int) -> int:
        """Global batches in a phase of n images. With several processes a last batch smaller than the
        number of processes is dropped (every rank must get at least one image)."""
        bs, w = self.cfg.batch_size, self.dist.world
        nb = math.ceil(n / bs)
        if w > 1 and 0 < n % bs < w:
            nb -= 1
        return nb

    def _batches(self, plan, start: int):
        """(phase, x, y, global batch size, offset of this rank's piece in it) for the epoch's batches
        from batch `start` on; x, y are this rank's contiguous piece of the global batch."""
        from nfzoo.distributed import shard

        bs, w, r = self.cfg.batch_size, self.dist.world, self.dist.rank
        if getattr(self.train_set, "streaming", False):   # a stream (nfzoo.data.streaming): one pass an epoch
            yield from self._stream_batches(plan, start)
            return
        for phase, order in plan:
            nb = self._n_batches(len(order))
            if start >= nb:
                start -= nb
                continue
            groups = [order[i * bs:(i + 1) * bs] for i in range(start, nb)]
            cuts = [shard(len(g), w, r) for g in groups]
            pieces = [g[a:b] for g, (a, b) in zip(groups, cuts)]
            for (x, y), g, (a, _) in zip(self._load(pieces), groups, cuts):
                yield phase, x, y, len(g), a
            start = 0

    def _stream_batches(self, plan, start: int):
        """_batches of a stream: its own seeded order (the epoch's shuffle seed), read past `start` batches."""
        if len(plan) != 1:
            from nfzoo.errors import ConfigError

            raise ConfigError(f"{self.cfg.arch} trains in phases, which need a data set read by index: "
                              f"{self.cfg.dataset} is streamed (set streaming=false)")
        phase, order = plan[0]
        gen = self._shuffle_generator(self.epoch)
        for x, y, n, a in self.train_set.epoch_batches(gen, self.cfg.batch_size, self._n_batches(len(order)), start,
                                                       self.dist.world, self.dist.rank):
            yield phase, x, y, n, a

    def _load(self, pieces):
        """load_batches of the training set with the run's workers; on CUDA, pinned and with the workers kept."""
        from nfzoo.training.config import default_workers

        workers = default_workers() if self.cfg.workers is None else self.cfg.workers
        cuda = self.dist.device.type == "cuda" and workers > 0
        return load_batches(self.train_set, pieces, workers=workers, pin_memory=cuda,
                            keep=self._reader if cuda else None)

    def _wrap(self) -> None:
        """With several processes: rank 0's parameters and buffers to every rank, then DDP. With `compile`,
        the module whose forward the step calls (DDP's, or the model's training_loss) is compiled
        (nfzoo.flows.compiling.compile_module; why it runs eager, if it does, goes to `warn`)."""
        self.ddp = None
        self._loss_fn = None
        self._reader = {}
        if self.dist.enabled:
            self._ddp()
        if self.cfg.compile:
            from nfzoo.flows.compiling import compile_module

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

        from nfzoo.flows.model import FlowModel

        ids = [self.dist.local_rank] if self.dist.device.type == "cuda" else None
        # phased models (GLEM, Diffused-Flows' two-stage) leave parameters out of some steps' graphs
        unused = type(self.model).training_plan is not FlowModel.training_plan
        # buffers were broadcast above; they change only at initialisation, so no sync per forward
        sync: Dict[str, Any] = ({"forward_sync_buffers": False}
                                 if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                                 else {"broadcast_buffers": False})
        self.ddp = DistributedDataParallel(_TrainingLoss(self.model), device_ids=ids,
                                           find_unused_parameters=unused, **sync)

    def _forward_backward(self, phase, x, y, n_global: int, offset: int):
        """The gradients of this rank's piece (accumulated over `accumulate` micro-batches, scaled for fp16);
        returns (loss, per-image bpd, stop after this step). Every rank agrees on divergence and on SIGTERM
        (one small all-reduce per step)."""
        from nfzoo.distributed import mix_seed, skip_uniform

        yy = y if self.conditional else None
        kw: Dict[str, Any] = dict(phase=phase, epoch=self.epoch, epochs=self.cfg.epochs)
        k = min(self.cfg.accumulate, x.shape[0])
        xs, ys = (x.tensor_split(k), [None] * k if yy is None else yy.tensor_split(k)) if k > 1 else ([x], [yy])
        losses: List[torch.Tensor] = []
        bpds: List[torch.Tensor] = []
        bad, stop = 0.0, self._sigterm
        if not self.dist.enabled:
            fn = self._loss_fn or self.model.training_loss
            for xm, ym in zip(xs, ys):
                loss, bpd = fn(xm, ym, generator=self.noise, **kw)
                if not torch.isfinite(loss):
                    raise self._diverged(f"the loss became {loss.item()}")
                self._backward(loss, xm.shape[0] / x.shape[0])
                losses.append(loss.detach())   # the graph goes once its gradients are in
                bpds.append(bpd)
            return self._piece_loss(losses, xs), torch.cat(bpds) if k > 1 else bpds[0], stop
        draws = self.model.training_draws_per_image
        if draws is not None:   # this piece's images get the noise they get on one process
            state = self.noise.get_state()
            skip_uniform(self.noise, offset * draws)
            gen = self.noise
        else:
            gen = torch.Generator().manual_seed(mix_seed(self.cfg.seed, self.step, self.dist.rank))
        loss_fn = self._loss_fn or self.ddp
        assert loss_fn is not None and self.ddp is not None, "_wrap makes the DDP of the loss (several processes)"
        for i, (xm, ym) in enumerate(zip(xs, ys)):
            last = i == k - 1
            with contextlib.nullcontext() if last else self.ddp.no_sync():   # DDP syncs on the last one
                loss, bpd = loss_fn(xm, ym, generator=gen, **kw)
                bad = bad if torch.isfinite(loss) else 1.0   # this rank's vote
                if last:
                    if draws is not None:   # every rank leaves the step where one process would
                        self.noise.set_state(state)
                        skip_uniform(self.noise, n_global * draws)
                    bad, stop = self.dist.all_reduce_sum([bad, float(self._sigterm)])
                    if bad:
                        raise self._diverged(f"the loss became non-finite (on {int(bad)} of {self.dist.world} "
                                             "ranks)")
                # DDP averages the ranks' gradients: weight each by its share of the global batch
                self._backward(loss, xm.shape[0] * self.dist.world / n_global)
            losses.append(loss.detach())
            bpds.append(bpd)
        return self._piece_loss(losses, xs), torch.cat(bpds) if k > 1 else bpds[0], bool(stop)

    def _backward(self, loss: torch.Tensor, weight: float) -> None:
        scaled = loss if weight == 1 else loss * weight
        (scaled if self.scaler is None else self.scaler.scale(scaled)).backward()

    @staticmethod
    def _piece_loss(losses: List[torch.Tensor], xs) -> torch.Tensor:
        """The piece's mean loss: the micro-batches' losses weighted by their sizes."""
        if len(losses) == 1:
            return losses[0]
        n = sum(xm.shape[0] for xm in xs)
        return torch.stack([loss * (xm.shape[0] / n) for loss, xm in zip(losses, xs)]).sum()

    def _optimizer_step(self) -> None:
        """The optimizer's step (fp16: through the scaler, which skips a step whose gradients overflowed)."""
        if self.scaler is None:
            self.opt.step()
        else:
            self.scaler.step(self.opt)
            self.scaler.update()


class _TrainingLoss(torch.nn.Module):
    """The model's training_loss as a module's forward, for DistributedDataParallel."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, y, generator=None, **kw):
        return self.model.training_loss(x, y, generator=generator, **kw)
