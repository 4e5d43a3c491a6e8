"""Hugging Face data sets: `hf:ORG/NAME[:CONFIG][@REVISION]` wherever a data set name is taken.

The repo id and the revision are checked by the rules of model repos (nfzoo.hub.names). Only the repo's
parquet and arrow data files (and its README.md, whose YAML may say which files make which split) are fetched,
through huggingface_hub into the Hub cache (HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE honoured; offline, the
cached snapshot is used); `datasets` then reads them with its packaged parquet / arrow builder only: no dataset
script runs and nothing unpickles.

Splits: "train", "test", "validation" as the repo has them. A repo without a test split holds out a fixed,
seeded 10% of its train split (stratified by class when it has labels, by the rule of image folders), and
its "train" is the rest.

Columns: the image column is `image_column` or the first `Image` feature; the label column is `label_column` or
the first `ClassLabel` feature (none: every label 0 and no classes). Images become floats in [0, 1], (C, H, W):
the first image decides 1 (grayscale) or 3 (RGB) channels, and every image must have its size.

Streaming (`streaming`: true, false or "auto", the default): a split is either decoded once into memory (an
ArrayDataset of uint8, as the offline data sets) or, with streaming, read as a stream (nfzoo.data.streaming.
HFStream: a pass over the files per epoch, images decoded as they are used). "auto" streams a split whose
pixels (rows x C x H x W bytes) exceed STREAM_BYTES.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from nfzoo.data.splits import DEFAULT_TEST_FRACTION
from nfzoo.errors import DataError, DatasetUnavailableError, NfzooError, UsageError

PREFIX = "hf:"
DATA_OPTIONS = ("image_column", "label_column", "streaming")
"""The data options of an hf: data set (`nfzoo train --set KEY=VALUE`, TrainConfig.data_options)."""
STREAM_BYTES = 2 ** 31
"""With streaming "auto", a split of more uint8 pixels than this (2 GiB) is streamed, not held in memory."""
HELD_OUT = DEFAULT_TEST_FRACTION   # a repo without a test split: the share held out, as folders
DATA_FILES = ("*.parquet", "**/*.parquet", "*.arrow", "**/*.arrow", "README.md")
_CONFIG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
SPLITS = ("train", "test", "validation")


@dataclass(frozen=True)
class HFName:
    """A parsed hf: name: the dataset repo, its config (None: the default one) and revision (None: main)."""

    repo_id: str
    config: Optional[str] = None
    revision: Optional[str] = None

    def __str__(self) -> str:
        return (PREFIX + self.repo_id + (f":{self.config}" if self.config else "")
                + (f"@{self.revision}" if self.revision else ""))


def is_hf_name(name: Any) -> bool:
    """Whether `name` is an hf: data set name."""
    return isinstance(name, str) and name.startswith(PREFIX)


def parse_hf_name(name: str) -> HFName:
    """`hf:ORG/NAME[:CONFIG][@REVISION]`, checked (the repo id and revision as model repos'; the config a name
    of letters, digits, '-', '_', '.'); a bad one is a UsageError (exit 2)."""
    from nfzoo.hub.names import check_repo_id, check_revision

    rest = name[len(PREFIX):] if name.startswith(PREFIX) else name
    revision = None
    if "@" in rest:
        rest, revision = rest.split("@", 1)
        check_revision(revision)
    config = None
    if ":" in rest:
        rest, config = rest.split(":", 1)
        if not _CONFIG.fullmatch(config):
            raise UsageError(f"bad data set config {config!r} in {name!r}: write hf:ORG/NAME:CONFIG with letters, "
                             "digits, '-', '_' and '.'")
    check_repo_id(rest, "Hub dataset repo id")
    return HFName(rest, config, revision)


def check_data_options(options: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The data options, typed: image_column / label_column (a column name), streaming (true, false, "auto").
    Strings from `--set` ("true", "false") are read as booleans. A bad key or value is a UsageError."""
    out: Dict[str, Any] = {}
    for k, v in (options or {}).items():
        if k not in DATA_OPTIONS:
            raise UsageError(f"unknown data option {k!r}: an hf: data set takes {', '.join(DATA_OPTIONS)}")
        if k == "streaming":
            v = {"true": True, "false": False, "auto": "auto"}.get(str(v).lower(), v) if isinstance(v, str) else v
            if v not in (True, False, "auto"):
                raise UsageError(f"streaming must be true, false or auto, got {v!r}")
        elif not isinstance(v, str) or not v:
            raise UsageError(f"{k} must be a column name, got {v!r}")
        out[k] = v
    return out


def fetch(hf: HFName) -> Path:
    """The local folder of the repo's data files at its revision: the Hub cache's snapshot (downloaded unless
    HF_HUB_OFFLINE is set; offline, the cached copy or a DatasetUnavailableError)."""
    from huggingface_hub import snapshot_download

    from nfzoo.hub.http import hub_call, translate_error
    from nfzoo.hub.settings import cache_dir, offline

    try:
        if offline():
            return Path(snapshot_download(hf.repo_id, repo_type="dataset", revision=hf.revision,
                                          cache_dir=str(cache_dir()), allow_patterns=list(DATA_FILES),
                                          local_files_only=True))
        with hub_call(f"download the data set {hf}") as call:
            return Path(snapshot_download(hf.repo_id, repo_type="dataset", revision=hf.revision,
                                          cache_dir=str(cache_dir()), allow_patterns=list(DATA_FILES),
                                          endpoint=call.endpoint, etag_timeout=call.timeout,
                                          library_name="nfzoo"))
    except NfzooError:
        raise
    except Exception as exc:
        if offline():
            raise DatasetUnavailableError(
                f"HF_HUB_OFFLINE is set and the data set {hf} is not in the Hub cache ({cache_dir()}): run once "
                "without HF_HUB_OFFLINE to download it.") from None
        err = translate_error(exc, action="download")
        raise DatasetUnavailableError(f"the data set {hf}: {err}") from exc


def data_files(folder: Path, hf: HFName) -> Tuple[str, Dict[str, List[str]]]:
    """(builder, {split: files}) of a fetched repo, as `datasets` reads its layout (the README's configs,
    else its file names); only the parquet and arrow builders are accepted."""
    import datasets

    try:
        builder = datasets.load_dataset_builder(str(folder), name=hf.config)
    except Exception as exc:   # no data files, an unknown config, a README that does not parse
        raise DatasetUnavailableError(f"the data set {hf} has no parquet or arrow data files that `datasets` can "
                                      f"read ({type(exc).__name__}: {str(exc)[:300]})") from None
    if builder.name not in ("parquet", "arrow"):
        raise DatasetUnavailableError(f"the data set {hf} is stored as {builder.name!r}: only parquet and arrow "
                                      "data files are read (no dataset scripts, nothing pickled)")
    files = {str(k): [str(f) for f in v] for k, v in (builder.config.data_files or {}).items()}
    return builder.name, files


def _features(builder: str, files: List[str]):
    import datasets

    if builder == "parquet":
        import pyarrow.parquet as pq

        return datasets.Features.from_arrow_schema(pq.read_schema(files[0]))
    import pyarrow as pa

    with pa.memory_map(files[0]) as src:
        return datasets.Features.from_arrow_schema(pa.ipc.open_stream(src).schema)


def columns(features, hf: HFName, options: Dict[str, Any]) -> Tuple[str, Optional[str], Optional[int]]:
    """(image column, label column or None, number of classes or None), found or as named."""
    import datasets

    names = list(features)
    image = options.get("image_column") or next((k for k, f in features.items() if isinstance(f, datasets.Image)),
                                                None)
    if image is None or image not in features:
        what = f"no column {image!r}" if image else "no image column (an Image feature)"
        raise DataError(f"the data set {hf} has {what}; its columns are {', '.join(names)}. Name the image column "
                        "with --set image_column=NAME.")
    label = options.get("label_column") or next(
        (k for k, f in features.items() if isinstance(f, datasets.ClassLabel)), None)
    if label is not None and label not in features:
        raise DataError(f"the data set {hf} has no column {label!r}; its columns are {', '.join(names)}")
    feature = features[label] if label else None
    if feature is not None and not isinstance(feature, datasets.ClassLabel) and not (
            isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint"))):
        raise DataError(f"the label column {label!r} of {hf} holds {feature}, not class labels (integers)")
    classes = len(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    return image, label, classes


def load_hf_dataset(name: str, split: str = "train", options: Optional[Dict[str, Any]] = None):
    """The split ('train', 'test', 'validation') of an hf: data set: an ArrayDataset, or with streaming an
    nfzoo.data.streaming.HFStream."""
    from nfzoo.data.streaming import HFStream, count_rows, first_shape

    hf, opts = parse_hf_name(name), check_data_options(options)
    if split not in SPLITS:
        raise UsageError(f"{hf} has splits {', '.join(SPLITS)} (as the repo holds them), not {split!r}")
    builder, files = data_files(fetch(hf), hf)
    held_out = "test" not in files
    source = "train" if held_out and split in ("train", "test") else split
    if source not in files:
        raise DatasetUnavailableError(f"the data set {hf} has no {split!r} split (it has "
                                      f"{', '.join(sorted(files))})")
    features = _features(builder, files[source])
    image, label, classes = columns(features, hf, opts)
    rows = sum(count_rows(builder, f) for f in files[source])
    if rows == 0:
        raise DataError(f"the {source!r} split of {hf} holds no rows")
    stream = HFStream(str(hf), builder, files[source], image, label, classes, rows, split=source)
    shape = first_shape(stream)
    streaming = opts.get("streaming", "auto")
    if streaming == "auto":
        streaming = rows * int(np.prod(shape)) > STREAM_BYTES
    if streaming:
        if held_out and source == "train":
            stream.hold_out(split == "test", HELD_OUT)
        return stream
    from nfzoo.data.arrays import ArrayDataset
    from nfzoo.data.splits import held_out_counts, stratified_split

    images, labels = stream.decode_all()
    if held_out and source == "train":
        keys = labels if label else np.zeros(len(labels), np.int64)
        train_idx, test_idx = stratified_split(keys, held_out_counts(np.bincount(keys), HELD_OUT))   # folders' rule
        idx = test_idx if split == "test" else train_idx
        if len(idx) == 0:
            raise DataError(f"the data set {hf} has no test split and too few rows ({rows}) to hold some out")
        images, labels = images[idx], labels[idx]
    if label and classes is None:   # an integer label column: its classes are 0 .. the largest label
        classes = int(labels.max()) + 1 if len(labels) else None
    import torch

    return ArrayDataset(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels), classes, str(hf))


