"""save_pretrained / from_pretrained, strict loading, and corrupt files: detected, never loaded."""
import json

import pytest
import torch

import nfzoo
from nfzoo.errors import ConfigError, CorruptFileError


def _tiny(**kw):
    cfg = dict(image_shape=(1, 8, 8), levels=2, steps=1, hidden=8)
    cfg.update(kw)
    m = nfzoo.create_model("glow", **cfg)
    m.initialize(torch.rand(16, 1, 8, 8))
    return m


def test_save_and_load_round_trip(tmp_path):
    m = _tiny()
    m.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    assert doc["architecture"] == "glow" and doc["config"]["hidden"] == 8
    m2 = nfzoo.FlowModel.from_pretrained(tmp_path / "m")
    x = torch.rand(4, 1, 8, 8)
    m.eval()
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(m.bpd(x, generator=g1), m2.bpd(x, generator=g2))
    assert torch.equal(m.sample(3, generator=torch.Generator().manual_seed(1)),
                       m2.sample(3, generator=torch.Generator().manual_seed(1)))


def test_uint8_and_float_inputs_agree():
    m = _tiny().eval()
    x8 = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    xf = x8.float() / 255
    assert torch.allclose(m.bpd(x8, noise=False), m.bpd(xf, noise=False))


def test_bpd_includes_the_8bit_term():
    from nfzoo.bijectors import Rescale
    from nfzoo.model import FlowModel
    from nfzoo.priors import StandardNormal

    m = FlowModel(Rescale((1, 2, 2)), StandardNormal((1, 2, 2)), (1, 2, 2)).eval()
    x = torch.zeros(1, 1, 2, 2)
    # x -> k = 0 -> (0 + 1/2)/256 - 1/2 ; identity flow, standard normal
    v = torch.full((1, 4), 0.5 / 256 - 0.5)
    logp = (-0.5 * v ** 2 - 0.5 * torch.log(torch.tensor(2 * torch.pi))).sum()
    expected = -(logp - 4 * torch.log(torch.tensor(256.0))) / (4 * torch.log(torch.tensor(2.0)))
    assert torch.allclose(m.bpd(x, noise=False), expected.reshape(1))


def test_truncated_weights_are_detected(tmp_path, runner, app):
    _tiny().save_pretrained(tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="not a valid safetensors"):
        nfzoo.load(str(tmp_path / "m"))
    res = runner.invoke(app, ["sample", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 2 and "not a valid safetensors" in res.output
    assert not (tmp_path / "s.png").exists()
    assert w.read_bytes() == data[: len(data) // 2], "the bad file is left for the user to inspect"


def test_garbage_weights_are_detected(tmp_path):
    _tiny().save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x80\x04not a safetensors file" * 10)
    with pytest.raises(CorruptFileError):
        nfzoo.load(str(tmp_path / "m"))


def test_config_that_does_not_match_the_weights(tmp_path, runner, app):
    _tiny().save_pretrained(tmp_path / "m")
    cfg = tmp_path / "m" / "config.json"
    doc = json.loads(cfg.read_text())
    doc["config"]["hidden"] = 16
    cfg.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="do not match"):
        nfzoo.load(str(tmp_path / "m"))
    doc["config"]["hidden"] = 8
    doc["config"]["steps"] = 2
    cfg.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="missing"):
        nfzoo.load(str(tmp_path / "m"))
    res = runner.invoke(app, ["eval", str(tmp_path / "m"), "--dataset", "digits"])
    assert res.exit_code == 2 and "do not match" in res.output


def test_invalid_config_json(tmp_path):
    _tiny().save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        nfzoo.load(str(tmp_path / "m"))
    (tmp_path / "m" / "config.json").write_text('{"something": 1}')
    with pytest.raises(ConfigError, match="architecture"):
        nfzoo.load(str(tmp_path / "m"))


def test_save_pretrained_is_atomic(tmp_path, monkeypatch):
    """A crash while writing leaves the previous file intact and no temporary file behind."""
    m = _tiny()
    m.save_pretrained(tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    import nfzoo.safeio as safeio

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(safeio.os, "fsync", boom)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    with pytest.raises(OSError):
        m.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]


def test_nothing_unpickles():
    import pathlib

    import nfzoo as pkg

    root = pathlib.Path(pkg.__file__).parent
    for f in root.rglob("*.py"):
        text = f.read_text()
        # the needles are built so that this test itself is not flagged by text scans for them
        for needle in ("torch." + "load(", "pickle." + "load"):
            assert needle not in text, f"{f} contains {needle}"
