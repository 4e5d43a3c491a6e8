"""The documentation site's code blocks run (issue 37), as tests/test_readme.py runs the README's: every fenced
block of every page under docs/pages (but the generated zoo/ and results/ pages, which another tool writes and
checks), as written, page by page, in order, in one fresh working directory per page, offline.

- ```python blocks are exec'd in-process (a fresh scope each); one whose first line is a comment naming a file
  (`# nfzoo-hello/nfzoo_hello/plugin.py`) is that file's content: it is written there, as the reader would save
  it. ```yaml and ```toml blocks that name a file the same way are written too.
- ```bash blocks run line by line (a `\\` continues a line, `#` starts a comment), each command with exit
  code 0: `nfzoo ...` in-process through typer's CliRunner (as `nfzoo` would run it), or in a subprocess
  (`python -m nfzoo_cli`) once a page has installed a plugin; `pip install [-e] DIR` installs DIR into a
  folder of the page's own (pip --target), which that page's later commands and blocks import from, so the
  shared environment is left as it was; `nfzoo serve` starts in the background with `--port 0`, and the
  page's `http://127.0.0.1:8000/` then means the address it printed; `curl` and `pytest` run as subprocesses.
- `--8<-- "PATH"` lines (pymdownx.snippets) are the repository's files, as the site shows them.
- ```text blocks are listings (a folder's layout), not run.
The Hub page publishes to the loopback Hub of the `hub` fixture (tests/hubserver.py). SKIPPED lists the few
blocks that cannot run here, each with the reason; `test_every_block_is_accounted_for` fails on a block that is
neither expected here nor skipped, so none is added without running.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "docs" / "pages"
GENERATED = ("zoo", "results")          # written and checked by zoo/tools (render_docs), not here
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', re.M)
FILE_COMMENT = re.compile(r"^# ([\w.\-/]+\.(?:py|toml|yaml|yml|cfg|txt))$")
GALLERY_URL = "http://127.0.0.1:8000/"

# (page, the block's first line) -> why it does not run here
SKIPPED: Dict[Tuple[str, str], str] = {
    ("getting-started.md", 'pip install "nfzoo[all]"'): "installs from PyPI: the tests run in that installation",
    ("getting-started.md", "make run     # the main job: sample a grid of images, offline"):
        "make sets up .venv and runs the whole test suite; `nfzoo sample` of `make run` runs on this page",
    ("guides/distributed.md", "# 8 GPUs of one node"): "needs 8 GPUs, and 2 nodes for its second command",
}

# Every block of every page, by its first line (after snippets are expanded): a new block must be added
# here, and it then runs (or is added to SKIPPED with the reason).
EXPECTED: Dict[str, List[str]] = {
    "index.md": ["nfzoo sample --model inverse-flow -n 64 --seed 0 --out samples.png"],
    "getting-started.md": ['pip install "nfzoo[all]"', "make run     # the main job: sample a grid of images, offline",
                           "nfzoo sample --model inverse-flow -n 64 --seed 0 --out samples.png",
                           "nfzoo list --pretrained", "import torch", "import torch"],
    "guides/train.md": ["nfzoo train glow --dataset digits --epochs 1 --set levels=2 --set steps=1 --set hidden=8 "
                        "--out runs/glow-digits", "runs/glow-digits/", "from pathlib import Path",
                        "nfzoo train glow --dataset folder:my-images --epochs 1 --set levels=2 --set steps=1 "
                        "--set hidden=8 --out runs/glow-mine",
                        "nfzoo train glow --dataset folder:my-images --image-size 6 --set test_fraction=0.2 --epochs 1 "
                        "--set levels=1 --set steps=1 --set hidden=8 --out runs/glow-mine-6",
                        "import datasets",
                        "nfzoo train glow --dataset hf:me/my-digits --epochs 1 --set levels=2 --set steps=1 --set "
                        "hidden=8 --out runs/glow-hf", "nfzoo list",
                        "nfzoo train glow --dataset digits --epochs 1 --set levels=2 --set steps=1 --set hidden=8 "
                        "--init ./runs/glow-digits --lr 5e-4 --out runs/glow-ft",
                        "# digits-recipe.yaml", "nfzoo train --recipe digits-recipe.yaml --out runs/digits-recipe"],
    "guides/runs.md": ["nfzoo train glow --dataset digits --epochs 1 --set levels=2 --set steps=1 --set hidden=8 "
                       "--checkpoint-every 10 --out runs/glow",
                       "nfzoo train glow --dataset digits --epochs 2 --set levels=2 --set steps=1 --set hidden=8 "
                       "--ema 0.99 --swa-epochs 2 --out runs/glow-avg", "import json",
                       "nfzoo train glow --dataset digits --epochs 1 --set levels=2 --set steps=1 --set hidden=8 "
                       "--log tensorboard --out runs/glow-tb",
                       "nfzoo train glow --dataset digits --epochs 1 --set levels=2 --set steps=1 --set hidden=8 "
                       "--batch-size 64 --accumulate 4 --workers 0 --out runs/glow-acc"],
    "guides/distributed.md": ["nfzoo train glow --dataset digits --epochs 1 --set levels=2 --set steps=1 "
                              "--set hidden=8 --nproc 2 --out runs/glow2", "# 8 GPUs of one node"],
    "guides/evaluate.md": ["nfzoo eval glow-mnist5k --dataset mnist5k --samples 100 --seeds 2 --out glow-eval.json",
                           "import json",
                           "nfzoo train glow --dataset digits --epochs 1 --set levels=2 --set steps=1 --set hidden=8 "
                           "--out runs/glow-digits", "import nfzoo"],
    "guides/hub.md": ["nfzoo train glow --dataset digits --epochs 1 --set levels=2 --set steps=1 --set hidden=8 "
                      "--out runs/glow-digits", "import torch", "nfzoo pull hf-hub:me/glow-digits",
                      "nfzoo list --pretrained"],
    "guides/export.md": ["nfzoo export inverse-flow --direction sample --out inverse-flow-onnx", "import sys",
                         "nfzoo export inverse-flow --format web --out site",
                         "python site/model/nfzoo_onnx_runner.py site/model -n 64 --seed 7 --out samples.npy",
                         "import functools, http.server", "nfzoo push site --repo-id me/inverse-flow-web",
                         "from huggingface_hub import HfApi"],
    "guides/heads.md": ["import torch, nfzoo, nfzoo_heads",
                        "nfzoo synth --model glem-mnist5k --n 40 --out synth/ --seed 0"],
    "guides/gallery.md": ["nfzoo serve", "curl -s http://127.0.0.1:8000/api/models -o models.json", "import base64"],
    "guides/plugins.md": ['--8<-- "examples/nfzoo-example-plugin/pyproject.toml"',
                          '--8<-- "examples/nfzoo-example-plugin/nfzoo_example/plugin.py"',
                          '--8<-- "examples/nfzoo-example-plugin/nfzoo_example/layers.py"',
                          "pip install -e examples/nfzoo-example-plugin",
                          "from nfzoo.testing import check_bijector", "pytest -q examples/nfzoo-example-plugin/tests",
                          "# nfzoo-hello/pyproject.toml", "# nfzoo-hello/nfzoo_hello/plugin.py",
                          "# nfzoo-hello/nfzoo_hello/sampler.py", "pip install -e ./nfzoo-hello"],
}


class Block:
    def __init__(self, page: str, lang: str, text: str):
        self.page, self.lang = page, lang
        self.text = SNIPPET.sub(lambda m: (ROOT / m.group(1)).read_text().rstrip("\n"), text)
        lines = text.strip().splitlines()            # a block that includes a file is known by its include line
        self.first = lines[0] if lines else ""

    @property
    def file(self) -> Optional[str]:
        """The path a block that is a file's content names on its first line."""
        m = FILE_COMMENT.match(self.text.split("\n", 1)[0])
        return m.group(1) if m and self.lang in ("python", "toml", "yaml") else None


def pages() -> List[str]:
    return sorted(p.relative_to(PAGES).as_posix() for p in PAGES.rglob("*.md")
                  if p.relative_to(PAGES).parts[0] not in GENERATED)


def blocks(page: str) -> List[Block]:
    return [Block(page, lang, text) for lang, text in FENCE.findall((PAGES / page).read_text())]


def code_pages() -> List[str]:
    return [p for p in pages() if any((p, b.first) not in SKIPPED for b in blocks(p))]


def test_every_block_is_accounted_for():
    """Each page's blocks are the ones listed in EXPECTED (a new block needs a line there), every skipped one
    is still on its page, and each block is of a kind this file runs."""
    found = {page: [b.first for b in blocks(page)] for page in pages()}
    assert {p: f for p, f in found.items() if f} == EXPECTED
    for page, first in SKIPPED:
        assert first in found.get(page, []), f"SKIPPED names a block {page} no longer has: {first!r}"
    for page in pages():
        for b in blocks(page):
            assert b.lang in ("python", "bash", "text", "toml", "yaml"), f"{page}: a ```{b.lang} block"
            if b.lang in ("toml", "yaml"):
                assert b.file or SNIPPET.search((PAGES / page).read_text()), f"{page}: {b.first!r} is no file"


def test_snippets_exist():
    """Every `--8<--` include of the pages (guides, architecture, changelog) names a file of the repo, except
    CHANGELOG.md before its first release note."""
    for page in pages():
        for path in SNIPPET.findall((PAGES / page).read_text()):
            assert (ROOT / path).is_file() or path == "CHANGELOG.md", f"{page} includes {path}, which is missing"


# ------------------------------------------------------------------------------------------- running
class PageRun:
    """The state of one page's run: its folder, the plugin folder of its pip installs, a background server."""

    def __init__(self, page: str, cwd: Path, monkeypatch, runner, app):
        self.page, self.cwd, self.mp, self.runner, self.app = page, cwd, monkeypatch, runner, app
        self.site: Optional[Path] = None
        self.server: Optional[subprocess.Popen] = None
        self.url = GALLERY_URL

    # ---------------------------------------------------------------- blocks
    def run(self, block: Block) -> None:
        if block.file:
            path = self.cwd / block.file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.text.split("\n", 1)[1] if block.lang != "python" else block.text)
        elif block.lang == "python":
            exec(compile(block.text, f"docs/pages/{self.page} ({block.first})", "exec"), {"__name__": "__main__"})
        elif block.lang == "bash":
            for line in _command_lines(block.text):
                self.command(line)

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        if self.site:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.site), env.get("PYTHONPATH")]))
        return env

    def command(self, line: str) -> None:
        words = shlex.split(line.replace(GALLERY_URL, self.url))
        env: Dict[str, str] = {}
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        name, args = words[0], words[1:]
        if name == "nfzoo" and args[:1] == ["serve"]:
            return self.serve(args, env)
        if name == "nfzoo" and not self.site:
            return self.in_process(args, env, line)
        if name == "nfzoo":
            cmd = [sys.executable, "-m", "nfzoo_cli", *args]
        elif name == "pip" and args[:1] == ["install"]:
            self.site = self.site or self.cwd.parent / f"{self.cwd.name}-site"
            targets = [a for a in args[1:] if a != "-e"]
            cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-deps",
                   "--no-build-isolation", "--upgrade", "--target", str(self.site), *targets]
        elif name == "pytest":
            cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
        elif name == "curl":
            cmd = ["curl", "--fail", *args]
        elif name == "python":                                  # a script the page made (the exported runner)
            cmd = [sys.executable, *args]
        else:
            raise AssertionError(f"docs/pages/{self.page}: no runner for `{line}`")
        res = subprocess.run(cmd, cwd=self.cwd, env={**self.env(), **env}, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, f"`{line}` exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
        if name == "pip":
            self.mp.syspath_prepend(str(self.site))

    def in_process(self, args: List[str], env: Dict[str, str], line: str) -> None:
        for key, value in env.items():
            self.mp.setenv(key, value)
        res = self.runner.invoke(self.app, args)
        assert res.exception is None or isinstance(res.exception, SystemExit), f"`{line}`: {res.output}"
        assert res.exit_code == 0, f"`{line}` exited {res.exit_code}:\n{res.output}"

    def serve(self, args: List[str], env: Dict[str, str]) -> None:
        """`nfzoo serve` in the background on a free port; the page's gallery address is then its address."""
        self.server = subprocess.Popen([sys.executable, "-m", "nfzoo_cli", *args, "--port", "0"], cwd=self.cwd,
                                       env={**self.env(), **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
        watchdog = threading.Timer(180, self.server.kill)       # a server that never listens fails the test
        watchdog.start()
        line = self.server.stdout.readline().strip()           # its address, once it listens
        watchdog.cancel()
        assert line.startswith("http://127.0.0.1:"), (line, self.server.stderr.read() if not line else "")
        self.url = line

    def close(self) -> None:
        if self.server is not None:
            self.server.send_signal(signal.SIGINT)             # Ctrl-C
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


def _command_lines(text: str) -> List[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if words:
            out.append(shlex.join(words))
    return out


@pytest.mark.parametrize("page", code_pages())
def test_page_runs(page, tmp_path, monkeypatch, runner, app, request):
    """Every block of the page, in order, in one fresh folder; then what the page says it made is there."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    if page in ("guides/hub.md", "guides/train.md", "guides/export.md"):   # they publish (a model, a dataset, a Space)
        request.getfixturevalue("hub")                      # HF_ENDPOINT: the loopback Hub, an empty cache
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    if page == "guides/plugins.md":                         # the page runs from a clone's root
        shutil.copytree(ROOT / "examples", cwd / "examples",
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    modules = set(sys.modules)
    run = PageRun(page, cwd, monkeypatch, runner, app)
    try:
        for block in blocks(page):
            if (page, block.first) not in SKIPPED:
                run.run(block)
        CHECKS.get(page, lambda *a: None)(cwd, request)
    finally:
        run.close()
        for name in set(sys.modules) - modules:            # the page's own packages (a plugin, the ONNX runner)
            if name.split(".")[0].startswith(("nfzoo_example", "nfzoo_hello", "nfzoo_onnx")):
                del sys.modules[name]
        if run.site:
            from nfzoo.registry.plugins import reset

            reset()


# ------------------------------------------------------------------------ what each page says it made
def _getting_started(cwd: Path, request) -> None:
    # "the same pixels as the command above": the pipeline's grid is the CLI's, byte for byte
    assert (cwd / "grid.png").read_bytes() == (cwd / "samples.png").read_bytes()
    assert (cwd / "my-glow" / "model.safetensors").is_file()


def _train(cwd: Path, request) -> None:
    for run in ("glow-hf", "glow-digits", "glow-mine", "glow-ft", "glow-refit", "digits-recipe"):
        assert (cwd / "runs" / run / "model.safetensors").is_file(), run
    assert (cwd / "runs" / "glow-refit" / "refit.json").is_file()
    assert (cwd / "runs" / "digits-recipe" / "recipe.yaml").is_file()
    assert (cwd / "refit.png").is_file() and (cwd / "glow-digits.png").is_file()


def _runs(cwd: Path, request) -> None:
    import json

    history = json.loads((cwd / "runs" / "glow" / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]             # resumed to its second epoch
    assert json.loads((cwd / "runs" / "glow-avg" / "train.json").read_text())["published"] in ("raw", "ema", "swa")
    assert any((cwd / "runs" / "glow-tb" / "tb").iterdir())


def _distributed(cwd: Path, request) -> None:
    import json

    assert json.loads((cwd / "runs" / "glow2" / "train.json").read_text())
    assert (cwd / "runs" / "glow2" / "model.safetensors").is_file()


def _evaluate(cwd: Path, request) -> None:
    import json

    assert set(json.loads((cwd / "glow-eval.json").read_text())["summary"]) >= {"fid", "coverage", "density"}


def _hub(cwd: Path, request) -> None:
    hub = request.getfixturevalue("hub")
    for repo in ("me/glow-digits", "me/my-glow", "me/glow-8x8"):
        assert {"config.json", "model.safetensors", "README.md"} <= set(hub.files(repo, hub.resolve(repo, "main")))
    assert (cwd / "from-hub.png").is_file()


def _export(cwd: Path, request) -> None:
    """The runner block again, in a Python where torch cannot be imported: it needs numpy and onnxruntime only."""
    block = next(b for b in blocks("guides/export.md") if b.lang == "python")
    code = "import sys\nsys.modules['torch'] = None\n" + block.text
    res = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "(16, 1, 28, 28)" in res.stdout, res.stderr
    site = cwd / "site"                         # the web export (issue 39): the page, its graphs, onnxruntime-web
    assert {"index.html", "app.js", "README.md"} <= {p.name for p in site.iterdir()}
    assert (site / "model" / "decode.onnx").is_file() and any((site / "ort").glob("*.wasm"))
    import numpy as np

    assert np.load(cwd / "samples.npy").shape == (64, 1, 28, 28)      # the runner's seeded draw, as the page's
    hub = request.getfixturevalue("hub")                                # the site, published to a static Space
    assert {"index.html", "app.js", "site.json", "model/manifest.json"} <= set(
        hub.files("me/inverse-flow-web", hub.resolve("me/inverse-flow-web", "main")))


def _gallery(cwd: Path, request) -> None:
    import json

    assert json.loads((cwd / "sample.json").read_text())["image"].startswith("data:image/png;base64,")
    assert "inverse-flow-mnist5k" in {m["name"] for m in json.loads((cwd / "models.json").read_text())["models"]}
    assert (cwd / "gallery-sample.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _heads(cwd: Path, request) -> None:
    import json

    assert sum(json.loads((cwd / "synth" / "manifest.json").read_text())["counts"].values()) == 40
    for made in ("filled.png", "path.png"):
        assert (cwd / made).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", made


def _plugins(cwd: Path, request) -> None:
    assert (cwd / "runs" / "leaky" / "model.safetensors").is_file()
    assert (cwd / "truncated.png").is_file()


CHECKS = {"getting-started.md": _getting_started, "guides/train.md": _train, "guides/runs.md": _runs,
          "guides/distributed.md": _distributed, "guides/evaluate.md": _evaluate, "guides/hub.md": _hub,
          "guides/export.md": _export, "guides/gallery.md": _gallery, "guides/heads.md": _heads,
          "guides/plugins.md": _plugins}
