"""The example third-party plugin: installed with pip, found through its entry point, trained for a
step, checked with the testing kit, uninstalled."""
import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "nfzoo-example-plugin"


def _nfzoo(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nfzoo_cli", *args], capture_output=True, text=True, cwd=cwd)


def test_example_plugin_install_use_uninstall(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    res = subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", str(EXAMPLE)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    try:
        _use_the_plugin(tmp_path)
    finally:
        res = subprocess.run([*pip, "uninstall", "-y", "nfzoo-example"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    names = {e["name"] for e in json.loads(_nfzoo("list", "--json").stdout)}
    assert "leaky-glow" not in names and {"glow", "nsf"} <= names


def _use_the_plugin(tmp_path):
    res = _nfzoo("plugins", "--json")
    plugins = {p["name"]: p for p in json.loads(res.stdout)}
    assert plugins["example"]["error"] is None
    assert plugins["example"]["hooks"] == ["register_architectures", "register_bijectors"]
    res = _nfzoo("list", "--json")
    assert "leaky-glow" in {e["name"] for e in json.loads(res.stdout)}
    res = _nfzoo("train", "leaky-glow", "--dataset", "digits", "--epochs", "1", "--set", "levels=1",
                 "--set", "hidden=8", "--out", str(tmp_path / "run"), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["steps"] == 23
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(EXAMPLE / "tests")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    # and the core's kit run over every registered bijector now includes the plugin's
    code = ("from nfzoo.registry.plugins import get_registry\n"
            "e = get_registry().get('bijectors', 'leaky-affine')\n"
            "from nfzoo.testing import check_bijector\n"
            "kw, shape = e.metadata['example']\n"
            "check_bijector(e.load()(**kw), shape)\nprint(e.plugin)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "example", res.stderr
