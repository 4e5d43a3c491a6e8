"""`synthesize`: a labelled data set drawn from a class-conditional model (torchvision ImageFolder layout,
PNG, with a manifest), and the in-memory draw that CNN-A trains on."""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from nfzoo.errors import NfzooError, UsageError
from nfzoo.flows.generation import sampling_labels

from .checks import float_option, int_option

MANIFEST = "manifest.json"
MAX_IMAGES = 1_000_000   # a data set drawn in memory and written at once (synth, cnn-a)


def check_conditional(model, name: str = "this model") -> int:
    """The model's number of classes; UsageError naming it (`name`) when it is unconditional."""
    if getattr(model, "num_classes", None) is None:
        raise UsageError(f"{name} is unconditional: a labelled data set needs a class-conditional model "
                         "(one with num_classes, e.g. glem-mnist5k)")
    return int(model.num_classes)


@torch.no_grad()
def sample_labelled(model, n: int, temperature: float = 1.0, seed: int = 0, batch_size: int = 100,
                    progress: Optional[Callable[[int, int], None]] = None, max_rounds: int = 20,
                    **sample_options) -> Tuple[Tensor, Tensor, int]:
    """n samples with their labels, classes balanced, in class order: (images (n, C, H, W) in [0, 1] on
    the CPU, labels (n,), number of non-finite samples that were drawn again). A sample whose pixels are
    not finite (a flow's inverse can overflow far from the data) is redrawn, up to `max_rounds` times."""
    check_conditional(model)
    n = int_option("--n", n, 1, MAX_IMAGES)
    temperature = float_option("temperature", temperature, low=0)
    seed = int_option("seed", seed, 0, 2 ** 32 - 1)
    batch_size = int_option("batch_size", batch_size, 1, 100_000)
    model.sampler.check(model, temperature=temperature, **sample_options)
    gen = torch.Generator().manual_seed(seed)
    # nfzoo's balanced labels (every class in turn: the first n % C classes get one more), in class order
    rule = sampling_labels(model, n).labels
    assert rule is not None   # check_conditional: a class-conditional model has a label rule
    todo = rule(0, n).sort(stable=True).values
    images: List[Tensor] = []
    labels: List[Tensor] = []
    rejected = done = 0
    for _ in range(max_rounds):
        if todo.numel() == 0:
            break
        retry = []
        for i in range(0, todo.numel(), batch_size):
            y = todo[i:i + batch_size]
            x = model.sample(y.numel(), y=y.to(model.device), temperature=temperature, generator=gen,
                             **sample_options).float().cpu()
            ok = torch.isfinite(x.flatten(1)).all(1)
            images.append(x[ok].clamp(0, 1))
            labels.append(y[ok])
            retry.append(y[~ok])
            rejected += int((~ok).sum())
            done += int(ok.sum())
            if progress:
                progress(done, n)
        todo = torch.cat(retry)
    if todo.numel():
        raise NfzooError(f"the sampler still gave non-finite images for {todo.numel()} of {n} draws after "
                         f"{max_rounds} rounds; try a lower --temperature or another --sampler")
    x, y = torch.cat(images), torch.cat(labels)
    order = torch.argsort(y, stable=True)
    return x[order], y[order], rejected


def class_folder_names(num_classes: int) -> List[str]:
    """Zero-padded so that ImageFolder's sorted class order is the label order."""
    width = len(str(num_classes - 1))
    return [f"{c:0{width}d}" for c in range(num_classes)]


def synthesize(model, n: int, out: os.PathLike, temperature: float = 1.0, seed: int = 0,
               batch_size: int = 100, progress: Optional[Callable[[int, int], None]] = None,
               model_name: Optional[str] = None, **sample_options) -> Dict:
    """Write n samples of a class-conditional model to `out` as a labelled data set: out/<class>/NNNNNN.png
    (torchvision ImageFolder layout; class folders zero-padded so their order is the label order) and
    out/manifest.json (model, sampler, temperature, seed, counts per class). The folder appears only when
    complete. Returns the manifest. Read it back with nfzoo's `folder:OUT` data set."""
    from .images import check_new_output, write_image_folder

    k = check_conditional(model, model_name or "this model")
    check_new_output(out)
    x, y, rejected = sample_labelled(model, n, temperature, seed, batch_size, progress, **sample_options)
    names = class_folder_names(k)
    counts = {names[c]: int((y == c).sum()) for c in range(k)}
    manifest = {"format": "ImageFolder (one folder per class, PNG)", "model": model_name,
                "architecture": getattr(model, "architecture", None), "sampler": model.sampler.name,
                "sampler_options": sample_options, "temperature": temperature, "seed": seed, "n": n,
                "image_shape": list(x.shape[1:]), "classes": names, "counts": counts,
                "redrawn_nonfinite": rejected}
    write_image_folder(out, x, y, names, manifest)
    return manifest
