"""The catalog of every data set name, as `nfzoo list --datasets` shows it: the offline ones, torchvision's,
the `folder:DIR` and `hf:ORG/NAME` forms, and those plugins register (`register_datasets`)."""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from .datasets import INFO, OFFLINE, TORCHVISION
from .registry import _entries

PATTERNS: Tuple[Dict[str, Any], ...] = (
    {"name": "folder:DIR", "shape": "any (one size, or --image-size N)", "classes": "one per sub-folder",
     "splits": ["train", "test", "all"],
     "description": "your images, ImageFolder layout (DIR/CLASS/*.png); DIR/train + DIR/test (or val) are the "
                    "splits, else a seeded 10% per-class hold-out"},
    {"name": "hf:ORG/NAME", "shape": "the data set's", "classes": "the data set's", "splits": "the data set's",
     "description": "a Hugging Face Hub image data set"},
)


def dataset_catalog() -> List[Dict[str, Any]]:
    """Every data set name, as `nfzoo list --datasets` shows it: name, kind (offline, torchvision, form,
    plugin), shape, classes, splits, description and plugin."""
    rows: List[Dict[str, Any]] = []
    for name in (*OFFLINE, *TORCHVISION):
        info = INFO[name]
        offline = name in OFFLINE
        rows.append({"name": name, "kind": "offline" if offline else "torchvision", "shape": list(info["shape"]),
                     "classes": info["classes"], "splits": ["train", "test", "all"] if offline else ["train", "test"],
                     "description": info["source"] + (f"; split {info['split']}" if "split" in info else ""),
                     "plugin": "nfzoo"})
    rows += [dict(p, kind="form", plugin="nfzoo") for p in PATTERNS]
    for name, e in sorted(_entries().items()):
        shape = e.metadata.get("shape")
        splits = list(e.metadata.get("splits") or ("train", "test"))
        rows.append({"name": name, "kind": "plugin", "shape": list(shape) if shape else None,
                     "classes": e.metadata.get("classes"), "splits": splits,
                     "description": e.description, "plugin": e.plugin})
    return rows
