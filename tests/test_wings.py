"""Issue 36, the front door: the core is grouped into wings by concern, each wing says its public names, few
modules stay at the top, no module is long, and a newcomer's five questions are each answered by a folder."""
import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core" / "nfzoo"
WINGS = ("flows", "registry", "loading", "hub", "training", "evaluation", "export", "data")
QUESTIONS = {                            # a newcomer's question -> the folder that answers it, and what is there
    "where is a pretrained model loaded": ("loading", "sources.py"),
    "where is the training loop": ("training", "trainer.py"),
    "where is the Hub code": ("hub", "fetch.py"),
    "where is export": ("export", "onnx.py"),
    "where are the sample metrics": ("evaluation", "metrics.py"),
}


def test_at_most_15_modules_at_the_top_of_the_core():
    top = sorted(p.name for p in CORE.glob("*.py"))
    assert len(top) <= 15, top


@pytest.mark.parametrize("question", QUESTIONS)
def test_each_question_is_answered_by_one_folder(question):
    wing, module = QUESTIONS[question]
    assert (CORE / wing / module).is_file()


@pytest.mark.parametrize("wing", WINGS)
def test_a_wing_states_its_public_names_and_they_resolve(wing):
    init = CORE / wing / "__init__.py"
    tree = ast.parse(init.read_text())
    assert ast.get_docstring(tree), f"{wing}/__init__.py says what the wing is for"
    declared = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets))
    typing_only = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1
                   for a in n.names}
    assert declared and set(declared) == typing_only, "every public name has a TYPE_CHECKING import for IDEs"
    module = importlib.import_module(f"nfzoo.{wing}")
    for name in declared:
        assert getattr(module, name) is not None and not name.startswith("_")


def test_no_module_over_400_lines():
    long = []
    for folder in (ROOT / "core", ROOT / "cli", ROOT / "zoo" / "tools"):
        for p in folder.rglob("*.py"):
            n = len(p.read_text().splitlines())
            if n > 400:
                long.append(f"{p.relative_to(ROOT)}: {n}")
    assert not long, long
