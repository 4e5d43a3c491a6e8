"""The command line: `python zoo/tools/render_docs.py [--check] [--root DIR]` (or `python -m
nfzoo_docs.render_docs ...`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .documents import ROOT, render_with_zoo_csv
from .results import TOOL, RenderError


def main(argv=None) -> int:
    """The command line above; returns the exit code (1: --check found differences, 2: a render error)."""
    from . import __doc__ as doc

    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff if anything differs")
    ap.add_argument("--root", type=Path, default=ROOT, help="the repository root [this checkout]")
    a = ap.parse_args(argv)
    try:
        diffs, warnings = render_with_zoo_csv(a.root, write=not a.check)
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if a.check:
        if diffs:
            sys.stdout.write("".join(diffs))
            print(f"{len(diffs)} file(s) differ from docs/results: run `.venv/bin/python {TOOL}`", file=sys.stderr)
            return 1
        return 0
    print(f"rewrote {len(diffs)} file(s)" if diffs else "nothing to do: every number matches its file",
          file=sys.stderr)
    return 0
