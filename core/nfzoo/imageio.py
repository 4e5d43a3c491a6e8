"""PNG bytes of image tensors ((B, C, H, W) or (C, H, W) floats in [0, 1]), written atomically: a grid
(torchvision's make_grid, RGB) or one image at its own size and channels (1 channel: grayscale)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from torch import Tensor

from .safeio import atomic_write_bytes


def grid_png_bytes(images: Tensor, nrow: int = 8, padding: int = 2) -> bytes:
    from torchvision.utils import save_image

    buf = io.BytesIO()
    save_image(images.detach().cpu().float(), buf, format="png", nrow=nrow, padding=padding, pad_value=1.0)
    return buf.getvalue()


def save_grid_png(images: Tensor, path: os.PathLike, nrow: int = 8, padding: int = 2) -> None:
    atomic_write_bytes(Path(path), grid_png_bytes(images, nrow, padding))


def single_png_bytes(image: Tensor) -> bytes:
    """One image (C, H, W) as PNG bytes of exactly its size and channels (1: grayscale "L", 3: RGB)."""
    from PIL import Image

    u8 = (image.detach().cpu().float().clamp(0, 1) * 255 + 0.5).floor().to(torch.uint8)
    arr = u8[0].numpy() if u8.shape[0] == 1 else u8.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L" if u8.shape[0] == 1 else "RGB").save(buf, format="png")
    return buf.getvalue()


def save_single_png(image: Tensor, path: os.PathLike) -> None:
    atomic_write_bytes(Path(path), single_png_bytes(image))
