"""Image folders (`folder:DIR`, torchvision's ImageFolder layout: one sub-folder of images per class).

Everything about the files is settled by `scan_folder` before any training, from the image headers (PIL opens
lazily: sizes and modes are read without decoding; `verify` reads a PNG's chunks, so a truncated file is found
too; the pixel count is checked before anything is decoded, `nfzoo.imageio.open_image`):

- the splits: `DIR/train/` and `DIR/test/` (or `DIR/val/`), each in ImageFolder layout, when both exist;
  otherwise a seeded, stratified hold-out of `test_fraction` (default 0.1) of each class's images, at least
  one per class that has two or more (seed `SPLIT_SEED`, the one of the offline data sets). `record()` says
  which images are test (train.json keeps it);
- the size: every image must have the first one's size, unless `image_size=N` (resize the shorter side to N,
  then center-crop N x N, torchvision.transforms.v2);
- the channels: `channels=1` or `3` converts every image; by default (None) 1 when every image is grayscale,
  else 3 (grayscale images are then converted to RGB);
- bad files: a file with an image extension that is not a readable image (corrupt, truncated, not an image)
  is a DataError naming it (exit 2): nothing is skipped silently. Files without an image extension and hidden
  files are ignored, as ImageFolder does. Links that lead outside DIR, dangling links, links back into a
  folder already read (loops) and second names of a file already listed are skipped, counted and recorded.
  An empty class folder keeps its label (labels follow the sorted class names) and is recorded.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from nfzoo.errors import DataError, DatasetUnavailableError, UsageError

from .splits import DEFAULT_TEST_FRACTION, SPLIT_SEED, held_out_counts, stratified_split

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
FOLDER_OPTIONS = ("image_size", "channels", "test_fraction")
MAX_IMAGE_SIDE = 4096
MAX_LISTED_TEST_FILES = 5000   # train.json lists the test files up to this many (their sha256 always)
_SPLIT_DIRS = ("test", "val")


def check_folder_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """The options of a folder data set, checked: image_size (int in [1, 4096] or None), channels (1, 3 or
    None: automatic), test_fraction (a number in (0, 1))."""
    unknown = sorted(set(options) - set(FOLDER_OPTIONS))
    if unknown:
        raise UsageError(f"folder data sets take the options {', '.join(FOLDER_OPTIONS)}, not "
                         f"{', '.join(map(repr, unknown))}")
    size, channels = options.get("image_size"), options.get("channels")
    frac = options.get("test_fraction", DEFAULT_TEST_FRACTION)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_IMAGE_SIDE):
        raise UsageError(f"--image-size must be an integer in [1, {MAX_IMAGE_SIDE}], got {size!r}")
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise UsageError(f"channels must be 1 (grayscale) or 3 (RGB), or unset (automatic), got {channels!r}")
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 1:
        raise UsageError(f"test_fraction must be a number in (0, 1), e.g. 0.2, got {frac!r}")
    return {"image_size": size, "channels": channels, "test_fraction": float(frac)}


@dataclass
class FolderScan:
    """What `scan_folder` found: the classes, each split's (relative file, label) pairs, the image shape
    (C, H, W) the data set yields, and what was skipped or ignored."""

    root: Path
    classes: List[str]
    splits: Dict[str, List[Tuple[str, int]]]
    shape: Tuple[int, int, int]
    rule: str                        # "folders" (DIR/train, DIR/test) or "holdout"
    image_size: Optional[int]
    test_fraction: float
    skipped: List[Dict[str, str]] = field(default_factory=list)
    ignored: int = 0
    empty_classes: List[str] = field(default_factory=list)

    def record(self) -> Dict[str, Any]:
        """Which images are held out, as train.json records it (JSON)."""
        test = [f for f, _ in self.splits["test"]]
        rec: Dict[str, Any] = {"source": f"folder:{self.root}", "split": self.rule,
                               "train_images": len(self.splits["train"]), "test_images": len(test),
                               "classes": self.classes, "shape": list(self.shape), "image_size": self.image_size}
        if self.rule == "holdout":
            rec.update(seed=SPLIT_SEED, test_fraction=self.test_fraction)
        rec["test_files_sha256"] = hashlib.sha256("\n".join(test).encode()).hexdigest()
        if len(test) <= MAX_LISTED_TEST_FILES:
            rec["test_files"] = test
        if self.skipped:
            rec["skipped"] = self.skipped
        if self.ignored:
            rec["ignored_files"] = self.ignored
        if self.empty_classes:
            rec["empty_classes"] = self.empty_classes
        return rec

    def summary(self) -> str:
        """One line: the split rule and its counts (the card shows it)."""
        return split_summary(self.record())


def split_summary(rec: Dict[str, Any]) -> str:
    """One line from a split record (`FolderScan.record`): where the test images come from."""
    n, m = rec.get("train_images"), rec.get("test_images")
    if rec.get("split") == "holdout":
        how = (f"a seeded stratified hold-out of {rec.get('test_fraction')} per class "
               f"(seed {rec.get('seed')})")
    else:
        how = "the folder's own train/ and test/ (or val/) sub-folders"
    return f"{n} training / {m} test images; test images: {how}"


class _Walk:
    """Lists a folder's image files (relative to the data set's root), following links only within it."""

    def __init__(self, root: Path):
        self.root = root
        self.real_root = os.path.realpath(root)
        self.seen_dirs = {self.real_root}
        self.seen_files: Dict[str, str] = {}
        self.skipped: List[Dict[str, str]] = []
        self.ignored = 0

    def rel(self, path: str) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def files(self, folder: str) -> List[str]:
        out: List[str] = []
        try:
            entries = sorted(os.scandir(folder), key=lambda e: (e.is_symlink(), e.name))
        except OSError as exc:
            raise DataError(f"image folder {self.root}: cannot read {folder} ({exc.strerror or exc})") from None
        for e in entries:
            if e.name.startswith("."):
                continue
            real = os.path.realpath(e.path)
            if e.is_symlink():
                why = None
                if os.path.commonpath([real, self.real_root]) != self.real_root:
                    why = "a link that leads outside the folder"
                elif not os.path.exists(real):
                    why = "a dangling link (or a loop of links)"
                if why:
                    self.skipped.append({"file": self.rel(e.path), "why": why})
                    continue
            if e.is_dir():
                if real in self.seen_dirs:
                    self.skipped.append({"file": self.rel(e.path), "why": "a link to a folder already read (a loop)"})
                    continue
                self.seen_dirs.add(real)
                out += self.files(e.path)
            elif e.is_file():
                if not e.name.lower().endswith(IMG_EXTENSIONS):
                    self.ignored += 1
                elif real in self.seen_files:
                    self.skipped.append({"file": self.rel(e.path),
                                         "why": f"the same file as {self.seen_files[real]}"})
                else:
                    self.seen_files[real] = self.rel(e.path)
                    out.append(e.path)
        return out


def _class_dirs(folder: Path) -> List[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _holdout(per_class: List[List[str]], fraction: float, root: Path):
    labels = np.array([c for c, files in enumerate(per_class) for _ in files], dtype=np.int64)
    flat = [f for files in per_class for f in files]
    test_n = held_out_counts([len(files) for files in per_class], fraction)
    if not any(test_n.values()):
        raise DataError(f"image folder {root}: no class has 2 images, so none can be held out for testing. Add "
                        "images, or give the folder train/ and test/ sub-folders.")
    tr, te = stratified_split(labels, test_n)
    return [(flat[i], int(labels[i])) for i in tr], [(flat[i], int(labels[i])) for i in te]


def _list(root: Path):
    """(classes, {split: [(path, label)]}, rule, walk, empty classes); with the hold-out rule, every image
    is in "train" until `_holdout` splits them."""
    if not root.is_dir():
        raise DatasetUnavailableError(f"image folder {root} does not exist. Pass folder:DIR with one "
                                      "sub-folder of images per class (torchvision ImageFolder layout).")
    walk = _Walk(root)
    test_dir = next((root / d for d in _SPLIT_DIRS if (root / d).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        classes = _class_dirs(root / "train")
        extra = sorted(set(_class_dirs(test_dir)) - set(classes))
        if extra:
            raise DataError(f"image folder {root}: {test_dir.name}/ has class folder(s) {', '.join(extra)} that "
                            "train/ lacks; the two splits must name the same classes.")
        splits = {s: [(f, c) for c, name in enumerate(classes) if (d / name).is_dir()
                      for f in walk.files(str(d / name))]
                  for s, d in (("train", root / "train"), ("test", test_dir))}
        for s, d in (("train", root / "train"), ("test", test_dir)):
            if not splits[s]:
                raise DataError(f"image folder {root}: {d} holds no images (of {', '.join(IMG_EXTENSIONS)}).")
        used = {lab for _, lab in splits["train"]}
        return classes, splits, "folders", walk, [n for c, n in enumerate(classes) if c not in used]
    classes = _class_dirs(root)
    if not classes:
        raise DatasetUnavailableError(f"image folder {root} has no class sub-folders: put the images of each "
                                      "class in a sub-folder (DIR/CLASS/IMAGE.png), even for a single class.")
    per_class = [walk.files(str(root / c)) for c in classes]
    empty = [c for c, files in zip(classes, per_class) if not files]
    if len(empty) == len(classes):
        raise DatasetUnavailableError(f"image folder {root} holds no images (of {', '.join(IMG_EXTENSIONS)}).")
    every = [(f, c) for c, files in enumerate(per_class) for f in files]   # split after the scan of the files
    return classes, {"train": every, "test": []}, "holdout", walk, empty


def _header(path: str, root: Path) -> Tuple[Tuple[int, int], bool]:
    """((width, height), grayscale?) from the header; the whole file's structure checked (PIL's verify)."""
    from nfzoo.imageio import is_grayscale, open_image

    try:
        with open_image(path) as im:
            size, gray = im.size, is_grayscale(im)
            im.verify()
    except UsageError as exc:
        raise DataError(f"image folder {root}: {exc}. Remove or replace the file; nothing was trained or "
                        "written.") from None
    return size, gray


_CACHE: Dict[Any, FolderScan] = {}


def scan_folder(path: Union[str, os.PathLike], image_size: Optional[int] = None, channels: Optional[int] = None,
                test_fraction: float = DEFAULT_TEST_FRACTION) -> FolderScan:
    """Scan an image folder before any training (see the module): its splits, sizes, channels and bad files.
    A bad file or mixed sizes without `image_size` raise DataError naming the file. The last scans are
    kept while the folder's files (names, sizes, times) do not change."""
    opts = check_folder_options({"image_size": image_size, "channels": channels, "test_fraction": test_fraction})
    root = Path(path)
    classes, splits, rule, walk, empty = _list(root)
    everything = [f for s in ("train", "test") for f, _ in splits[s]]
    stats = tuple((f, st.st_size, st.st_mtime_ns) for f in everything for st in [os.stat(f)])
    key = (str(root), tuple(sorted(opts.items())), stats, str(walk.skipped), walk.ignored, rule, tuple(classes))
    if key in _CACHE:
        return _CACHE[key]
    first, first_size, gray = None, None, True
    for f in everything:
        size, g = _header(f, root)
        gray = gray and g
        if first_size is None:
            first, first_size = f, size
        elif size != first_size and opts["image_size"] is None:
            raise DataError(
                f"image folder {root}: {f} is {size[0]}x{size[1]} pixels, but the images before it are "
                f"{first_size[0]}x{first_size[1]} (e.g. {first}). Pass --image-size N (each image resized so "
                "its shorter side is N, then center-cropped to N x N), or resize the images to one size.")
    assert first_size is not None
    if rule == "holdout":
        per_class: List[List[str]] = [[] for _ in classes]
        for f, lab in splits["train"]:
            per_class[lab].append(f)
        train, test = _holdout(per_class, opts["test_fraction"], root)
        splits = {"train": train, "test": test}
    c = opts["channels"] or (1 if gray else 3)
    n = opts["image_size"]
    shape = (c, n, n) if n else (c, first_size[1], first_size[0])
    rel = {s: [(walk.rel(f), lab) for f, lab in v] for s, v in splits.items()}
    scan = FolderScan(root, classes, rel, shape, rule, n, opts["test_fraction"], walk.skipped, walk.ignored, empty)
    if len(_CACHE) > 4:
        _CACHE.clear()
    _CACHE[key] = scan
    return scan


class FolderDataset(Dataset):
    """One split of a scanned image folder: (image in [0, 1] of `image_shape`, class index). A file that
    cannot be read (changed since the scan) raises DataError naming it."""

    def __init__(self, scan: FolderScan, split: str):
        self.scan, self.split = scan, split
        self.samples = scan.splits[split]
        self.classes = scan.classes
        self.num_classes = len(scan.classes)
        self.name = f"folder:{scan.root}"
        self.image_shape = scan.shape
        self.record = scan.record()

    def __len__(self) -> int:
        return len(self.samples)

    def transform(self, im) -> torch.Tensor:
        """A PIL image -> floats in [0, 1] (C, H, W): resized (shorter side) and center-cropped with image_size."""
        from torchvision.transforms import v2

        steps: List[Any] = [v2.ToImage()]
        if self.scan.image_size:
            steps += [v2.Resize(self.scan.image_size, antialias=True), v2.CenterCrop(self.scan.image_size)]
        steps.append(v2.ToDtype(torch.float32, scale=True))
        return v2.Compose(steps)(im)

    def __getitem__(self, i: int):
        from nfzoo.imageio import open_image

        rel, label = self.samples[i]
        path = self.scan.root / rel
        try:
            with open_image(path) as im:
                im = im.convert("L" if self.image_shape[0] == 1 else "RGB")
        except (UsageError, OSError) as exc:
            raise DataError(f"image folder {self.scan.root}: {rel} cannot be read ({exc})") from None
        x = self.transform(im)
        if tuple(x.shape) != tuple(self.image_shape):
            raise DataError(f"image folder {self.scan.root}: {rel} is {tuple(x.shape)}, not {self.image_shape} "
                            "as scanned (the file changed?)")
        return x, label


def load_folder(path: str, split: str = "train", **options: Any) -> FolderDataset:
    """A split ('train', 'test', or 'all': both) of the image folder `path`, scanned first (`scan_folder`)."""
    if split not in ("train", "test", "all"):
        raise UsageError(f"folder data sets have splits 'train', 'test' and 'all', not {split!r}")
    scan = scan_folder(path, **check_folder_options(options))
    if split == "all":
        scan = FolderScan(**{**scan.__dict__, "splits": {**scan.splits, "all": scan.splits["train"]
                                                          + scan.splits["test"]}})
    return FolderDataset(scan, split)


def load_folder_for_shape(path: str, split: str, shape: Tuple[int, int, int], **options: Any) -> FolderDataset:
    """A folder's split made for a model of image shape (C, H, W) (`nfzoo eval`): its channels, and, when the
    images are not already H x W and the model is square, `image_size` H (the default hold-out otherwise)."""
    c, h, w = shape
    opts = dict(options)
    if c in (1, 3):
        opts.setdefault("channels", c)
    if "image_size" not in opts and h == w:
        try:
            ds = load_folder(path, split, **opts)
            if ds.image_shape == tuple(shape):
                return ds
        except DataError as exc:
            if "--image-size" not in str(exc):     # a bad file, not mixed sizes
                raise
        opts["image_size"] = h
    return load_folder(path, split, **opts)
