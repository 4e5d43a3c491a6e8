"""Pretrained entries, typed, and what a name means. Torch-free; imports only the registry.

A pretrained model is registered through `register_pretrained` with its pins as metadata (DESIGN.md, "Zoo
and Hub"); `PretrainedEntry` is that registration read once into typed fields. `resolve_pretrained` maps a
pretrained name, or a family (architecture) name to its default model, to its entry.

The name rule (timm's): a name means a model directory only when it is path-like (`is_path_like`: it holds
a path separator, or starts with `.` or `~`) or says `local-dir:`; `hf-hub:org/name[@rev]` names a Hub repo;
anything else is a zoo name, so a folder in the working directory never shadows a zoo model.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from .constants import HF_PREFIX
from .errors import ConfigError, UnknownNameError
from .plugins import get_registry

LOCAL_PREFIX = "local-dir:"            # `local-dir:NAME` is the folder NAME, whatever NAME looks like


def is_path_like(name: str) -> bool:
    """Whether a (string) name means a directory: `local-dir:...`, a path separator in it, or a leading
    `.` or `~`. `hf-hub:` ids are not path-like."""
    if name.startswith(HF_PREFIX):
        return False
    seps = [os.sep] + ([os.altsep] if os.altsep else [])
    return name.startswith((LOCAL_PREFIX, ".", "~")) or any(s in name for s in seps)


def local_path(name: str) -> Path:
    """The folder a path-like name means (`local-dir:` dropped, `~` expanded)."""
    if name.startswith(LOCAL_PREFIX):
        name = name[len(LOCAL_PREFIX):]
    return Path(name).expanduser()


@dataclass(frozen=True)
class PretrainedEntry:
    """A registered pretrained model, read from its registry entry's metadata.

    `files` pins file name -> sha256, `revision` the Hub commit (None while unpublished), `path` the folder
    embedded in the zoo package (if any), `kind` "flow" or "oracle" (None: not said, a flow). `metadata`
    keeps the registration as given (description, recipe, a plugin's own keys)."""

    name: str
    plugin: str
    architecture: Optional[str] = None
    config: Dict[str, Any] = field(default_factory=dict)
    dataset: Optional[str] = None
    metrics: Dict[str, Any] = field(default_factory=dict)
    repo_id: Optional[str] = None
    revision: Optional[str] = None
    files: Dict[str, Any] = field(default_factory=dict)
    path: Optional[str] = None
    status: Optional[str] = None
    license: Optional[str] = None
    paper: Optional[str] = None
    kind: Optional[str] = None
    default: bool = False
    metadata: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    registry_entry: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, entry: Any) -> "PretrainedEntry":
        """The typed entry of a registry entry (nfzoo.plugins.Entry); a PretrainedEntry is returned as is.
        A pin of the wrong type is a ConfigError naming the entry, its plugin and the key."""
        if isinstance(entry, cls):
            return entry
        meta = dict(entry.metadata)

        def typed(key: str, kind: type, what: str, default: Any = None) -> Any:
            v = meta.get(key)
            if v is None:
                return default
            if not isinstance(v, kind):
                raise ConfigError(f"pretrained entry {entry.name!r} (plugin {entry.plugin!r}): {key!r} must be "
                                  f"{what}, got {v!r:.80}; fix the plugin (zoo index) that registers it.")
            return v

        s = (str, "a string")
        obj = (dict, "an object")
        return cls(name=entry.name, plugin=entry.plugin, architecture=typed("architecture", *s),
                   config=dict(typed("config", *obj, {})), dataset=typed("dataset", *s),
                   metrics=dict(typed("metrics", *obj, {})), repo_id=typed("repo_id", *s),
                   revision=typed("revision", *s), files=dict(typed("files", *obj, {})),
                   path=typed("path", *s), status=typed("status", *s), license=typed("license", *s),
                   paper=typed("paper", *s), kind=typed("kind", *s),
                   default=typed("default", bool, "true or false", False), metadata=meta, registry_entry=entry)

    def load(self) -> Any:
        """What the registration targets (a folder, or a plugin's loader `fn(revision=None,
        download=False)`), imported if it is a lazy "module:attribute" string."""
        return self.registry_entry.load()


def _is_folder(name: str) -> bool:
    """Whether `name` is a folder here; a name the file system cannot even look up (too long, a NUL) is not."""
    try:
        return Path(name).is_dir()
    except (OSError, ValueError):
        return False


def resolve_pretrained(name: str, folder_hint: bool = True) -> PretrainedEntry:
    """The pretrained entry of `name`; a family (architecture) name resolves to its default model. An
    unknown name is UnknownNameError with the closest names (and, with `folder_hint`, for a folder of that
    name here, the hint to write it as a path: ./NAME; a server passes False: it never looks a client's name
    up on its disk)."""
    reg = get_registry()
    pre = reg.registry("pretrained")
    if name in pre:
        return PretrainedEntry.of(pre[name])
    defaults = [e for e in pre.values() if e.metadata.get("architecture") == name and e.metadata.get("default")]
    if defaults:
        return PretrainedEntry.of(defaults[0])
    known = list(pre)
    if name in reg.registry("architectures"):
        raise UnknownNameError("pretrained model", name, known,
                               hint=f"{name!r} is an architecture with no pretrained model yet: train one "
                               f"with `nfzoo train {name} --dataset ...` and pass its directory.")
    here = (f" A folder {name!r} is here: a name means a zoo model unless it is a path, so write ./{name} "
            "(or local-dir:" + name + ") to load it." if folder_hint and _is_folder(name) else "")
    raise UnknownNameError("pretrained model", name, known,
                           hint="Pass a pretrained name (`nfzoo list --pretrained`) or a model directory "
                           f"written as a path (./NAME, /abs/path, or local-dir:NAME).{here}")


def embedded_sampling(entry: Any) -> Dict[str, Any]:
    """The measured sampling defaults ({"sampler", "temperature", "options", "source"}) in the config.json of an
    embedded pretrained model; {} when the model is not embedded or its config has none."""
    import json

    from .constants import CONFIG_NAME

    path = PretrainedEntry.of(entry).path
    if not path or not (Path(path) / CONFIG_NAME).is_file():
        return {}
    try:
        doc = json.loads((Path(path) / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    sampling = doc.get("sampling") if isinstance(doc, dict) else None
    return dict(sampling) if isinstance(sampling, dict) else {}
