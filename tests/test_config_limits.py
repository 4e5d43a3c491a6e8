"""Issue 20, item 4 (and the config parts of item 9): a config is checked before anything is allocated:
types and ranges of the common keys, parameter and activation limits (nfzoo.loading.limits, one place for every
architecture, plugins' included), and the weights' safetensors header against what the config builds."""
import json
import time

import pytest
import torch

import nfzoo
from nfzoo.errors import ConfigError, CorruptFileError
from nfzoo.loading import limits, shape_build


def _tiny_dir(tmp_path, **kw):
    cfg = dict(image_shape=(1, 8, 8), levels=2, steps=1, hidden=8)
    cfg.update(kw)
    m = nfzoo.create_model("glow", **cfg)
    m.initialize(torch.rand(16, 1, 8, 8))
    d = tmp_path / "m"
    m.save_pretrained(d)
    return d


def _edit_config(d, text=None, **changes):
    path = d / "config.json"
    if text is not None:
        path.write_text(text)
        return
    doc = json.loads(path.read_text())
    doc["config"].update(changes)
    path.write_text(json.dumps(doc))


# ----------------------------------------------------------------- (a) types and ranges
@pytest.mark.parametrize("key, value", [
    ("hidden", -5), ("num_classes", -3), ("hidden", 0), ("hidden", 10 ** 9), ("steps", 10 ** 6),
    ("levels", 100), ("hidden", "abc"), ("hidden", True), ("hidden", 1.5), ("num_classes", 0),
    ("image_shape", [3, 100000, 100000]), ("image_shape", [100000, 8, 8]), ("blocks", -1)])
def test_bad_common_keys_are_config_errors_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=key):
        nfzoo.create_model("glow", **{"image_shape": (1, 8, 8), key: value})


def test_negative_hidden_from_a_config_json_and_from_train_set_exit_2(tmp_path, runner, app):
    d = _tiny_dir(tmp_path)
    _edit_config(d, hidden=-5)
    with pytest.raises(ConfigError, match="hidden"):
        nfzoo.load(str(d))
    res = runner.invoke(app, ["sample", "--model", str(d), "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 2 and "hidden" in res.output and "Traceback" not in res.output
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--set", "num_classes=-3",
                              "--out", str(out)])
    assert res.exit_code == 2 and "num_classes" in res.output
    assert not out.exists()


@pytest.mark.parametrize("text, key", [
    ('{"architecture": "glow", "config": {"image_shape": [1, 8, 8], "hidden": 1e300}}', "hidden"),
    ('{"architecture": "glow", "config": {"image_shape": [1, 8, 8], "hidden": NaN}}', "hidden"),
    ('{"architecture": "nsf", "config": {"image_shape": [1, 8, 8], "tail_bound": Infinity}}', "tail_bound"),
    ('{"architecture": "nsf", "config": {"image_shape": [1, 8, 8], "tail_bound": -1e300}}', "tail_bound"),
])
def test_non_finite_and_huge_numbers_are_clean_config_errors(tmp_path, text, key):
    d = _tiny_dir(tmp_path)
    _edit_config(d, text)
    with pytest.raises(ConfigError, match=key) as info:
        nfzoo.load(str(d))
    assert "Exception raised from" not in str(info.value) and "\n" not in str(info.value)


def test_a_deeply_nested_config_json_is_a_config_error(tmp_path, runner, app):
    d = _tiny_dir(tmp_path)
    deep = "[" * 200_000 + "]" * 200_000     # json.loads itself gives up (RecursionError)
    _edit_config(d, '{"architecture": "glow", "config": {"image_shape": [1, 8, 8], "x": ' + deep + "}}")
    with pytest.raises(ConfigError, match="nested"):
        nfzoo.load(str(d))
    res = runner.invoke(app, ["sample", "--model", str(d), "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 2 and "nested" in res.output
    mid = "[" * 100 + "]" * 100               # parses, but no config is nested like that
    _edit_config(d, '{"architecture": "glow", "config": {"image_shape": [1, 8, 8], "hidden": ' + mid + "}}")
    with pytest.raises(ConfigError, match="nested"):
        nfzoo.load(str(d))


def test_a_number_with_thousands_of_digits_is_a_corrupt_file(tmp_path):
    d = _tiny_dir(tmp_path)
    _edit_config(d, '{"architecture": "glow", "config": {"hidden": ' + "9" * 5000 + "}}")
    with pytest.raises(CorruptFileError, match="not valid JSON"):
        nfzoo.load(str(d))


# ----------------------------------------------------------------- (b) size limits, before allocating
def test_a_model_over_the_parameter_limit_is_refused_without_allocating():
    t = time.perf_counter()
    # ~60000^2 weights per coupling net: tens of GB if it were allocated
    with pytest.raises(ConfigError, match=r"`hidden`.*NFZOO_MAX_PARAMS"):
        nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=60000)
    assert time.perf_counter() - t < 10


def test_the_parameter_limit_is_configurable(monkeypatch):
    nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=2, hidden=64)
    monkeypatch.setenv("NFZOO_MAX_PARAMS", "10000")
    with pytest.raises(ConfigError, match=r"limit of 1e\+04.*NFZOO_MAX_PARAMS"):
        nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=2, hidden=64)
    monkeypatch.setenv("NFZOO_MAX_PARAMS", "lots")
    with pytest.raises(ConfigError, match="NFZOO_MAX_PARAMS"):
        nfzoo.create_model("glow", image_shape=(1, 8, 8))


def test_activations_over_the_limit_are_refused(monkeypatch):
    monkeypatch.setenv("NFZOO_MAX_ACTIVATION_GB", "0.25")
    with pytest.raises(ConfigError, match=r"GiB of activations.*`image_shape`.*NFZOO_MAX_ACTIVATION_GB"):
        nfzoo.create_model("glow", image_shape=(3, 2048, 2048), levels=1, steps=1, hidden=8)


def test_training_checks_the_activations_of_one_batch(tmp_path, monkeypatch):
    from nfzoo.training.trainer import TrainConfig, Trainer

    tiny = {"levels": 2, "steps": 1, "hidden": 8}
    plan = shape_build.plan_model("glow", *_builder("glow", image_shape=[1, 8, 8], **tiny))
    per_image = plan.activation_bytes_per_image
    monkeypatch.setenv("NFZOO_MAX_ACTIVATION_GB", str(per_image * 100 / 2 ** 30))
    Trainer(TrainConfig(arch="glow", dataset="digits", batch_size=64, model=tiny), tmp_path / "a")._build()
    t = Trainer(TrainConfig(arch="glow", dataset="digits", batch_size=1000, model=tiny), tmp_path / "b")
    with pytest.raises(ConfigError, match="batch of 1000"):
        t._build()


def _builder(arch, **config):
    from nfzoo.loading.api import architecture_config
    from nfzoo.registry.plugins import get_registry

    full = limits.check_config(arch, architecture_config(arch, **config))
    kwargs = {**full, "image_shape": tuple(full["image_shape"])}
    return get_registry().get("architectures", arch).load(), kwargs, full


def test_train_set_hidden_huge_exits_2_before_writing(tmp_path, runner, app):
    out = tmp_path / "run"
    for value in ("100000000", "60000"):
        res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--set", f"hidden={value}",
                                  "--out", str(out)])
        assert res.exit_code == 2, res.output
        assert "hidden" in res.output and not out.exists()


def test_a_config_cannot_make_a_build_loop_for_minutes():
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="modules.*`steps`"):
        nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=3, steps=512, hidden=1, blocks=64)
    assert time.perf_counter() - t < 60


def test_an_architecture_specific_key_is_bounded_too():
    """ddpm's timesteps is no common key: the shape build counts what its schedule would allocate."""
    pytest.importorskip("diffusers")
    with pytest.raises(ConfigError, match="timesteps"):
        nfzoo.create_model("ddpm", image_shape=(1, 8, 8), unet_channels=[8, 16], timesteps=10 ** 12)


def test_a_builder_that_reads_a_large_tensor_is_built_for_real_under_the_same_budget(monkeypatch):
    """ddpm's schedule reads betas[0]: with T = 2e7 the shape build cannot leave betas on `meta`, so the
    builder runs for real, every allocation counted before it happens (the float64 copy is refused)."""
    pytest.importorskip("diffusers")
    monkeypatch.setenv("NFZOO_MAX_PARAMS", str(2 * 10 ** 7))
    with pytest.raises(ConfigError, match="`timesteps`"):
        nfzoo.create_model("ddpm", image_shape=(1, 8, 8), unet_channels=[8, 16], timesteps=2 * 10 ** 7)


@pytest.mark.parametrize("arch", nfzoo.list_models())
def test_every_architecture_is_counted_by_a_shape_build(arch):
    """The mechanism lives in the core's build path, so it covers the plugins' architectures: each one's
    shape build runs without allocating its large tensors and counts what the real build creates."""
    builder, kwargs, full = _builder(arch)
    rng = torch.get_rng_state()
    plan = shape_build.plan_model(arch, builder, kwargs, full)
    assert torch.equal(rng, torch.get_rng_state()), "a shape build must not move the global RNG"
    assert plan.model is None, f"{arch} could not be built with its large tensors on `meta`"
    real = nfzoo.create_model(arch)
    assert plan.parameters == sum(p.numel() for p in real.parameters())
    assert plan.state.keys() == real.state_dict().keys()


def test_create_model_draws_the_same_initial_weights_as_before():
    torch.manual_seed(3)
    a = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8).state_dict()
    torch.manual_seed(3)
    builder, kwargs, _ = _builder("glow", image_shape=[1, 8, 8], levels=1, steps=1, hidden=8)
    b = builder(**kwargs).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------- (c) weights' header against the config
def _real_builds(monkeypatch):
    """Records, for every FlowModel built, whether its large tensors were real (not on `meta`)."""
    from nfzoo.flows.model import FlowModel

    seen = []
    init = FlowModel.__init__

    def spy(self, bijector, *a, **k):
        seen.append(any(p.device.type != "meta" for p in bijector.parameters() if p.numel() >= 1 << 16))
        init(self, bijector, *a, **k)
    monkeypatch.setattr(FlowModel, "__init__", spy)
    return seen


def test_a_config_that_does_not_match_the_weights_is_refused_before_the_model_is_built(tmp_path, monkeypatch):
    d = _tiny_dir(tmp_path)
    _edit_config(d, hidden=2048)          # a real build would allocate its 2048^2 weights
    seen = _real_builds(monkeypatch)
    with pytest.raises(ConfigError, match=r"do not match.*config\.json") as info:
        nfzoo.load(str(d))
    assert "model.safetensors" in str(info.value)
    assert seen and not any(seen), "the real model was built before the header was compared"


def test_a_hub_sized_config_asking_for_huge_images_is_refused(tmp_path, runner, app):
    d = _tiny_dir(tmp_path)
    _edit_config(d, image_shape=[3, 100000, 100000])
    with pytest.raises(ConfigError, match="image_shape"):
        nfzoo.load(str(d))
    _edit_config(d, image_shape=[1, 1024, 1024])    # within the caps: the header says otherwise
    with pytest.raises(ConfigError, match="do not match"):
        nfzoo.load(str(d))
    res = runner.invoke(app, ["sample", "--model", str(d), "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 2 and "do not match" in res.output


def test_a_truncated_header_is_a_corrupt_file(tmp_path):
    d = _tiny_dir(tmp_path)
    (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:20])
    with pytest.raises(CorruptFileError, match="not a valid safetensors"):
        nfzoo.load(str(d))


def test_every_embedded_zoo_model_still_loads():
    from nfzoo.loading.api import resolve_pretrained

    loaded = []
    for name in nfzoo.list_pretrained():
        meta = resolve_pretrained(name).metadata
        if meta.get("kind") == "oracle" or not meta.get("path"):
            continue
        m = nfzoo.load(name)
        assert all(torch.isfinite(p).all() for p in m.parameters())
        loaded.append(name)
    assert "glow-mnist5k" in loaded and len(loaded) >= 5
