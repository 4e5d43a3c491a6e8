"""Issue 38: your own images, honestly measured, at any size. `folder:DIR` always has held-out test images
(DIR/train + DIR/test, or a seeded stratified hold-out recorded in train.json and on the card), sizes and
channels are settled (--image-size, channels), bad files are found by a scan before training (exit 2, nothing
written), and plugins register data sets (`register_datasets`, `nfzoo list --datasets`)."""
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from nfzoo.data import load_dataset, scan_folder
from nfzoo.errors import DataError, UsageError

TINY = ["--epochs", "1", "--set", "levels=2", "--set", "steps=1", "--set", "hidden=8", "--batch-size", "8"]


def make_folder(root: Path, counts=(10, 10), size=(8, 8), mode="L") -> Path:
    for c, n in enumerate(counts):
        (root / f"class-{c}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new(mode, size, color=(i * 20) % 256 if mode == "L" else (i * 20 % 256, 5, 9)).save(
                root / f"class-{c}" / f"{i:03d}.png")
    return root


def files_of(ds):
    return {rel for rel, _ in ds.samples}


def _cli(*args):
    from typer.testing import CliRunner

    from nfzoo_cli.app import build_app

    return CliRunner().invoke(build_app(), list(args))


def test_a_folder_holds_out_a_seeded_stratified_test_split(tmp_path):
    d = make_folder(tmp_path / "imgs", counts=(10, 20, 3, 1))
    tr, te = load_dataset(f"folder:{d}", "train"), load_dataset(f"folder:{d}", "test")
    assert not files_of(tr) & files_of(te), "no test image is ever trained on"
    assert len(tr) + len(te) == 34 and len(files_of(tr) | files_of(te)) == 34
    per_class = [sum(1 for _, y in te.samples if y == c) for c in range(4)]
    assert per_class == [1, 2, 1, 0]          # 10%, at least 1 where a class has >= 2, none from a lone image
    assert te.record["seed"] == 20240611 and te.record["test_fraction"] == 0.1
    assert sorted(te.record["test_files"]) == sorted(files_of(te)) and te.record["split"] == "holdout"
    again = load_dataset(f"folder:{d}", "test")
    assert again.samples == te.samples        # the split is fixed (seeded)
    wider = load_dataset(f"folder:{d}", "test", test_fraction=0.5)
    assert [sum(1 for _, y in wider.samples if y == c) for c in range(4)] == [5, 10, 2, 0]
    everything = load_dataset(f"folder:{d}", "all")
    assert files_of(everything) == files_of(tr) | files_of(te)
    with pytest.raises(UsageError, match="test_fraction"):
        load_dataset(f"folder:{d}", test_fraction=1.5)


def test_train_and_test_sub_folders_are_the_splits(tmp_path):
    make_folder(tmp_path / "train", counts=(4, 4))
    make_folder(tmp_path / "val", counts=(2, 1))
    tr, te = load_dataset(f"folder:{tmp_path}", "train"), load_dataset(f"folder:{tmp_path}", "test")
    assert (len(tr), len(te)) == (8, 3) and tr.classes == te.classes == ["class-0", "class-1"]
    assert all(f.startswith("val/") for f in files_of(te)) and te.record["split"] == "folders"
    make_folder(tmp_path / "val", counts=(1, 1, 1))
    with pytest.raises(DataError, match="class-2"):
        load_dataset(f"folder:{tmp_path}", "test")


def test_image_size_resizes_and_crops_and_channels_are_settled(tmp_path):
    d = make_folder(tmp_path / "imgs", counts=(3, 3), size=(12, 8))
    Image.new("L", (8, 8)).save(d / "class-0" / "odd.png")
    with pytest.raises(DataError) as exc:
        load_dataset(f"folder:{d}")
    msg = str(exc.value)
    assert "odd.png is 8x8" in msg and "12x8" in msg and "--image-size" in msg
    ds = load_dataset(f"folder:{d}", image_size=6)
    assert ds.image_shape == (1, 6, 6) and ds[0][0].shape == (1, 6, 6) and 0 <= ds[0][0].min() <= ds[0][0].max() <= 1
    Image.new("RGB", (8, 8), (200, 10, 10)).save(d / "class-1" / "red.png")
    ds = load_dataset(f"folder:{d}", image_size=6)          # one RGB image: every image is RGB
    assert ds.image_shape == (3, 6, 6) and all(ds[i][0].shape == (3, 6, 6) for i in range(len(ds)))
    gray = load_dataset(f"folder:{d}", image_size=6, channels=1)
    assert gray.image_shape == (1, 6, 6) and gray[0][0].shape == (1, 6, 6)
    with pytest.raises(UsageError, match="channels"):
        load_dataset(f"folder:{d}", channels=2)
    with pytest.raises(UsageError, match="takes no data options"):
        load_dataset("digits", image_size=8)


@pytest.mark.parametrize("bad", ["text", "truncated", "empty"])
def test_a_bad_file_is_named_before_training(tmp_path, bad):
    d = make_folder(tmp_path / "imgs", counts=(4, 4), size=(32, 32), mode="RGB")
    target = d / "class-1" / "x.png"
    if bad == "text":
        target.write_text("not an image")
    elif bad == "truncated":
        data = (d / "class-1" / "000.png").read_bytes()
        target.write_bytes(data[: len(data) - 20])
    else:
        target.write_bytes(b"")
    with pytest.raises(DataError, match="x.png"):
        scan_folder(d)


def test_links_are_followed_only_inside_the_folder_and_counted_once(tmp_path):
    d = make_folder(tmp_path / "imgs", counts=(4, 4))
    outside = make_folder(tmp_path / "elsewhere", counts=(3,))
    os.symlink(d, d / "class-0" / "loop")                              # a loop
    os.symlink(outside / "class-0", d / "class-1" / "far")             # outside DIR
    os.symlink(d / "class-0" / "000.png", d / "class-1" / "again.png")  # a second name of a listed file
    os.symlink(d / "nowhere.png", d / "class-1" / "dangling.png")
    (d / "class-1" / "notes.txt").write_text("ignored")
    scan = scan_folder(d)
    assert len(scan.splits["train"]) + len(scan.splits["test"]) == 8
    why = {s["file"]: s["why"] for s in scan.record()["skipped"]}
    assert set(why) == {"class-0/loop", "class-1/far", "class-1/again.png", "class-1/dangling.png"}
    assert "outside" in why["class-1/far"] and "loop" in why["class-0/loop"]
    assert scan.record()["ignored_files"] == 1


def test_an_empty_class_keeps_its_label_and_is_recorded(tmp_path):
    d = make_folder(tmp_path / "imgs", counts=(0, 4))
    ds = load_dataset(f"folder:{d}")
    assert ds.num_classes == 2 and {y for _, y in ds.samples} == {1}
    assert ds.record["empty_classes"] == ["class-0"]
    make_folder(tmp_path / "lonely", counts=(1, 1))
    with pytest.raises(DataError, match="none can be held out"):
        load_dataset(f"folder:{tmp_path / 'lonely'}")


def test_nfzoo_train_holds_out_records_and_never_trains_on_test_images(tmp_path, monkeypatch):
    """End to end: the trainer's two sets share no file, train.json records which are test, the card says
    so; --set test_fraction and --image-size reach the data set."""
    from nfzoo.training import trainer as trainer_mod

    d = make_folder(tmp_path / "imgs", counts=(6, 6), size=(10, 9))
    seen = {}
    real_init = trainer_mod.Trainer.__init__

    def spy(self, *a, **k):
        real_init(self, *a, **k)
        seen["train"], seen["test"] = files_of(self.train_set), files_of(self.test_set)

    monkeypatch.setattr(trainer_mod.Trainer, "__init__", spy)
    out = tmp_path / "run"
    r = _cli("train", "glow", "--dataset", f"folder:{d}", *TINY, "--image-size", "8", "--set",
             "test_fraction=0.25", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert seen["train"] and seen["test"] and not seen["train"] & seen["test"]
    doc = json.loads((out / "train.json").read_text())
    assert doc["train"]["data"] == {"image_size": 8, "test_fraction": 0.25}
    assert sorted(doc["data"]["test_files"]) == sorted(seen["test"]) and doc["data"]["test_images"] == 4
    from nfzoo.hub.publish import model_card, run_info

    card = model_card("mine", run_info(out))
    assert "8 training / 4 test images" in card and "hold-out of 0.25" in card
    seen.clear()
    from nfzoo.data import folder as folder_mod

    real_load = folder_mod.load_folder

    def spy_load(path, split="train", **options):
        ds = real_load(path, split, **options)
        seen.setdefault("eval", files_of(ds))
        return ds

    monkeypatch.setattr(folder_mod, "load_folder", spy_load)
    r = _cli("eval", str(out), "--dataset", f"folder:{d}", "--json")    # the run's test images, at 1 x 8 x 8
    assert r.exit_code == 0, r.output
    assert seen["eval"] == set(doc["data"]["test_files"])


@pytest.mark.parametrize("bad", ["mixed", "not-an-image"])
def test_nfzoo_train_refuses_bad_data_with_exit_2_and_writes_nothing(tmp_path, bad):
    d = make_folder(tmp_path / "imgs", counts=(4, 4))
    if bad == "mixed":
        Image.new("L", (9, 8)).save(d / "class-1" / "wide.png")
        name = "wide.png is 9x8"
    else:
        (d / "class-1" / "x.png").write_text("hello")
        name = "x.png"
    out = tmp_path / "run"
    r = _cli("train", "glow", "--dataset", f"folder:{d}", *TINY, "--out", str(out))
    assert r.exit_code == 2, r.output
    assert name in r.output and "internal error" not in r.output and "Traceback" not in r.output
    assert not out.exists()


DATASET_PLUGIN = '''
import nfzoo
import torch


class Squares(torch.utils.data.Dataset):
    def __init__(self, split, side=4):
        self.n, self.side = (6 if split == "train" else 2), side

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((1, self.side, self.side), i / 10), i % 2


def load(split, side=4):
    return Squares(split, side)


@nfzoo.hookimpl
def register_datasets(register):
    register("squares", "fakeplug_squares:load", shape=(1, 4, 4), classes=2, splits=("train", "test"),
             description="grey squares")
'''


def test_a_plugin_registers_a_data_set(fake_plugin, tmp_path):
    fake_plugin("squares", DATASET_PLUGIN)
    ds = load_dataset("squares", "test")
    assert len(ds) == 2 and ds.image_shape == (1, 4, 4) and ds.num_classes == 2 and ds[1][1] == 1
    with pytest.raises(UsageError, match="train, test"):
        load_dataset("squares", "all")
    r = _cli("list", "--datasets", "--json")
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["squares"]["plugin"] == "squares" and rows["squares"]["shape"] == [1, 4, 4]
    assert {"digits", "mnist5k", "cifar10", "folder:DIR", "hf:ORG/NAME"} <= set(rows)
    r = _cli("list", "--datasets")
    assert r.exit_code == 0 and "squares" in r.stdout and "mnist5k" in r.stdout
    r = _cli("train", "glow", "--dataset", "squares", *TINY, "--out", str(tmp_path / "run"))
    assert r.exit_code == 0, r.output


def test_a_folder_of_rgb_images_trains_samples_and_evaluates_on_held_out_images(tmp_path):
    """Issue 38's done-when for folders: RGB photos of another size train for an epoch at --image-size, the test bpd
    is measured on held-out images (train.json lists them, none among the training files), and the run samples RGB
    images and evaluates on the same held-out images."""
    d = make_folder(tmp_path / "photos", counts=(8, 8), size=(12, 10), mode="RGB")
    out = tmp_path / "run"
    r = _cli("train", "glow", "--dataset", f"folder:{d}", *TINY, "--image-size", "8", "--out", str(out))
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "train.json").read_text())
    test_files = set(doc["data"]["test_files"])
    every = {p.relative_to(d).as_posix() for p in d.rglob("*.png")}
    assert test_files and test_files < every and doc["data"]["test_images"] == len(test_files) == 2
    assert json.loads((out / "history.json").read_text())[-1]["test_bpd"] > 0
    r = _cli("sample", "--model", str(out), "-n", "4", "--seed", "0", "--out", str(tmp_path / "s.png"))
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "s.png") as im:
        assert im.mode == "RGB"
    r = _cli("eval", str(out), "--dataset", f"folder:{d}", "--json")
    assert r.exit_code == 0, r.output
    measured = json.loads(r.stdout)
    assert measured["images"] == 2 and measured["bpd"] > 0
