"""The CLI contract: fast torch-free listing commands, JSON output, exit codes and suggestions."""
import json
import subprocess
import sys

import pytest


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "nfzoo_cli", *args], capture_output=True, text=True, env=env)


def test_the_core_does_not_run_or_import_the_cli():
    """`python -m nfzoo_cli` is the command (torchrun relaunches it); `python -m nfzoo`, the library, says
    so and exits 2; no module of the core imports the CLI or a plugin (issue 21)."""
    import ast
    from pathlib import Path

    import nfzoo

    res = _run("--help")
    assert res.returncode == 0 and "sample" in res.stdout
    res = subprocess.run([sys.executable, "-m", "nfzoo", "list"], capture_output=True, text=True)
    assert res.returncode == 2 and "python -m nfzoo_cli" in res.stderr and res.stdout == ""
    bad = []
    for f in Path(nfzoo.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            bad += [f"{f}: {n}" for n in names if n.split(".")[0] != "nfzoo" and n.startswith("nfzoo")]
    assert not bad, bad


def test_listing_commands_do_not_import_torch():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from nfzoo_cli.app import build_app\n"
        "r = CliRunner()\n"
        "for args in (['--help'], ['list'], ['list', '--json'], ['info', 'glow'], ['info', 'glow', '--json'],"
        " ['plugins'], ['plugins', '--json'], ['list', '--pretrained']):\n"
        "    res = r.invoke(build_app(), args)\n"
        "    assert res.exit_code == 0, (args, res.output)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_list_shows_the_classic_flows(runner, app):
    res = runner.invoke(app, ["list", "--json"])
    assert res.exit_code == 0
    names = {e["name"] for e in json.loads(res.stdout)}
    assert {"nice", "realnvp", "glow", "nsf"} <= names
    res = runner.invoke(app, ["list", "gl?w", "--json"])
    assert [e["name"] for e in json.loads(res.stdout)] == ["glow"]


def test_plugins_json_lists_builtins_with_hooks(runner, app):
    res = runner.invoke(app, ["plugins", "--json"])
    assert res.exit_code == 0
    core = {p["name"]: p for p in json.loads(res.stdout)}["nfzoo"]
    assert core["builtin"] and "register_architectures" in core["hooks"]


def test_info_reads_config_defaults_without_importing(runner, app):
    res = runner.invoke(app, ["info", "glow", "--json"])
    doc = json.loads(res.stdout)
    assert doc["config"]["levels"] == 2 and doc["config"]["image_shape"] == [1, 28, 28]
    assert "hidden" in doc["config"] and doc["plugin"] == "nfzoo"


@pytest.mark.parametrize("args,needle", [
    (["info", "glwo"], "glow"),
    (["train", "glwo", "--dataset", "digits"], "glow"),
    (["train", "glow", "--dataset", "mnist5"], "mnist5k"),
    (["sample", "--model", "nowhere-model"], "unknown pretrained model"),
    (["eval", "glow", "--dataset", "digits", "--task", "clasify"], "classify"),
    (["bench", "trian"], "train"),
    (["bench", "tarflow", "--model", "nowhere-model"], "unknown pretrained model"),
    (["bench", "train", "--model", "glow-mnist5k"], "drop --model"),
    (["bench", "tarflow", "--quick", "--model", "tarflow-mnist5k"], "drop --model"),
])
def test_unknown_names_exit_2_and_suggest(runner, app, args, needle):
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert needle in res.output


def test_console_script_exit_code_and_message_for_bad_input(tmp_path):
    res = _run("train", "glow", "--dataset", "digits", "--set", "levels=4", "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert "not divisible by 2^levels" in res.stderr and "levels <= 3" in res.stderr
    assert not (tmp_path / "r").exists(), "nothing may be written for a config that cannot build"


def test_bad_set_syntax_and_unknown_config_key(runner, app, tmp_path):
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--set", "levels"])
    assert res.exit_code == 2 and "KEY=VALUE" in res.output
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--set", "hiden=3"])
    assert res.exit_code == 2 and "hidden" in res.output


def test_sample_from_a_trained_directory_is_seeded(runner, app, tiny_run, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for path, seed in ((a, "1"), (b, "1"), (c, "2")):
        res = runner.invoke(app, ["sample", "--model", str(tiny_run), "-n", "9", "--seed", seed,
                                  "--temperature", "0.8", "--out", str(path)])
        assert res.exit_code == 0, res.output
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()
    from PIL import Image

    img = Image.open(a)
    assert img.size == (3 * 8 + 4 * 2, 3 * 8 + 4 * 2)  # 3x3 grid of 8x8 with 2-px padding
    d = tmp_path / "dir"
    res = runner.invoke(app, ["sample", "--model", str(tiny_run), "-n", "3", "--out", str(d)])
    assert res.exit_code == 0 and sorted(p.name for p in d.iterdir()) == [
        "000000.png", "000001.png", "000002.png", "grid.png"]


def test_sample_rejects_labels_for_unconditional_models(runner, app, tiny_run, tmp_path):
    res = runner.invoke(app, ["sample", "--model", str(tiny_run), "--label", "3", "--out",
                              str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "unconditional" in res.output


def test_eval_json_reports_bpd(runner, app, tiny_run):
    res = runner.invoke(app, ["eval", str(tiny_run), "--dataset", "digits", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["task"] == "bpd" and doc["images"] == 359 and 0 < doc["bpd"] < 12
    res2 = runner.invoke(app, ["eval", str(tiny_run), "--dataset", "digits", "--json"])
    assert json.loads(res2.stdout)["bpd"] == doc["bpd"], "evaluation must be deterministic"


def test_eval_rejects_a_dataset_of_another_shape(runner, app, tiny_run):
    res = runner.invoke(app, ["eval", str(tiny_run), "--dataset", "mnist5k"])
    assert res.exit_code == 2 and "shape" in res.output
