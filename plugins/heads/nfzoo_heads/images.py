"""Image files in and out: reading with clear errors, PNG writing, and folders written atomically
(built in a hidden sibling folder, renamed into place at the end: a failure leaves nothing behind)."""
from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator, List, Sequence

from torch import Tensor

from nfzoo.errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_image(path: os.PathLike, channels: int) -> Tensor:
    """One image file -> float tensor (channels, H, W) in [0, 1] (1 channel: grayscale, 3: RGB). The core's
    reader: its size is checked from the header before anything is decoded (decompression bombs: exit 2)."""
    from nfzoo.imageio import read_image as core_read_image

    return core_read_image(path, channels)


def read_mask(path: os.PathLike, shape: Sequence[int]) -> Tensor:
    """A mask image -> (1, H, W) float {0, 1}: white (> 127) is filled, black kept (diffusers' convention)."""
    m = read_image(path, 1)
    if tuple(m.shape[1:]) != tuple(shape[-2:]):
        raise UsageError(f"the mask {path} is {m.shape[2]}x{m.shape[1]} but the image is "
                         f"{shape[-1]}x{shape[-2]}: they must be the same size")
    return (m > 0.5).float()


def list_images(directory: os.PathLike) -> List[Path]:
    """Every file under `directory` (recursively, sorted); a file that is not an image is an error."""
    d = Path(directory)
    if not d.is_dir():
        raise UsageError(f"{d} is not a folder; pass --images DIR, a folder of image files")
    # hidden files and the manifests the heads write beside their images are not images to score
    files = sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.name != "manifest.json")
    if not files:
        raise UsageError(f"{d} holds no files; pass a folder of image files")
    return files


# PNG writing is the core's (nfzoo.imageio); the names here are the heads' own
from nfzoo.imageio import save_grid_png as save_png  # noqa: E402,F401
from nfzoo.imageio import save_single_png as save_single  # noqa: E402,F401
from nfzoo.imageio import single_png_bytes  # noqa: E402


def check_new_output(out: os.PathLike, what: str = "--out") -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{what} {out} already exists and is not an empty folder; choose a new path or "
                         "remove it (nothing was written)")
    if not out.parent.exists():
        raise UsageError(f"{what} {out}: its parent folder {out.parent} does not exist")
    return out


@contextlib.contextmanager
def atomic_folder(out: os.PathLike) -> Iterator[Path]:
    """Yields a hidden temporary folder beside `out`; on success it becomes `out`, on failure it is
    removed (so `out` is either complete or absent)."""
    out = check_new_output(out)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            out.rmdir()               # an empty folder the user made
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_image_folder(out: os.PathLike, x: Tensor, y: Tensor, names: Sequence[str], manifest: dict) -> None:
    """A labelled data set in torchvision's ImageFolder layout, atomically: out/<names[y]>/NNNNNN.png (one
    grayscale or RGB PNG per image) and out/manifest.json."""
    import json

    with atomic_folder(out) as tmp:
        for name in names:
            (tmp / name).mkdir()
        for i in range(len(x)):
            (tmp / names[int(y[i])] / f"{i:06d}.png").write_bytes(single_png_bytes(x[i]))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
