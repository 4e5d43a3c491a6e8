"""The docs tooling (issue 36): the experiment scripts under docs/results and the renderer of the generated
docs (zoo/tools/render_docs.py, the package nfzoo_docs.render_docs in zoo/tools/nfzoo_docs) import without
sys.path edits: every one of them loads by its file path (importlib, as a test or a tool would), does no work
on import (a script's work sits under `if __name__ == "__main__":`) and leaves sys.path as it was; the paper
scripts share one module, nfzoo_docs.papers. The block registry holds every block that README.md, the cards
and the site's pages (docs/pages) mark; what the renderer knows about the zoo's models is data (models.json),
not code; every recorded `python SCRIPT` command names a script that exists. That the rendered blocks, cards,
pages, index and zoo.csv are byte-identical to the committed files is tests/test_generated_docs.py's check (run
here through both command lines, in --check mode)."""
import ast
import importlib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
TOOLS = ROOT / "zoo" / "tools"
PACKAGE = TOOLS / "nfzoo_docs"
SCRIPTS = sorted(RESULTS.rglob("*.py"))
TOOL_FILES = sorted(TOOLS.rglob("*.py"))
DOCS = [ROOT / "README.md", *sorted((ROOT / "zoo" / "nfzoo_zoo" / "models").glob("*/README.md")),
        *sorted((ROOT / "docs" / "pages").rglob("*.md"))]   # the site's pages (issue 37)
INDEX = json.loads((ROOT / "zoo" / "nfzoo_zoo" / "index.json").read_text())["models"]
SYS_PATH_EDIT = re.compile(r"\bsys\.path\s*(?:\.\s*(?:insert|append|extend|remove|pop|clear)\b|\+=|\[[^\]]*\]\s*=|=)")
LOOSE_MARKER = re.compile(r"(?:<!--|#) nfzoo:generated ([\w.:+-]+) \(")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _dotted(path: Path) -> str:
    """The module name of a file of the nfzoo_docs package (its __init__: the package's)."""
    parts = path.relative_to(TOOLS).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _load(name: str, path: Path, package: bool = False):
    """Execute the file as a fresh module `name`, by its path (not put in sys.modules; no main: `name` is not
    "__main__"), with sys.argv emptied (a script that reads it on import fails here); sys.path must not move."""
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(path.parent)] if package else None)
    module = importlib.util.module_from_spec(spec)
    before, argv = list(sys.path), sys.argv
    sys.argv = [str(path)]
    try:
        spec.loader.exec_module(module)
    finally:
        sys.argv = argv
    assert sys.path == before, f"importing {_rel(path)} changed sys.path"
    return module


def test_there_is_something_to_check():
    assert len(SCRIPTS) >= 20 and (RESULTS / "papers" / "common.py") in SCRIPTS
    assert PACKAGE / "render_docs" / "__init__.py" in TOOL_FILES and TOOLS / "render_docs.py" in TOOL_FILES


@pytest.mark.parametrize("path", SCRIPTS + TOOL_FILES, ids=_rel)
def test_no_sys_path_edits(path):
    source = path.read_text()
    assert not SYS_PATH_EDIT.search(source), f"{_rel(path)} edits sys.path"


@pytest.mark.parametrize("path", SCRIPTS, ids=_rel)
def test_a_script_imports_by_its_path_without_running(path):
    """Top level: a docstring, imports, definitions, assignments and the `__main__` guard, nothing that
    runs; a script with a main() calls it under the guard only. Then it loads by its path."""
    tree = ast.parse(path.read_text())
    for i, node in enumerate(tree.body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        guard = isinstance(node, ast.If) and ast.unparse(node.test) in ("__name__ == '__main__'",
                                                                        '__name__ == "__main__"')
        assert docstring or guard or isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef,
                                                       ast.Assign, ast.AnnAssign)), \
            f"{_rel(path)}:{node.lineno} runs at import: {ast.unparse(node).splitlines()[0]}"
    defines_main = any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body)
    assert not defines_main or any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body), \
        f"{_rel(path)} defines main() but never calls it under `if __name__ == \"__main__\":`"
    name = "docs_results_" + re.sub(r"\W", "_", path.relative_to(RESULTS).with_suffix("").as_posix())
    _load(name, path)


@pytest.mark.parametrize("path", TOOL_FILES, ids=_rel)
def test_a_tool_module_imports_by_its_path(path):
    """Every module of zoo/tools (the package's under their own names, so that their relative imports
    resolve) loads by its path; executing a block module again registers nothing twice."""
    from nfzoo_docs.render_docs import BLOCKS

    before = dict(BLOCKS)
    if path.is_relative_to(PACKAGE):
        _load(_dotted(path), path, package=path.name == "__init__.py")
    else:
        _load("zoo_tools_" + path.stem, path)
    assert BLOCKS == before


def test_the_package_has_no_module_over_400_lines_and_no_orphan():
    from nfzoo_docs.render_docs.registry import BLOCK_MODULES

    for path in PACKAGE.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, f"{_rel(path)} is over 400 lines"
    blocks = {p.stem for p in (PACKAGE / "render_docs").glob("blocks_*.py")}
    assert blocks == set(BLOCK_MODULES), "a blocks_*.py module the registry does not load, or one it lacks"


def test_the_registry_holds_every_block_the_documents_mark():
    import nfzoo_docs.render_docs as R

    used = {}
    for doc in DOCS:
        text = doc.read_text()
        ids = [block_id for block_id, _ in R.generated_blocks(text)]
        # a marker the renderer's patterns do not match would never be rendered
        assert sorted(ids) == sorted(LOOSE_MARKER.findall(text)), f"{_rel(doc)}: a malformed generated marker"
        for block_id in ids:
            used.setdefault(block_id, _rel(doc))
    for block_id, where in used.items():
        name, _, arg = block_id.partition(":")
        assert name in R.BLOCKS or name == "model-index", f"{where}: block {block_id!r} is not registered"
        if name in R.NEEDS_MODEL or name == "model-index":
            assert arg, f"{where}: block {name!r} needs its model ({name}:MODEL)"
    # each block is in the module of its family, registered once under its id
    assert all(fn.__module__.startswith("nfzoo_docs.render_docs.blocks_") for fn in R.BLOCKS.values())
    assert len(set(R.BLOCKS.values())) == len(R.BLOCKS)


def test_the_zoo_knowledge_is_data():
    """models.json's models are the index's; no flow of the zoo is named in the renderer's code (the oracle
    appears in prose: "oracle-mnist5k features"); each block of models.json is a registered block."""
    from nfzoo_docs.render_docs import BLOCKS, knowledge

    k = knowledge.models_json()
    assert set(k["order"]) <= set(INDEX) and set(k["models"]) <= set(INDEX)
    assert len(k["order"]) == len(set(k["order"]))
    code = {p: p.read_text() for p in (PACKAGE / "render_docs").glob("*.py")}
    for name, entry in INDEX.items():
        if entry.get("kind", "flow") == "flow":
            for path, text in code.items():
                assert name not in text, f"{_rel(path)} names the zoo model {name}: put it in models.json"
    for rel, note in k["legacy"].items():   # (a note outlives its file: it describes the file while it is there)
        assert re.fullmatch(r"[0-9a-f]{16}", note["sha256"]) and note["note"], rel
    assert set(k["blocks"]) <= set(BLOCKS)


def _commands(doc):
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "command" and isinstance(value, str):
                yield value
            else:
                yield from _commands(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _commands(value)


def test_every_recorded_python_command_names_a_script_that_exists():
    from nfzoo_docs.render_docs import knowledge

    commands = [(_rel(p), c) for p in sorted(RESULTS.rglob("*.json")) for c in _commands(json.loads(p.read_text()))]
    commands += [("models.json legacy", v["note"]) for v in knowledge.models_json()["legacy"].values()]
    script = re.compile(r"python3? ((?:docs/results|zoo/tools)/\S+?\.py)")
    scripts = [(where, m) for where, c in commands for m in script.findall(c)]
    assert len(scripts) >= 10
    for where, script in scripts:
        assert (ROOT / script).is_file(), f"{where} records a command of {script}, which does not exist"


def test_the_paper_scripts_share_one_module():
    from nfzoo_docs import papers

    for path in sorted((RESULTS / "papers").glob("table*.py")):
        module = _load("paper_" + path.stem, path)
        assert module.C is papers, path.name
    common = _load("paper_common", RESULTS / "papers" / "common.py")
    assert common.train_argv is papers.train_argv and common.RECORDS == RESULTS / "papers" / "records"
    assert papers.ROOT == ROOT


@pytest.mark.parametrize("command", [[str(TOOLS / "render_docs.py"), "--check"],
                                     ["-m", "nfzoo_docs.render_docs", "--check"]], ids=["script", "module"])
def test_both_command_lines_find_the_docs_up_to_date(command, tmp_path):
    r = subprocess.run([sys.executable, *command], cwd=tmp_path, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
