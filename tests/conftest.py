import os
import sys
import textwrap

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def fresh_registry():
    """Rebuild the plugin registry before and after the test (it caches what it loaded)."""
    import nfzoo.registry.plugins as plugins

    plugins.reset()
    yield plugins
    plugins.reset()


@pytest.fixture
def fake_plugin(tmp_path, monkeypatch, fresh_registry):
    """Install a throw-away plugin distribution on sys.path: write(name, source) -> its entry-point name."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def write(name: str, source: str) -> str:
        module = f"fakeplug_{name}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        dist = site / f"{module}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[nfzoo]\n{name} = {module}\n")
        sys.modules.pop(module, None)
        fresh_registry.reset()
        return name

    yield write


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny glow trained for 2 epochs on digits through the CLI, shared by several tests."""
    from typer.testing import CliRunner

    from nfzoo_cli.app import build_app

    out = tmp_path_factory.mktemp("runs") / "glow-digits"
    res = CliRunner().invoke(build_app(), ["train", "glow", "--dataset", "digits", "--epochs", "2",
                                           "--set", "levels=2", "--set", "steps=1", "--set", "hidden=8",
                                           "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A Hub-compatible HTTP server on loopback (tests/hubserver.py) serving a fresh folder of repos, with
    HF_ENDPOINT, HF_HUB_CACHE and HF_HOME pointed at it and at an empty cache; stopped after the test."""
    from hubserver import HubServer

    server = HubServer(tmp_path / "hub-repos")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGINGFACE_HUB_CACHE",
                "NFZOO_HUB_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    import huggingface_hub.constants as hf_constants  # it read HF_HUB_OFFLINE when first imported

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    # ... and HF_ENDPOINT: a bare `HfApi()` (as the guides' blocks write it) takes constants.ENDPOINT
    monkeypatch.setattr(hf_constants, "ENDPOINT", server.url)
    monkeypatch.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        server.url + "/{repo_id}/resolve/{revision}/{filename}")
    yield server
    server.stop()
