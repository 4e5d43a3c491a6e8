"""Registers the zoo's pretrained models with nfzoo, from index.json. Reads JSON only: no torch."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import nfzoo

HERE = Path(__file__).resolve().parent
INDEX = HERE / "index.json"
MODELS = HERE / "models"


def read_index(path: Optional[Path] = None) -> Dict[str, Any]:
    path = INDEX if path is None else path   # looked up at call time (tests point it elsewhere)
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), dict):
        raise ValueError(f"{path} is not a zoo index: it needs a \"models\" object")
    return doc


def entries(index: Optional[Path] = None, models: Optional[Path] = None) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """(name, metadata) per model: every index field, plus `path` when the weights are embedded and
    `recipe_file` when the model's folder has its recipe (recipe.yaml)."""
    models = MODELS if models is None else models
    for name, pins in sorted(read_index(index)["models"].items()):
        meta = dict(pins)
        if not meta.get("description"):
            meta["description"] = f"{meta.get('architecture')} trained on {meta.get('dataset')}"
        folder = Path(models) / name
        if (folder / "model.safetensors").is_file() and (folder / "config.json").is_file():
            meta["path"] = str(folder)
        if (folder / "recipe.yaml").is_file():     # the whole training, `nfzoo train --recipe NAME`
            meta["recipe_file"] = str(folder / "recipe.yaml")
        yield name, meta


@nfzoo.hookimpl
def register_pretrained(register):
    # target: the embedded folder, else the name (nfzoo.hub.fetch finds the files in the cache or on the Hub)
    for name, meta in entries():
        register(name, meta.get("path") or name, **meta)
