"""The one loading path: the name rule (a folder in the working directory never shadows a zoo name), the
typed pretrained entry, and the resolver that nfzoo.load and the oracle share."""
import pytest
import torch

import nfzoo
from nfzoo.errors import ConfigError, UnknownNameError, UsageError
from nfzoo.loading.pretrained import PretrainedEntry, is_path_like, resolve_pretrained
from nfzoo.loading.sources import resolve_source


@pytest.fixture
def shadow(tmp_path, monkeypatch):
    """The working directory holds a tiny glow saved as `inverse-flow/` (a zoo family name)."""
    torch.manual_seed(0)
    nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8).save_pretrained(
        tmp_path / "inverse-flow")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "inverse-flow"


def test_a_folder_in_the_working_directory_does_not_shadow_a_zoo_name(shadow):
    src = resolve_source("inverse-flow")
    assert src.origin == "embedded" and src.entry.name == "inverse-flow-mnist5k"
    model = nfzoo.load("inverse-flow")
    assert model.architecture == "inverse-flow" and model.config["image_shape"] == [1, 28, 28]


@pytest.mark.parametrize("name", ["./inverse-flow", "local-dir:inverse-flow"])
def test_a_path_or_local_dir_loads_the_folder(shadow, name):
    assert resolve_source(name).path.resolve() == shadow.resolve()
    model = nfzoo.load(name)
    assert model.architecture == "glow" and model.config["image_shape"] == [1, 8, 8]


def test_a_pathlike_object_is_a_directory(shadow):
    from pathlib import Path

    assert nfzoo.load(Path("inverse-flow")).architecture == "glow"


def test_a_bare_unknown_name_is_not_a_directory(shadow, tmp_path):
    (tmp_path / "my-run").mkdir()
    with pytest.raises(UnknownNameError) as info:
        nfzoo.load("my-run")
    assert "./my-run" in str(info.value) and "local-dir:my-run" in str(info.value)
    with pytest.raises(UnknownNameError, match=r"\./NAME"):
        nfzoo.load("no-such-model")


def test_a_missing_directory_says_so(tmp_path):
    with pytest.raises(UsageError, match="no such directory"):
        nfzoo.load(str(tmp_path / "nowhere"))
    with pytest.raises(UsageError, match="no such directory"):
        nfzoo.load("local-dir:" + str(tmp_path / "nowhere"))


def test_the_name_rule():
    assert all(is_path_like(n) for n in ("./x", "../x", "~/x", ".x", "a/b", "/abs", "local-dir:x"))
    assert not any(is_path_like(n) for n in ("inverse-flow", "glow-mnist5k", "hf-hub:org/name", "x.y"))


def test_the_oracle_follows_the_same_rule(tmp_path, monkeypatch):
    from nfzoo.evaluation.oracle import OracleNet, find_oracle

    torch.manual_seed(0)
    OracleNet(image_shape=(1, 8, 8), num_classes=10).save(tmp_path / "my-oracle")
    monkeypatch.chdir(tmp_path)
    net, where = find_oracle("./my-oracle")
    assert net.image_shape == (1, 8, 8) and where == "./my-oracle"
    with pytest.raises(UnknownNameError, match=r"\./my-oracle"):
        find_oracle("my-oracle")
    with pytest.raises(UsageError, match="not an oracle classifier"):
        find_oracle("glow-mnist5k")   # a flow model is not an oracle (refused before any file is read)
    with pytest.raises(UsageError, match="oracle classifier"):
        nfzoo.load("oracle-mnist5k")


def test_the_typed_pretrained_entry():
    e = resolve_pretrained("glow")   # a family name: its default model
    assert isinstance(e, PretrainedEntry) and e.name == "glow-mnist5k" and e.architecture == "glow"
    assert e.dataset == "mnist5k" and e.kind == "flow" and e.default and e.repo_id == "nfzoo/glow-mnist5k"
    assert set(e.files) >= {"config.json", "model.safetensors"} and e.config["image_shape"] == [1, 28, 28]
    assert e.metadata["description"] and e.path and e.status == "embedded"
    from nfzoo.registry.plugins import Entry

    bad = Entry("pretrained", "bad", "bad", "p", {"files": ["model.safetensors"]})
    with pytest.raises(ConfigError, match="'files' must be an object"):
        PretrainedEntry.of(bad)
