"""Image files in and out: reading with clear errors, PNG writing, and folders written atomically
(built in a hidden sibling folder, renamed into place at the end: a failure leaves nothing behind)."""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator, List, Sequence

import torch
from torch import Tensor

from nfzoo.errors import UsageError
from nfzoo.safeio import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def read_image(path: os.PathLike, channels: int) -> Tensor:
    """One image file -> float tensor (channels, H, W) in [0, 1] (1 channel: grayscale, 3: RGB)."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p} is not a file")
    try:
        with Image.open(p) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
            w, h = im.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UsageError(f"{p} is not an image file that can be read ({type(exc).__name__}: {exc}); pass a "
                         "PNG (or JPEG, BMP, ...) image") from None
    if channels not in (1, 3):
        raise UsageError(f"images with {channels} channels are not supported (1 or 3)")
    return data.view(h, w, channels).permute(2, 0, 1).float() / 255.0


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


def png_bytes(images: Tensor, nrow: int = 8, padding: int = 2) -> bytes:
    from torchvision.utils import save_image

    buf = io.BytesIO()
    save_image(images.detach().cpu().float(), buf, format="png", nrow=nrow, padding=padding, pad_value=1.0)
    return buf.getvalue()


def save_png(images: Tensor, path: os.PathLike, nrow: int = 8, padding: int = 2) -> None:
    """A grid (or one image, with padding 0) written atomically as PNG."""
    atomic_write_bytes(Path(path), png_bytes(images, nrow, padding))


def single_png_bytes(image: Tensor) -> bytes:
    """One image (C, H, W) in [0, 1] as PNG bytes of exactly its size and channels (1: grayscale)."""
    from PIL import Image

    u8 = (image.detach().cpu().float().clamp(0, 1) * 255 + 0.5).floor().to(torch.uint8)
    arr = u8[0].numpy() if u8.shape[0] == 1 else u8.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L" if u8.shape[0] == 1 else "RGB").save(buf, format="png")
    return buf.getvalue()


def save_single(image: Tensor, path: os.PathLike) -> None:
    atomic_write_bytes(Path(path), single_png_bytes(image))


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
