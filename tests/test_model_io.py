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
    from nfzoo.flows.bijectors import Rescale
    from nfzoo.flows.model import FlowModel
    from nfzoo.flows.priors import StandardNormal

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


# ------------------------------------------- issue 20, item 6: wrong dtypes and non-finite weights refused
def _rewrite_weights(d, change):
    from safetensors.torch import load_file, save_file

    w = d / "model.safetensors"
    tensors = load_file(str(w))
    change(tensors)
    save_file(tensors, str(w))


def _float_key(d):
    from nfzoo.safeio import safetensors_header

    return next(k for k, (shape, code) in safetensors_header(d / "model.safetensors").items()
                if code == "F32" and len(shape) == 4)


@pytest.mark.parametrize("dtype", [torch.int8, torch.bool, torch.int64])
def test_non_floating_weights_are_refused_naming_the_tensor(tmp_path, dtype):
    _tiny().save_pretrained(tmp_path / "m")
    key = _float_key(tmp_path / "m")
    _rewrite_weights(tmp_path / "m", lambda t: t.__setitem__(key, t[key].to(dtype)))
    with pytest.raises(CorruptFileError, match=f"{key}.*floating point"):
        nfzoo.load(str(tmp_path / "m"))
    m = _tiny()   # the shared loading path (FlowModel.load_weights) refuses them too
    with pytest.raises(CorruptFileError, match=key):
        m.load_weights(tmp_path / "m" / "model.safetensors")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, runner, app, value):
    _tiny().save_pretrained(tmp_path / "m")
    key = _float_key(tmp_path / "m")
    _rewrite_weights(tmp_path / "m", lambda t: t[key].fill_(value))
    with pytest.raises(CorruptFileError, match=f"{key}.*non-finite"):
        nfzoo.load(str(tmp_path / "m"))
    res = runner.invoke(app, ["sample", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 2 and "non-finite" in res.output
    assert not (tmp_path / "s.png").exists()


def test_an_integer_buffer_must_keep_its_dtype(tmp_path):
    """ActNorm's `initialized` is a uint8 buffer: it loads as uint8 (every zoo model has some), and a file
    that stores it as float is refused rather than cast."""
    m = _tiny()
    m.save_pretrained(tmp_path / "m")
    ints = [k for k, v in m.state_dict().items() if not v.dtype.is_floating_point]
    assert ints
    m2 = nfzoo.load(str(tmp_path / "m"))
    assert all(m2.state_dict()[k].dtype == m.state_dict()[k].dtype for k in ints)
    _rewrite_weights(tmp_path / "m", lambda t: t.__setitem__(ints[0], t[ints[0]].float()))
    with pytest.raises(CorruptFileError, match=ints[0]):
        nfzoo.load(str(tmp_path / "m"))


def test_float64_weights_still_load(tmp_path):
    m = _tiny()
    m.save_pretrained(tmp_path / "m")
    _rewrite_weights(tmp_path / "m", lambda t: t.update({k: v.double() for k, v in t.items()
                                                          if v.dtype.is_floating_point}))
    m2 = nfzoo.load(str(tmp_path / "m"))
    assert all(torch.equal(m.state_dict()[k], v) for k, v in m2.state_dict().items())
