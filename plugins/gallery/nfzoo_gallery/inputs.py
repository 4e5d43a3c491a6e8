"""What a gallery request brings: numbers, names and uploaded images, checked with the rules the CLI applies
(the core's check_seed and sampling_labels, the CLI toolkit's range check for floats, nfzoo.imageio's
size-checked image reader), so that a bad value in the page gets the message `nfzoo sample` / `inpaint` /
`score` would print. Every error is a UsageError (the app answers 4xx with its message)."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Optional

from nfzoo.errors import UsageError

MAX_UPLOAD_BYTES = 2 * 1024 * 1024
"""The largest request body the gallery reads (all uploads of one request together): 2 MiB."""
MAX_UPLOAD_PIXELS = 4096 * 4096
"""The most pixels an uploaded image may claim in its header to be decoded (nfzoo.imageio's limit)."""
MAX_SCORE_FILES = 64        # images in one score request
MAX_GRID = 256              # samples in one grid (a request answers in seconds)
MAX_TEMPERATURE = 10.0      # far above any useful one; `nfzoo sample` bounds it below only
MAX_STEPS = 1000            # sampler steps, interpolation frames, inpainting iterations in one request
MAX_INTERPOLATION = 64      # images in one interpolation


def check_int(what: str, value: Any, low: int, high: int) -> int:
    """An integer in [low, high], else UsageError naming `what` (True, 2.5, "x" are not integers)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{what} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def check_float(what: str, value: Any, minimum: Optional[float] = None, maximum: Optional[float] = None
                ) -> Optional[float]:
    """A finite float within bounds (None passes), with the message of the CLI's range check
    (nfzoo_cli.toolkit.finite): "temperature: 11.0 is above 10; it must be <= 10"."""
    import typer

    from nfzoo_cli.toolkit import finite

    try:
        return finite(minimum, maximum)(value)
    except typer.BadParameter as exc:
        raise UsageError(f"{what}: {exc.message}") from None


def check_seed(value: Any) -> int:
    """The core's seed rule (nfzoo.flows.generation.check_seed): an integer in [0, 2^32 - 1]."""
    from nfzoo.flows.generation import check_seed as core_check_seed

    return core_check_seed(value)


def safe_name(filename: Optional[str], default: str = "upload.png") -> str:
    """The name an upload is shown and stored under: the last part of what the browser sent, letters,
    digits and `._-` only (never a path)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")[:100]
    return base or default


def read_upload(data: bytes, filename: Optional[str], image_shape: Any, model_name: str = "the model",
                max_pixels: int = MAX_UPLOAD_PIXELS) -> Any:
    """An uploaded image -> float tensor (C, H, W) in [0, 1] with the model's (C, H, W) `image_shape`, read by
    nfzoo.imageio: its width and height are compared with the model's from the header, before anything is
    decoded (a 49 KB PNG may claim 4096 x 4096 pixels, 50 MB once decoded). The file goes to a private
    temporary folder under its safe name, and the messages name the upload, not the folder."""
    from nfzoo.imageio import open_image, read_image

    c, h, w = (int(v) for v in image_shape)
    name = safe_name(filename)
    if not data:
        raise UsageError(f"{name} is empty: upload a PNG (or JPEG, BMP, ...) image")
    with tempfile.TemporaryDirectory(prefix="nfzoo-serve-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            with open_image(path, max_pixels) as im:          # the header only
                if tuple(im.size) != (w, h):
                    raise UsageError(f"{name} is {im.size[0]}x{im.size[1]} pixels but {model_name} takes {w}x{h} "
                                     f"with {c} channel(s): resize it first (it was not decoded)")
            return read_image(path, c, max_pixels)
        except UsageError as exc:
            raise UsageError(str(exc).replace(str(path), name).replace(tmp + os.sep, "")) from None


def check_shape(x: Any, what: str, model_name: str, image_shape: Any) -> Any:
    """The image must have the model's (C, H, W): the CLI's message otherwise."""
    c, h, w = (int(v) for v in image_shape)
    if tuple(x.shape) != (c, h, w):
        raise UsageError(f"{what} is {x.shape[2]}x{x.shape[1]} with {x.shape[0]} channel(s) but {model_name} "
                         f"takes {w}x{h} with {c}")
    return x


def check_label(model: Any, model_name: str, label: Optional[int]) -> Optional[int]:
    """A class label for `model`: None passes; on an unconditional model, or outside [0, C - 1], the core's
    label policy (nfzoo.flows.generation.sampling_labels) refuses it with its message."""
    if label is None:
        return None
    from nfzoo.flows.generation import sampling_labels

    sampling_labels(model, 1, label, name=model_name)
    return int(label)


def split_image(dataset: str, index: Any) -> "tuple[Any, int, int]":
    """Image `index` of a data set's test split: (image (C, H, W) in [0, 1], its label, the split's size)."""
    import torch

    from nfzoo.data import ArrayDataset, load_dataset

    ds = load_dataset(dataset, "test")
    n = len(ds)
    index = check_int("index", index, 0, n - 1)
    if not isinstance(ds, ArrayDataset):   # a data set read from files (torchvision, folder:) has no batch()
        x, y = ds[index]
        return x, int(y), n
    x, y = ds.batch(torch.tensor([index]))
    return x[0], int(y[0]), n


def pick_image(what: str, index: Optional[int], upload: Any, data: Optional[bytes], model_name: str,
               dataset: Optional[str], image_shape: Any) -> Any:
    """The image of one input of a request: the test split's image `index`, or an uploaded file (exactly
    one of the two), checked against the model's image shape."""
    has_upload = upload is not None and (bool(data) or bool(getattr(upload, "filename", "")))
    if (index is None) == (not has_upload):
        raise UsageError(f"{what}: give either a test image index or an uploaded image (one of the two)")
    if index is not None:
        if not dataset:
            raise UsageError(f"{model_name} names no data set, so it has no test images: upload {what}")
        x, _, _ = split_image(dataset, index)
        label = f"{what} (test image {index})"
    else:
        assert upload is not None   # has_upload: index is None here
        x = read_upload(data or b"", upload.filename, image_shape, model_name)
        label = safe_name(upload.filename)
    return check_shape(x, label, model_name, image_shape)
