"""Where a pretrained model's files come from: a leaf that takes a `HubSpec` and returns verified files.

Sources, in order (DESIGN.md, "Zoo and Hub"):

1. a local directory (handled by `nfzoo.load` before it gets here);
2. embedded in the zoo package (`nfzoo-zoo`: the entry's `path`);
3. the Hugging Face cache (HF_HUB_CACHE), at the entry's pinned revision. With a pinned commit sha and
   the files cached, nothing is requested from the network at all;
4. a Hub download (HF_ENDPOINT), only with `download=True` or `nfzoo pull`.

Every file from the cache or the Hub is checked against the zoo index's sha256 (the Hub client checks
only sizes); a bad cached copy is deleted (its blob and snapshot links) and reported, never loaded.
Files without an index pin (`hf-hub:org/name` ids, other revisions) are checked against the name of
their cache blob, which is the file's sha256 for LFS files and its git blob id otherwise.

Repo ids, revisions and file names are checked (`nfzoo.hub.names`) by every `HubSpec` before any request
or write; requests go through `nfzoo.hub.http` (timeouts, answers checked); cached files are found, checked
and repaired by `nfzoo.hub.files`; settings are read at call time (`nfzoo.hub.settings`). Publishing is
`nfzoo.hub.publish`, the `nfzoo cache` commands are `nfzoo.hub.cache`. Nothing here imports torch.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, cast

from nfzoo.constants import CARD_NAME, CONFIG_NAME, HF_PREFIX, REQUIRED, ZOO_KEYS
from nfzoo.errors import (
    ChecksumError,
    ConfigError,
    HubError,
    HubNotFoundError,
    HubUnreachableError,
    NfzooError,
    NotCachedError,
    UnpublishedError,
    UsageError,
)
from nfzoo.hub.files import BadFile, Keeper, cached_files, check_files, repo_folder, write_ref
from nfzoo.hub.http import HubCall, Progress, hub_call, progress_class, translate_error
from nfzoo.hub.names import check_repo_id, check_revision, inside, is_commit, is_sha256, safe_file_name, short_revision
from nfzoo.hub.settings import cache_dir, offline
from nfzoo.loading.pretrained import PretrainedEntry, parse_hub_id, resolve_pretrained
from nfzoo.safeio import sha256_file


# ------------------------------------------------------------------ what to fetch
@dataclass
class HubSpec:
    """What a pretrained name points at: a repo and revision on the Hub, the files and their pins."""

    name: str                          # the name the user gave (a zoo name or hf-hub:org/name[@rev])
    repo_id: Optional[str]
    revision: Optional[str]            # requested: a commit sha, a branch / tag, or None (= main)
    pinned: Optional[str] = None       # the zoo index's commit sha (None while unpublished)
    pins: Dict[str, str] = field(default_factory=dict)  # file -> sha256 from the index
    wanted: Tuple[str, ...] = REQUIRED + (CARD_NAME,)
    status: str = "hub"                # embedded | hub | unpublished (zoo); remote (hf-hub ids)
    embedded: Optional[Path] = None
    user_named: bool = False           # the repo / revision came from the user, not the index
    metadata: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the one gate for names from strangers: every way to a spec (spec_for, parse_hf_id, spec_from_entry,
        # push, the cache commands) passes here before any request or file write
        if self.repo_id is not None:
            check_repo_id(self.repo_id, "Hub repo id" if self.user_named else f"repo_id of {self.name}")
        if self.revision is not None:
            check_revision(self.revision)
        for f in self.wanted:
            if not safe_file_name(f):
                raise ConfigError(f"{self.name} names the file {f!r}, which is not a plain relative path in a "
                                  "repo: fix the zoo index (plugin) that registers it.")

    @property
    def optional(self) -> Tuple[str, ...]:
        """The wanted files a repo may lack: neither required nor pinned by the index."""
        return tuple(f for f in self.wanted if f not in REQUIRED and f not in self.pins)

    def describe(self) -> str:
        """The spec for messages: the name, with repo@revision for zoo names."""
        where = f"{self.repo_id}@{short_revision(self.revision)}" if self.repo_id else "no Hub repo"
        return self.name if self.name.startswith(HF_PREFIX) else f"{self.name} ({where})"


def is_zoo_entry(metadata: Dict[str, Any]) -> bool:
    """Pretrained entries that pin Hub files (the zoo's) as opposed to plugin loader functions."""
    return any(k in metadata for k in ZOO_KEYS)


def parse_hf_id(name: str) -> Tuple[str, Optional[str]]:
    """`hf-hub:org/name[@rev]` -> (repo id, revision or None): the name rule's parse
    (nfzoo.loading.pretrained.parse_hub_id)."""
    return parse_hub_id(name)


def _embedded_folder(path: Optional[str]) -> Optional[Path]:
    if path and all((Path(path) / f).is_file() for f in REQUIRED):
        return Path(path)
    return None


def spec_from_entry(entry, revision: Optional[str] = None) -> HubSpec:
    """The spec of a zoo entry (a PretrainedEntry, or the registry entry it is read from: index pins), at
    `revision` (validated) instead of the pinned commit if given."""
    if revision is not None:
        check_revision(revision)
    p = PretrainedEntry.of(entry)
    pinned = p.revision if is_commit(p.revision) else None
    pins = {k: v for k, v in p.files.items() if is_sha256(v)}
    wanted = tuple(dict.fromkeys(REQUIRED + tuple(pins) + (CARD_NAME,)))
    status = p.status or ("hub" if pinned else "unpublished")
    return HubSpec(name=p.name, repo_id=p.repo_id, revision=revision or pinned, pinned=pinned,
                   pins=pins, wanted=wanted, status=status, embedded=_embedded_folder(p.path),
                   user_named=revision is not None, metadata=dict(p.metadata))


def spec_for(name: str, revision: Optional[str] = None) -> HubSpec:
    """The spec of a zoo name (or family name) or an `hf-hub:org/name[@rev]` id."""
    if revision is not None:
        check_revision(revision)
    if name.startswith(HF_PREFIX):
        repo_id, rev = parse_hf_id(name)
        return HubSpec(name=name, repo_id=repo_id, revision=revision or rev, status="remote", user_named=True)
    entry = resolve_pretrained(name)
    if not is_zoo_entry(entry.metadata):
        raise UsageError(f"{entry.name} is provided by plugin {entry.plugin!r}, which loads it itself; "
                         "it has no Hub files to pull.")
    return spec_from_entry(entry, revision)


# ------------------------------------------------------------------ resolving
@dataclass
class Resolved:
    """Where `resolve` found a spec's files: the source, the folder, and the commit they come from."""

    name: str
    source: str                        # embedded | cache | hub
    path: Path                         # a folder with config.json and model.safetensors
    repo_id: Optional[str] = None
    revision: Optional[str] = None     # the commit sha the files come from
    files: Dict[str, Path] = field(default_factory=dict)
    downloaded: List[str] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        """The result as a JSON document (what `nfzoo pull --json` prints), with each file's sha256 and size."""
        return {"name": self.name, "source": self.source, "path": str(self.path), "repo_id": self.repo_id,
                "revision": self.revision, "downloaded": self.downloaded,
                "files": {n: {"sha256": sha256_file(p), "size": p.stat().st_size}
                          for n, p in sorted(self.files.items())}}


def resolve(spec: HubSpec, download: bool = False, force: bool = False,
            progress: Optional[Progress] = None, token: Optional[str] = None) -> Resolved:
    """Find the files of `spec`: embedded -> cache -> Hub (only with download=True). Checked by sha256.
    `token`: the Hub token for a download (None: HF_TOKEN or the saved login, as huggingface_hub does)."""
    if spec.embedded is not None and spec.revision in (None, spec.pinned):
        files = {f: spec.embedded / f for f in spec.wanted if (spec.embedded / f).is_file()}
        for f, p in files.items():
            if f in spec.pins and sha256_file(p) != spec.pins[f]:
                raise ChecksumError(f"the copy of {f} embedded in the zoo package for {spec.name} does not "
                                    f"match the zoo index (sha256 {sha256_file(p)[:12]}... vs "
                                    f"{spec.pins[f][:12]}...): reinstall nfzoo-zoo.")
        return Resolved(spec.name, "embedded", spec.embedded, spec.repo_id, spec.pinned, files)
    if spec.status == "unpublished" and not spec.user_named:
        raise UnpublishedError(_unpublished_message(spec))
    if not spec.repo_id:
        raise HubError(f"{spec.name} has no Hub repo in the zoo index and no embedded weights.")
    if not force and (is_commit(spec.revision) or not download or offline()):
        files = cached_files(spec)
        if files is not None:
            bad = check_files(spec, files)
            if not bad:
                return Resolved(spec.name, "cache", files[CONFIG_NAME].parent, spec.repo_id,
                                files[CONFIG_NAME].parent.name, files)
            if not download:
                raise _checksum_error(spec, bad, f"run `nfzoo pull {_pull_name(spec)}` to fetch it again")
    if not download:
        raise NotCachedError(f"{spec.describe()} is not in the local cache ({cache_dir()}) and downloading "
                             f"was not asked for: run `nfzoo pull {_pull_name(spec)}` (or nfzoo.load(name, "
                             "download=True)), or use a model embedded in the zoo.")
    keep = Keeper(repo_folder(spec.repo_id)) if force else None   # a forced pull keeps the copy it replaces
    restored = 0
    try:
        commit, files, fetched = _download(spec, force, progress, token)
        bad = check_files(spec, files, commit)
        if bad and keep is not None and not any(b.kept for b in bad):
            restored = keep.restore()
    finally:
        if keep is not None:
            keep.drop()
    if bad:
        raise _checksum_error(spec, bad, "the copy on the Hub may be damaged; try `nfzoo pull "
                              f"{_pull_name(spec)} --force` once more, then report it", kept_old=restored > 0)
    return Resolved(spec.name, "hub" if fetched else "cache", files[CONFIG_NAME].parent, spec.repo_id, commit,
                    files, fetched)


def _pull_name(spec: HubSpec) -> str:
    if spec.user_named and not spec.name.startswith(HF_PREFIX) and spec.revision:
        return f"{spec.name} --revision {spec.revision}"
    return spec.name


def _unpublished_message(spec: HubSpec) -> str:
    meta = spec.metadata
    arch, ds = meta.get("architecture", "ARCH"), meta.get("dataset", "DATASET")
    config = meta.get("config") or {}
    sets = " ".join(f"--set {k}={json.dumps(v, separators=(',', ':'))}" for k, v in config.items()
                    if v is not None and k != "image_shape")
    recipe = meta.get("recipe") or (f"nfzoo train {arch} --dataset {ds}{' ' + sets if sets else ''} "
                                     f"--out runs/{spec.name}")
    return (f"the weights of {spec.name} are not published yet (the zoo index has no Hub revision for "
            f"{spec.repo_id or 'it'}). Train them yourself with `{recipe}` and load the run directory.")


def _checksum_error(spec: HubSpec, bad: List[BadFile], advice: str, kept_old: bool = False) -> ChecksumError:
    what = "; ".join(f"{b.name}: expected {b.expected[:12]}..., got {b.actual[:12]}..." for b in bad)
    kept = [b for b in bad if b.kept]
    if kept:
        done = (f"It was not loaded, but the bad file could not be deleted from the cache at {cache_dir()} "
                f"({kept[0].kept}): fix the folder's permissions or set HF_HUB_CACHE to a folder you own, then "
                f"{advice.replace('try ', 'run ', 1)}")
    elif kept_old:
        done = ("The new download was deleted and the copy that was already in the cache was kept; "
                f"{advice}")
    else:
        done = f"The bad file was deleted from the cache; {advice}"
    return ChecksumError(f"sha256 check failed for {spec.describe()} ({what}). {done}.")


# ------------------------------------------------------------------ downloading
def _download(spec: HubSpec, force: bool, progress: Optional[Progress],
              token: Optional[str] = None) -> Tuple[str, Dict[str, Path], List[str]]:
    """Download the spec's files at one commit (its revision resolved first); returns (commit, files,
    names actually fetched). Errors become nfzoo errors with one-line messages."""
    if offline():
        raise HubUnreachableError(
            f"HF_HUB_OFFLINE is set, so {spec.describe()} cannot be downloaded and it is not in the cache "
            f"({cache_dir()}): unset HF_HUB_OFFLINE and run `nfzoo pull {_pull_name(spec)}`, or use a model "
            "embedded in the zoo.")
    try:
        with hub_call(f"download {spec.describe()}") as call:
            return _download_files(spec, force, progress, call, token)
    except NfzooError:
        raise
    except Exception as exc:
        raise translate_error(exc, spec) from exc


def _download_files(spec: HubSpec, force: bool, progress: Optional[Progress], call: HubCall,
                    token: Optional[str] = None) -> Tuple[str, Dict[str, Path], List[str]]:
    """_download's work, inside one Hub operation (`call`: its timeout applies to every request)."""
    from huggingface_hub import HfApi, hf_hub_download, try_to_load_from_cache

    from nfzoo import __version__

    assert spec.repo_id is not None  # resolve refuses a spec without a Hub repo before it downloads
    ep, cdir, rev = call.endpoint, cache_dir(), spec.revision or "main"
    files: Dict[str, Path] = {}
    fetched: List[str] = []
    info = HfApi(endpoint=ep, token=token, library_name="nfzoo", library_version=__version__).model_info(
        spec.repo_id, revision=rev, timeout=call.timeout)
    commit = info.sha
    if not is_commit(commit):
        raise HubError(f"the Hub at {ep} answered {str(commit)[:80]!r} as the commit of {spec.repo_id}@{rev}, "
                       "which is not a 40-hex commit sha: nothing was downloaded; check HF_ENDPOINT.")
    present = None if info.siblings is None else {s.rfilename for s in info.siblings}
    missing = [f for f in spec.wanted
               if f not in spec.optional and present is not None and f not in present]
    if missing:
        raise HubNotFoundError(f"{spec.repo_id}@{short_revision(commit)} on {ep} has no {', '.join(missing)}: "
                               "it is not an nfzoo model repo (push one with `nfzoo push DIR --repo-id "
                               "ORG/NAME`).", user_input=spec.user_named)
    for f in spec.wanted:
        if present is not None and f not in present:
            continue
        if force or not isinstance(try_to_load_from_cache(spec.repo_id, f, cache_dir=str(cdir),
                                                          revision=commit), str):
            fetched.append(f)
        path = hf_hub_download(spec.repo_id, f, revision=commit, cache_dir=str(cdir), endpoint=ep,
                               force_download=force, token=token, library_name="nfzoo",
                               library_version=__version__,
                               etag_timeout=call.timeout,
                               # a duck-typed tqdm: the client uses only its constructor, update and close
                               tqdm_class=cast(Any, progress_class(f, progress)) if progress else None)
        files[f] = Path(path)
        if not inside(files[f], repo_folder(spec.repo_id) / "snapshots" / commit):
            raise HubError(f"the Hub at {ep} sent {f} of {spec.repo_id} for another commit than {commit}: "
                           "refusing it; check HF_ENDPOINT.")
    if rev != commit:  # remember the branch -> commit, as the client does, so cache look-ups find it
        write_ref(spec.repo_id, rev, commit)
    return commit, files, fetched


def source_of(entry) -> str:
    """embedded / cached / hub / unpublished for a pretrained entry, without network or torch."""
    meta = entry.metadata
    if not is_zoo_entry(meta):
        return "plugin"
    if _embedded_folder(meta.get("path")) is not None:
        return "embedded"
    try:
        spec = spec_from_entry(entry)
    except UsageError:      # a bad repo id or file name in the index: `nfzoo pull` says which
        return "invalid"
    if spec.status == "unpublished" or not spec.repo_id:
        return "unpublished"
    return "cached" if cached_files(spec) is not None else "hub"
