"""Running on several processes with torch.distributed (launched by torchrun, or by `nfzoo train --nproc N`
and `nfzoo sample --nproc N`, which launch torchrun on this host).

The process group is read from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, ...):
gloo on CPU, nccl on CUDA (one GPU per process, by LOCAL_RANK). Without that environment everything runs
as one process and nothing here touches torch.distributed.

How work is split, so that results do not depend on the number of processes:
- training: each global batch (the trainer's plan, reshuffled every epoch from the seed and the epoch,
  as DistributedSampler.set_epoch does) is cut into WORLD_SIZE contiguous pieces, one per rank; each rank
  scales its loss by n_rank * world / n_batch so that DDP's gradient average is the global batch's mean;
- evaluation: the test set is cut into WORLD_SIZE contiguous shards and the sums are all-reduced;
- random numbers: where a model declares how many uniform numbers it draws per image
  (FlowModel.training_draws_per_image: the dequantization noise), a rank skips the numbers of the images
  before its piece, so each image gets the noise it gets on one process; otherwise each rank draws from
  its own stream, seeded from the seed, the step and the rank.

Shutting down: nfzoo's own collectives (the sums, gathers and barriers below) run on a gloo group of
their own (`DistContext.group`), not on the default group that DistributedDataParallel holds. DDP keeps
the default group's C++ object, and so its gloo worker threads, alive until the process ends, whatever
destroy_process_group does. A worker drops the last reference to the tensors of a collective only after
the caller has moved on; when the caller's Python object of that tensor is gone by then, freeing it needs
the GIL, and a thread that asks for the GIL once the interpreter is finalizing is ended by CPython with
pthread_exit, which aborts inside torch's noexcept destructor ("terminate called without an active
exception", SIGABRT: a finished run reported as failed, on a busy machine). Nothing else holds nfzoo's
group, so `close()` (and, on any other way out, an atexit handler, which runs before finalization)
destroys it: the destructor joins its worker threads, with the GIL released, while the interpreter is
alive.
"""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import torch

from nfzoo.errors import UsageError


@dataclass
class DistContext:
    """This process's place in a torchrun launch: world size, rank, local rank, device, backend and the group
    of nfzoo's collectives; world 1 is a plain single process, where every collective is a no-op."""
    world: int = 1
    rank: int = 0
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None
    group: Any = None        # the process group of nfzoo's collectives (None: the default group)
    _busy: bool = False      # inside a collective (an exception left it there: see _close_at_exit)

    @property
    def is_main(self) -> bool:
        """Rank 0: the rank that logs and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world > 1

    @contextmanager
    def _collective(self):
        self._busy = True
        yield
        self._busy = False   # not reset when the collective raised

    def barrier(self) -> None:
        """Wait until every rank is here (a no-op on one process)."""
        if self.enabled:
            import torch.distributed as dist

            with self._collective():
                dist.barrier(group=self.group)

    def all_reduce_sum(self, values: Sequence[float]) -> List[float]:
        """Sum of each value over the ranks (float64)."""
        if not self.enabled:
            return [float(v) for v in values]
        import torch.distributed as dist

        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self._comm_device())
        with self._collective():
            dist.all_reduce(t, group=self.group)
        return t.cpu().tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank if it is true on any rank (a collective: every rank must call it)."""
        return self.all_reduce_sum([1.0 if flag else 0.0])[0] > 0

    def gather_tensor(self, t: torch.Tensor) -> Optional[torch.Tensor]:
        """Rank 0 gets the ranks' tensors concatenated in rank order (shapes may differ along dim 0);
        the others get None."""
        if not self.enabled:
            return t
        import torch.distributed as dist

        dev = self._comm_device()
        n = torch.tensor([t.shape[0]], device=dev)
        sizes = [torch.zeros_like(n) for _ in range(self.world)]
        with self._collective():
            dist.all_gather(sizes, n, group=self.group)
        sizes = [int(s.item()) for s in sizes]
        width = max(sizes)
        pad = torch.zeros((width, *t.shape[1:]), dtype=t.dtype, device=dev)
        pad[:t.shape[0]] = t.to(dev)
        with self._collective():
            if self.backend == "nccl":   # nccl has no gather: all_gather, and the others drop theirs
                parts = [torch.empty_like(pad) for _ in range(self.world)]
                dist.all_gather(parts, pad, group=self.group)
            else:   # nfzoo's group has every rank: its rank 0 is the global rank 0
                parts = [torch.empty_like(pad) for _ in range(self.world)] if self.is_main else None
                dist.gather(pad, parts, dst=0, group=self.group)
        if not self.is_main or parts is None:   # parts: None only off rank 0
            return None
        return torch.cat([p[:s] for p, s in zip(parts, sizes)]).cpu()

    def _comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")

    def shard(self, n: int) -> Tuple[int, int]:
        """[start, stop) of this rank's contiguous piece of n items (`shard(n, world, rank)`)."""
        return shard(n, self.world, self.rank)

    def close(self) -> None:
        """Destroy the process groups (every rank calls it, after a barrier). nfzoo's group has no other
        holder, so this joins its gloo threads now: none is left to free a tensor while the
        interpreter shuts down (see the module's docstring)."""
        global _CONTEXT
        if self.enabled:
            import torch.distributed as dist

            self.group = None         # the last reference: destroying the group frees it (joins its threads)
            if dist.is_initialized():
                dist.destroy_process_group()
            if _CONTEXT is self:      # a later context() starts a new group rather than reuse this one
                _CONTEXT = None


def _close_at_exit() -> None:
    """At exit (before the interpreter finalizes), close a context that no command closed: a run stopped
    by SIGTERM, an error. Not when a collective raised: a worker may still wait on a peer there, and
    joining it could hang the exit."""
    ctx = _CONTEXT
    if ctx is not None and not ctx._busy:
        ctx.close()


def shard(n: int, world: int, rank: int) -> Tuple[int, int]:
    """[start, stop) of rank's contiguous piece of n items (sizes differ by at most one, the first
    pieces the larger: torch.tensor_split's rule)."""
    q, r = divmod(n, world)
    start = rank * q + min(rank, r)
    return start, start + q + (1 if rank < r else 0)


def env_world() -> int:
    """WORLD_SIZE from the environment (torchrun sets it); 1 when unset or not an integer."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


_CONTEXT: Optional[DistContext] = None
_AT_EXIT = False


def context(device: str = "auto") -> DistContext:
    """The process group of this process (initialised on first use from torchrun's environment).
    device: "cpu", "cuda" or "auto" (cuda when torch sees a GPU)."""
    global _CONTEXT, _AT_EXIT
    if device not in ("auto", "cpu", "cuda"):
        raise UsageError(f"--device must be cpu, cuda or auto, got {device!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise UsageError("--device cuda: torch sees no CUDA device on this machine; use --device cpu")
    world = env_world()
    if world <= 1:
        dev = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
        return DistContext(device=dev)
    if _CONTEXT is not None:
        return _CONTEXT
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise UsageError(f"LOCAL_RANK {local} but this node has {torch.cuda.device_count()} GPU(s): "
                             "start at most one process per GPU (--nproc_per_node)")
        torch.cuda.set_device(local)
        dev, backend = torch.device("cuda", local), "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    # nfzoo's collectives get a gloo group of their own, which close() can really destroy (DDP holds the
    # default one); nccl keeps the default group (one communicator per GPU is enough)
    group = dist.new_group(backend="gloo") if backend == "gloo" else None
    _CONTEXT = DistContext(world=dist.get_world_size(), rank=dist.get_rank(), local_rank=local, device=dev,
                           backend=backend, group=group)
    if not _AT_EXIT:
        import atexit

        atexit.register(_close_at_exit)
        _AT_EXIT = True
    return _CONTEXT


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps), for per-rank / per-step / per-chunk generators."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        x = z ^ (z >> 31)
    return x & 0x7FFFFFFFFFFFFFFF


def skip_uniform(generator: torch.Generator, count: int, dtype: torch.dtype = torch.float32) -> None:
    """Advance a CPU generator past `count` uniform numbers of `dtype`, as drawing them would."""
    chunk = 1 << 22
    while count > 0:
        k = min(count, chunk)
        torch.rand(k, generator=generator, dtype=dtype)
        count -= k


def launch(args: List[str], nproc: int, module: str) -> int:
    """Run `python -m <module> ARGS` on `nproc` processes of this host through torchrun (standalone
    rendezvous); returns torchrun's exit status. `module` is the caller's entry point (the CLI passes
    "nfzoo_cli"); the core names none."""
    if nproc < 1:
        raise UsageError(f"--nproc must be >= 1, got {nproc}")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", module, "--", *args]    # "--": torchrun's own options must not swallow ours (--log)
    env = dict(os.environ)
    # torchrun's default for OMP_NUM_THREADS is 1 per process; keep a user's setting
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    import signal

    proc = subprocess.Popen(cmd, env=env)
    got: List[int] = []

    def forward(signum, frame):   # a scheduler's SIGTERM reaches this process: pass it on to torchrun,
        got.append(signum)        # which passes it to the ranks (they checkpoint and stop together)
        proc.send_signal(signum)
    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        rc = proc.wait()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if got and rc != 0:
        return 128 + got[0]       # preempted: 143 for SIGTERM, as one process exits
    return rc
