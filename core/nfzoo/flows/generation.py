"""Seeded generation in chunks, shardable across processes, in constant memory for any n.

Samples are drawn in chunks of CHUNK images; chunk c uses its own generator, seeded from the seed and c
(chunk 0 from the seed itself, so up to CHUNK images are exactly what `model.sample(n, generator=
torch.Generator().manual_seed(seed))` gives). Image i is therefore fixed by (seed, i, n) and does not depend
on how many processes share the work: under torchrun each rank draws a contiguous run of whole chunks.

Labels of class-conditional models come per chunk: `y` is a tensor of all n labels, or a `Labels` rule
(`cycle_labels`, `constant_labels`, `per_class_labels`) that makes the labels of images [start, stop) when
their chunk is drawn, so nothing of size n is ever built. A rule gives exactly the labels its tensor would.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional, Tuple, Union

import torch

from nfzoo.distributed import DistContext, mix_seed, shard
from nfzoo.errors import UsageError

CHUNK = 250
SEED_MAX = 2 ** 32 - 1
"""Seeds are integers in [0, SEED_MAX] (numpy's rule): every seed derived from one (seed + k, seed * 1_000_003
+ epoch, mix_seed) then stays in the range torch.Generator.manual_seed accepts."""


def check_seed(seed: Any, what: str = "seed") -> int:
    """The seed as an int if it is an integer in [0, SEED_MAX]; else UsageError (exit 2 on the CLI)."""
    if isinstance(seed, bool):
        raise UsageError(f"{what} must be an integer in [0, {SEED_MAX}], got {seed!r}")
    if not isinstance(seed, int):
        try:
            ok = float(seed).is_integer()
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise UsageError(f"{what} must be an integer in [0, {SEED_MAX}], got {seed!r}")
        seed = int(seed)
    if not 0 <= seed <= SEED_MAX:
        raise UsageError(f"{what} must be an integer in [0, {SEED_MAX}] (2^32 - 1), got {seed}")
    return int(seed)


def model_device(model) -> torch.device:
    """The device of a model: its `device` attribute, else its first parameter's, else the CPU."""
    dev = getattr(model, "device", None)
    if dev is None:
        p = next(iter(model.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
    return torch.device(dev)


def chunk_generator(seed: int, chunk: int) -> torch.Generator:
    """The generator of sample chunk `chunk` for `seed`: chunk 0 draws from the seed itself, chunk k from
    mix_seed(seed, k), so images do not depend on the number of ranks."""
    seed = check_seed(seed)
    return torch.Generator().manual_seed(seed if chunk == 0 else mix_seed(seed, chunk))


def chunks(n: int, dist: Optional[DistContext] = None) -> Iterator[Tuple[int, int, int]]:
    """This rank's (chunk index, first image, end) for n images, one at a time (constant memory)."""
    count = (n + CHUNK - 1) // CHUNK
    a, b = shard(count, dist.world, dist.rank) if dist is not None and dist.enabled else (0, count)
    for c in range(a, b):
        yield c, c * CHUNK, min(n, (c + 1) * CHUNK)


# ------------------------------------------------------------------------------------ labels per chunk
Labels = Callable[[int, int], torch.Tensor]
"""A label rule: labels(start, stop) -> the (stop - start,) long tensor of images start..stop - 1."""


def cycle_labels(num_classes: int) -> Labels:
    """Every class in turn: image i has label i % num_classes (= torch.arange(n) % num_classes)."""
    k = int(num_classes)
    return lambda start, stop: torch.arange(start, stop) % k


def constant_labels(label: int) -> Labels:
    """One class for every image (= torch.full((n,), label))."""
    return lambda start, stop: torch.full((stop - start,), int(label), dtype=torch.long)


def per_class_labels(per_class: int) -> Labels:
    """`per_class` images of class 0, then of class 1, ... (= torch.arange(C).repeat_interleave(k))."""
    k = int(per_class)
    return lambda start, stop: torch.div(torch.arange(start, stop), k, rounding_mode="floor")


class SamplingLabels(NamedTuple):
    """What to draw from a model: the label rule (None for an unconditional model), how many images, and
    how many of them make one row of their grid."""
    labels: Optional[Labels]
    total: int
    nrow: int


def sampling_labels(model, n: Optional[int] = None, label: Optional[int] = None, per_class: bool = False,
                    name: str = "this model") -> SamplingLabels:
    """The label policy of sampling (`nfzoo sample`, the sample metrics, the heads' labelled data sets):

        per_class         n images of each class, class by class: per_class_labels(n), total C*n, rows of n
        label L           n images of class L: constant_labels(L)
        neither, C >= 1   every class in turn: cycle_labels(C) (balanced: class c gets n // C + (c < n % C))
        neither, no C     no labels (an unconditional model)

    with C = model.num_classes. `n` defaults to 8 with `per_class`, else 64; without `per_class` a grid
    has rows of ceil(sqrt(n)). UsageError (naming the model `name`) for `label` or `per_class` on an
    unconditional model, and for a label outside [0, C - 1]."""
    num_classes = getattr(model, "num_classes", None)
    if label is not None or per_class:
        if num_classes is None:
            raise UsageError(f"{name} is unconditional: --label and --per-class need a class-conditional model")
        if label is not None and not 0 <= label < num_classes:
            raise UsageError(f"--label must be in [0, {num_classes - 1}], got {label}")
        if per_class:
            k = n or 8
            return SamplingLabels(per_class_labels(k), num_classes * k, k)
    k = n or 64
    if label is not None:
        rule = constant_labels(label)
    else:
        rule = None if num_classes is None else cycle_labels(num_classes)
    return SamplingLabels(rule, k, max(1, int(math.ceil(math.sqrt(k)))))


def labels_of(y: Union[None, torch.Tensor, Labels], start: int, stop: int) -> Optional[torch.Tensor]:
    """The labels of images [start, stop) from a tensor of all of them, a rule, or None."""
    if y is None:
        return None
    if isinstance(y, torch.Tensor):
        return y[start:stop]
    return y(start, stop)


@torch.no_grad()
def generate(model, n: int, y: Union[None, torch.Tensor, Labels] = None, temperature: Optional[float] = None,
             seed: int = 0, options: Optional[Dict[str, Any]] = None, dist: Optional[DistContext] = None
             ) -> Iterator[Tuple[int, torch.Tensor, Optional[torch.Tensor]]]:
    """Yield (index of the first image, images on the CPU, their labels) for this rank's chunks of n
    samples. `y`: a label per image (all n of them), a `Labels` rule, or None. `options`: keywords of
    `model.sample` (a `sampler` name and that sampler's options, e.g. {"sampler": "ddim", "steps": 50}).
    Holds one chunk at a time: memory does not grow with n."""
    seed = check_seed(seed)
    model.eval()
    device = model_device(model)
    for c, start, stop in chunks(n, dist):
        yc = labels_of(y, start, stop)
        yc = None if yc is None else yc.to(device)
        x = model.sample(stop - start, y=yc, temperature=temperature, generator=chunk_generator(seed, c),
                         **(options or {}))
        yield start, x.cpu(), None if yc is None else yc.cpu()


def generate_all(model, n: int, y: Union[None, torch.Tensor, Labels] = None, temperature: Optional[float] = None,
                 seed: int = 0, options: Optional[Dict[str, Any]] = None, dist: Optional[DistContext] = None,
                 progress: Optional[Callable[[int, int], None]] = None) -> Optional[torch.Tensor]:
    """All n samples, in index order, on rank 0 (None on the other ranks). Holds all n: for a bounded n
    (a grid); stream `generate` for large n."""
    parts, done = [], 0
    for _, x, _ in generate(model, n, y, temperature, seed, options, dist):
        parts.append(x)
        done += x.shape[0]
        if progress:
            progress(done, n)
    local = torch.cat(parts) if parts else torch.empty(0, *model.image_shape)
    if dist is None or not dist.enabled:
        return local
    return dist.gather_tensor(local)
