"""The README is the front page (issue 37): at most 250 lines of at most 200 characters, its links resolve, every
number it shows is generated (zoo/tools/render_docs.py; tests/test_generated_docs.py checks that it is up to
date), it keeps "The two commands" (CI runs its test command), and its examples run (issue 21): every ```python
block, as written, in a fresh working directory and offline, and the shell examples of an explicit allow-list
(the cheap, offline ones). The guides' examples (the plugin, the testing kit, the heads) are tests/test_guides.py's."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```python\n(.*?)^```", README, flags=re.S | re.M)
GENERATED = re.compile(r"<!-- nfzoo:generated .*?<!-- nfzoo:end -->", re.S)

# The shell examples that run: (the text of README.md it instantiates, the arguments of `nfzoo`, the exit
# code the README promises). Left out: `make run` / `make test` (they are the CI itself) and `pip install`
# (network).
SHELL = [
    ("`nfzoo --help`", ["--help"], 0),
    ("`nfzoo list --pretrained`", ["list", "--pretrained"], 0),
    ("`nfzoo info inverse-flow-mnist5k`", ["info", "inverse-flow-mnist5k"], 0),
    ("`nfzoo sample --model inverse-flow -n 64 --seed 0 --out samples.png`",
     ["sample", "--model", "inverse-flow", "-n", "64", "--seed", "0", "--out", "samples.png"], 0),   # the main job
    ("`nfzoo sample --model tarflow-mnist5k-cond --per-class --out digits.png`",          # the picture's command
     ["sample", "--model", "tarflow-mnist5k-cond", "--per-class", "--out", "digits.png"], 0),
]


def test_the_readme_is_a_front_page():
    lines = README.splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines: move the detail to docs/pages"
    long = [i + 1 for i, line in enumerate(lines) if len(line) > 200]
    assert not long, f"README.md lines over 200 characters: {long}"
    for heading in ("## Install", "## The two commands", "## In Python", "## The zoo", "## How nfzoo compares",
                    "## Documentation"):
        assert f"\n{heading}\n" in README, heading
    assert 'pip install "nfzoo[all]"' in README
    # CI (.ci/run) runs the README's test command
    two = README[README.index("## The two commands"):]
    assert re.search(r"^    make run\b", two, re.M) and re.search(r"^    make test\b", two, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert [block_id for block_id, _ in re.findall(r"<!-- nfzoo:generated ([\w.:+-]+) (\()", README)] \
        == ["zoo-headline"]


def test_every_number_of_the_readme_is_generated():
    """Outside the generated blocks, code, link targets and names (mnist5k, arXiv ids), no digit: a number the
    README shows comes from render_docs."""
    text = GENERATED.sub("", README)
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)          # fenced code
    text = re.sub(r"^    .*$", "", text, flags=re.M)                      # indented code
    text = re.sub(r"`[^`]*`", "", text)                                   # code spans
    text = re.sub(r"\]\([^)]*\)", "]", text)                              # link targets
    text = re.sub(r"\b[A-Za-z][\w.-]*\d[\w-]*", "", text)                 # names: mnist5k, tarflow-mnist5k-cond
    numbers = [line for line in text.splitlines() if re.search(r"\d", line)]
    assert not numbers, f"numbers typed by hand in README.md: {numbers}"


def test_the_readmes_links_resolve():
    """Every relative link and picture names a file of the repository (the site's pages among them)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`\n]*`", "", README))
    local = [t.split("#")[0] for t in targets if "://" not in t and not t.startswith(("#", "mailto:"))]
    assert any(t.startswith("docs/pages/zoo/") for t in local) and any(t.endswith(".png") for t in local)
    missing = sorted({t for t in local if not (ROOT / t).is_file()})
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_every_python_block_is_accounted_for():
    """A new block must get a test here (or a line saying where it runs)."""
    assert [block.strip().splitlines()[0] for block in BLOCKS] == ["import nfzoo"]
    assert len(BLOCKS[0].strip().splitlines()) <= 10


def test_python_block(tmp_path, monkeypatch):
    """The Python block as written: a zoo model loaded from the package (offline), sampled through the
    pipeline, a grid written, its bpd and latents."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    scope = {}
    exec(compile(BLOCKS[0], "README.md Python", "exec"), scope)
    assert scope["out"].images.shape == (16, 1, 28, 28)                  # as its comment says
    assert 0 <= float(scope["out"].images.min()) and float(scope["out"].images.max()) <= 1
    assert scope["bpd"].shape == (16,) and scope["z"].shape == (16, 1, 28, 28)
    assert (tmp_path / "samples.png").is_file()


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
