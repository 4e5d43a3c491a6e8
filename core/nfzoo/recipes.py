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

A "train" stage holds `nfzoo.training.TrainConfig` fields (what train.json records as "train"), a
"refit_prior" stage the options of `nfzoo refit-prior`, a "train_oracle" stage those of `nfzoo
train-oracle`. The string "@previous" (in init_from or a model config value, e.g. diffused-flows'
init_flow) is the folder of the stage before. `run_recipe` runs them and leaves the last stage's model in
OUT (config.json, model.safetensors) with OUT/recipe.yaml, the recipe as it ran (overrides applied).

A file's YAML events are scanned before anything is built from them (`scan_yaml`: nesting depth, values with
aliases expanded), and `check_recipe` checks what every stage names (architecture and model config, data
set, init_from) before the first stage runs: a bad recipe is a ConfigError (exit code 2) before any work.

The zoo's models carry theirs (zoo/nfzoo_zoo/models/NAME/recipe.yaml; `find_recipe("glow-mnist5k")`)."""
from __future__ import annotations

import copy
import math
import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from .errors import ConfigError, UsageError

RECIPE_VERSION = 1
RECIPE_NAME = "recipe.yaml"
PREVIOUS = "@previous"
MAX_RECIPE_BYTES = 1 << 20      # a recipe is a few hundred bytes; a bigger file is refused before parsing
MAX_RECIPE_DEPTH = 32           # nesting of lists and mappings (a recipe needs about 5)
MAX_RECIPE_NODES = 10_000       # values once aliases are expanded (a recipe has a few hundred)
MAX_STAGES = 32
MAX_RANK = 1 << 20              # as `nfzoo refit-prior --rank`
STAGE_KINDS = ("train", "refit_prior", "train_oracle")
REFIT_KEYS = {"dataset": str, "rank": int, "by": str, "seed": int, "data_root": (str, type(None))}
ORACLE_KEYS = {"dataset": str, "epochs": int, "batch_size": int, "lr": float, "seed": int,
               "weight_decay": float, "data_root": (str, type(None))}
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
        from .safeio import atomic_write_bytes

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
    from .train_config import TrainConfig

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
    from .generation import SEED_MAX
    from .train_config import MAX_COUNT

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
        if kind == "train":
            _check_train(settings, where, first=(i == 1))
        else:
            if not isinstance(settings, dict):
                raise ConfigError(f"{where}: {kind} must be a mapping of its options")
            _check_keys(settings, REFIT_KEYS if kind == "refit_prior" else ORACLE_KEYS, where)
            _check_ranges(settings, where)
            if kind == "refit_prior":
                if i == 1:
                    raise ConfigError(f"{where}: refit_prior refits the model of the stage before; it cannot "
                                      "come first")
                if "dataset" not in settings:
                    raise ConfigError(f"{where}: refit_prior needs its dataset (the model's training data)")
                if settings.get("by", "labels") not in ("labels", "single"):
                    raise ConfigError(f"{where}: by must be labels or single")
        out.append(Stage(name, kind, copy.deepcopy(settings)))
    return Recipe(out, model, source)


def _check_dataset(name: str, where: str) -> None:
    """A data set name `load_dataset` knows, or folder:DIR with DIR an existing folder."""
    from .data import dataset_names
    from .errors import UnknownNameError

    if name.startswith("folder:"):
        if not Path(name[len("folder:"):]).is_dir():
            raise ConfigError(f"{where}: image folder {name[len('folder:'):]} does not exist. Pass folder:DIR "
                              "with one sub-folder of images per class (torchvision ImageFolder layout).")
    elif name not in dataset_names():
        raise ConfigError(f"{where}: " + str(UnknownNameError(
            "dataset", name, dataset_names(), hint="Or pass folder:DIR for a folder of images.")))


def _check_model(arch: str, model: Dict[str, Any], where: str) -> None:
    """The architecture is registered and takes `model` (its keys, the common keys' ranges, every number),
    as the trainer's build_model checks it, without building anything."""
    from . import latent_prior, limits
    from .api import architecture_config

    limits.check_numbers(model, where, key=f"{arch} config")
    config = dict(model)
    latent_prior.check_spec(config.pop(latent_prior.KEY, None), where)
    limits.check_config(arch, architecture_config(arch, **config), where)


def _check_init(name: str, arch: str, where: str) -> None:
    """init_from, read by the name rule of nfzoo.load (nfzoo.pretrained.parse_model_name), which loads it
    when the stage runs: a folder must hold config.json, a Hub id (hf-hub:ORG/NAME[@REV], or ORG/NAME that is
    no folder here) must be well-formed, a zoo name must be a pretrained flow model of architecture `arch`."""
    from .constants import CONFIG_NAME
    from .pretrained import parse_model_name, resolve_pretrained

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


def _check_stage(stage: Stage, where: str) -> None:
    """What one stage names and holds, as its run would check it (see check_recipe)."""
    if stage.kind != "train":
        _check_keys(stage.settings, REFIT_KEYS if stage.kind == "refit_prior" else ORACLE_KEYS, where)
        _check_ranges(stage.settings, where)
        _check_dataset(stage.settings.get("dataset", "mnist5k"), where)
        return
    cfg = train_config_of(stage, Path(PREVIOUS))
    _check_dataset(cfg.dataset, where)
    _check_model(cfg.arch, cfg.model, where)
    if cfg.init_from not in (None, PREVIOUS):
        _check_init(cfg.init_from, cfg.arch, where)


def check_recipe(recipe: Recipe) -> None:
    """Check every stage before the first one runs: its settings and their ranges, a known data set (an
    existing folder for folder:DIR), a registered architecture that takes the model config, and an
    init_from that names an existing model folder or a pretrained model. A problem is a ConfigError naming
    the recipe and the stage ("r.yaml: stage 3 (finetune): ..."); nothing is built or loaded."""
    from .errors import NfzooError

    for i, stage in enumerate(recipe.stages, 1):
        where = f"{recipe.source}: stage {i} ({stage.name})"
        try:
            _check_stage(stage, where)
        except ConfigError as exc:
            if str(exc).startswith(where):
                raise
            raise ConfigError(f"{where}: {exc}") from None
        except NfzooError as exc:
            raise ConfigError(f"{where}: {exc}") from None


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
    from .errors import UnknownNameError
    from .plugins import get_registry

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
    from .train_config import TrainConfig

    cfg = TrainConfig(**_resolve(stage.settings, previous))
    cfg.validate()
    return cfg


def refit_stage(model_dir: Path, out: Path, settings: Dict[str, Any], device: Any = None,
                progress: Optional[Callable[[str, Optional[int]], Callable[[int, Optional[int]], None]]] = None,
                command: str = "") -> Dict[str, Any]:
    """`nfzoo refit-prior` of the model in `model_dir` into `out` (see nfzoo.latent_prior.refit_model)."""
    from .api import load
    from .latent_prior import refit_model
    from .results import write_result

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
    from .constants import CONFIG_NAME, WEIGHTS_NAME
    from .safeio import atomic_write_json, read_json

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
            from .training import Trainer

            cfg = train_config_of(stage, previous)
            cb = train_callback(stage, cfg) if train_callback is not None else None
            again = resume and d.is_dir() and any(d.iterdir())
            try:
                result = Trainer(cfg, d, cb, resume=again).run()
            finally:
                if cb is not None and hasattr(cb, "close"):
                    cb.close()
        elif stage.kind == "refit_prior":
            if d.exists():
                shutil.rmtree(d)            # a refit is one short step: an unfinished one starts again
            result = refit_stage(previous, d, stage.settings, device=device, progress=progress,
                                 command=f"{command} (stage {i}: {stage.name})".strip())
        else:
            from .oracle import train_oracle

            if d.exists():
                shutil.rmtree(d)
            result = train_oracle(out=d, **stage.settings)
            result.pop("oracle", None)
        result = {k: v for k, v in result.items() if isinstance(v, (str, int, float, bool, type(None)))}
        atomic_write_json(marker, {"stage": stage.to_doc(), "result": result})
        done.append({"name": stage.name, "kind": stage.kind, "dir": str(d), "result": result})
        previous = d
    for fname in (CONFIG_NAME, WEIGHTS_NAME):
        shutil.copyfile(previous / fname, out / fname)
    return {"out": str(out), "stages": done}
