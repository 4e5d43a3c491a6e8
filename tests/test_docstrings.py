"""Every public class and function of core/nfzoo, cli/nfzoo_cli and the gallery (plugins/gallery/nfzoo_gallery,
part of the CLI until issue 36) has a docstring (issue 21, DESIGN.md:
a formula or a contract, as zuko's do). Public: no leading underscore, at module level or a method of a
public class (typer commands included: their docstring is the --help text). A method that overrides one
documented in a base class of these packages (`forward` of a Bijector) shares that docstring, as
`inspect.getdoc` does."""
import ast
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [ROOT / "core" / "nfzoo", ROOT / "cli" / "nfzoo_cli", ROOT / "plugins" / "gallery" / "nfzoo_gallery"]


def _base_name(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def _classes(trees) -> Dict[str, ast.ClassDef]:
    """Class name -> its definition, over all the files (names are unique enough for base lookups)."""
    return {n.name: n for tree in trees.values() for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}


def _documented_in_bases(cls: ast.ClassDef, method: str, classes, seen=()) -> bool:
    for base in map(_base_name, cls.bases):
        parent = classes.get(base)
        if parent is None or base in seen:
            continue
        for n in parent.body:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == method:
                return ast.get_docstring(n) is not None
        if _documented_in_bases(parent, method, classes, (*seen, base)):
            return True
    return False


def missing() -> List[str]:
    trees = {path: ast.parse(path.read_text(), str(path))
             for package in PACKAGES for path in sorted(package.rglob("*.py"))}
    classes = _classes(trees)
    out = []
    for path, tree in trees.items():
        where = path.relative_to(ROOT)
        for node in tree.body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or \
                    node.name.startswith("_"):
                continue
            if ast.get_docstring(node) is None:
                out.append(f"{where}:{node.lineno} {node.name}")
            if isinstance(node, ast.ClassDef):
                for m in node.body:
                    if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and not m.name.startswith("_") \
                            and ast.get_docstring(m) is None \
                            and not _documented_in_bases(node, m.name, classes):
                        out.append(f"{where}:{m.lineno} {node.name}.{m.name}")
    return out


def test_every_public_name_has_a_docstring():
    assert missing() == []
