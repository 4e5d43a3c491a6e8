# The two commands of the README. Both set up a fresh .venv from constraints.txt on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check

.PHONY: setup run test lint clean

PLUGINS := plugins/quad plugins/cinc plugins/inverse_flow plugins/glem plugins/diffused_flows plugins/heads plugins/tarflow \
           plugins/gallery

$(BIN)/nfzoo: pyproject.toml zoo/pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS)) constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt "setuptools>=68" wheel
	$(PIP) install -q -c constraints.txt -e ".[test,bench]" $(addprefix -e ,$(PLUGINS)) -e zoo
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

clean:
	rm -rf $(VENV) runs samples.png
