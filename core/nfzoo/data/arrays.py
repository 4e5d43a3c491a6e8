"""The in-memory data set every offline (and every decoded Hub) data set is: a leaf of the data wing, so the
modules that build one import it without importing each other."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch.utils.data import Dataset


class ArrayDataset(Dataset):
    """An in-memory data set: uint8 images (N, C, H, W) and int64 labels (N,)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: Optional[int], name: str):
        assert images.dtype == torch.uint8 and images.dim() == 4
        self.images, self.labels, self.num_classes, self.name = images, labels.long(), num_classes, name

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """(C, H, W) of the images."""
        c, h, w = self.images.shape[1:]
        return c, h, w

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i].float() / 255.0, int(self.labels[i])

    def batch(self, idx: torch.Tensor):
        """Images `idx` as floats in [0, 1], shape (len(idx), C, H, W), and their labels."""
        return self.images[idx].float() / 255.0, self.labels[idx]
