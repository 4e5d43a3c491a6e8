"""Recipes: the whole training of a model as a file. A recipe is YAML (read with `yaml.safe_load`, never
anything that builds objects) holding stages that run in order, each in its own folder:

    recipe: 1                      # the format's version
    model: glow-mnist5k            # what it makes (a name; informational)
    stages:
    - name: train                  # OUT/1-train
      train: {arch: glow, dataset: mnist5k, epochs: 95, lr: 0.002, lr_schedule: cosine,
              model: {levels: 2, steps: 4, hidden: 64}}
    - name: finetune               # OUT/2-finetune, from the weights of the stage before
      train: {arch: glow, dataset: mnist5k, epochs: 10, init_from: "@previous", model: {...}}
    - name: refit                  # OUT/3-refit: `nfzoo refit-prior` of the stage before
      refit_prior: {dataset: mnist5k, rank: 64, by: labels, seed: 0}

A "train" stage holds `nfzoo.training.trainer.TrainConfig` fields (what train.json records as "train"), a
"refit_prior" stage the options of `nfzoo refit-prior`, a "train_oracle" stage those of `nfzoo
train-oracle`. The string "@previous" (in init_from or a model config value, e.g. diffused-flows'
init_flow) is the folder of the stage before. `run_recipe` runs them and leaves the last stage's model in
OUT (config.json, model.safetensors) with OUT/recipe.yaml, the recipe as it ran (overrides applied).

A file's YAML events are scanned before anything is built from them (`scan_yaml`: nesting depth, values with
aliases expanded), each stage's settings are checked as it is parsed, and `check_recipe` checks what every
stage names (architecture and model config, data set, init_from) before the first stage runs: a bad recipe is
a ConfigError (exit code 2) before any work. Those checks live in nfzoo.training.recipe_checks; this module holds the
format (Stage, Recipe, parse_recipe), reading a recipe file or a zoo model's, and running one.

The zoo's models carry theirs (zoo/nfzoo_zoo/models/NAME/recipe.yaml; `find_recipe("glow-mnist5k")`)."""
from __future__ import annotations

import copy
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from nfzoo.errors import ConfigError, UsageError
from nfzoo.training.recipe_checks import (  # noqa: F401  (re-exported)
    MAX_RANK,
    MAX_RECIPE_DEPTH,
    MAX_RECIPE_NODES,
    ORACLE_KEYS,
    PREVIOUS,
    REFIT_KEYS,
    check_recipe,
    check_stage_settings,
    scan_yaml,
)

RECIPE_VERSION = 1
RECIPE_NAME = "recipe.yaml"
MAX_RECIPE_BYTES = 1 << 20      # a recipe is a few hundred bytes; a bigger file is refused before parsing
MAX_STAGES = 32
STAGE_KINDS = ("train", "refit_prior", "train_oracle")
STAGE_DONE = "stage.json"


@dataclass
class Stage:
    """One step of a recipe: `kind` (train | refit_prior | train_oracle) with its settings."""

    name: str
    kind: str
    settings: Dict[str, Any] = field(default_factory=dict)

    def to_doc(self) -> Dict[str, Any]:
        """The stage as the recipe file has it: {"name": ..., KIND: settings}."""
        return {"name": self.name, self.kind: copy.deepcopy(self.settings)}


@dataclass
class Recipe:
    """A parsed, checked recipe (see the module's docstring)."""

    stages: List[Stage]
    model: Optional[str] = None
    source: str = "recipe"

    def to_doc(self) -> Dict[str, Any]:
        """The recipe as a document (what the YAML file holds)."""
        doc: Dict[str, Any] = {"recipe": RECIPE_VERSION}
        if self.model:
            doc["model"] = self.model
        doc["stages"] = [s.to_doc() for s in self.stages]
        return doc

    def to_yaml(self) -> str:
        """The recipe as YAML text (yaml.safe_dump: plain mappings, lists and scalars only)."""
        import yaml

        return yaml.safe_dump(self.to_doc(), sort_keys=False, default_flow_style=None, width=100)

    def save(self, path: Union[str, Path]) -> Path:
        """Write the recipe's YAML to `path` atomically; returns the path."""
        from nfzoo.safeio import atomic_write_bytes

        p = Path(path)
        atomic_write_bytes(p, self.to_yaml().encode("utf-8"))
        return p

    @property
    def train_stages(self) -> List[Stage]:
        """The stages that train (kind "train"), in order."""
        return [s for s in self.stages if s.kind == "train"]

    def with_overrides(self, train: Optional[Dict[str, Any]] = None,
                       model: Optional[Dict[str, Any]] = None, dataset: Optional[str] = None) -> "Recipe":
        """A copy with `train` (TrainConfig fields, e.g. {"epochs": 1}) and `model` (architecture config,
        `--set`) applied to every train stage, and `dataset` to every stage; checked like the file."""
        doc = self.to_doc()
        for st in doc["stages"]:
            if dataset is not None:
                next(v for k, v in st.items() if k != "name")["dataset"] = dataset
            if "train" in st:
                st["train"].update(copy.deepcopy(train or {}))
                if model:
                    st["train"]["model"] = {**st["train"].get("model", {}), **copy.deepcopy(model)}
        return parse_recipe(doc, self.source + " (with the command line's options)")


def parse_recipe(doc: Any, source: str = "recipe") -> Recipe:
    """A Recipe from a parsed document; every problem is a ConfigError naming `source`, the stage and the
    key. What the stages name (architectures, data sets, init_from) is checked by `check_recipe`."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: a recipe is a mapping with \"recipe\" and \"stages\"")
    unknown = sorted(set(doc) - {"recipe", "model", "stages"})
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; a recipe has recipe, model "
                          "and stages")
    if doc.get("recipe") != RECIPE_VERSION:
        raise ConfigError(f"{source}: \"recipe\" must be {RECIPE_VERSION} (the format's version), got "
                          f"{doc.get('recipe')!r:.40}")
    model = doc.get("model")
    if model is not None and not isinstance(model, str):
        raise ConfigError(f"{source}: \"model\" must be a name")
    stages = doc.get("stages")
    if not isinstance(stages, list) or not 1 <= len(stages) <= MAX_STAGES:
        raise ConfigError(f"{source}: \"stages\" must be a list of 1 to {MAX_STAGES} stages")
    out, names = [], set()
    for i, st in enumerate(stages, 1):
        where = f"{source}: stage {i}"
        if not isinstance(st, dict):
            raise ConfigError(f"{where} must be a mapping with a name and one of {', '.join(STAGE_KINDS)}")
        kinds = [k for k in st if k in STAGE_KINDS]
        extra = sorted(set(st) - set(STAGE_KINDS) - {"name"})
        if len(kinds) != 1 or extra:
            raise ConfigError(f"{where} must have a name and exactly one of {', '.join(STAGE_KINDS)}"
                              + (f" (unknown: {', '.join(map(repr, extra))})" if extra else ""))
        name = st.get("name", kinds[0])
        if not (isinstance(name, str) and name.replace("-", "_").isidentifier()) or name in names:
            raise ConfigError(f"{where}: name must be a unique word (letters, digits, - and _), got {name!r:.40}")
        names.add(name)
        kind, settings = kinds[0], st[kinds[0]] if st[kinds[0]] is not None else {}
        where = f"{source}: stage {i} ({name})"
        check_stage_settings(kind, settings, where, first=(i == 1))
        out.append(Stage(name, kind, copy.deepcopy(settings)))
    return Recipe(out, model, source)


def _yaml_problem(exc: Exception) -> str:
    """One line saying what a YAML loader's exception found, and where (line, column) when it knows."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        return exc.problem + (f" (line {mark.line + 1}, column {mark.column + 1})" if mark else "")
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _read_yaml(p: Path) -> Any:
    """The document of the recipe file `p`, scanned (scan_yaml) and then read with yaml.safe_load; whatever
    goes wrong while reading is a ConfigError naming the file."""
    import yaml

    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p} is not UTF-8 text ({exc.reason} at byte {exc.start}); save the recipe as "
                          "UTF-8.") from None
    except OSError as exc:
        raise UsageError(f"cannot read the recipe {p}: {exc.strerror or exc}") from None
    try:
        scan_yaml(text, str(p))
        return yaml.safe_load(text)
    except ConfigError:
        raise
    except Exception as exc:         # YAMLError, RecursionError, ValueError (a huge integer), ...
        raise ConfigError(f"{p} is not a readable YAML recipe: {_yaml_problem(exc)}. Fix the file: a recipe is "
                          "plain YAML (mappings, lists, numbers and strings; no tags).") from None


def load_recipe(path: Union[str, Path]) -> Recipe:
    """Read and check a recipe file: at most MAX_RECIPE_BYTES, its YAML scanned for bounds (scan_yaml) and
    parsed safely; every problem is a ConfigError naming the file."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise UsageError(f"cannot read the recipe {p}: {exc.strerror or exc}") from None
    if size > MAX_RECIPE_BYTES:
        raise ConfigError(f"{p} is {size} bytes: a recipe is at most {MAX_RECIPE_BYTES} bytes")
    return parse_recipe(_read_yaml(p), str(p))


def find_recipe(name_or_path: str) -> Recipe:
    """A recipe file (a path to a .yaml/.yml file) or a zoo model's recipe (its registry entry's
    "recipe_file"); an unknown name is an UnknownNameError listing the zoo models that have one."""
    from nfzoo.errors import UnknownNameError
    from nfzoo.registry.plugins import get_registry

    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise UsageError(f"no recipe file {p}: give a zoo model's name (`nfzoo list --pretrained`) or a "
                             "recipe file's path")
        return load_recipe(p)
    reg = get_registry()
    having = {e.name: e for e in reg.list("pretrained") if e.metadata.get("recipe_file")}
    if name_or_path not in having:
        raise UnknownNameError("recipe", name_or_path, sorted(having),
                               hint="Give a zoo model's name or a recipe file's path (NAME.yaml).")
    return load_recipe(having[name_or_path].metadata["recipe_file"])


def recipe_of_run(cfg: Any, model: Optional[str] = None) -> Recipe:
    """The one-stage recipe of a plain `nfzoo train` run (its TrainConfig): what the run writes as
    recipe.yaml, so `nfzoo train --recipe RUN/recipe.yaml` runs it again."""
    settings = {k: v for k, v in asdict(cfg).items()}
    return parse_recipe({"recipe": RECIPE_VERSION, **({"model": model} if model else {}),
                         "stages": [{"name": "train", "train": settings}]}, "run")


def _resolve(settings: Dict[str, Any], previous: Optional[Path]) -> Dict[str, Any]:
    s = copy.deepcopy(settings)
    if s.get("init_from") == PREVIOUS:
        s["init_from"] = str(previous)
    if isinstance(s.get("model"), dict):
        s["model"] = {k: (str(previous) if v == PREVIOUS else v) for k, v in s["model"].items()}
    return s


def stage_dir(out: Path, i: int, stage: Stage) -> Path:
    """The folder of stage i (1-based) under the recipe's OUT."""
    return Path(out) / f"{i}-{stage.name}"


def train_config_of(stage: Stage, previous: Optional[Path] = None):
    """The TrainConfig a train stage runs with ("@previous" resolved to `previous`)."""
    from nfzoo.training.config import TrainConfig

    cfg = TrainConfig(**_resolve(stage.settings, previous))
    cfg.validate()
    return cfg


def refit_stage(model_dir: Path, out: Path, settings: Dict[str, Any], device: Any = None,
                progress: Optional[Callable[[str, Optional[int]], Callable[[int, Optional[int]], None]]] = None,
                command: str = "") -> Dict[str, Any]:
    """`nfzoo refit-prior` of the model in `model_dir` into `out` (see nfzoo.flows.latent_prior.refit_model)."""
    from nfzoo.evaluation.results import write_result
    from nfzoo.flows.latent_prior import refit_model
    from nfzoo.loading.api import load

    m = load(str(model_dir), device=device)
    doc = refit_model(m, settings["dataset"], rank=settings.get("rank", 64), by=settings.get("by", "labels"),
                      seed=settings.get("seed", 0), data_root=settings.get("data_root"), progress=progress)
    m.save_pretrained(out)
    write_result(Path(out) / "refit.json", {"model": str(model_dir), **doc}, command)
    return doc


def run_recipe(recipe: Recipe, out: Union[str, Path], *, resume: bool = False,
               train_callback: Optional[Callable[[Stage, Any], Any]] = None,
               on_stage: Optional[Callable[[int, Stage, Path], None]] = None,
               progress: Any = None, device: Any = None, command: str = "") -> Dict[str, Any]:
    """Check every stage (check_recipe), then run them in order, each in OUT/<i>-<name>; with `resume`, a
    finished stage (its stage.json) is kept and an unfinished train stage continues from its checkpoint.
    Then the last stage's model is copied to OUT and the recipe written to OUT/recipe.yaml.
    `train_callback(stage, cfg)` gives a train stage's Trainer callback; `on_stage(i, stage, folder)` is
    called as each stage starts. Returns {"out", "stages": [{"name", "kind", "dir", "result"}]}."""
    from nfzoo.constants import CONFIG_NAME, WEIGHTS_NAME
    from nfzoo.safeio import atomic_write_json, read_json

    check_recipe(recipe)                    # every stage, before anything is written or trained
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    recipe.save(out / RECIPE_NAME)          # first: the folder says what it is running
    done: List[Dict[str, Any]] = []
    previous: Optional[Path] = None
    for i, stage in enumerate(recipe.stages, 1):
        d = stage_dir(out, i, stage)
        if on_stage is not None:
            on_stage(i, stage, d)
        marker = d / STAGE_DONE
        if resume and marker.is_file():
            result = read_json(marker).get("result", {})
        elif stage.kind == "train":
            from nfzoo.training.trainer import Trainer

            cfg = train_config_of(stage, previous)
            cb = train_callback(stage, cfg) if train_callback is not None else None
            again = resume and d.is_dir() and any(d.iterdir())
            try:
                result = Trainer(cfg, d, cb, resume=again).run()
            finally:
                if cb is not None and hasattr(cb, "close"):
                    cb.close()
        elif stage.kind == "refit_prior":
            assert previous is not None, "check_recipe: refit_prior is never the first stage"
            if d.exists():
                shutil.rmtree(d)            # a refit is one short step: an unfinished one starts again
            result = refit_stage(previous, d, stage.settings, device=device, progress=progress,
                                 command=f"{command} (stage {i}: {stage.name})".strip())
        else:
            from nfzoo.evaluation.oracle import train_oracle

            if d.exists():
                shutil.rmtree(d)
            result = train_oracle(out=d, **stage.settings)
            result.pop("oracle", None)
        result = {k: v for k, v in result.items() if isinstance(v, (str, int, float, bool, type(None)))}
        atomic_write_json(marker, {"stage": stage.to_doc(), "result": result})
        done.append({"name": stage.name, "kind": stage.kind, "dir": str(d), "result": result})
        previous = d
    assert previous is not None, "check_recipe: a recipe has a stage"
    for fname in (CONFIG_NAME, WEIGHTS_NAME):
        shutil.copyfile(previous / fname, out / fname)
    return {"out": str(out), "stages": done}
