"""The Python API: list, create and load models, list plugins."""
from __future__ import annotations

import functools
import inspect
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from nfzoo.errors import ConfigError, UnknownNameError
from nfzoo.loading.pretrained import resolve_pretrained  # noqa: F401  (part of the Python API: nfzoo.loading.api.resolve_pretrained)
from nfzoo.registry.plugins import get_registry


def list_models(pattern: str = "*") -> List[str]:
    """Architecture names matching an fnmatch pattern."""
    return [e.name for e in get_registry().list("architectures", pattern)]


def list_pretrained(pattern: str = "*") -> List[str]:
    """Pretrained model names matching an fnmatch pattern."""
    return [e.name for e in get_registry().list("pretrained", pattern)]


def list_plugins() -> List[Dict[str, Any]]:
    """One JSON-able document per plugin: name, version, hooks, module, builtin, error (None if loaded)."""
    reg = get_registry()
    reg.load()
    return [p.to_json() for p in reg.plugins.values()]


def _as_lists(v: Any) -> Any:
    """Tuples (nested too) as lists: a config as it reads back from JSON."""
    return [_as_lists(i) for i in v] if isinstance(v, (tuple, list)) else v


def architecture_config(arch: str, **config: Any) -> Dict[str, Any]:
    """Validate `config` against the architecture's builder and fill in its defaults."""
    builder = get_registry().get("architectures", arch).load()
    sig = inspect.signature(builder)
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [k for k in config if k not in sig.parameters]
    if unknown and not accepts_any:
        known = ", ".join(p for p in sig.parameters)
        raise ConfigError(f"{arch} has no config key(s) {', '.join(map(repr, unknown))}. Its keys: {known}.")
    try:
        bound = sig.bind(**config)
    except TypeError as exc:
        raise ConfigError(f"bad config for {arch}: {exc}") from exc
    bound.apply_defaults()
    out = dict(bound.arguments)
    for p in sig.parameters.values():
        if p.kind == p.VAR_KEYWORD:
            out.update(out.pop(p.name, {}))
    return {k: _as_lists(v) for k, v in out.items()}


def architecture_preset(arch: str, preset: str) -> Dict[str, Dict[str, Any]]:
    """A named setting registered with an architecture (metadata `presets`): {"model": architecture config,
    "train": training settings}, e.g. glem's "cifar100" (the paper-scale setting)."""
    entry = get_registry().get("architectures", arch)
    presets = entry.metadata.get("presets") or {}
    if preset not in presets:
        raise UnknownNameError(f"preset of {arch}", preset, presets)
    doc = presets[preset]
    return {"model": dict(doc.get("model", {})), "train": dict(doc.get("train", {}))}


def create_model(arch: str, **config: Any):
    """Build a fresh model of architecture `arch`, e.g. create_model("glow", image_shape=(1, 8, 8)). The
    config is checked first (nfzoo.loading.limits: types and ranges; nfzoo.loading.shape_build: parameter and activation
    limits) and nothing is allocated for a config that would not fit."""
    return build_model(arch, config)


def build_model(arch: str, config: Dict[str, Any], batch: int = 1, weights: Optional[os.PathLike] = None,
                source: Optional[str] = None):
    """create_model with the checks spelled out: `batch` is the batch whose activations must fit, `weights`
    a safetensors file whose header must match what the config builds (checked before the real model is
    built), `source` the file the config came from (named in errors)."""
    from nfzoo.flows import latent_prior
    from nfzoo.loading import limits, shape_build

    arch_builder = get_registry().get("architectures", arch).load()
    limits.check_numbers(config, source, key=f"{arch} config")   # before anything walks it
    config = dict(config)
    # a fitted latent prior (nfzoo.flows.latent_prior) is the core's, whatever the architecture
    spec = latent_prior.check_spec(config.pop(latent_prior.KEY, None), source)
    full = limits.check_config(arch, architecture_config(arch, **config), source)

    @functools.wraps(arch_builder)       # its signature stays the architecture's (size messages read it)
    def builder(**kw):
        return latent_prior.attach(arch_builder(**kw), spec)
    kwargs = dict(full)
    if "image_shape" in kwargs:
        kwargs["image_shape"] = tuple(kwargs["image_shape"])
    model = None
    if not shape_build.planning():   # inside another model's shape build, that one counts this one too
        plan = shape_build.plan_model(arch, builder, kwargs, full, batch=batch, source=source)
        if weights is not None:
            limits.check_weights_header(plan, weights, source or "its config")
        model = plan.model
    if model is None:
        try:
            model = builder(**kwargs)
        except ConfigError:
            raise
        except (ValueError, TypeError, ArithmeticError, LookupError, RuntimeError) as exc:
            raise ConfigError(f"{_where(source)}cannot build {arch} with this config: "
                              f"{limits._first_line(exc)}") from None
    model.architecture = arch
    model.config = full if spec is None else {**full, latent_prior.KEY: spec}
    return model


def _where(source: Optional[str]) -> str:
    return f"{source}: " if source else ""


def load_directory(directory: os.PathLike, device: Optional[str] = None):
    """A model from a directory (config.json + model.safetensors): the config is checked, and compared
    with the weights' header, before the model is built; the weights are loaded strictly."""
    from nfzoo.constants import CONFIG_NAME, WEIGHTS_NAME
    from nfzoo.safeio import read_json

    d = Path(directory)
    doc = read_json(d / CONFIG_NAME, "model config")
    if not isinstance(doc, dict) or not isinstance(doc.get("architecture"), str) \
            or not isinstance(doc.get("config"), dict):
        raise ConfigError(f"{d / CONFIG_NAME} is not an nfzoo model config: it needs \"architecture\" (a "
                          "name) and \"config\" (an object) keys (write it with FlowModel.save_pretrained).")
    weights = d / WEIGHTS_NAME
    model = build_model(doc["architecture"], doc["config"], weights=weights, source=str(d / CONFIG_NAME))
    model.load_weights(weights)
    if doc.get("sampling") is not None:
        if not isinstance(doc["sampling"], dict):
            raise ConfigError(f"{d / CONFIG_NAME}: \"sampling\" must be an object (sampler, temperature)")
        model.set_sampling(doc["sampling"], source=str(d / CONFIG_NAME))
    model.eval()
    if device:
        model.to(device)
    return model


def load(name: Union[str, os.PathLike], revision: Optional[str] = None, download: bool = False,
         device: Optional[str] = None):
    """Load a model by the one name rule (nfzoo.loading.pretrained.parse_model_name, the same for
    FlowModel.from_pretrained, the CLI and a recipe's init_from): `hf-hub:ORG/NAME[@REV]` is a Hub repo;
    `local-dir:PATH`, an os.PathLike, an absolute path or one starting with `.` or `~` is a folder;
    `ORG/NAME` is that folder if it exists, else the Hub repo ORG/NAME; any other path (`a/b/c`) is a
    folder; a bare name is the zoo's (a pretrained name, or a family name: its default model), and a folder
    of that name in the working directory does not shadow it. Zoo weights come from the zoo package, else
    the Hugging Face cache, else (only with download=True) the Hub, checked against the zoo index's sha256;
    a Hub repo's come from the cache, else (only with download=True) the Hub (nfzoo.loading.sources.resolve_source,
    nfzoo.hub.fetch). `revision` (a commit sha, branch or tag) overrides a zoo entry's pin or an id's @REV."""
    from nfzoo.loading.sources import resolve_source

    src = resolve_source(name, revision, download, kind="flow")
    if src.path is not None:
        return load_directory(src.path, device)
    if device:
        src.obj.to(device)
    return src.obj
