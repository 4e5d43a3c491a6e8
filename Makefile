# The two commands of the README. Both set up a fresh .venv from constraints.txt on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --disable-pip-version-check

.PHONY: setup run test clean

$(BIN)/nfzoo: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt "setuptools>=68" wheel
	$(PIP) install -q -c constraints.txt -e ".[test]"
	touch $(BIN)/nfzoo

setup: $(BIN)/nfzoo

# the main job: sample from a model, offline
run: setup
	$(BIN)/nfzoo train glow --dataset digits --epochs 3 --set levels=1 --set steps=4 --set hidden=32 \
		--out runs/demo-glow-digits $(if $(wildcard runs/demo-glow-digits/train.json),--resume,)
	$(BIN)/nfzoo sample --model runs/demo-glow-digits -n 64 --seed 0 --out samples.png

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs samples.png
