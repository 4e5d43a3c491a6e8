"""What the renderer knows about the zoo's models and about older result files, read from models.json beside
this module (data, not code: a new zoo model is a line in its "order", and an entry in its "models" only when
the model needs one):

- order: the zoo models in the order of the README's tables and of docs/results/zoo.csv (a model of the index
  that is not listed comes after them, by name);
- bound_architectures: architectures whose bpd is a variational bound (DDPM's, one timestep per image);
- class_mixture_architectures: architectures whose bpd cell also gives the class mixture p(x) (GLEM);
- models: per model, only what its files need: "history_test_bpd_unused" (the history's test_bpd column is
  not the model's bound: the training block leaves it out), "stage1" ({"history", "label"}: a first stage
  trained before the model, counted in its epochs), "test_accuracy_file" (an oracle's test accuracy),
  "bench_diffusion_name" (the model's name in the cases of bench-diffusion/bench-diffusion.json);
- blocks: per block id, the files and models of a one-off study that block renders (its runs, its files);
- legacy: files written before result files recorded what measured them: {"sha256": the prefix of the
  file's sha256 the note describes, "note": what the cards and the git log say about it}.

Paths are relative to docs/results. The document is read once per process (`models_json()`).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

MODELS_JSON = Path(__file__).resolve().with_name("models.json")


@lru_cache(maxsize=None)
def models_json() -> Dict[str, Any]:
    """models.json as a dict (read once)."""
    return json.loads(MODELS_JSON.read_text())


ORDER: Tuple[str, ...] = tuple(models_json()["order"])
BOUND_ARCHS: Tuple[str, ...] = tuple(models_json()["bound_architectures"])
MIXTURE_ARCHS: Tuple[str, ...] = tuple(models_json()["class_mixture_architectures"])
LEGACY: Dict[str, Tuple[str, str]] = {rel: (v["sha256"], v["note"]) for rel, v in models_json()["legacy"].items()}


def in_order(names: Iterable[str]) -> List[str]:
    """`names` in ORDER, then the ones ORDER does not list, by name."""
    names = list(names)
    return [n for n in ORDER if n in names] + sorted(n for n in names if n not in ORDER)


def model_data(name: Optional[str]) -> Dict[str, Any]:
    """What models.json says about one model ({} when nothing)."""
    return models_json()["models"].get(name or "", {})


def block_config(block_id: str) -> Dict[str, Any]:
    """The files and models of a study's block (models.json "blocks")."""
    return models_json()["blocks"][block_id]


def _of(name: str, archs: Tuple[str, ...]) -> bool:
    return any(name.startswith(a + "-") for a in archs)


def is_bound(name: str) -> bool:
    """Whether the model's bpd is a variational bound (the diffusion models)."""
    return _of(name, BOUND_ARCHS)


def has_mixture(name: str) -> bool:
    """Whether the model's bpd has a class-mixture counterpart (GLEM: p(x given y) and p(x))."""
    return _of(name, MIXTURE_ARCHS)
