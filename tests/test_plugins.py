"""Plugin discovery: entry points, the allow-list, broken plugins, name conflicts, registering by hand."""
import json

import pytest

import nfzoo
from nfzoo.errors import PluginConflictError, UnknownNameError

GOOD = '''
import nfzoo

@nfzoo.hookimpl
def register_architectures(register):
    register("fake-arch", "nfzoo.architectures:glow", description="a fake architecture")
'''

BROKEN = '''
raise RuntimeError("this plugin is broken on purpose")
'''

CLASH = '''
import nfzoo

@nfzoo.hookimpl
def register_architectures(register):
    register("glow", "nfzoo.architectures:glow", description="a second glow")
'''


def test_builtins_are_registered_through_the_hooks(fresh_registry):
    plugins = {p["name"]: p for p in nfzoo.list_plugins()}
    core = plugins["nfzoo"]
    assert core["builtin"] and core["error"] is None
    assert {"register_architectures", "register_bijectors", "register_priors",
            "register_samplers"} <= set(core["hooks"])
    assert {"nice", "realnvp", "glow", "nsf"} <= set(nfzoo.list_models())
    assert nfzoo.list_models("n*") == ["nice", "nsf"]


def test_entry_point_plugin_is_found(fake_plugin):
    fake_plugin("good", GOOD)
    assert "fake-arch" in nfzoo.list_models()
    info = {p["name"]: p for p in nfzoo.list_plugins()}["good"]
    assert info["hooks"] == ["register_architectures"] and info["version"] == "0.1"
    assert nfzoo.plugins.get_registry().get("architectures", "fake-arch").plugin == "good"


def test_broken_plugin_is_reported_not_fatal(fake_plugin, runner, app):
    fake_plugin("broken", BROKEN)
    assert "glow" in nfzoo.list_models()  # the rest keeps working
    info = {p["name"]: p for p in nfzoo.list_plugins()}["broken"]
    assert "broken on purpose" in info["error"]
    res = runner.invoke(app, ["plugins", "--json"])
    assert res.exit_code == 0
    assert "broken on purpose" in {p["name"]: p for p in json.loads(res.stdout)}["broken"]["error"]


def test_allow_list(fake_plugin, monkeypatch, fresh_registry):
    fake_plugin("good", GOOD)
    monkeypatch.setenv("NFZOO_LOAD_PLUGINS", "")
    fresh_registry.reset()
    assert "fake-arch" not in nfzoo.list_models() and "glow" in nfzoo.list_models()
    monkeypatch.setenv("NFZOO_LOAD_PLUGINS", "good")
    fresh_registry.reset()
    assert "fake-arch" in nfzoo.list_models()


def test_duplicate_names_are_an_error_naming_both(fake_plugin):
    fake_plugin("clash", CLASH)
    with pytest.raises(PluginConflictError) as exc:
        nfzoo.list_models()
    assert "'clash'" in str(exc.value) and "'nfzoo'" in str(exc.value) and "glow" in str(exc.value)


def test_register_plugin_by_hand(fresh_registry):
    class Mine:
        @nfzoo.hookimpl
        def register_priors(self, register):
            register("my-prior", "nfzoo.priors:StandardNormal", description="mine")

    reg = fresh_registry.get_registry()
    reg.register_plugin(Mine(), "mine")
    assert reg.get("priors", "my-prior").plugin == "mine"
    reg.unregister_plugin("mine")
    with pytest.raises(UnknownNameError, match="unknown prior .my-prior"):
        reg.get("priors", "my-prior")


def test_unknown_name_suggests_the_closest(fresh_registry):
    with pytest.raises(UnknownNameError) as exc:
        nfzoo.create_model("glwo")
    assert "glow" in str(exc.value)


def test_an_unknown_name_in_the_allow_list_is_reported(fake_plugin, monkeypatch, fresh_registry, tmp_path):
    """NFZOO_LOAD_PLUGINS=goood (a typo) loads nothing by that name: `nfzoo plugins` lists it as failed,
    naming the installed plugins and the closest one, and every command warns about it."""
    import os
    import subprocess
    import sys

    fake_plugin("good", GOOD)
    monkeypatch.setenv("NFZOO_LOAD_PLUGINS", "goood")
    fresh_registry.reset()
    reg = fresh_registry.get_registry()
    assert reg.unknown_allowed() == ["goood"]
    info = {p["name"]: p for p in nfzoo.list_plugins()}["goood"]
    assert "not installed" in info["error"] and "'good'" in info["error"] and "nfzoo" in info["error"]
    assert "fake-arch" not in nfzoo.list_models()
    env = {**os.environ, "NFZOO_LOAD_PLUGINS": "goood",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "nfzoo", "plugins", "--json"], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0, res.stderr
    assert "warning" in res.stderr and "goood" in res.stderr and "did you mean 'good'" in res.stderr
    doc = {p["name"]: p for p in json.loads(res.stdout)}
    assert "not installed" in doc["goood"]["error"]
