"""Plugin discovery: entry points, the allow-list, broken plugins, name conflicts, registering by hand."""
import json

import pytest

import nfzoo
from nfzoo.errors import PluginConflictError, UnknownNameError

GOOD = '''
import nfzoo

@nfzoo.hookimpl
def register_architectures(register):
    register("fake-arch", "nfzoo.flows.architectures:glow", description="a fake architecture")
'''

BROKEN = '''
raise RuntimeError("this plugin is broken on purpose")
'''

CLASH = '''
import nfzoo

@nfzoo.hookimpl
def register_architectures(register):
    register("glow", "nfzoo.flows.architectures:glow", description="a second glow")
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
    assert nfzoo.registry.plugins.get_registry().get("architectures", "fake-arch").plugin == "good"


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
            register("my-prior", "nfzoo.flows.priors:StandardNormal", description="mine")

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
    res = subprocess.run([sys.executable, "-m", "nfzoo_cli", "plugins", "--json"], capture_output=True, text=True,
                         env=env)
    assert res.returncode == 0, res.stderr
    assert "warning" in res.stderr and "goood" in res.stderr and "did you mean 'good'" in res.stderr
    doc = {p["name"]: p for p in json.loads(res.stdout)}
    assert "not installed" in doc["goood"]["error"]


TASKER = '''
import nfzoo

@nfzoo.hookimpl
def register_eval_tasks(register):
    register("mean-pixel", "fakeplug_tasker:mean_pixel", description="mean pixel of n samples")

def mean_pixel(model, dataset, *, seed, data_root, device, progress, model_name, n=4, scale=1.0):
    import torch

    x = model.sample(n, generator=torch.Generator().manual_seed(seed))
    progress("sampling", n, n)
    value = float(x.mean()) * scale
    return {"mean": value, "n": n, "device": device, "summary": [f"mean pixel {value:.4f}"]}
'''


def test_a_plugin_eval_task_is_registered_by_its_hook_and_run_by_nfzoo_eval(fake_plugin, runner, app, tmp_path):
    """register_eval_tasks (issue 21): `nfzoo plugins` lists the task, `nfzoo eval --task` calls it as
    nfzoo.registry.hookspecs.EvalTask says (options from --set and --samples, unknown options exit 2, `summary`
    printed without --json)."""
    fake_plugin("tasker", TASKER)
    d = tmp_path / "model"
    nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=2, steps=2, hidden=16).save_pretrained(d)
    r = runner.invoke(app, ["plugins", "--json"])
    assert {p["name"]: p for p in json.loads(r.stdout)}["tasker"]["eval_tasks"] == ["mean-pixel"]
    assert "register_eval_tasks" in {p["name"]: p for p in json.loads(r.stdout)}["tasker"]["hooks"]
    r = runner.invoke(app, ["info", "mean-pixel", "--json"])
    assert json.loads(r.stdout)["kind"] == "eval task"
    r = runner.invoke(app, ["eval", str(d), "--dataset", "digits", "--task", "mean-pixel", "--samples", "3",
                            "--set", "scale=2", "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["model"] == str(d) and doc["dataset"] == "digits" and doc["n"] == 3 and doc["device"] == "cpu"
    assert "summary" not in doc
    r = runner.invoke(app, ["eval", str(d), "--dataset", "digits", "--task", "mean-pixel", "--set", "nope=1"])
    assert r.exit_code == 2 and "nope" in r.output and "n, scale" in r.output
    r = runner.invoke(app, ["eval", str(d), "--dataset", "digits", "--task", "mean-pixl"])
    assert r.exit_code == 2 and "mean-pixel" in r.output
    r = runner.invoke(app, ["eval", str(d), "--dataset", "digits", "--task", "mean-pixel", "--device", "cpu"])
    assert r.exit_code == 0 and "mean pixel" in r.stdout


def test_plugins_import_only_the_public_api_and_the_cli_toolkit():
    """First-party plugins import no private name of nfzoo or nfzoo_cli, and from the CLI only its public
    toolkit, nfzoo_cli.toolkit (issue 21)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "plugins"
    bad = []
    for f in root.glob("*/nfzoo_*/**/*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top = node.module.split(".")[0]
                if top == "nfzoo_cli" and node.module != "nfzoo_cli.toolkit":
                    bad.append(f"{f}: from {node.module}")
                if top in ("nfzoo", "nfzoo_cli") and (any(a.name.startswith("_") for a in node.names)
                                                      or any(p.startswith("_") for p in node.module.split("."))):
                    bad.append(f"{f}: from {node.module} import {', '.join(a.name for a in node.names)}")
            elif isinstance(node, ast.Import):
                bad += [f"{f}: import {a.name}" for a in node.names
                        if a.name.startswith("nfzoo_cli") and a.name != "nfzoo_cli.toolkit"]
    assert not bad, bad
