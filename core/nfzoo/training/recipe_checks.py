"""The checks of a recipe (nfzoo.training.recipes), made before anything is built from it or run.

`scan_yaml` reads a recipe file's YAML events before anything is built from them: nesting at most
MAX_RECIPE_DEPTH deep and at most MAX_RECIPE_NODES values with every alias expanded, so an alias bomb or a
deep nest is refused before the loader sees it. `check_stage_settings` checks what one stage holds as the
recipe is parsed: a "train" stage's TrainConfig fields (validated as the run will), the options of a
"refit_prior" or "train_oracle" stage (their keys, types and ranges). `check_recipe` then checks what every
stage names (a known data set, a registered architecture that takes the model config, an init_from that is
a model folder or a pretrained model of the same architecture) without building or loading anything.

Every problem is a ConfigError (exit code 2) naming the recipe, the stage and the key. The string PREVIOUS
("@previous": the folder of the stage before) is left for the run to resolve."""
from __future__ import annotations

import copy
import math
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List

from nfzoo.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from nfzoo.training.recipes import Recipe, Stage

PREVIOUS = "@previous"
MAX_RECIPE_DEPTH = 32           # nesting of lists and mappings (a recipe needs about 5)
MAX_RECIPE_NODES = 10_000       # values once aliases are expanded (a recipe has a few hundred)
MAX_RANK = 1 << 20              # as `nfzoo refit-prior --rank`
REFIT_KEYS = {"dataset": str, "rank": int, "by": str, "seed": int, "data_root": (str, type(None))}
ORACLE_KEYS = {"dataset": str, "epochs": int, "batch_size": int, "lr": float, "seed": int,
               "weight_decay": float, "data_root": (str, type(None))}


def scan_yaml(text: str, source: str = "recipe") -> None:
    """Check YAML text's events before anything is built from them (yaml.parse is iterative): nesting at most
    MAX_RECIPE_DEPTH deep, at most MAX_RECIPE_NODES values with every alias expanded, and no alias inside the
    value it names. A file that breaks a bound is a ConfigError naming it; YAML errors are left to the
    loader."""
    import yaml

    opened: List[tuple] = []          # (values counted when the collection opened, its anchor)
    sizes: Dict[str, int] = {}         # anchor -> the expanded size of its value
    count = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            opened.append((count, event.anchor))
            count += 1
            if len(opened) > MAX_RECIPE_DEPTH:
                raise ConfigError(f"{source} is nested more than {MAX_RECIPE_DEPTH} levels deep; a recipe needs "
                                  "about 5 (stages, a stage, its settings, the model config, a list). Fix its "
                                  "brackets or indentation.")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            start, anchor = opened.pop()
            if anchor is not None:
                sizes[anchor] = count - start
        elif isinstance(event, yaml.ScalarEvent):
            count += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for _, anchor in opened):
                raise ConfigError(f"{source}: the alias *{event.anchor} is inside the value it names "
                                  f"(&{event.anchor}), a loop. Write the value out instead.")
            count += sizes.get(event.anchor, 1)     # an unknown alias is the loader's error
        if count > MAX_RECIPE_NODES:
            raise ConfigError(f"{source} holds more than {MAX_RECIPE_NODES} values once its aliases (*name) are "
                              "expanded; a recipe has a few hundred. Write the values out, or use fewer aliases.")


# ---------------------------------------------------------------- what a stage holds (while parsing)
def _type_name(t: Any) -> str:
    return " or ".join(x.__name__ for x in t) if isinstance(t, tuple) else t.__name__


def _check_keys(doc: Dict[str, Any], allowed: Dict[str, Any], where: str) -> None:
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise ConfigError(f"{where} has unknown setting(s) {', '.join(map(repr, unknown))}; it takes "
                          f"{', '.join(sorted(allowed))}")
    for k, t in allowed.items():
        if k in doc:
            v = doc[k]
            ok = isinstance(v, t) and not isinstance(v, bool)
            if t is float and isinstance(v, int) and not isinstance(v, bool):
                ok = True
            if not ok:
                raise ConfigError(f"{where}: {k} must be {_type_name(t)}, got {v!r:.60}")


def _check_train(settings: Any, where: str, first: bool) -> None:
    from nfzoo.training.config import TrainConfig

    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: \"train\" must be an object of training settings (TrainConfig fields)")
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise ConfigError(f"{where} has unknown training setting(s) {', '.join(map(repr, unknown))}; it takes "
                          f"the fields of train.json's \"train\": {', '.join(sorted(names))}")
    for k in ("arch", "dataset"):
        if not isinstance(settings.get(k), str) or not settings[k]:
            raise ConfigError(f"{where}: a train stage names its {k}")
    model = settings.get("model", {})
    if not isinstance(model, dict):
        raise ConfigError(f"{where}: model must be an object of architecture settings (`--set KEY=VALUE`)")
    uses_previous = settings.get("init_from") == PREVIOUS or PREVIOUS in model.values()
    if first and uses_previous:
        raise ConfigError(f"{where}: {PREVIOUS!r} names the stage before, and this is the first stage")
    # everything but the placeholders is checked as the run will check it
    probe = {k: v for k, v in settings.items() if k != "init_from" or v != PREVIOUS}
    probe["model"] = {k: v for k, v in model.items() if v != PREVIOUS}
    try:
        TrainConfig(**probe).validate()
    except (TypeError, UsageError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _count_ranges() -> Dict[str, tuple]:
    from nfzoo.flows.generation import SEED_MAX
    from nfzoo.training.config import MAX_COUNT

    return {"epochs": (1, MAX_COUNT), "batch_size": (1, MAX_COUNT), "seed": (0, SEED_MAX), "rank": (0, MAX_RANK)}


def _check_ranges(settings: Dict[str, Any], where: str) -> None:
    """The values of a refit_prior or train_oracle stage (its types are checked already): counts and seeds in
    range, lr positive and finite, weight_decay finite and >= 0."""
    for k, (lo, hi) in _count_ranges().items():
        if k in settings and not lo <= settings[k] <= hi:
            raise ConfigError(f"{where}: {k} must be an integer in [{lo}, {hi}], got {settings[k]}")
    lr, decay = settings.get("lr", 1.0), settings.get("weight_decay", 0.0)
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"{where}: lr must be a positive finite number, got {lr}")
    if not (decay >= 0 and math.isfinite(decay)):
        raise ConfigError(f"{where}: weight_decay must be a finite number >= 0, got {decay}")


def _check_options(kind: str, settings: Dict[str, Any], where: str) -> None:
    """The options of a refit_prior or train_oracle stage: known keys of the right types, in range."""
    _check_keys(settings, REFIT_KEYS if kind == "refit_prior" else ORACLE_KEYS, where)
    _check_ranges(settings, where)


def check_stage_settings(kind: str, settings: Any, where: str, first: bool) -> None:
    """What a stage of kind `kind` holds, as parse_recipe reads it: a train stage's TrainConfig fields
    (validated as the run will, "@previous" left out; it cannot be in the `first` stage), the keys, types
    and ranges of a refit_prior or train_oracle stage's options (a refit_prior stage is never first and
    names its dataset). A problem is a ConfigError starting with `where`."""
    if kind == "train":
        _check_train(settings, where, first)
        return
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: {kind} must be a mapping of its options")
    _check_options(kind, settings, where)
    if kind == "refit_prior":
        if first:
            raise ConfigError(f"{where}: refit_prior refits the model of the stage before; it cannot "
                              "come first")
        if "dataset" not in settings:
            raise ConfigError(f"{where}: refit_prior needs its dataset (the model's training data)")
        if settings.get("by", "labels") not in ("labels", "single"):
            raise ConfigError(f"{where}: by must be labels or single")


# ------------------------------------------------------------ what a stage names (before the first runs)
def _check_dataset(name: str, where: str) -> None:
    """A data set name `load_dataset` knows, or folder:DIR with DIR an existing folder."""
    from nfzoo.data import dataset_names
    from nfzoo.errors import UnknownNameError

    if name.startswith("hf:"):   # a Hugging Face data set: its name is checked here, its files when it loads
        from nfzoo.data import parse_hf_name

        parse_hf_name(name)
    elif name.startswith("folder:"):
        if not Path(name[len("folder:"):]).is_dir():
            raise ConfigError(f"{where}: image folder {name[len('folder:'):]} does not exist. Pass folder:DIR "
                              "with one sub-folder of images per class (torchvision ImageFolder layout).")
    elif name not in dataset_names():
        raise ConfigError(f"{where}: " + str(UnknownNameError(
            "dataset", name, dataset_names(), hint="Or pass folder:DIR for a folder of images.")))


def _check_model(arch: str, model: Dict[str, Any], where: str) -> None:
    """The architecture is registered and takes `model` (its keys, the common keys' ranges, every number),
    as the trainer's build_model checks it, without building anything."""
    from nfzoo.flows import latent_prior
    from nfzoo.loading import limits
    from nfzoo.loading.api import architecture_config

    limits.check_numbers(model, where, key=f"{arch} config")
    config = dict(model)
    latent_prior.check_spec(config.pop(latent_prior.KEY, None), where)
    limits.check_config(arch, architecture_config(arch, **config), where)


def _check_init(name: str, arch: str, where: str) -> None:
    """init_from, read by the name rule of nfzoo.load (nfzoo.loading.pretrained.parse_model_name), which loads it
    when the stage runs: a folder must hold config.json, a Hub id (hf-hub:ORG/NAME[@REV], or ORG/NAME that is
    no folder here) must be well-formed, a zoo name must be a pretrained flow model of architecture `arch`."""
    from nfzoo.constants import CONFIG_NAME
    from nfzoo.loading.pretrained import parse_model_name, resolve_pretrained

    parsed = parse_model_name(name)          # a bad Hub id is a UsageError (check_recipe names the stage)
    if parsed.kind == "dir":
        if not (parsed.path / CONFIG_NAME).is_file():
            raise ConfigError(f"{where}: init_from {name!r} is not a model folder (no {CONFIG_NAME} at "
                              f"{parsed.path}). Give a trained model's folder, a pretrained name or "
                              f"{PREVIOUS!r}.")
    elif parsed.kind == "zoo":
        entry = resolve_pretrained(parsed.value)
        if entry.kind not in (None, "flow") or (entry.architecture or arch) != arch:
            raise ConfigError(f"{where}: init_from {name!r} is a {entry.architecture or entry.kind} model; this "
                              f"stage trains {arch}: start from a model of the same architecture.")


def _check_stage(stage: "Stage", where: str) -> None:
    """What one stage names and holds, as its run would check it (see check_recipe)."""
    from nfzoo.training.config import TrainConfig

    if stage.kind != "train":
        _check_options(stage.kind, stage.settings, where)
        _check_dataset(stage.settings.get("dataset", "mnist5k"), where)
        return
    cfg = TrainConfig(**copy.deepcopy(stage.settings))      # as the run builds it; "@previous" is kept
    cfg.validate()
    _check_dataset(cfg.dataset, where)
    _check_model(cfg.arch, cfg.model, where)
    if cfg.init_from not in (None, PREVIOUS):
        _check_init(cfg.init_from, cfg.arch, where)


def check_recipe(recipe: "Recipe") -> None:
    """Check every stage before the first one runs: its settings and their ranges, a known data set (an
    existing folder for folder:DIR), a registered architecture that takes the model config, and an
    init_from that names an existing model folder or a pretrained model. A problem is a ConfigError naming
    the recipe and the stage ("r.yaml: stage 3 (finetune): ..."); nothing is built or loaded."""
    from nfzoo.errors import NfzooError

    if not recipe.stages:          # a Recipe built in Python, not parsed: the run needs a last stage's model
        raise ConfigError(f"{recipe.source}: a recipe needs at least one stage")
    for i, stage in enumerate(recipe.stages, 1):
        where = f"{recipe.source}: stage {i} ({stage.name})"
        if i == 1 and stage.kind == "refit_prior":
            raise ConfigError(f"{where}: refit_prior refits the model of the stage before; it cannot come first")
        try:
            _check_stage(stage, where)
        except ConfigError as exc:
            if str(exc).startswith(where):
                raise
            raise ConfigError(f"{where}: {exc}") from None
        except NfzooError as exc:
            raise ConfigError(f"{where}: {exc}") from None
