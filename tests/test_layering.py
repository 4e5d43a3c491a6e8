"""The layering is one way (issue 21, DESIGN.md "Layering"), checked on the import graph that `ast` reads
from the source of core/nfzoo, cli/nfzoo_cli and plugins/*/nfzoo_*: module-level and function-level imports,
relative imports resolved, `if TYPE_CHECKING:` blocks left out. No import circles; the core imports neither
the CLI nor a plugin; the CLI imports no plugin (a plugin's commands come through register_commands; issue 36
moved the gallery, which needs the heads, to its own distribution, plugins/gallery); plugins take from the CLI
only `nfzoo_cli.toolkit`; no private name (`_x`) is imported across distributions."""
import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [ROOT / "core" / "nfzoo", ROOT / "cli" / "nfzoo_cli",
            *sorted(p for p in (ROOT / "plugins").glob("*/nfzoo_*") if (p / "__init__.py").is_file())]


def _modules() -> Dict[str, Path]:
    """Dotted module name -> source file, for every module of the packages above."""
    found = {}
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            parts = path.relative_to(package.parent).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import / ImportFrom, at any depth, except those under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _imports(module: str, path: Path) -> List[Tuple[str, List[str], int]]:
    """(imported module, names taken from it, line) for each import of `module`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[:len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        names = [alias.name for alias in node.names]
        # `from pkg import sub` imports the submodule pkg.sub when there is one
        subs = [n for n in names if f"{base}.{n}" in MODULES]
        out += [(f"{base}.{n}", [], node.lineno) for n in subs]
        if len(subs) < len(names):
            out.append((base, [n for n in names if n not in subs], node.lineno))
    return out


def _distribution(module: str) -> str:
    return module.split(".")[0]


def _graph() -> Dict[str, Set[str]]:
    """First-party module -> the first-party modules it imports (importing a.b.c also runs a and a.b)."""
    graph = {}
    for module, path in MODULES.items():
        edges = set()
        for target, _, _ in _imports(module, path):
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != module:
                edges.add(target)
        graph[module] = edges
    return graph


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_covers_every_package():
    assert {"nfzoo", "nfzoo_cli", "nfzoo_cinc", "nfzoo_quad", "nfzoo_inverse_flow", "nfzoo_glem",
            "nfzoo_diffused_flows", "nfzoo_heads", "nfzoo_tarflow", "nfzoo_gallery"} <= \
        {_distribution(m) for m in MODULES}
    assert "nfzoo.hub.fetch" in _graph()["nfzoo.loading.sources"]        # relative imports are resolved


def test_no_import_circles():
    # an ancestor package's __init__ runs before its submodule, but only a submodule's own imports make an
    # edge: `nfzoo.flows.model` importing `nfzoo.flows.samplers` is an edge model -> samplers, not model -> nfzoo
    assert _cycles(_graph()) == []


def _violations():
    out = []
    for module, path in MODULES.items():
        dist = _distribution(module)
        for target, names, line in _imports(module, path):
            other = _distribution(target)
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if dist == "nfzoo" and other != "nfzoo" and other.startswith("nfzoo_"):
                out.append(f"{where}: the core imports neither the CLI nor a plugin")
            if dist == "nfzoo_cli" and other not in ("nfzoo", "nfzoo_cli") and other.startswith("nfzoo_"):
                out.append(f"{where}: the CLI imports no plugin (plugins add commands through register_commands)")
            if dist not in ("nfzoo", "nfzoo_cli") and other == "nfzoo_cli" and target != "nfzoo_cli.toolkit":
                out.append(f"{where}: plugins take from the CLI only nfzoo_cli.toolkit")
            if other != dist and (other == "nfzoo" or other.startswith("nfzoo_")):
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                private += [p for p in target.split(".") if p.startswith("_") and not p.startswith("__")]
                if private:
                    out.append(f"{where}: private name(s) {private} taken across distributions")
    return out


def test_layering_is_one_way():
    assert _violations() == []


def test_the_checks_see_what_they_look_for():
    """The checker itself: a circle is found, and a plugin's import of the toolkit is an edge."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert any(t == "nfzoo_cli.toolkit" for t, _, _ in _imports("nfzoo_heads.cli", MODULES["nfzoo_heads.cli"]))


PLUGIN_PACKAGES = sorted({p.name for p in (ROOT / "plugins").glob("*/nfzoo_*") if (p / "__init__.py").is_file()}
                         | {"nfzoo_zoo"})


def _plugin_imports_in(path: Path) -> List[str]:
    """The plugin packages `path` imports: `import` / `from` statements at any depth (`if TYPE_CHECKING:`
    blocks included) and importlib.import_module / __import__ calls with a literal name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [] if node.level else [node.module or ""]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in \
                ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            names = [str(node.args[0].value)]
        else:
            continue
        found += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in PLUGIN_PACKAGES]
    return found


def test_the_cli_imports_no_plugin_package():
    """Issue 36, the gallery on the wrong floor: cli/nfzoo_cli/serve imported nfzoo_heads, so the nfzoo
    distribution needed a plugin that needs nfzoo. No source under cli/ imports a plugin package (the
    first-party plugins' and the zoo's); `nfzoo serve` is the nfzoo-gallery plugin's command now."""
    assert {"nfzoo_heads", "nfzoo_gallery", "nfzoo_zoo"} <= set(PLUGIN_PACKAGES)
    assert [f for path in sorted((ROOT / "cli").rglob("*.py")) for f in _plugin_imports_in(path)] == []
    # the check sees a plugin import where one is (the gallery's features import the heads)
    assert any(f.endswith(" nfzoo_heads") for f in
               _plugin_imports_in(ROOT / "plugins" / "gallery" / "nfzoo_gallery" / "features.py"))
