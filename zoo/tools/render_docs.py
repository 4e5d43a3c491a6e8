"""Every published number from the file that measured it: render the generated blocks of README.md and of the
zoo's model cards, and the metrics of zoo/nfzoo_zoo/index.json, from the result files under docs/results.

    .venv/bin/python zoo/tools/render_docs.py            # rewrite whatever differs from the files
    .venv/bin/python zoo/tools/render_docs.py --check    # change nothing; exit 1 with a unified diff if stale

The command the README, the cards' markers and the tests name: the renderer itself is the package
nfzoo_docs.render_docs (zoo/tools/nfzoo_docs/render_docs/, the distribution zoo/tools/pyproject.toml; its docstring
says how it works), whose public names this file re-exports for code that loads it by its path.
"""
import sys

try:
    from nfzoo_docs.render_docs import *  # noqa: F401,F403
    from nfzoo_docs.render_docs import main
except ModuleNotFoundError as exc:   # a virtualenv installed before the package was registered
    if exc.name != "nfzoo_docs":
        raise
    raise ModuleNotFoundError("nfzoo_docs is not installed: run `make setup` (or `.venv/bin/pip install -e zoo/tools`) "
                              "to register zoo/tools/nfzoo_docs", name=exc.name) from None

if __name__ == "__main__":
    sys.exit(main())
