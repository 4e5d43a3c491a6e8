"""A torchvision ResNet-18 adapted to small images, its training loop, and the CNN-A evaluation (GLEM
paper, section 5): the same network trained on generated images and on the real training split, both
tested on the real test split."""
from __future__ import annotations

import math
import time
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nfzoo.errors import UsageError

from .checks import int_option

# The recipe of every ResNet-18 the heads train (CNN-A, its real-data baseline, the augmentation study).
RECIPE = {"epochs": 8, "batch_size": 128, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
          "schedule": "one-cycle (cosine), SGD with nesterov", "standard_augmentation":
          "random affine: shift <= 2 px, rotation <= 10 degrees, zoom +-10% (nfzoo.evaluation.oracle.random_affine)"}


def resnet18_for(image_shape, num_classes: int) -> nn.Module:
    """torchvision's ResNet-18 for small images: the first conv becomes 3x3 stride 1 over the image's
    channels (the 7x7 stride-2 stem would leave a 28x28 digit 7x7 after one layer); the max-pool stays,
    so the residual stages run at 1/2, 1/4, 1/8, 1/16 of the image size."""
    from torchvision.models import resnet18

    c = int(image_shape[0])
    net = resnet18(weights=None, num_classes=num_classes)
    net.conv1 = nn.Conv2d(c, 64, kernel_size=3, stride=1, padding=1, bias=False)
    return net


def as_tensors(dataset) -> Tuple[Tensor, Tensor]:
    """A labelled data set -> (float images in [0, 1], labels), all in memory."""
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        return dataset.images.float() / 255.0, dataset.labels.long()
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(xs).float(), torch.as_tensor(ys).long()


@torch.no_grad()
def accuracy(net: nn.Module, x: Tensor, y: Tensor, batch_size: int = 500) -> float:
    net.eval()
    dev = next(net.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((net(x[i:i + batch_size].to(dev)).argmax(1).cpu() == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))


def standard_augment(x: Tensor, y: Tensor, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
    from nfzoo.evaluation.oracle import random_affine

    return random_affine(x, generator), y


def train_classifier(x: Tensor, y: Tensor, num_classes: int, test: Optional[Tuple[Tensor, Tensor]] = None,
                     epochs: int = RECIPE["epochs"], seed: int = 0, batch_size: int = RECIPE["batch_size"],
                     lr: float = RECIPE["lr"], augment: Optional[Callable] = standard_augment,
                     device: str = "cpu", progress: Optional[Callable[[int, int], None]] = None,
                     batches: Optional[Callable] = None) -> Dict:
    """Train resnet18_for(x's shape) on (x, y) and return {"test_accuracy", "train_accuracy", ...}.
    `augment(x, y, generator) -> (x, y)` transforms each batch (None: no augmentation); `batches(epoch,
    generator)` may instead yield the (x, y) batches of an epoch (latent augmentation does)."""
    if x.shape[0] < 2:
        raise UsageError(f"a classifier needs at least 2 training images, got {x.shape[0]}")
    if epochs < 1:
        raise UsageError(f"epochs must be >= 1, got {epochs}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = resnet18_for(x.shape[1:], num_classes).to(device)
    per_epoch = math.ceil(x.shape[0] / batch_size)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=RECIPE["momentum"], nesterov=True,
                          weight_decay=RECIPE["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * per_epoch,
                                                pct_start=0.2)
    t0 = time.perf_counter()
    step, losses = 0, []
    for epoch in range(epochs):
        net.train()
        if batches is not None:
            it = batches(epoch, gen)
        else:
            perm = torch.randperm(x.shape[0], generator=gen)
            it = ((x[perm[i:i + batch_size]], y[perm[i:i + batch_size]])
                  for i in range(0, x.shape[0], batch_size))
        total, n = 0.0, 0
        for xb, yb in it:
            if augment is not None:
                xb, yb = augment(xb, yb, gen)
            loss = F.cross_entropy(net(xb.to(device)), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step < epochs * per_epoch - 1:
                sched.step()
            step += 1
            total += float(loss.detach()) * xb.shape[0]
            n += xb.shape[0]
            if progress:
                progress(step, epochs * per_epoch)
        losses.append(total / max(1, n))
    res = {"epochs": epochs, "train_images": int(x.shape[0]), "seed": seed, "train_loss": losses,
           "seconds": time.perf_counter() - t0}
    if test is not None:
        res["test_accuracy"] = accuracy(net, *test)
    res["net"] = net
    return res


def cnn_a(model, dataset: str = "mnist5k", n: int = 5000, temperature: float = 1.0, seed: int = 0,
          epochs: int = RECIPE["epochs"], baseline: bool = True, data_root: Optional[str] = None,
          device: str = "cpu", progress: Optional[Callable[[str, int, int], None]] = None,
          model_name: Optional[str] = None, **sample_options) -> Dict:
    """CNN-A: a ResNet-18 trained on n images generated by a class-conditional model (balanced classes),
    tested on the real test split of `dataset`; beside it (baseline=True) the same recipe trained on the
    real training split."""
    from nfzoo.data import load_dataset

    from .synth import check_conditional, sample_labelled

    epochs = int_option("epochs", epochs, 1, 100_000)
    k = check_conditional(model, model_name or "this model")
    train_ds, test_ds = load_dataset(dataset, "train", data_root), load_dataset(dataset, "test", data_root)
    if tuple(test_ds.image_shape) != tuple(model.image_shape):
        raise UsageError(f"{model_name or 'the model'} makes images of shape {list(model.image_shape)} but "
                         f"{dataset} has {list(test_ds.image_shape)}")
    if getattr(test_ds, "num_classes", None) != k:
        raise UsageError(f"the model has {k} classes but {dataset} has {getattr(test_ds, 'num_classes', None)}")
    test = as_tensors(test_ds)

    def stage(name):
        p = progress
        return (lambda done, total: p(name, done, total)) if p else None

    xs, ys, redrawn = sample_labelled(model, n, temperature, seed, progress=stage("sampling"), **sample_options)
    synth = train_classifier(xs, ys, k, test, epochs, seed, device=device, progress=stage("CNN-A training"))
    doc = {"task": "cnn-a", "n_generated": n, "temperature": temperature, "sampler": model.sampler.name,
           "sampler_options": sample_options, "redrawn_nonfinite": redrawn, "recipe": {**RECIPE, "epochs": epochs},
           "network": "torchvision resnet18, 3x3 stride-1 stem", "test_images": int(len(test[1])),
           "accuracy": synth["test_accuracy"], "cnn_a": _public(synth)}
    if baseline:
        xr, yr = as_tensors(train_ds)
        real = train_classifier(xr, yr, k, test, epochs, seed, device=device, progress=stage("real-data training"))
        doc["real"] = _public(real)
        doc["accuracy_real"] = real["test_accuracy"]
    doc["summary"] = [f"CNN-A (ResNet-18 on {n} generated images): test accuracy {doc['accuracy']:.4f}"] + (
        [f"same network on the {doc['real']['train_images']} real training images: {doc['accuracy_real']:.4f}"]
        if baseline else [])
    return doc


def _public(res: Dict) -> Dict:
    return {k: v for k, v in res.items() if k != "net"}
