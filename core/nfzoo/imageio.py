"""Image files in and out. Out: PNG bytes of image tensors ((B, C, H, W) or (C, H, W) floats in [0, 1]),
written atomically: a grid (torchvision's make_grid, RGB) or one image at its own size and channels (1
channel: grayscale). In: `open_image` / `read_image`, which check an image's size from its header before
decoding anything (a 74-byte PNG may claim 30000 x 30000 pixels: a decompression bomb)."""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Union

import torch
from torch import Tensor

from nfzoo.errors import UsageError
from nfzoo.safeio import atomic_write_bytes

if TYPE_CHECKING:
    import PIL.Image

MAX_IMAGE_PIXELS = 4096 * 4096
"""The most pixels (width x height) an image file may have to be decoded (16.8 M; 50 MB as RGB bytes)."""


GRAY_MODES = ("1", "L", "LA", "I", "I;16", "P")   # PIL modes that can hold grey levels only


@contextlib.contextmanager
def open_image(path: Union[str, os.PathLike, bytes], max_pixels: int = MAX_IMAGE_PIXELS,
               name: str = "the image") -> Iterator[PIL.Image.Image]:
    """The PIL image of a file (or of an image's bytes, called `name` in messages), opened lazily (only its header
    is read) and refused (UsageError, exit 2, naming the file and the limit) when it claims more than
    `max_pixels` pixels, before any decoding. PIL's own DecompressionBombWarning / Error are refused the same
    way. Other unreadable images are UsageErrors too."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(path, (bytes, bytearray)):
        p, source = name, io.BytesIO(path)
    else:
        p = source = Path(path)
        if not source.is_file():
            raise UsageError(f"{p} is not a file")

    def bomb(claim):
        side = int(max_pixels ** 0.5)
        return UsageError(f"{p} claims {claim}, more than the limit of {max_pixels:,} pixels (e.g. {side}x{side}) "
                          "an image may have here: it is not decoded (a decompression bomb, or simply too large: "
                          "resize it first)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise bomb(f"{w}x{h} pixels")
                yield im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:   # PIL's own check, in open
        import re

        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise bomb(f"{int(found.group(1)):,} pixels" if found else "more pixels than PIL decodes safely") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise UsageError(f"{p} is not an image file that can be read ({type(exc).__name__}: {exc}); pass a "
                         "PNG (or JPEG, BMP, ...) image") from None


def is_grayscale(im: PIL.Image.Image) -> bool:
    """Whether an opened image holds grey levels only: a grey mode, or a palette whose every colour is grey (read
    from the header, nothing decoded)."""
    if im.mode not in GRAY_MODES:
        return False
    if im.mode != "P":
        return True
    pal = im.getpalette() or []
    return all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3))


def read_image(path: Union[str, os.PathLike], channels: int, max_pixels: int = MAX_IMAGE_PIXELS) -> Tensor:
    """One image file -> float tensor (channels, H, W) in [0, 1] (1 channel: grayscale, 3: RGB), size-checked
    before decoding (`open_image`)."""
    if channels not in (1, 3):
        raise UsageError(f"images with {channels} channels are not supported (1 or 3)")
    with open_image(path, max_pixels) as im:
        im = im.convert("L" if channels == 1 else "RGB")
        data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        w, h = im.size
    return data.view(h, w, channels).permute(2, 0, 1).float() / 255.0


def grid_png_bytes(images: Tensor, nrow: int = 8, padding: int = 2) -> bytes:
    """Images (B, C, H, W) in [0, 1] as the PNG bytes of one grid, `nrow` a row, `padding` white pixels apart."""
    from torchvision.utils import save_image

    buf = io.BytesIO()
    save_image(images.detach().cpu().float(), buf, format="png", nrow=nrow, padding=padding, pad_value=1.0)
    return buf.getvalue()


def save_grid_png(images: Tensor, path: Union[str, os.PathLike], nrow: int = 8, padding: int = 2) -> None:
    """Write `grid_png_bytes(images, nrow, padding)` to `path`, atomically."""
    atomic_write_bytes(Path(path), grid_png_bytes(images, nrow, padding))


def single_png_bytes(image: Tensor) -> bytes:
    """One image (C, H, W) as PNG bytes of exactly its size and channels (1: grayscale "L", 3: RGB)."""
    from PIL import Image

    u8 = (image.detach().cpu().float().clamp(0, 1) * 255 + 0.5).floor().to(torch.uint8)
    arr = u8[0].numpy() if u8.shape[0] == 1 else u8.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L" if u8.shape[0] == 1 else "RGB").save(buf, format="png")
    return buf.getvalue()


def save_single_png(image: Tensor, path: Union[str, os.PathLike]) -> None:
    """Write one image (C, H, W) in [0, 1] to `path` as a PNG of its size, atomically."""
    atomic_write_bytes(Path(path), single_png_bytes(image))
