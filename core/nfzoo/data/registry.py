"""Data sets that plugins register (the `register_datasets` hook): their names, and each one loaded and
wrapped with the shape and classes nfzoo reads. Nothing here imports torch until one is loaded."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from torch.utils.data import Dataset

from nfzoo.errors import ConfigError, UsageError


def _entries() -> Dict[str, Any]:
    from nfzoo.registry.plugins import get_registry

    return get_registry().registry("datasets")


def registered_datasets() -> List[str]:
    """The names plugins register (`register_datasets`), sorted."""
    return sorted(_entries())


def _shape(meta: Dict[str, Any]) -> Optional[Tuple[int, int, int]]:
    shape = meta.get("shape")
    if shape is None:
        return None
    if (not isinstance(shape, (list, tuple)) or len(shape) != 3
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
        raise ConfigError(f"the registered data set's shape must be (C, H, W), three positive integers, got {shape!r}")
    return (shape[0], shape[1], shape[2])


class RegisteredDataset(Dataset):
    """A registered data set's Dataset, with the `image_shape`, `num_classes` and `name` nfzoo reads."""

    def __init__(self, ds: Any, name: str, shape: Tuple[int, int, int], classes: Optional[int]):
        self.ds, self.name, self.image_shape, self.num_classes = ds, name, shape, classes

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        x, y = self.ds[i]
        return x, int(y) if y is not None else 0


def load_registered(name: str, split: str = "train", **options: Any) -> RegisteredDataset:
    """Split `split` of the data set a plugin registered as `name`: its loader(split, **options), wrapped with
    the shape and classes (from the registration, else from the data set)."""
    entry = _entries()[name]
    meta = entry.metadata
    splits = list(meta.get("splits") or ("train", "test"))
    if split not in splits:
        raise UsageError(f"data set {name} (plugin {entry.plugin}) has the splits {', '.join(splits)}, not {split!r}")
    ds = entry.load()(split, **options)
    shape = _shape(meta) or tuple(getattr(ds, "image_shape", None) or ds[0][0].shape)
    if len(shape) != 3:
        raise ConfigError(f"data set {name} (plugin {entry.plugin}) yields images of shape {shape}, not (C, H, W)")
    classes = meta.get("classes", getattr(ds, "num_classes", None))
    return RegisteredDataset(ds, name, (int(shape[0]), int(shape[1]), int(shape[2])), classes)
