"""Data sets: fixed stratified splits, clear errors for missing data."""
import pytest
import torch

from nfzoo.data import load_dataset
from nfzoo.errors import DatasetUnavailableError, UnknownNameError


def test_mnist5k_split_is_fixed_and_stratified():
    tr, te = load_dataset("mnist5k", "train"), load_dataset("mnist5k", "test")
    assert (len(tr), len(te)) == (4000, 1000) and tr.image_shape == (1, 28, 28)
    assert tr.labels.bincount().tolist() == [400] * 10 and te.labels.bincount().tolist() == [100] * 10
    everything = load_dataset("mnist5k", "all")
    rows = {bytes(x.numpy()) for x in everything.images}
    assert len({bytes(x.numpy()) for x in tr.images} & {bytes(x.numpy()) for x in te.images}) <= 1
    assert len(rows) >= 4990
    again = load_dataset("mnist5k", "test")
    assert torch.equal(again.images, te.images)


def test_digits_split():
    tr, te = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(tr) + len(te) == 1797 and tr.image_shape == (1, 8, 8)
    x, y = tr[0]
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and isinstance(y, int)


def test_missing_torchvision_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetUnavailableError) as exc:
        load_dataset("cifar10", "train", root=str(tmp_path))
    msg = str(exc.value)
    assert "--download" in msg and "NFZOO_DATA" in msg and "mnist5k" in msg


def test_unknown_dataset():
    with pytest.raises(UnknownNameError, match="mnist5k"):
        load_dataset("mnist5")


def test_image_folder(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("L", (8, 8), color=40 * i).save(tmp_path / cls / f"{i}.png")
    ds = load_dataset(f"folder:{tmp_path}", "all")     # both splits (tests/test_data_folder.py: the split)
    assert len(ds) == 4 and ds.num_classes == 2
    assert ds.image_shape == (1, 8, 8) and ds[0][0].shape == (1, 8, 8)    # grayscale stays 1 channel
    (tmp_path / "c").mkdir()
    Image.new("RGB", (8, 8), color=(200, 10, 10)).save(tmp_path / "c" / "0.png")
    assert load_dataset(f"folder:{tmp_path}", "all")[4][0].shape == (3, 8, 8)
    with pytest.raises(DatasetUnavailableError):
        load_dataset(f"folder:{tmp_path / 'nope'}")


def test_an_image_folder_refuses_a_decompression_bomb_before_decoding(tmp_path):
    """A 68-byte PNG that claims 30000x30000 pixels in a `folder:` data set is refused from its header."""
    from test_cli_hardening import bomb_png

    from nfzoo.errors import UsageError

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bomb.png").write_bytes(bomb_png())
    with pytest.raises(UsageError, match="bomb.png claims 900,000,000 pixels"):
        load_dataset(f"folder:{tmp_path}")


def test_a_config_json_with_a_bad_image_shape_is_a_config_error(tmp_path):
    """Found by tests/test_fuzz.py: image_shape None or ':' raised TypeError / ValueError."""
    import json

    from nfzoo.errors import ConfigError
    from nfzoo.loading.api import load_directory

    for shape in (None, ":", [1, 8], [0, 8, 8], [1, 8, 8.5], [True, 8, 8]):
        (tmp_path / "config.json").write_text(json.dumps({"architecture": "nice", "config": {"image_shape": shape}}))
        with pytest.raises(ConfigError, match="image_shape"):
            load_directory(tmp_path)
