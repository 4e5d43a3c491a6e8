"""The repository's documentation tooling, importable (the unpublished distribution nfzoo-docs,
zoo/tools/pyproject.toml, installed editable by `make setup`; nothing here edits sys.path):

- nfzoo_docs.render_docs: renders the generated blocks of README.md and of the zoo's model cards, and the
  metrics of zoo/nfzoo_zoo/index.json, from the result files under docs/results (`python
  zoo/tools/render_docs.py [--check]`, or `python -m nfzoo_docs.render_docs [--check]`);
- nfzoo_docs.papers: the shared code of the paper-table scripts docs/results/papers/table*.py.

Both read and write this checkout (REPO below): they are tools of the repository, not of the installed zoo.
"""
from pathlib import Path

__version__ = "0.2.0"

REPO = Path(__file__).resolve().parents[3]   # zoo/tools/nfzoo_docs/__init__.py -> the repository root
