"""Seeded generation in chunks, shardable across processes.

Samples are drawn in chunks of CHUNK images; chunk c uses its own generator, seeded from the seed and c
(chunk 0 from the seed itself, so up to CHUNK images are exactly what `model.sample(n, generator=
torch.Generator().manual_seed(seed))` gives). Image i is therefore fixed by (seed, i, n) and does not depend
on how many processes share the work: under torchrun each rank draws a contiguous run of whole chunks.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch

from .distributed import DistContext, mix_seed, shard

CHUNK = 250


def model_device(model) -> torch.device:
    dev = getattr(model, "device", None)
    if dev is None:
        p = next(iter(model.parameters()), None)
        dev = p.device if p is not None else torch.device("cpu")
    return torch.device(dev)


def chunk_generator(seed: int, chunk: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) if chunk == 0 else mix_seed(seed, chunk))


def chunks(n: int, dist: Optional[DistContext] = None) -> List[Tuple[int, int, int]]:
    """This rank's (chunk index, first image, end) for n images."""
    count = (n + CHUNK - 1) // CHUNK
    a, b = shard(count, dist.world, dist.rank) if dist is not None and dist.enabled else (0, count)
    return [(c, c * CHUNK, min(n, (c + 1) * CHUNK)) for c in range(a, b)]


@torch.no_grad()
def generate(model, n: int, y: Optional[torch.Tensor] = None, temperature: float = 1.0, seed: int = 0,
             options: Optional[Dict[str, Any]] = None, dist: Optional[DistContext] = None
             ) -> Iterator[Tuple[int, torch.Tensor, Optional[torch.Tensor]]]:
    """Yield (index of the first image, images on the CPU, their labels) for this rank's chunks of n
    samples. `y`: a label per image (all n of them), or None."""
    model.eval()
    device = model_device(model)
    for c, start, stop in chunks(n, dist):
        yc = None if y is None else y[start:stop].to(device)
        x = model.sample(stop - start, y=yc, temperature=temperature, generator=chunk_generator(seed, c),
                         **(options or {}))
        yield start, x.cpu(), None if yc is None else yc.cpu()


def generate_all(model, n: int, y: Optional[torch.Tensor] = None, temperature: float = 1.0, seed: int = 0,
                 options: Optional[Dict[str, Any]] = None, dist: Optional[DistContext] = None,
                 progress: Optional[Callable[[int, int], None]] = None) -> Optional[torch.Tensor]:
    """All n samples, in index order, on rank 0 (None on the other ranks)."""
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
