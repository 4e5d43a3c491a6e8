"""Each first-party plugin's README (its wheel's long description, issue 37) shows code that runs: its Python
block imports what it names, its shell example answers with exit 0."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READMES = sorted((ROOT / "plugins").glob("*/README.md"))


def _blocks(text: str, lang: str) -> list:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def test_every_plugin_has_a_readme_its_wheel_describes_itself_with():
    for pyproject in (ROOT / "plugins").glob("*/pyproject.toml"):
        assert 'readme = "README.md"' in pyproject.read_text() and (pyproject.parent / "README.md").is_file()


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.parent.name)
def test_plugin_readme_code_runs(readme, tmp_path):
    text = readme.read_text()
    (code,) = _blocks(text, "python")
    exec(compile(code, str(readme), "exec"), {})
    shell = [line for block in _blocks(text, "bash") for line in block.splitlines() if line.startswith("nfzoo ")]
    assert shell
    for line in shell:
        args = shlex.split(line)[1:]
        out = subprocess.run([sys.executable, "-m", "nfzoo_cli", *args], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, (line, out.stderr[-2000:])
        assert out.stdout.strip()
