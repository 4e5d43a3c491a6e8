"""Pretrained entries, typed, and what a name means. Torch-free; imports only the registry and nfzoo.hub.names.

A pretrained model is registered through `register_pretrained` with its pins as metadata (DESIGN.md, "Zoo
and Hub"); `PretrainedEntry` is that registration read once into typed fields. `resolve_pretrained` maps a
pretrained name, or a family (architecture) name to its default model, to its entry.

The name rule, written once here (`parse_model_name`) and followed by every entry point: nfzoo.load,
FlowModel.from_pretrained, the CLI's --model, a recipe's init_from, the oracle and the gallery. It is timm's
(`hf-hub:` / `local-dir:`) with diffusers' ORG/NAME; the first rule that matches decides:

1. `hf-hub:ORG/NAME[@REV]` is the Hub repo ORG/NAME (at REV); a bad repo id or revision is a UsageError.
2. `local-dir:PATH` is the folder PATH, whatever PATH looks like.
3. An os.PathLike, an absolute path, or a name starting with `.` or `~` (`./x`, `../x`, `~/x`, `.x`) is a folder.
4. `ORG/NAME` (exactly one `/`, no other path separator) is that folder if it exists, else the Hub repo
   ORG/NAME (diffusers' rule); it must then be a valid repo id (else a UsageError). A caller that must not
   look at its disk (the gallery: `look=False`) takes it as the Hub repo without looking.
5. Any other name holding a path separator (`a/b/c`) is a folder.
6. A bare name (no separator) is the zoo's: a pretrained name, or a family name (its default model). A
   folder of that name in the working directory never shadows it (write ./NAME or local-dir:NAME for it).

Folders must exist when loaded; Hub repos come from the Hugging Face cache unless downloading is asked for
(`nfzoo.load(..., download=True)`; `from_pretrained` asks unless local_files_only=True).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from nfzoo.constants import HF_PREFIX
from nfzoo.errors import ConfigError, UnknownNameError, UsageError
from nfzoo.hub.names import check_repo_id, check_revision
from nfzoo.registry.plugins import get_registry

LOCAL_PREFIX = "local-dir:"            # `local-dir:NAME` is the folder NAME, whatever NAME looks like


@dataclass(frozen=True)
class ModelName:
    """What a model name means (`parse_model_name`, the module docstring's rule). `kind` is "zoo" (`value`
    is a pretrained or family name), "dir" (`value` is the folder as written, `local-dir:` dropped; `path`
    expands `~`) or "hub" (`value` is the repo id ORG/NAME, `revision` the REV of `hf-hub:ORG/NAME@REV`, else
    None). `rule` is the number of the rule that decided (1-6), `given` the name as given (a string)."""

    kind: str
    value: str
    revision: Optional[str] = None
    rule: int = 0
    given: str = ""

    @property
    def path(self) -> Path:
        """The folder a "dir" name means (`~` expanded)."""
        return Path(self.value).expanduser()

    @property
    def hub_id(self) -> str:
        """A "hub" name spelled `hf-hub:ORG/NAME[@REV]` (what nfzoo.hub.fetch.spec_for and `nfzoo pull` take)."""
        return f"{HF_PREFIX}{self.value}" + (f"@{self.revision}" if self.revision else "")


def parse_hub_id(name: str) -> Tuple[str, Optional[str]]:
    """`hf-hub:ORG/NAME[@REV]` (the prefix optional) -> (repo id, revision or None); a bad repo id or
    revision is a UsageError saying how to write one."""
    rest = name[len(HF_PREFIX):] if name.startswith(HF_PREFIX) else name
    repo_id, at, rev = rest.partition("@")
    try:
        check_repo_id(repo_id)
        if at:
            check_revision(rev)
    except UsageError as exc:
        raise UsageError(f"bad Hub id {name!r}: write hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION "
                         f"({exc})") from exc
    return repo_id, rev or None


def _separators() -> Tuple[str, ...]:
    return (os.sep,) + ((os.altsep,) if os.altsep else ())


def parse_model_name(name: Union[str, "os.PathLike[str]"], look: bool = True) -> ModelName:
    """What `name` means by the name rule (module docstring): a ModelName of kind "zoo", "dir" or "hub".
    Only rule 4 (ORG/NAME) looks at the disk, and only with `look=True`; with look=False (a server, for a
    client's name) ORG/NAME is taken as the Hub repo without looking. A bad Hub id (rules 1 and 4) is a
    UsageError; nothing else is looked up here (a zoo name is checked by resolve_pretrained, a folder when
    it is loaded)."""
    if not isinstance(name, str):
        if not isinstance(name, os.PathLike):
            raise UsageError(f"a model name is a string or a path, not {type(name).__name__}")
        value = os.fsdecode(os.fspath(name))
        return ModelName("dir", value, rule=3, given=value)
    if name.startswith(HF_PREFIX):
        repo_id, rev = parse_hub_id(name)
        return ModelName("hub", repo_id, rev, rule=1, given=name)
    if name.startswith(LOCAL_PREFIX):
        return ModelName("dir", name[len(LOCAL_PREFIX):], rule=2, given=name)
    if name.startswith((".", "~")) or os.path.isabs(name):
        return ModelName("dir", name, rule=3, given=name)
    seps = _separators()
    if name.count("/") == 1 and not any(s in name for s in seps if s != "/"):
        if look and _is_folder(name):
            return ModelName("dir", name, rule=4, given=name)
        try:
            check_repo_id(name, "Hub repo id")
        except UsageError as exc:
            rev = (f" For a revision write hf-hub:{name} (or pass the revision)." if "@" in name else "")
            here = (f" ORG/NAME is a Hub repo unless a folder of that name exists, and there is no folder {name!r} "
                    f"here (write ./{name} for a folder)." if look else "")
            raise UsageError(f"{exc}{rev}{here}") from None
        return ModelName("hub", name, rule=4, given=name)
    if any(s in name for s in seps):
        return ModelName("dir", name, rule=5, given=name)
    return ModelName("zoo", name, rule=6, given=name)


def is_path_like(name: str) -> bool:
    """Whether a (string) name is written as a path: `local-dir:...`, a path separator in it, or a leading
    `.` or `~`. `hf-hub:` ids are not path-like. This is spelling only: what a name means (ORG/NAME is a
    Hub repo unless such a folder exists) is `parse_model_name`'s."""
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
        """The typed entry of a registry entry (nfzoo.registry.plugins.Entry); a PretrainedEntry is returned as is.
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
                           hint="Pass a pretrained name (`nfzoo list --pretrained`), a model directory "
                           "written as a path (./NAME, /abs/path, or local-dir:NAME) or a Hub repo (ORG/NAME "
                           f"or hf-hub:ORG/NAME).{here}")


def embedded_sampling(entry: Any) -> Dict[str, Any]:
    """The measured sampling defaults ({"sampler", "temperature", "options", "source"}) in the config.json of an
    embedded pretrained model; {} when the model is not embedded or its config has none."""
    import json

    from nfzoo.constants import CONFIG_NAME

    path = PretrainedEntry.of(entry).path
    if not path or not (Path(path) / CONFIG_NAME).is_file():
        return {}
    try:
        doc = json.loads((Path(path) / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    sampling = doc.get("sampling") if isinstance(doc, dict) else None
    return dict(sampling) if isinstance(sampling, dict) else {}
