"""The one resolver: what a name given by a user points at, as a folder of files (or a plugin's object).
`nfzoo.load` and the oracle (`nfzoo.oracle.find_oracle`) both go through `resolve_source`.

In order: a path-like name or `local-dir:NAME` is a local directory (nfzoo.pretrained's name rule);
`hf-hub:org/name[@rev]` is a Hub repo; anything else is a pretrained name (or a family name: its default
model). A zoo entry's files come from nfzoo.hub (embedded -> cache -> Hub only with download=True, checked
by sha256); a plugin's entry targets a folder, or a loader `fn(revision=None, download=False)` that
returns a folder or a ready model. Torch-free.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from .constants import HF_PREFIX
from .errors import UsageError
from .pretrained import PretrainedEntry, is_path_like, local_path, resolve_pretrained

KIND_NAMES = {"flow": "a flow model", "oracle": "an oracle classifier (the features of `nfzoo eval --samples`)"}


@dataclass
class Source:
    """Where a name's model is: `path`, a folder (config.json + model.safetensors), or `obj`, the ready
    object a plugin's loader returned. `origin` is directory | embedded | cache | hub | plugin; `entry` the
    pretrained entry, for zoo and plugin names."""

    name: str
    origin: str
    path: Optional[Path] = None
    obj: Any = None
    entry: Optional[PretrainedEntry] = None


def resolve_source(name: Union[str, os.PathLike], revision: Optional[str] = None, download: bool = False,
                   kind: str = "flow") -> Source:
    """The source of `name`: a directory (an os.PathLike, a path-like name, or `local-dir:NAME`; it must
    exist), a Hub repo (`hf-hub:`), or a pretrained entry of `kind` ("flow" or "oracle"; an entry
    registered as the other kind is a UsageError before any file is looked up). Only download=True
    reaches the network."""
    from . import hub

    if not isinstance(name, str) or is_path_like(name):
        d = Path(name) if not isinstance(name, str) else local_path(name)
        if not d.is_dir():
            found = "a file, not a directory" if d.exists() else "nothing"
            raise UsageError(f"{os.fspath(name)}: no such directory ({found} at {d}). A model directory holds "
                             "config.json and model.safetensors; a zoo name is written without a path.")
        return Source(os.fspath(name), "directory", path=d)
    if name.startswith(HF_PREFIX):
        res = hub.resolve(hub.spec_for(name, revision), download=download)
        return Source(name, res.source, path=res.path)
    entry = resolve_pretrained(name)
    if entry.kind not in (None, kind):
        raise UsageError(f"{entry.name} is {KIND_NAMES.get(entry.kind, entry.kind)}, not "
                         f"{KIND_NAMES.get(kind, kind)}: it cannot be loaded as one.")
    if hub.is_zoo_entry(entry.metadata):
        res = hub.resolve(hub.spec_from_entry(entry, revision), download=download)
        return Source(name, res.source, path=res.path, entry=entry)
    target = entry.load()
    if callable(target) and not hasattr(target, "state_dict"):   # a loader (a model object is kept as is)
        target = target(revision=revision, download=download)
    if isinstance(target, (str, os.PathLike)):
        return Source(name, "plugin", path=Path(target), entry=entry)
    return Source(name, "plugin", obj=target, entry=entry)
