"""Latent augmentation: encode images with a flow, move them in latent space, decode.

- `latent_mixup`: each image's latent is mixed with that of another image of the same class by spherical
  interpolation, z = slerp(z_a, z_b; l), l ~ U(0, 1). It keeps the latent's scale (a plain average of two
  nearly orthogonal gaussian latents shrinks it by up to sqrt(2), and a flow decodes shrunk latents to
  smooth, atypical images).
- `principal_jitter`: z + strength * sum_k a_k sqrt(lambda_k) u_k, a_k ~ N(0, 1), over the top principal
  directions (u_k, lambda_k) of the training latents.
- `LatentAugment`: a torch IterableDataset that yields shuffled, partly augmented batches.
- `interpolate`: images along the same scale-keeping path between two images' latents.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Iterator, Optional, Tuple

import torch
from torch import Tensor

from nfzoo.errors import UsageError

from .checks import float_option, int_option

MODES = ("mixup", "pca")


def _mix(za: Tensor, zb: Tensor, lam: Tensor) -> Tensor:
    """Spherical interpolation: lam = 1 gives za, 0 gives zb; the norm stays between theirs."""
    a, b = za.flatten(1).double(), zb.flatten(1).double()
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    lam = lam.double().to(a.device)
    so = torch.sin(omega)
    near = so < 1e-4                  # (nearly) parallel latents: a straight line is the same path
    wa = torch.where(near, lam, torch.sin(lam * omega) / so.clamp_min(1e-12))
    wb = torch.where(near, 1 - lam, torch.sin((1 - lam) * omega) / so.clamp_min(1e-12))
    return (wa[:, None] * a + wb[:, None] * b).to(za.dtype).view_as(za)


@torch.no_grad()
def encode_all(model, x: Tensor, batch_size: int = 500) -> Tensor:
    dev = model.device
    return torch.cat([model.encode(x[i:i + batch_size].to(dev)).cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def decode_all(model, z: Tensor, batch_size: int = 500) -> Tensor:
    dev = model.device
    return torch.cat([model.decode(z[i:i + batch_size].to(dev)).float().cpu()
                      for i in range(0, len(z), batch_size)])


def _partners(labels: Tensor, idx: Tensor, generator: torch.Generator) -> Tensor:
    """For each index, a random index of the same class (itself if it is alone in its class)."""
    out = idx.clone()
    for c in labels[idx].unique():
        pool = torch.nonzero(labels == c).flatten()
        sel = labels[idx] == c
        out[sel] = pool[torch.randint(len(pool), (int(sel.sum()),), generator=generator)]
    return out


def latent_mixup(model, x: Tensor, y: Tensor, n: Optional[int] = None, generator=None,
                 latents: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """n new images (default len(x)), each a same-class latent mix of two images of (x, y)."""
    gen = generator or torch.Generator().manual_seed(0)
    z = encode_all(model, x) if latents is None else latents
    n = len(x) if n is None else n
    a = torch.randint(len(x), (n,), generator=gen)
    b = _partners(y, a, gen)
    lam = torch.rand(n, generator=gen)
    return decode_all(model, _mix(z[a], z[b], lam)).clamp(0, 1), y[a].clone()


class PrincipalDirections:
    """The top-k principal directions of a set of latents (torch.pca_lowrank)."""

    def __init__(self, latents: Tensor, k: int = 32, seed: int = 0):
        flat = latents.flatten(1).double()
        k = max(1, min(k, flat.shape[0] - 1, flat.shape[1]))
        torch.manual_seed(seed)
        _, s, v = torch.pca_lowrank(flat, q=k, center=True)
        self.shape = latents.shape[1:]
        self.std = (s / math.sqrt(max(1, flat.shape[0] - 1))).float()     # sqrt(lambda_k)
        self.dirs = v.float().T                                           # (k, D)

    def jitter(self, z: Tensor, strength: float, generator: torch.Generator) -> Tensor:
        a = torch.randn(z.shape[0], len(self.std), generator=generator)
        return z + strength * ((a * self.std) @ self.dirs).view(-1, *self.shape)


def principal_jitter(model, x: Tensor, strength: float = 0.5, k: int = 32, generator=None,
                     latents: Optional[Tensor] = None, directions: Optional[PrincipalDirections] = None) -> Tensor:
    """Each image moved along the top-k principal directions of the latents of x (or `directions`)."""
    gen = generator or torch.Generator().manual_seed(0)
    z = encode_all(model, x) if latents is None else latents
    pcs = directions or PrincipalDirections(z, k)
    return decode_all(model, pcs.jitter(z, strength, gen)).clamp(0, 1)


class LatentAugment(torch.utils.data.IterableDataset):
    """Batches of (images, labels) from a labelled data set in which a fraction `p` of each batch is
    replaced by latent augmentations of its images (mode "mixup" or "pca"), made by `model` (any FlowModel:
    encode / decode). The training images are encoded once. Iterating again gives a new shuffle; the
    sequence is fixed by `seed` (or by the generator passed to `epoch`)."""

    def __init__(self, model, dataset, batch_size: int = 128, mode: str = "mixup", p: float = 0.5,
                 strength: float = 0.5, k: int = 32, seed: int = 0):
        from .classifier import as_tensors

        if mode not in MODES:
            raise UsageError(f"unknown latent augmentation mode {mode!r}; choose one of {', '.join(MODES)}")
        if not 0.0 <= p <= 1.0:
            raise UsageError(f"the augmented fraction p must be in [0, 1], got {p}")
        self.model, self.batch_size, self.mode, self.p, self.strength = model, batch_size, mode, p, strength
        self.x, self.y = as_tensors(dataset) if not isinstance(dataset, tuple) else dataset
        if tuple(self.x.shape[1:]) != tuple(model.image_shape):
            raise UsageError(f"the model takes images of shape {list(model.image_shape)}, the data set has "
                             f"{list(self.x.shape[1:])}")
        self.z = encode_all(model, self.x)
        self.pcs = PrincipalDirections(self.z, k, seed) if mode == "pca" else None
        self.seed = seed
        self._gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def augment(self, idx: Tensor, generator: torch.Generator) -> Tensor:
        if self.mode == "mixup":
            b = _partners(self.y, idx, generator)
            z = _mix(self.z[idx], self.z[b], torch.rand(len(idx), generator=generator))
        else:
            assert self.pcs is not None   # mode "pca" (the modes are checked in __init__)
            z = self.pcs.jitter(self.z[idx], self.strength, generator)
        return decode_all(self.model, z).clamp(0, 1)

    def epoch(self, generator: torch.Generator) -> Iterator[Tuple[Tensor, Tensor]]:
        perm = torch.randperm(len(self.x), generator=generator)
        for i in range(0, len(perm), self.batch_size):
            idx = perm[i:i + self.batch_size]
            xb, yb = self.x[idx].clone(), self.y[idx].clone()
            sel = torch.rand(len(idx), generator=generator) < self.p
            if sel.any():
                aug = self.augment(idx[sel], generator)
                ok = torch.isfinite(aug.flatten(1)).all(1)     # a decode that overflowed keeps the original
                xb[torch.nonzero(sel).flatten()[ok]] = aug[ok]
            yield xb, yb

    def __iter__(self):
        return self.epoch(self._gen)


def interpolate(model, a: Tensor, b: Tensor, steps: int = 8) -> Tensor:
    """`steps` images from a to b (each (C, H, W) or (1, C, H, W)) along the spherical latent path."""
    if steps < 2:
        raise UsageError(f"--steps must be >= 2 for an interpolation, got {steps}")
    a, b = a.reshape(1, *a.shape[-3:]), b.reshape(1, *b.shape[-3:])
    for name, t in (("first", a), ("second", b)):
        if tuple(t.shape[1:]) != tuple(model.image_shape):
            raise UsageError(f"the {name} image is {list(t.shape[1:])} but the model takes "
                             f"{list(model.image_shape)}")
    z = encode_all(model, torch.cat([a, b]))
    lam = torch.linspace(1, 0, steps)
    return decode_all(model, _mix(z[:1].expand(steps, *z.shape[1:]), z[1:].expand(steps, *z.shape[1:]), lam)
                      ).clamp(0, 1)


def augment_folder(model, dataset, n: int, out, mode: str = "mixup", strength: float = 0.5, seed: int = 0,
                   model_name: Optional[str] = None, data_root: Optional[str] = None,
                   progress: Optional[Callable[[int, int], None]] = None) -> Dict:
    """Write n latent augmentations of a labelled data set's training split to `out` (ImageFolder PNG,
    manifest.json), atomically."""
    from nfzoo.data import load_dataset

    from .images import check_new_output, write_image_folder
    from .synth import class_folder_names

    n = int_option("--n", n, 1, 10_000_000)
    strength = float_option("--strength", strength, low=0, high=1e6)
    check_new_output(out)
    ds = load_dataset(dataset, "train", data_root) if isinstance(dataset, str) else dataset
    k = getattr(ds, "num_classes", None)
    if not k:
        raise UsageError(f"{dataset} has no class labels; latent augmentation writes a labelled data set")
    aug = LatentAugment(model, ds, mode=mode, p=1.0, strength=strength, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    xs, ys, done = [], [], 0
    while done < n:
        idx = torch.randint(len(aug.x), (min(500, n - done),), generator=gen)
        x = aug.augment(idx, gen)
        ok = torch.isfinite(x.flatten(1)).all(1)
        xs.append(x[ok])
        ys.append(aug.y[idx][ok])
        done += int(ok.sum())
        if progress:
            progress(min(done, n), n)
    x, y = torch.cat(xs)[:n], torch.cat(ys)[:n]
    names = class_folder_names(k)
    manifest = {"format": "ImageFolder (one folder per class, PNG)", "model": model_name, "source": str(
        getattr(ds, "name", dataset)), "split": "train", "mode": mode, "strength": strength if mode == "pca"
        else None, "seed": seed, "n": n, "classes": names,
        "counts": {names[c]: int((y == c).sum()) for c in range(k)}}
    write_image_folder(out, x, y, names, manifest)
    return manifest


def augment_study(model, dataset: str = "mnist5k", seed: int = 0, seeds=(0, 1, 2), arms=("standard", "latent"),
                  mode: str = "mixup", p: float = 0.5, epochs: Optional[int] = None,
                  data_root: Optional[str] = None, device: str = "cpu",
                  progress: Optional[Callable[[str, int, int], None]] = None,
                  model_name: Optional[str] = None) -> Dict:
    """ResNet-18 on `dataset`'s training split with standard augmentation (random affine) against latent
    augmentation (a fraction p of every batch replaced by latent mixes), over seeds; test accuracy mean and
    standard deviation per arm. Arms: "standard", "latent", "standard+latent", "none"."""
    import statistics

    from nfzoo.data import load_dataset

    from .classifier import RECIPE, as_tensors, standard_augment, train_classifier

    known = ("none", "standard", "latent", "standard+latent")
    arms = [arms] if isinstance(arms, str) else list(arms) if isinstance(arms, (list, tuple)) else [arms]
    seeds = list(seeds) if isinstance(seeds, (list, tuple)) else [seeds]
    seeds = [int_option("seeds", s, 0, 2 ** 32 - 1) for s in seeds]
    if not seeds:
        raise UsageError("seeds must list at least one seed")
    if epochs is not None:
        epochs = int_option("epochs", epochs, 1, 100_000)
    p = float_option("p", p, low=0, high=1)
    if mode not in MODES:
        raise UsageError(f"unknown latent augmentation mode {mode!r}; choose one of {', '.join(MODES)}")
    for a in arms:
        if a not in known:
            raise UsageError(f"unknown augmentation arm {a!r}; choose from {', '.join(known)}")
    train_ds, test_ds = load_dataset(dataset, "train", data_root), load_dataset(dataset, "test", data_root)
    k = getattr(train_ds, "num_classes", None)
    if not k:
        raise UsageError(f"{dataset} has no class labels")
    x, y = as_tensors(train_ds)
    test = as_tensors(test_ds)
    epochs = epochs or RECIPE["epochs"]
    lat = LatentAugment(model, (x, y), mode=mode, p=p) if any("latent" in a for a in arms) else None
    doc = {"task": "augment", "dataset": dataset, "mode": mode, "p": p, "seeds": list(seeds),
           "recipe": {**RECIPE, "epochs": epochs}, "arms": {}}
    for arm in arms:
        accs = []
        for s in seeds:
            cb = (lambda d, t, arm=arm, s=s: progress(f"{arm} seed {s}", d, t)) if progress else None
            res = train_classifier(x, y, k, test, epochs, s, device=device, progress=cb,
                                   augment=standard_augment if "standard" in arm else None,
                                   batches=(lambda e, g: lat.epoch(g)) if "latent" in arm and lat is not None else None)
            accs.append(res["test_accuracy"])
        doc["arms"][arm] = {"test_accuracy": accs, "mean": statistics.mean(accs),
                            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0}
    doc["summary"] = [f"{arm}: test accuracy {r['mean']:.4f} +- {r['std']:.4f} over seeds {list(seeds)}"
                      for arm, r in doc["arms"].items()]
    return doc
