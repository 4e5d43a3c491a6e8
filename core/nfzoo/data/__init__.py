"""Data: the data sets a model trains and is measured on. Offline ones shipped inside packages (`digits`,
`mnist5k`, each with a fixed stratified train/test split), torchvision's from a local root, and image folders
(`folder:PATH`: scanned before training, held-out test images always), and those plugins register
(`register_datasets`); every data set yields (image, label), images as floats in [0, 1] of shape (C, H, W), read in
batches by `iterate` and `load_batches`.

Modules: datasets (the built-in data sets, `load_dataset`, batches), arrays (the in-memory data set), folder
(image folders: the scan, the split, sizes and channels), splits (the seeded stratified split), registry (data
sets plugins register), catalog (every data set, for `nfzoo list --datasets`), hf (Hugging Face data sets,
`hf:ORG/NAME[:CONFIG][@REV]`), streaming (a split read as a stream). Their public names are exported lazily
(importing the wing imports no torch).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from nfzoo.lazy import lazy_exports

if TYPE_CHECKING:
    from .arrays import ArrayDataset
    from .catalog import dataset_catalog
    from .datasets import (
        INFO,
        OFFLINE,
        SPLIT_SEED,
        TORCHVISION,
        data_root,
        dataset_image_shape,
        dataset_names,
        dataset_num_classes,
        iterate,
        load_batches,
        load_dataset,
        stratified_split,
    )
    from .folder import (
        FOLDER_OPTIONS,
        FolderDataset,
        FolderScan,
        load_folder,
        load_folder_for_shape,
        scan_folder,
        split_summary,
    )
    from .hf import DATA_OPTIONS, HFName, load_hf_dataset, parse_hf_name
    from .registry import load_registered, registered_datasets
    from .splits import DEFAULT_TEST_FRACTION
    from .streaming import HFStream

_LAZY = {
    "INFO": "datasets", "OFFLINE": "datasets", "SPLIT_SEED": "datasets", "TORCHVISION": "datasets",
    "ArrayDataset": "arrays", "data_root": "datasets", "dataset_image_shape": "datasets",
    "dataset_names": "datasets", "dataset_num_classes": "datasets", "iterate": "datasets",
    "load_batches": "datasets", "load_dataset": "datasets", "stratified_split": "datasets",
    "DEFAULT_TEST_FRACTION": "splits", "FOLDER_OPTIONS": "folder", "FolderDataset": "folder",
    "FolderScan": "folder", "load_folder": "folder", "load_folder_for_shape": "folder",
    "scan_folder": "folder", "split_summary": "folder",
    "dataset_catalog": "catalog", "load_registered": "registry", "registered_datasets": "registry",
    "DATA_OPTIONS": "hf", "HFName": "hf", "load_hf_dataset": "hf", "parse_hf_name": "hf", "HFStream": "streaming",
}
__all__ = [
    "INFO", "OFFLINE", "SPLIT_SEED", "TORCHVISION", "ArrayDataset", "data_root", "dataset_image_shape",
    "dataset_names", "dataset_num_classes", "iterate", "load_batches", "load_dataset", "stratified_split",
    "DEFAULT_TEST_FRACTION", "FOLDER_OPTIONS", "FolderDataset", "FolderScan", "load_folder", "load_folder_for_shape",
    "scan_folder", "split_summary", "dataset_catalog", "load_registered", "registered_datasets",
    "DATA_OPTIONS", "HFName", "load_hf_dataset", "parse_hf_name", "HFStream",
]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
