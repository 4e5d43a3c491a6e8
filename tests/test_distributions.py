"""Issue 36, habits: every distribution takes its version from one place (its package's `__version__`, read by
setuptools as a dynamic version) and ships `py.typed` in every package, so type checkers read its hints."""
import importlib
import importlib.metadata
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECTS = [ROOT / "pyproject.toml", ROOT / "zoo" / "pyproject.toml",
              *sorted((ROOT / "plugins").glob("*/pyproject.toml"))]


def _packages(pyproject: Path):
    """(distribution name, its packages' folders) of a pyproject."""
    text = pyproject.read_text()
    name = re.search(r'^name = "([^"]+)"', text, re.M).group(1)
    if pyproject.parent == ROOT:
        return name, [ROOT / "core" / "nfzoo", ROOT / "cli" / "nfzoo_cli"]
    return name, [pyproject.parent / p for p in re.findall(r'^packages = \["([^"]+)"\]', text, re.M)] or \
        [pyproject.parent / "nfzoo_zoo"]


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: p.parent.name)
def test_one_version_source_per_distribution(pyproject):
    text = pyproject.read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    assert not re.search(r'^version = ', project, re.M), "the version is the package's __version__ (dynamic)"
    assert re.search(r'^dynamic = \["version"\]', text, re.M)
    name, folders = _packages(pyproject)
    main = re.search(r'version = \{attr = "([a-z_]+)\.__version__"\}', text).group(1)
    assert main == folders[0].name
    for folder in folders:
        assert importlib.import_module(folder.name).__version__ == importlib.metadata.version(name)


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: p.parent.name)
def test_every_package_ships_py_typed(pyproject):
    _, folders = _packages(pyproject)
    for folder in folders:
        assert (folder / "py.typed").is_file(), folder
        assert f'{folder.name} = ["py.typed"' in pyproject.read_text(), f"{folder.name}'s package data lists py.typed"


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: p.parent.name)
def test_every_distribution_carries_its_licence(pyproject):
    """PEP 639: an SPDX expression and the licence file beside each pyproject, so each wheel ships its text."""
    text = pyproject.read_text()
    assert re.search(r'^license = "MIT"$', text, re.M) and re.search(r'^license-files = \["LICENSE"\]$', text, re.M)
    assert (pyproject.parent / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
