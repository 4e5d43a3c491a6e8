"""Every distribution's metadata (issues 36 and 37): one version source (its package's `__version__`, read by
setuptools as a dynamic version), `py.typed` in every package, its LICENSE, every third-party module it imports
declared as its dependency, first-party requirements as a compatible range, and `nfzoo[all]` naming every
first-party distribution."""
import ast
import importlib
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECTS = [ROOT / "pyproject.toml", ROOT / "zoo" / "pyproject.toml", ROOT / "zoo" / "tools" / "pyproject.toml",
              *sorted((ROOT / "plugins").glob("*/pyproject.toml"))]
UNPUBLISHED = {"nfzoo-docs"}   # the repository's docs tooling (reads and writes a checkout)


def _project(pyproject: Path) -> dict:
    return tomllib.loads(pyproject.read_text())


def _packages(pyproject: Path):
    """(distribution name, its top-level packages' folders) of a pyproject."""
    doc = _project(pyproject)
    name = doc["project"]["name"]
    if pyproject.parent == ROOT:
        return name, [ROOT / "core" / "nfzoo", ROOT / "cli" / "nfzoo_cli"]
    tops = [p for p in doc["tool"]["setuptools"]["packages"] if "." not in p]
    return name, [pyproject.parent / p for p in tops]


def _requirement_name(req: str) -> str:
    return _normal(re.split(r"[\s<>=!~\[;]", req, maxsplit=1)[0])


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(folders) -> dict:
    """{top-level module: files importing it} of every non-relative import in the folders (tests excluded),
    those inside functions (lazy imports) included."""
    out: dict = {}
    for folder in folders:
        for file in sorted(folder.rglob("*.py")):
            if "tests" in file.relative_to(folder).parts:
                continue
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for n in names:
                    out.setdefault(n.split(".")[0], set()).add(file.name)
    return out


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


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: str(p.parent.relative_to(ROOT)) or "nfzoo")
def test_every_imported_distribution_is_declared(pyproject):
    """A wheel must not rely on another package bringing what it imports (PyYAML, scipy and Pillow once did): every
    third-party module a distribution's packages import belongs to a distribution it requires, in its
    dependencies or (for an optional feature, imported lazily) in one of its extras."""
    project = _project(pyproject)["project"]
    name, folders = _packages(pyproject)
    declared = {_requirement_name(r) for r in project.get("dependencies", [])}
    extras = {_requirement_name(r) for reqs in project.get("optional-dependencies", {}).values() for r in reqs}
    owners = importlib.metadata.packages_distributions()
    own = {f.name for f in folders}
    missing = {}
    for module, files in _imports(folders).items():
        if module in sys.stdlib_module_names or module in own or module == "__future__":
            continue
        dists = {_normal(d) for d in owners.get(module, [])} or {_normal(module)}
        if not dists & (declared | extras):
            missing[module] = sorted(files)
    assert not missing, f"{name} imports modules of distributions it does not declare: {missing}"


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: str(p.parent.relative_to(ROOT)) or "nfzoo")
def test_first_party_requirements_are_compatible_ranges(pyproject):
    """Each plugin (and the zoo) requires nfzoo, and any other first-party distribution, as `>=X.Y,<X.(Y+1)` of
    this release, so a pip resolve never pairs a plugin with a core it was not built against."""
    project = _project(pyproject)["project"]
    first_party = {_project(p)["project"]["name"] for p in PYPROJECTS}
    version = importlib.import_module("nfzoo").__version__
    major, minor = (int(x) for x in version.split(".")[:2])
    want = f">={major}.{minor},<{major}.{minor + 1}"
    reqs = list(project.get("dependencies", [])) + [r for v in project.get("optional-dependencies", {}).values()
                                                      for r in v]
    for req in reqs:
        if _requirement_name(req) in first_party:
            assert req == _requirement_name(req) + want, f"{project['name']}: {req!r} should be {want}"
    if project["name"] != "nfzoo":
        assert any(_requirement_name(r) == "nfzoo" for r in project["dependencies"])


def test_all_extra_brings_every_first_party_distribution():
    names = {_project(p)["project"]["name"] for p in PYPROJECTS} - UNPUBLISHED - {"nfzoo"}
    extra = {_requirement_name(r) for r in _project(ROOT / "pyproject.toml")["project"]["optional-dependencies"]["all"]}
    assert extra == names


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: str(p.parent.relative_to(ROOT)) or "nfzoo")
def test_every_distribution_has_the_same_release_and_classifiers(pyproject):
    project = _project(pyproject)["project"]
    name, folders = _packages(pyproject)
    assert importlib.import_module(folders[0].name).__version__ == importlib.import_module("nfzoo").__version__
    if name in UNPUBLISHED:
        assert project["classifiers"] == ["Private :: Do Not Upload"]   # PyPI refuses an upload carrying it
        return
    assert "Typing :: Typed" in project["classifiers"]
    assert not any(c.startswith("License ::") for c in project["classifiers"])   # PEP 639: the expression only
    assert project["urls"]
