"""The one resolver: what a name given by a user points at, as a folder of files (or a plugin's object).
`nfzoo.load`, `FlowModel.from_pretrained` (and through them the CLI and a recipe's init_from) and the oracle
(`nfzoo.evaluation.oracle.find_oracle`) all go through `resolve_source`.

What a name means is nfzoo.loading.pretrained's name rule (`parse_model_name`): a folder ("dir": it must exist), a
Hub repo ("hub": `hf-hub:ORG/NAME[@REV]`, or ORG/NAME when no such folder exists), or a zoo name (a
pretrained name, or a family name: its default model). A zoo entry's files come from nfzoo.hub.fetch (embedded ->
cache -> Hub only with download=True, checked by sha256); a plugin's entry targets a folder, or a loader
`fn(revision=None, download=False)` that returns a folder or a ready model. Torch-free.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from nfzoo.errors import HubError, HubNotFoundError, HubUnreachableError, NotCachedError, UsageError
from nfzoo.loading.pretrained import PretrainedEntry, parse_model_name, resolve_pretrained

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
                   kind: str = "flow", force: bool = False, token: Optional[str] = None) -> Source:
    """The source of `name` by the name rule (nfzoo.loading.pretrained.parse_model_name): a directory (it must
    exist), a Hub repo (`hf-hub:ORG/NAME[@REV]`, or ORG/NAME that is not a folder here), or a pretrained
    entry of `kind` ("flow" or "oracle"; an entry registered as the other kind is a UsageError before any
    file is looked up). Only download=True reaches the network; `force` downloads again and `token` is the
    Hub token (both for Hub files only: a plugin's own loader takes neither)."""
    from nfzoo.hub import fetch as hub

    parsed = parse_model_name(name)
    if parsed.kind == "dir":
        d = parsed.path
        if not d.is_dir():
            found = "a file, not a directory" if d.exists() else "nothing"
            raise UsageError(f"{parsed.given}: no such directory ({found} at {d}). A model directory holds "
                             "config.json and model.safetensors; a zoo name is written without a path.")
        return Source(parsed.given, "directory", path=d)
    if parsed.kind == "hub":
        spec = hub.spec_for(parsed.hub_id, revision)
        try:
            res = hub.resolve(spec, download=download, force=force, token=token)
        except (NotCachedError, HubNotFoundError, HubUnreachableError) as exc:
            if parsed.rule != 4:
                raise
            raise _no_folder_either(exc, parsed.value) from exc
        return Source(parsed.given, res.source, path=res.path)
    entry = resolve_pretrained(parsed.value)
    if entry.kind not in (None, kind):
        raise UsageError(f"{entry.name} is {KIND_NAMES.get(entry.kind, entry.kind)}, not "
                         f"{KIND_NAMES.get(kind, kind)}: it cannot be loaded as one.")
    if hub.is_zoo_entry(entry.metadata):
        res = hub.resolve(hub.spec_from_entry(entry, revision), download=download, force=force, token=token)
        return Source(parsed.value, res.source, path=res.path, entry=entry)
    if force or token:
        raise UsageError(f"{entry.name} is provided by plugin {entry.plugin!r}, which loads it itself; "
                         "it has no Hub files to pull.")
    target = entry.load()
    if callable(target) and not hasattr(target, "state_dict"):   # a loader (a model object is kept as is)
        target = target(revision=revision, download=download)
    if isinstance(target, (str, os.PathLike)):
        return Source(parsed.value, "plugin", path=Path(target), entry=entry)
    return Source(parsed.value, "plugin", obj=target, entry=entry)


def _no_folder_either(exc: HubError, repo_id: str) -> HubError:
    """The Hub error of an ORG/NAME name (rule 4), saying that no folder of that name is here either: the
    user may have meant one."""
    hint = f"{exc} There is no directory {repo_id!r} here either (write ./{repo_id} for one)."
    if isinstance(exc, HubNotFoundError):
        return HubNotFoundError(hint, user_input=exc.exit_code == 2)
    return type(exc)(hint)
