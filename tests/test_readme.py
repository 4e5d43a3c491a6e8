"""The README's examples run (issue 21): every ```python block of README.md, as written, in a fresh working
directory and offline (its Hub push goes to the loopback Hub of the `hub` fixture), and the shell examples
of an explicit allow-list (the cheap, offline ones; training, downloads and long sampling are left out)."""
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M)
EXAMPLE_PLUGIN = ROOT / "examples" / "nfzoo-example-plugin"

# The shell examples that run: (the text of README.md it instantiates, the arguments of `nfzoo`, the exit
# code the README promises). Synopsis lines (`nfzoo info NAME [--json]`) are run with a concrete NAME.
# Left out: `nfzoo train ...` and `nfzoo eval ...` (training, minutes), `nfzoo pull` of a published model
# and `--download` (network), `--nproc` / torchrun (several processes), `nfzoo bench` (minutes), the
# diffusion samplers' `nfzoo sample --model diffused-flows --sampler ddim ...` (U-Net steps, slow on the CPU)
# and the heads' commands (they need input files, or train classifiers for minutes; plugins/heads/tests run
# them).
SHELL = [
    ("`nfzoo --help`", ["--help"], 0),
    ("nfzoo list [PATTERN] [--pretrained] [--json]", ["list", "n*"], 0),
    ("`nfzoo list --pretrained`", ["list", "--pretrained"], 0),
    ("nfzoo info NAME [--json]", ["info", "glow"], 0),
    ("nfzoo plugins [--json]", ["plugins", "--json"], 0),
    ("nfzoo cache ls|verify|rm [NAME] [--all] [--json]", ["cache", "ls", "--json"], 0),
    ("`nfzoo pull glem-cifar100` says so in one line", ["pull", "glem-cifar100"], 1),   # unpublished: exit 1
    ("`nfzoo sample --model inverse-flow -n 64 --seed 0 --out samples.png`",
     ["sample", "--model", "inverse-flow", "-n", "64", "--seed", "0", "--out", "samples.png"], 0),   # the main job
]


def _first_line(block: str) -> str:
    return block.strip().splitlines()[0]


def test_every_python_block_is_accounted_for():
    """A new block must get a test here (or a line saying where it runs)."""
    assert [_first_line(b) for b in BLOCKS] == ["import torch, nfzoo", "# nfzoo_example/plugin.py",
                                                "from nfzoo.testing import check_bijector",
                                                "import torch, nfzoo, nfzoo_heads"]


def test_python_api_block(hub, tmp_path, monkeypatch):
    """The Python API block, its `nfzoo.hub.publish.push` included (against the loopback Hub, no token)."""
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(BLOCKS[0], "README.md Python API", "exec"), scope)
    assert scope["z"].shape == (8, 1, 28, 28) and scope["imgs"].shape == (4, 1, 8, 8)   # as its comments say
    served = hub.files("me/my-glow", hub.resolve("me/my-glow", "main"))
    assert {"config.json", "model.safetensors", "README.md"} <= set(served)


def test_plugin_blocks(tmp_path, monkeypatch):
    """The plugin module's block defines its hooks, whose lazy targets resolve; the testing-kit block runs on
    the example plugin's LeakyAffine (the block's own context: `examples/nfzoo-example-plugin`)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
    scope = {}
    exec(compile(BLOCKS[1], "README.md plugin module", "exec"), scope)
    registered = []
    scope["register_bijectors"](lambda name, target, **meta: registered.append((name, target)))
    scope["register_architectures"](lambda name, target, **meta: registered.append((name, target)))
    import importlib

    for name, target in registered:
        module, attr = target.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), name
    from nfzoo_example.layers import LeakyAffine

    exec(compile(BLOCKS[2], "README.md testing kit", "exec"), {"LeakyAffine": LeakyAffine})
    for module in [m for m in sys.modules if m.split(".")[0] == "nfzoo_example"]:
        del sys.modules[module]        # tests/test_example_plugin.py installs the real one


# The fourth block, the heads' Python API (about 35 s: a latent fit, the typicality reference over mnist5k's
# training split), is run with checks on its results by plugins/heads/tests/test_heads.py
# (test_the_readme_example_runs), beside the plugin it needs.


@pytest.mark.parametrize("text, args, code", SHELL, ids=[" ".join(a) for _, a, _ in SHELL])
def test_shell_example(text, args, code, tmp_path, monkeypatch, runner, app):
    """In process (`nfzoo` is this typer app; tests/test_cli.py runs the script itself), offline, in an empty
    working directory and an empty Hugging Face cache."""
    assert text in README, f"README.md no longer says {text!r}: update the allow-list"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    res = runner.invoke(app, args)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    assert res.exit_code == code and "Traceback" not in res.output, res.output
    if "--out" in args:
        assert (tmp_path / args[args.index("--out") + 1]).is_file()
