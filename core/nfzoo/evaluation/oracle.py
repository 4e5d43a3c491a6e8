"""The oracle: a small CNN classifier whose penultimate layer gives the features for FID, Coverage and
Density (nfzoo.evaluation.metrics), and whose predictions give the label reliability of conditional samples.

    conv3x3(32) - conv3x3(64) - maxpool - conv3x3(128) - maxpool - fc(256) [features] - fc(num_classes)

Every conv and the first fc are followed by BatchNorm and ReLU; dropout before each fc. Inputs are
images in [0, 1] (or uint8), shape (B, C, H, W) with H and W divisible by 4.

An oracle directory holds config.json (`"kind": "oracle"`, the architecture config, how it was trained
and its test accuracy) and model.safetensors. `train_oracle` writes one (each file atomically) and
`load_oracle` reads one back strictly (safetensors only: missing, unexpected or mis-shaped tensors are
an error).
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nfzoo.constants import CONFIG_NAME, WEIGHTS_NAME
from nfzoo.errors import ConfigError, UsageError
from nfzoo.flows.model import load_state_strict, to_unit
from nfzoo.safeio import atomic_write_json, load_tensors, read_json, save_tensors

ORACLE_KIND = "oracle"
ORACLE_ARCH = "oracle-cnn"


class OracleNet(nn.Module):
    """A small CNN classifier; `features(x)` is its penultimate layer (`feature_dim` values)."""

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
                 channels: Sequence[int] = (32, 64, 128), feature_dim: int = 256, dropout: float = 0.3):
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        if h % 4 or w % 4:
            raise ConfigError(f"the oracle needs image height and width divisible by 4, got {h}x{w}")
        if len(channels) != 3:
            raise ConfigError(f"the oracle has three conv layers: channels needs 3 numbers, got {channels}")
        c1, c2, c3 = (int(k) for k in channels)
        self.image_shape = (c, h, w)
        self.num_classes = int(num_classes)
        self.feature_dim = int(feature_dim)

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        self.conv = nn.Sequential(*block(c, c1), *block(c1, c2), nn.MaxPool2d(2),
                                  *block(c2, c3), nn.MaxPool2d(2), nn.Flatten())
        self.embed = nn.Sequential(nn.Dropout(dropout), nn.Linear(c3 * (h // 4) * (w // 4), feature_dim,
                                                                  bias=False),
                                   nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))
        self.config: Dict[str, Any] = {"image_shape": [c, h, w], "num_classes": self.num_classes,
                                       "channels": [c1, c2, c3], "feature_dim": self.feature_dim,
                                       "dropout": float(dropout)}
        self.info: Dict[str, Any] = {}   # what config.json says beyond the config (set by load_oracle)

    @property
    def device(self) -> torch.device:
        """The device of the oracle's parameters."""
        return next(self.parameters()).device

    def _prepare(self, x: Tensor) -> Tensor:
        x = to_unit(x)
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise UsageError(f"the oracle takes images of shape (B, {', '.join(map(str, self.image_shape))})"
                             f", got {tuple(x.shape)}")
        return (x.to(self.device, torch.float32) - 0.5) / 0.5

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer, (B, feature_dim): what FID / Coverage / Density compare."""
        return self.embed(self.conv(self._prepare(x)))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits, (B, num_classes)."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 500) -> Tensor:
        """Predicted labels (eval mode, batched), on the CPU."""
        was = self.training
        self.eval()
        try:
            return torch.cat([self(x[i:i + batch_size]).argmax(1).cpu()
                              for i in range(0, x.shape[0], batch_size)])
        finally:
            self.train(was)

    def save(self, directory: Union[str, os.PathLike], extra: Optional[Dict[str, Any]] = None) -> Path:
        """config.json + model.safetensors, each written atomically. `extra` goes into config.json."""
        from nfzoo import __version__

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_tensors(self.state_dict(), d / WEIGHTS_NAME, metadata={"format": "pt", "library": "nfzoo",
                                                                    "kind": ORACLE_KIND})
        doc = {"library": "nfzoo", "nfzoo_version": __version__, "kind": ORACLE_KIND,
               "architecture": ORACLE_ARCH, "config": self.config, **(extra or {})}
        atomic_write_json(d / CONFIG_NAME, doc)
        return d


def load_oracle(directory: Union[str, os.PathLike], device: Optional[str] = None) -> OracleNet:
    """An oracle from its directory (config.json + model.safetensors), strictly, in eval mode."""
    d = Path(directory)
    if not d.is_dir():
        raise UsageError(f"oracle directory {d} does not exist. Train one with "
                         "`nfzoo train-oracle --dataset mnist5k --out DIR`.")
    doc = read_json(d / CONFIG_NAME, "oracle config")
    if not isinstance(doc, dict) or doc.get("kind") != ORACLE_KIND or not isinstance(doc.get("config"), dict):
        raise ConfigError(f"{d} is not an nfzoo oracle: its {CONFIG_NAME} needs \"kind\": \"oracle\" and a "
                          "\"config\" (a flow model directory is not an oracle; train one with "
                          "`nfzoo train-oracle`).")
    try:
        net = OracleNet(**doc["config"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{d / CONFIG_NAME}: bad oracle config ({exc})") from exc
    load_state_strict(net, load_tensors(d / WEIGHTS_NAME), source=str(d / WEIGHTS_NAME))
    net.eval()
    if device:
        net.to(device)
    net.info = {k: v for k, v in doc.items() if k != "config"}   # dataset, test accuracy, training
    return net


# ------------------------------------------------------------------ training
def random_affine(x: Tensor, generator: torch.Generator, shift: float = 2.0, degrees: float = 10.0,
                  scale: float = 0.1) -> Tensor:
    """Light augmentation, one random transform per image: a shift of up to `shift` pixels, a rotation of
    up to `degrees` and a zoom of up to +-`scale` (torch's affine_grid + bilinear grid_sample)."""
    b, _, h, w = x.shape

    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(b, generator=generator)

    a = u(-degrees, degrees) * (math.pi / 180)
    s = u(1 - scale, 1 + scale)
    tx, ty = u(-shift, shift) * (2 / w), u(-shift, shift) * (2 / h)   # pixels -> [-1, 1] coordinates
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def oracle_accuracy(oracle: OracleNet, dataset, batch_size: int = 500) -> float:
    """The oracle's accuracy (argmax of its logits) on a data set's labelled images."""
    from nfzoo.data import iterate

    oracle.eval()
    correct = n = 0
    for x, y in iterate(dataset, batch_size, shuffle=False):
        correct += int((oracle(x).argmax(1).cpu() == y).sum())
        n += x.shape[0]
    return correct / n


def train_oracle(dataset: str = "mnist5k", epochs: int = 20, seed: int = 0,
                 out: Union[str, os.PathLike, None] = None, batch_size: int = 64, lr: float = 3e-3,
                 weight_decay: float = 5e-4, data_root: Optional[str] = None,
                 progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                 step_progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, Any]:
    """Train the oracle CNN on the data set's fixed train split (with random shifts, small rotations and
    zooms), report its accuracy on the test split, and write it to `out` (config.json +
    model.safetensors). AdamW with a one-cycle learning rate; seeded (same machine, same result).

    `progress(record)` is called after every epoch with {"epoch", "train_loss", "train_accuracy",
    "test_accuracy", "seconds"}; `step_progress(done, total)` after every batch. Returns a result
    document (test accuracy, settings, seconds, per-epoch history) with the trained OracleNet under
    "oracle". The test split is only reported, never used to choose anything."""
    from nfzoo.data import dataset_image_shape, dataset_num_classes, iterate, load_dataset

    if epochs < 1 or batch_size < 1:
        raise UsageError("--epochs and --batch-size must be >= 1")
    if not (lr > 0 and math.isfinite(lr)):
        raise UsageError(f"--lr must be a positive number, got {lr}")
    if out is not None:
        o = Path(out)
        if o.exists() and (not o.is_dir() or any(o.iterdir())):
            raise UsageError(f"{o} already exists and is not empty; choose another --out (nothing was "
                             "overwritten).")
    train_set = load_dataset(dataset, "train", data_root)
    test_set = load_dataset(dataset, "test", data_root)
    classes = dataset_num_classes(train_set)
    if not classes:
        raise UsageError(f"{dataset!r} has no class labels: the oracle is a classifier")
    shape = dataset_image_shape(train_set)

    t_start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator; leave it as it was
        torch.manual_seed(seed)
        net = OracleNet(image_shape=shape, num_classes=classes)
        net.to(memory_format=torch.channels_last)   # ~30% faster convolutions on CPU; same numbers
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = math.ceil(len(train_set) / batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, epochs=epochs,
                                                    steps_per_epoch=steps_per_epoch, pct_start=0.2)
        aug = torch.Generator().manual_seed(seed + 1)
        history = []
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            net.train()
            shuffle = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            loss_sum = correct = n = 0
            for i, (x, y) in enumerate(iterate(train_set, batch_size, True, shuffle)):
                x = random_affine(x, aug).contiguous(memory_format=torch.channels_last)
                logits = net(x)
                loss = F.cross_entropy(logits, y)
                if not torch.isfinite(loss):
                    from nfzoo.errors import TrainingDivergedError

                    raise TrainingDivergedError(f"the oracle's loss became {loss.item()} in epoch {epoch}; "
                                                f"nothing was written. Try a lower --lr (now {lr:g}).")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.item() * x.shape[0]
                correct += int((logits.argmax(1) == y).sum())
                n += x.shape[0]
                if step_progress:
                    step_progress(i + 1, steps_per_epoch)
            record = {"epoch": epoch, "train_loss": loss_sum / n, "train_accuracy": correct / n,
                      "test_accuracy": oracle_accuracy(net, test_set), "seconds": time.perf_counter() - t0}
            history.append(record)
            if progress:
                progress(record)
    net.eval()
    result = {"dataset": dataset, "test_accuracy": history[-1]["test_accuracy"],
              "test_images": len(test_set), "train_images": len(train_set),
              "train_accuracy": history[-1]["train_accuracy"], "epochs": epochs, "seed": seed,
              "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
              "seconds": time.perf_counter() - t_start, "torch_threads": torch.get_num_threads(),
              "parameters": sum(p.numel() for p in net.parameters())}
    if out is not None:
        net.save(out, extra={"dataset": dataset, "test_accuracy": result["test_accuracy"],
                             "test_images": len(test_set),
                             "training": {k: result[k] for k in ("epochs", "seed", "batch_size", "lr",
                                                                 "weight_decay", "seconds")},
                             "history": history})
        result["out"] = str(out)
    result["history"] = history
    result["oracle"] = net
    return result


ZOO_ORACLE_DATASETS = ("mnist5k",)   # data sets the zoo (nfzoo-zoo) ships an oracle for


def default_oracle(dataset: Optional[str]) -> Optional[str]:
    """The pretrained oracle the sample metrics use on `dataset` when none is given: `oracle-<dataset>`
    when the zoo ships one for that data set (ZOO_ORACLE_DATASETS; `nfzoo pull` it if it is not cached)
    or an installed plugin registers a pretrained entry of that name; None when there is none (then the
    sample metrics need an oracle directory or the Inception features)."""
    if not dataset:
        return None
    from nfzoo.registry.plugins import get_registry

    name = f"oracle-{dataset}"
    if dataset in ZOO_ORACLE_DATASETS or name in get_registry().registry("pretrained"):
        return name
    return None


def find_oracle(name_or_dir: Optional[str] = None, dataset: Optional[str] = None,
                device: Optional[str] = None) -> tuple:
    """(OracleNet, where it came from) for an oracle directory (a path, or `local-dir:NAME`), a pretrained
    oracle name, or, when `name_or_dir` is None, the default oracle for `dataset` (`default_oracle`: the
    pretrained entry `oracle-<dataset>`). Names are resolved as `nfzoo.load` resolves them
    (nfzoo.loading.sources.resolve_source): a zoo entry (index.json of nfzoo-zoo) is found embedded, else in the
    Hugging Face cache, checked by sha256, never downloaded here (`nfzoo pull` does that); a plugin's entry
    may instead target a directory or a loader `fn(revision=None, download=False)` returning a directory or
    an OracleNet."""
    from nfzoo.loading.sources import resolve_source
    from nfzoo.registry.plugins import get_registry

    name = name_or_dir
    if name is None:
        name = default_oracle(dataset)
        if name is None or name not in get_registry().registry("pretrained"):
            raise UsageError(
                f"no oracle for {dataset!r} is available here (the zoo has no {f'oracle-{dataset}'!r} yet): "
                f"pass --oracle DIR (train one with `nfzoo train-oracle --dataset {dataset} --out DIR`)"
                + ("" if dataset in ZOO_ORACLE_DATASETS
                   else ", or use the Inception features (--features inception)") + ".")
    src = resolve_source(name, download=False, kind="oracle")
    if src.path is not None:
        return load_oracle(src.path, device), (str(name) if src.entry is None else src.entry.name)
    assert src.entry is not None  # an object, not a folder, comes from a plugin's loader, with its entry
    if not isinstance(src.obj, OracleNet):
        raise ConfigError(f"the loader of the pretrained oracle {src.entry.name!r} (plugin {src.entry.plugin!r}) "
                          f"returned a {type(src.obj).__name__}, not an OracleNet or a directory.")
    return (src.obj.to(device) if device else src.obj).eval(), src.entry.name
