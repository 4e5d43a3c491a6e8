# The two commands of the README. Both set up a fresh .venv from constraints.txt on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check

.PHONY: setup run test lint typecheck docs dist clean

PLUGINS := plugins/quad plugins/cinc plugins/inverse_flow plugins/glem plugins/diffused_flows plugins/heads plugins/tarflow \
           plugins/gallery

$(BIN)/nfzoo: pyproject.toml zoo/pyproject.toml zoo/tools/pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS)) constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt "setuptools>=68" wheel
	$(PIP) install -q -c constraints.txt -e ".[test,bench,docs]" $(addprefix -e ,$(PLUGINS)) -e zoo -e zoo/tools
	touch $(BIN)/nfzoo

setup: $(BIN)/nfzoo

# the main job: sample a grid from the zoo's embedded default Inverse-Flow (inverse-flow-mnist5k),
# offline, at its measured default sampler and temperature; sampling draws from the fitted latent prior,
# then runs only convolutions and couplings.
run: setup
	$(BIN)/nfzoo sample --model inverse-flow -n 64 --seed 0 --out samples.png

test: setup
	$(BIN)/python -m pytest -q

# ruff (pycodestyle, pyflakes, import order; settings in pyproject.toml) on every first-party source and test
lint: setup
	$(BIN)/ruff check core cli plugins zoo/tools tests

# pyright (basic mode; settings in pyrightconfig.json) on core, cli and the plugins, from the npm registry at a pinned
# version (npx caches it)
PYRIGHT ?= pyright@1.1.414
typecheck: setup
	npx --yes $(PYRIGHT) -p pyrightconfig.json

# the documentation site (mkdocs.yml, pages under docs/pages), built offline; --strict fails on a broken link or
# a missing reference
docs: setup
	$(BIN)/mkdocs build --strict --site-dir build/site

# release artefacts: an sdist and a wheel of every published distribution into dist/ (python -m build, isolated),
# checked by twine; nfzoo-docs (zoo/tools) is the repository's own tooling and is not published
DISTS := . zoo $(PLUGINS)
dist: setup
	rm -rf dist
	for d in $(DISTS); do $(BIN)/python -m build -q --outdir dist $$d || exit 1; done
	$(BIN)/twine check --strict dist/*

clean:
	rm -rf $(VENV) runs samples.png dist build
