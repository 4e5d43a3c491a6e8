"""A split of an hf: data set read as a stream (HFStream): its parquet / arrow files are read in record batches,
one pass per epoch, and only the images a step uses are decoded. Its length (the rows of the split) is known
from the files' metadata, so an epoch's steps are known before it starts.

Order: a seeded shuffle (the files' order, then a buffer of SHUFFLE_BUFFER rows, from one torch generator), so
an epoch's order depends only on its seed; resuming at batch k skips k x batch rows (undecoded) of the same
order, so a resumed run is bit-exact. Under torchrun every rank reads the same order and decodes only its
contiguous piece of each global batch: the pieces a map-style data set gives (what
datasets.distributed.split_dataset_by_node does with examples, but keeping the one-process noise offsets).

A repo without a test split holds out rows by a seeded draw per row (a stream's labels are not known before it
is read, so the hold-out is not stratified, unlike the in-memory one).
"""
from __future__ import annotations

from itertools import islice
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import IterableDataset

from nfzoo.errors import ConfigError, DataError

SHUFFLE_BUFFER = 4096


class HFStream(IterableDataset):
    """One split of an hf: data set as a sized stream of (float image (C, H, W) in [0, 1], int label)."""

    streaming = True

    def __init__(self, name: str, builder: str, files: List[str], image: str, label: Optional[str],
                 num_classes: Optional[int], rows: int, split: str):
        self.name, self.builder, self.files, self.split = name, builder, list(files), split
        self.image, self.label, self.num_classes, self.rows = image, label, num_classes, rows
        self.mode: Optional[str] = None                    # "L" or "RGB": the first image's
        self.shape: Optional[Tuple[int, int, int]] = None  # (C, H, W) of the first image
        self.keep: Optional[np.ndarray] = None             # rows kept (a held-out split), None: every row

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """(C, H, W) of the images (the first one's)."""
        if self.shape is None:
            first_shape(self)
        assert self.shape is not None
        return self.shape

    def hold_out(self, test: bool, fraction: float) -> None:
        """Keep the held-out rows (test=True) or the others: a seeded draw per row (nfzoo.data.SPLIT_SEED)."""
        from nfzoo.data.splits import SPLIT_SEED

        held = np.random.RandomState(SPLIT_SEED).random_sample(self.rows) < fraction
        self.keep = held if test else ~held
        if not self.keep.any():
            raise DataError(f"the data set {self.name} has no test split and too few rows ({self.rows}) to hold "
                            "some out")

    def __len__(self) -> int:
        return self.rows if self.keep is None else int(self.keep.sum())

    def __iter__(self):
        """(float image (C, H, W), label) of every row, in the files' order."""
        for i, cell, lab in self.raw_rows():
            yield torch.from_numpy(self._image(i, cell)).float() / 255.0, self._label(i, lab)

    # -- rows
    def raw_rows(self, generator: Optional[torch.Generator] = None) -> Iterator[Tuple[int, Any, int]]:
        """(row number in the files, undecoded image, label) of every row of the split; shuffled with
        `generator` (the files' order, then a buffer of SHUFFLE_BUFFER rows), else in the files' order."""
        starts = np.cumsum([0] + [count_rows(self.builder, f) for f in self.files])
        order = range(len(self.files))
        if generator is not None:
            order = torch.randperm(len(self.files), generator=generator).tolist()
        rows = (r for i in order for r in self._file_rows(self.files[i], int(starts[i])))
        if generator is None:
            yield from rows
            return
        buf: List[Tuple[int, Any, int]] = []
        for r in rows:
            if len(buf) < SHUFFLE_BUFFER:
                buf.append(r)
                continue
            j = int(torch.randint(SHUFFLE_BUFFER, (), generator=generator))
            yield buf[j]
            buf[j] = r
        while buf:
            yield buf.pop(int(torch.randint(len(buf), (), generator=generator)))

    def _file_rows(self, path: str, start: int) -> Iterator[Tuple[int, Any, int]]:
        cols = [self.image] + ([self.label] if self.label else [])
        i = start
        for batch in _record_batches(self.builder, path, cols):
            images = batch.column(self.image).to_pylist()
            labels = batch.column(self.label).to_pylist() if self.label else [0] * len(images)
            for x, y in zip(images, labels):
                if self.keep is None or self.keep[i]:
                    yield i, x, y
                i += 1

    # -- decoding
    def decode(self, rows: List[Tuple[int, Any, int]]) -> Tuple[torch.Tensor, torch.Tensor]:
        """(images as floats in [0, 1], (B, C, H, W); labels) of raw rows."""
        x = np.stack([self._image(i, cell) for i, cell, _ in rows])
        y = torch.tensor([self._label(i, lab) for i, _, lab in rows], dtype=torch.long)
        return torch.from_numpy(x).float() / 255.0, y

    def decode_all(self) -> Tuple[np.ndarray, np.ndarray]:
        """Every row of the split in the files' order: uint8 images (N, C, H, W) and int64 labels (N,)."""
        images = np.empty((len(self), *self.image_shape), np.uint8)
        labels = np.empty(len(self), np.int64)
        for k, (i, cell, lab) in enumerate(self.raw_rows()):
            images[k], labels[k] = self._image(i, cell), self._label(i, lab)
        return images, labels

    def _label(self, row: int, label: Any) -> int:
        if self.label is None:
            return 0
        if not isinstance(label, int) or label < 0 or (self.num_classes is not None and label >= self.num_classes):
            raise DataError(f"{self.name}: row {row} of the {self.split!r} split has the label {label!r} in column "
                            f"{self.label!r}, not a class in [0, {self.num_classes or 'N'})")
        return label

    def _image(self, row: int, cell: Any) -> np.ndarray:
        x = decode_image(cell, f"{self.name}: row {row} of the {self.split!r} split (column {self.image!r})",
                         self.mode)
        if self.shape is not None and x.shape != self.shape:
            raise DataError(f"{self.name}: row {row} of the {self.split!r} split is a {x.shape[2]}x{x.shape[1]} "
                            f"image with {x.shape[0]} channel(s), the first row's is {self.shape[2]}x"
                            f"{self.shape[1]} with {self.shape[0]}: every image must have one size (resize the "
                            "data set's images to one size first)")
        return x

    # -- batches
    def iterate(self, batch_size: int, shuffle: bool, generator: Optional[torch.Generator] = None,
                start: int = 0, order: Optional[torch.Tensor] = None):
        """nfzoo.data.iterate for a stream: batches from batch `start`, a seeded shuffle with `shuffle`;
        `order` must be a contiguous range of positions (a rank's shard of an evaluation)."""
        gen = None
        if shuffle:
            seed = int(torch.randint(2 ** 62, (), generator=generator))
            gen = torch.Generator().manual_seed(seed)
        rows: Iterator = self.raw_rows(gen)
        first, n = 0, len(self)
        if order is not None:
            if len(order) and not torch.equal(order, torch.arange(int(order[0]), int(order[0]) + len(order))):
                raise ConfigError(f"{self.name} is streamed: it is read in order, not by index")
            first, n = (int(order[0]) if len(order) else 0), len(order)
        rows = islice(rows, first + start * batch_size, first + n)
        while True:
            group = list(islice(rows, batch_size))
            if not group:
                return
            yield self.decode(group)

    def epoch_batches(self, generator: torch.Generator, batch_size: int, n_batches: int, start: int,
                      world: int = 1, rank: int = 0):
        """(x, y, global batch size, offset of this rank's piece) of this rank's contiguous piece of each of the
        epoch's global batches from batch `start` (of `n_batches`), in the order `generator` shuffles."""
        from nfzoo.distributed import shard

        rows = islice(self.raw_rows(generator), start * batch_size, None)
        for _ in range(start, n_batches):
            group = list(islice(rows, batch_size))
            if not group:
                return
            a, b = shard(len(group), world, rank)
            x, y = self.decode(group[a:b])
            yield x, y, len(group), a


def first_shape(stream: HFStream) -> Tuple[int, int, int]:
    """Decode the stream's first row: its mode (grayscale or RGB) and shape become the data set's."""
    i, cell, _ = next(iter(stream.raw_rows()))
    x = decode_image(cell, f"{stream.name}: row {i} of the {stream.split!r} split (column {stream.image!r})")
    stream.mode = "L" if x.shape[0] == 1 else "RGB"
    stream.shape = (int(x.shape[0]), int(x.shape[1]), int(x.shape[2]))
    return stream.shape


def decode_image(cell: Any, where: str, mode: Optional[str] = None) -> np.ndarray:
    """An image cell (datasets' Image: {"bytes", "path"}, or bytes) -> uint8 (C, H, W), converted to `mode`
    ("L" or "RGB"; None: grayscale images stay 1-channel, others RGB). The size is checked from the header
    before decoding (nfzoo.imageio.MAX_IMAGE_PIXELS)."""
    from nfzoo.errors import UsageError
    from nfzoo.imageio import is_grayscale, open_image

    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not isinstance(data, (bytes, bytearray)):
        raise DataError(f"{where}: no image bytes in the file (an image stored as a path or missing): only "
                        "images embedded in the data files are read")
    try:
        with open_image(bytes(data), name=where) as im:
            if mode is None:
                mode = "L" if is_grayscale(im) else "RGB"
            arr = np.asarray(im.convert(mode), dtype=np.uint8)
    except UsageError as exc:   # too many pixels, truncated, corrupt: named by open_image
        raise DataError(str(exc)) from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()


def _record_batches(builder: str, path: str, columns: List[str]):
    if builder == "parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=256, columns=columns)
        return
    import pyarrow as pa

    with pa.memory_map(path) as src:
        for batch in pa.ipc.open_stream(src):
            yield batch.select(columns)


def count_rows(builder: str, path: str) -> int:
    """The rows of a parquet (its metadata) or arrow stream file."""
    if builder == "parquet":
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    return sum(b.num_rows for b in _record_batches(builder, path, []))
