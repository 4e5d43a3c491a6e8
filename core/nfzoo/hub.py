"""Where a pretrained model's files come from, and publishing them: the Hugging Face Hub half of the zoo.

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

The real `huggingface_hub` client does the HTTP work; it is imported only when needed. HF_ENDPOINT,
HF_HUB_CACHE, HF_HUB_OFFLINE and NFZOO_HUB_TIMEOUT are read at call time (the client reads some of them at
import). Nothing here imports torch.

Names and answers from strangers are checked before they touch the network or the disk: repo ids and
revisions by the Hub's own rules (`check_repo_id`, `check_revision`, applied to every `HubSpec`); the
commit sha, ETag and X-Repo-Commit the Hub answers (they become cache paths); every request nfzoo makes
has a connect / read timeout (`hub_timeout`), and a request that timed out is not retried.
"""
from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from .errors import (CacheNotWritableError, ChecksumError, ConfigError, HubError, HubNotFoundError,
                     HubUnreachableError, NfzooError, NotCachedError, UnpublishedError, UsageError)
from .safeio import atomic_write_bytes, read_json, sha256_file

HF_PREFIX = "hf-hub:"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
REQUIRED = (CONFIG_NAME, WEIGHTS_NAME)
DEFAULT_ENDPOINT = "https://huggingface.co"
ZOO_KEYS = ("repo_id", "status", "files", "path")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TRUE = {"1", "ON", "YES", "TRUE"}
TIMEOUT_ENV = "NFZOO_HUB_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
MAX_REVISION_LENGTH = 255
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,254}$")  # an ETag that becomes a blob's file name
GENERATED_MARK = "<!-- nfzoo:generated-card (delete this line to keep your edits when regenerating) -->"

Progress = Callable[[str, int, Optional[int]], None]  # (file name, bytes done, total bytes or None)


# ------------------------------------------------------------------ settings read at call time
def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def cache_dir() -> Path:
    """HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (as huggingface_hub resolves it)."""
    env = os.environ
    path = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if not path:
        home = env.get("HF_HOME") or os.path.join(
            env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
        path = os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(path)))


def offline() -> bool:
    env = os.environ
    return (env.get("HF_HUB_OFFLINE") or env.get("TRANSFORMERS_OFFLINE") or "").upper() in _TRUE


def is_commit(revision: Optional[str]) -> bool:
    return bool(revision) and bool(_SHA1.fullmatch(revision))


def _short(revision: Optional[str]) -> str:
    return revision[:10] if is_commit(revision) else str(revision or "main")


def hub_timeout() -> float:
    """NFZOO_HUB_TIMEOUT: seconds that one Hub request may wait to connect, and between two reads (default
    30). A value that is not a positive, finite number of seconds is a UsageError naming the variable."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and 0 < value <= 86400):
        raise UsageError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds between 0 and 86400: set it to e.g. "
                         f"{TIMEOUT_ENV}=60, or unset it for the default of {DEFAULT_TIMEOUT:g} s.")
    return value


# ------------------------------------------------------------------ names from strangers
def check_repo_id(repo_id: Any, what: str = "Hub repo id") -> str:
    """ORG/NAME by the Hub's rules (huggingface_hub's validate_repo_id: 1-96 characters of A-Z a-z 0-9 _ . -
    per part, no `--` or `..`, not ending in .git), ASCII only and with an org. Else UsageError (exit 2)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    fix = "write ORG/NAME with letters, digits, '-', '_' and '.' (e.g. nfzoo/glow-mnist5k)"
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id):
        raise UsageError(f"bad {what} {repo_id!r}: {fix}.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UsageError(f"bad {what} {repo_id!r} ({_first_line(exc)}): {fix}.") from exc
    return repo_id


def revision_problem(revision: Any) -> Optional[str]:
    """Why `revision` is not a 40-hex commit sha or a valid git ref name (git check-ref-format, as the Hub
    takes branch and tag names), or None when it is fine."""
    if not isinstance(revision, str) or not revision:
        return "it is empty"
    if is_commit(revision):
        return None
    if len(revision) > MAX_REVISION_LENGTH:
        return f"it is longer than {MAX_REVISION_LENGTH} characters"
    bad = _REF_FORBIDDEN.search(revision)
    if bad:
        return f"it contains {bad.group()!r} (no spaces, control characters or any of ~ ^ : ? * [ \\)"
    for rule, why in ((".." in revision, "it contains '..'"), ("@{" in revision, "it contains '@{'"),
                      ("//" in revision, "it contains '//'"), (revision == "@", "it is '@'"),
                      (revision[0] in "/-", f"it starts with {revision[0]!r}"),
                      (revision[-1] in "/.", f"it ends with {revision[-1]!r}"),
                      (revision.endswith(".lock") or "/.lock" in revision or ".lock/" in revision,
                       "a part ends with '.lock'"),
                      (any(part.startswith(".") for part in revision.split("/")), "a part starts with '.'")):
        if rule:
            return why
    return None


def check_revision(revision: Any) -> str:
    """A 40-hex commit sha or a valid branch / tag name, else UsageError (exit 2) saying why."""
    why = revision_problem(revision)
    if why:
        raise UsageError(f"bad revision {revision!r}: {why}. Give a branch or tag name (e.g. main, v1.0) or a "
                         "40-hex commit sha.")
    return revision


def _inside(path: Path, folder: Path) -> bool:
    """Whether `path` lies strictly inside `folder` (after resolving `..`, without following symlinks)."""
    return Path(os.path.abspath(folder)) in Path(os.path.abspath(path)).parents


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
            if not _safe_file_name(f):
                raise ConfigError(f"{self.name} names the file {f!r}, which is not a plain relative path in a "
                                  "repo: fix the zoo index (plugin) that registers it.")

    @property
    def optional(self) -> Tuple[str, ...]:
        return tuple(f for f in self.wanted if f not in REQUIRED and f not in self.pins)

    def describe(self) -> str:
        where = f"{self.repo_id}@{_short(self.revision)}" if self.repo_id else "no Hub repo"
        return self.name if self.name.startswith(HF_PREFIX) else f"{self.name} ({where})"


def is_zoo_entry(metadata: Dict[str, Any]) -> bool:
    """Pretrained entries that pin Hub files (the zoo's) as opposed to plugin loader functions."""
    return any(k in metadata for k in ZOO_KEYS)


def parse_hf_id(name: str) -> Tuple[str, Optional[str]]:
    """`hf-hub:org/name[@rev]` -> (repo id, revision or None)."""
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


def _safe_file_name(name: Any) -> bool:
    """A file path inside a repo: relative, '/'-separated, no empty, '.' or '..' parts, no control chars."""
    return (isinstance(name, str) and 0 < len(name) <= 1000 and not re.search(r"[\x00-\x1f\x7f\\]", name)
            and all(part not in ("", ".", "..") for part in name.split("/")))


def _embedded_folder(metadata: Dict[str, Any]) -> Optional[Path]:
    path = metadata.get("path")
    if path and all((Path(path) / f).is_file() for f in REQUIRED):
        return Path(path)
    return None


def spec_from_entry(entry, revision: Optional[str] = None) -> HubSpec:
    """The spec of a zoo entry (index pins), at `revision` (validated) instead of the pinned commit if given."""
    if revision is not None:
        check_revision(revision)
    meta = entry.metadata
    pinned = meta.get("revision") if is_commit(meta.get("revision")) else None
    pins = {k: v for k, v in (meta.get("files") or {}).items() if isinstance(v, str) and _SHA256.fullmatch(v)}
    wanted = tuple(dict.fromkeys(REQUIRED + tuple(pins) + (CARD_NAME,)))
    status = str(meta.get("status") or ("hub" if pinned else "unpublished"))
    return HubSpec(name=entry.name, repo_id=meta.get("repo_id"), revision=revision or pinned, pinned=pinned,
                   pins=pins, wanted=wanted, status=status, embedded=_embedded_folder(meta),
                   user_named=revision is not None, metadata=dict(meta))


def spec_for(name: str, revision: Optional[str] = None) -> HubSpec:
    """The spec of a zoo name (or family name) or an `hf-hub:org/name[@rev]` id."""
    if revision is not None:
        check_revision(revision)
    if name.startswith(HF_PREFIX):
        repo_id, rev = parse_hf_id(name)
        return HubSpec(name=name, repo_id=repo_id, revision=revision or rev, status="remote", user_named=True)
    from .api import resolve_pretrained

    entry = resolve_pretrained(name)
    if not is_zoo_entry(entry.metadata):
        raise UsageError(f"{entry.name} is provided by plugin {entry.plugin!r}, which loads it itself; "
                         "it has no Hub files to pull.")
    return spec_from_entry(entry, revision)


# ------------------------------------------------------------------ resolving
@dataclass
class Resolved:
    name: str
    source: str                        # embedded | cache | hub
    path: Path                         # a folder with config.json and model.safetensors
    repo_id: Optional[str] = None
    revision: Optional[str] = None     # the commit sha the files come from
    files: Dict[str, Path] = field(default_factory=dict)
    downloaded: List[str] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "source": self.source, "path": str(self.path), "repo_id": self.repo_id,
                "revision": self.revision, "downloaded": self.downloaded,
                "files": {n: {"sha256": sha256_file(p), "size": p.stat().st_size}
                          for n, p in sorted(self.files.items())}}


def resolve(spec: HubSpec, download: bool = False, force: bool = False,
            progress: Optional[Progress] = None) -> Resolved:
    """Find the files of `spec`: embedded -> cache -> Hub (only with download=True). Checked by sha256."""
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
    keep = _Keep(repo_folder(spec.repo_id)) if force else None   # a forced pull keeps the copy it replaces
    restored = 0
    try:
        commit, files, fetched = _download(spec, force, progress)
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


def local_dir(name: str, revision: Optional[str] = None, download: bool = False) -> Path:
    """The local folder holding a pretrained model's files (a directory given as is, embedded, cached, or
    downloaded with download=True), checked against the zoo index."""
    if os.path.isdir(name):
        return Path(name)
    return resolve(spec_for(name, revision), download=download).path


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


def cached_files(spec: HubSpec) -> Optional[Dict[str, Path]]:
    """The spec's files in the HF cache at its revision (refs resolve branches), or None. No network."""
    if not spec.repo_id:
        return None
    from huggingface_hub import try_to_load_from_cache

    out: Dict[str, Path] = {}
    cdir, rev = str(cache_dir()), spec.revision or "main"
    for f in spec.wanted:
        p = try_to_load_from_cache(spec.repo_id, f, cache_dir=cdir, revision=rev)
        if isinstance(p, str):
            out[f] = Path(p)
        elif f not in spec.optional:
            return None
    commits = {p.parent.name for p in out.values()}
    return out if len(commits) == 1 else None


def _expected_hash(spec: Optional[HubSpec], name: str, path: Path, commit: str) -> Optional[Tuple[str, str]]:
    """("sha256" | "git", hex) to check `path` against: the index pin, else the cache blob's name."""
    if spec is not None and spec.pinned == commit and name in spec.pins:
        return "sha256", spec.pins[name]
    blob = os.readlink(path) if path.is_symlink() else ""
    blob = os.path.basename(blob)
    if _SHA256.fullmatch(blob):
        return "sha256", blob
    if _SHA1.fullmatch(blob):
        return "git", blob
    return None


def _digest(kind: str, path: Path) -> str:
    if kind == "sha256":
        return sha256_file(path)
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class BadFile(NamedTuple):
    """A cached file whose hash is not the expected one; `kept` says why it could not be deleted."""

    name: str
    expected: str
    actual: str
    path: Path
    kept: Optional[str] = None


def check_files(spec: Optional[HubSpec], files: Dict[str, Path], commit: Optional[str] = None,
                delete: bool = True) -> List[BadFile]:
    """Check cached files; returns the bad ones, which are deleted (with delete=True) where the cache lets
    us (a read-only cache: `kept` says so; the file is never loaded either way)."""
    bad = []
    for name, path in files.items():
        exp = _expected_hash(spec, name, path, commit or path.parent.name)
        if exp is None:
            continue
        got = _digest(exp[0], path)
        if got != exp[1]:
            kept = None
            if delete:
                try:
                    discard(path)
                except OSError as exc:
                    kept = f"{type(exc).__name__}: {exc.strerror or exc}"
            bad.append(BadFile(name, exp[1], got, path, kept))
    return bad


def _not_writable(what: str, exc: BaseException) -> str:
    return (f"{what} ({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}): make {cache_dir()} "
            "writable (fix its permissions) or set HF_HUB_CACHE to a folder you own")


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


def discard(path: Path) -> None:
    """Delete a bad cached file: its blob and every snapshot link to that blob in the repo. Raises OSError
    (PermissionError in a read-only cache) when it cannot."""
    path = Path(path)
    snapshots = next((p for p in path.parents if p.name == "snapshots"), None)
    if not path.is_symlink() or snapshots is None:
        path.unlink(missing_ok=True)
        return
    blob = Path(os.path.abspath(path.parent / os.readlink(path)))
    for link in snapshots.rglob("*"):
        if link.is_symlink() and Path(os.path.abspath(link.parent / os.readlink(link))) == blob:
            link.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)


class _Keep:
    """What a forced download may overwrite, kept until the new files verify: hard links (or copies) of the
    repo's cached blobs that match their names (sha256 / git id), and its snapshot links.

    huggingface_hub's force_download replaces a blob in place (os.replace of the new download), so without
    this a tampering Hub would cost the verified copy: `restore` puts the kept blobs and links back after the
    bad new files were deleted; `drop` forgets them."""

    def __init__(self, repo_dir: Path):
        self.repo_dir, self.blobs, self.links = repo_dir, {}, {}
        self.dir: Optional[Path] = None
        if not (repo_dir / "blobs").is_dir():
            return
        locks = cache_dir() / ".locks"          # huggingface_hub's scan skips it; same file system as blobs
        try:
            locks.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix="nfzoo-keep-", dir=locks))
        except OSError as exc:
            raise CacheNotWritableError(_not_writable(f"cannot download again into {repo_dir}", exc)) from exc
        for blob in (repo_dir / "blobs").iterdir():
            if blob.is_symlink() or not blob.is_file() or not _blob_verifies(blob):
                continue
            saved = self.dir / blob.name
            try:
                os.link(blob, saved)
            except OSError:
                shutil.copy2(blob, saved)
            self.blobs[blob] = saved
        for link in (repo_dir / "snapshots").rglob("*"):
            if link.is_symlink():
                self.links[link] = os.readlink(link)

    def restore(self) -> int:
        """Put back the kept blobs and links that are gone (the bad new files were deleted); returns how
        many blobs came back."""
        restored = 0
        for blob, saved in self.blobs.items():
            if not os.path.lexists(blob):
                os.replace(saved, blob)
                restored += 1
        for link, target in self.links.items():
            if not os.path.lexists(link) and os.path.exists(os.path.join(link.parent, target)):
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, link)
        return restored

    def drop(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def _blob_verifies(blob: Path) -> bool:
    kind = "sha256" if _SHA256.fullmatch(blob.name) else "git" if _SHA1.fullmatch(blob.name) else None
    return kind is not None and _digest(kind, blob) == blob.name


# ------------------------------------------------------------------ requests: timeouts, answers checked
@dataclass
class _Call:
    """One nfzoo Hub operation (a download, a push): its timeout and what its requests have done so far."""

    timeout: float
    endpoint: str
    doing: str                          # e.g. "download hf-hub:org/name" (for messages)
    sent_at: Optional[float] = None     # when the request that has no response yet was sent
    timed_out: bool = False


_CALL: contextvars.ContextVar[Optional[_Call]] = contextvars.ContextVar("nfzoo_hub_call", default=None)


def _timeout_error(call: _Call) -> HubUnreachableError:
    return HubUnreachableError(
        f"the Hub at {call.endpoint} did not answer within {call.timeout:g} s while trying to {call.doing}: "
        f"check HF_ENDPOINT and your network, or allow more time with {TIMEOUT_ENV}=SECONDS (now "
        f"{call.timeout:g}; e.g. {TIMEOUT_ENV}={max(120, int(call.timeout * 4))}).")


def _on_request(request) -> None:
    """httpx request hook: give every request of an nfzoo operation its connect / read / write timeout, and
    end the operation instead of letting the client retry a request that timed out."""
    call = _CALL.get()
    if call is None:
        return
    now = time.monotonic()
    if call.sent_at is not None and now - call.sent_at >= call.timeout:
        call.timed_out = True   # the last request got no answer for a whole timeout: it timed out
    if call.timed_out:
        raise _timeout_error(call)
    call.sent_at = now
    request.extensions["timeout"] = {"connect": call.timeout, "read": call.timeout, "write": call.timeout,
                                     "pool": call.timeout}


class _GuardedStream:
    """A response body that records a read timeout in the operation (so the client's retry ends it)."""

    def __init__(self, stream, call: _Call):
        self._stream, self._call = stream, call

    def __iter__(self):
        try:
            yield from self._stream
        except Exception as exc:
            if "Timeout" in type(exc).__name__:
                self._call.timed_out = True
            raise

    def close(self) -> None:
        self._stream.close()


def _on_response(response) -> None:
    """httpx response hook: the answer came; refuse answers whose headers would become cache paths unless
    they are what the Hub sends (X-Repo-Commit: 40 hex; a HEAD's ETag: a plain file name)."""
    call = _CALL.get()
    if call is None:
        return
    call.sent_at = None
    response.stream = _wrap_stream(response, call)
    commit = response.headers.get("X-Repo-Commit")
    if commit is not None and not is_commit(commit):
        raise HubError(f"the Hub at {call.endpoint} answered X-Repo-Commit {commit[:80]!r}, which is not a 40-hex "
                       f"commit sha, while trying to {call.doing}: nothing was written; check HF_ENDPOINT.")
    if response.request.method == "HEAD":
        for key in ("X-Linked-Etag", "ETag"):
            etag = response.headers.get(key)
            norm = etag.lstrip("W/").strip('"') if etag is not None else None   # as huggingface_hub does
            if norm is not None and not _SAFE_NAME.fullmatch(norm):
                raise HubError(f"the Hub at {call.endpoint} answered the {key} {etag[:80]!r}, which is not a "
                               f"plain file name, while trying to {call.doing}: nothing was written; check "
                               "HF_ENDPOINT.")


def _wrap_stream(response, call: _Call):
    """The response's body stream, guarded; a subclass of its HTTP library's SyncByteStream, as it checks."""
    import sys

    library = sys.modules.get(type(response).__module__.split(".")[0])
    base = getattr(library, "SyncByteStream", None)
    if base is None or not isinstance(response.stream, base):
        return response.stream
    guarded = type("GuardedStream", (_GuardedStream, base), {})
    return guarded(response.stream, call)


def _install_hooks() -> None:
    """Make huggingface_hub's HTTP clients call our hooks (they do nothing outside an nfzoo operation).

    Through `set_client_factory` (public), wrapping the factory in place (a user's own included), so a client
    that huggingface_hub makes anew (it does after a connection error) has them too."""
    import huggingface_hub
    from huggingface_hub.utils import _http

    current = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None) or _http.default_client_factory
    if getattr(current, "_nfzoo_hooks", False):
        return

    def factory():
        client = current()
        client.event_hooks["request"].append(_on_request)
        client.event_hooks["response"].append(_on_response)
        return client

    factory._nfzoo_hooks = True  # type: ignore[attr-defined]
    huggingface_hub.set_client_factory(factory)


@contextlib.contextmanager
def hub_call(doing: str):
    """Run Hub requests as one nfzoo operation: each request has NFZOO_HUB_TIMEOUT to connect and between
    reads; a request that timed out ends the operation with HubUnreachableError (no minutes of retries)."""
    call = _Call(hub_timeout(), endpoint(), doing)
    _install_hooks()
    token = _CALL.set(call)
    # after a timeout the client logs "Trying to resume download..." before our hook ends the operation
    quiet = logging.Filter()
    quiet.filter = lambda record: not call.timed_out  # type: ignore[method-assign]
    loggers = [logging.getLogger(f"huggingface_hub.{m}") for m in ("file_download", "utils._http")]
    for log in loggers:
        log.addFilter(quiet)
    try:
        yield call
    finally:
        _CALL.reset(token)
        for log in loggers:
            log.removeFilter(quiet)


# ------------------------------------------------------------------ downloading
def _progress_class(filename: str, progress: Progress):
    """A tqdm stand-in for huggingface_hub's http_get that reports bytes to `progress`."""
    class _Bar:
        def __init__(self, *args, total=None, initial=0, **kwargs):
            self.n, self.total = initial or 0, total
            progress(filename, self.n, self.total)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            self.n += n or 0
            progress(filename, self.n, self.total)

        def close(self):
            pass

        def set_postfix_str(self, *args, **kwargs):
            pass

    return _Bar


def _download(spec: HubSpec, force: bool,
              progress: Optional[Progress]) -> Tuple[str, Dict[str, Path], List[str]]:
    """Download the spec's files at one commit (its revision resolved first); returns (commit, files,
    names actually fetched). Errors become nfzoo errors with one-line messages."""
    if offline():
        raise HubUnreachableError(
            f"HF_HUB_OFFLINE is set, so {spec.describe()} cannot be downloaded and it is not in the cache "
            f"({cache_dir()}): unset HF_HUB_OFFLINE and run `nfzoo pull {_pull_name(spec)}`, or use a model "
            "embedded in the zoo.")
    try:
        with hub_call(f"download {spec.describe()}") as call:
            return _download_files(spec, force, progress, call)
    except NfzooError:
        raise
    except Exception as exc:
        raise translate_error(exc, spec) from exc


def _download_files(spec: HubSpec, force: bool, progress: Optional[Progress],
                    call: _Call) -> Tuple[str, Dict[str, Path], List[str]]:
    """_download's work, inside one Hub operation (`call`: its timeout applies to every request)."""
    from huggingface_hub import HfApi, hf_hub_download, try_to_load_from_cache

    from . import __version__

    ep, cdir, rev = call.endpoint, cache_dir(), spec.revision or "main"
    files: Dict[str, Path] = {}
    fetched: List[str] = []
    info = HfApi(endpoint=ep, library_name="nfzoo", library_version=__version__).model_info(
        spec.repo_id, revision=rev, timeout=call.timeout)
    commit = info.sha
    if not is_commit(commit):
        raise HubError(f"the Hub at {ep} answered {str(commit)[:80]!r} as the commit of {spec.repo_id}@{rev}, "
                       "which is not a 40-hex commit sha: nothing was downloaded; check HF_ENDPOINT.")
    present = None if info.siblings is None else {s.rfilename for s in info.siblings}
    missing = [f for f in spec.wanted
               if f not in spec.optional and present is not None and f not in present]
    if missing:
        raise HubNotFoundError(f"{spec.repo_id}@{_short(commit)} on {ep} has no {', '.join(missing)}: it "
                               "is not an nfzoo model repo (push one with `nfzoo push DIR --repo-id "
                               "ORG/NAME`).", user_input=spec.user_named)
    for f in spec.wanted:
        if present is not None and f not in present:
            continue
        if force or not isinstance(try_to_load_from_cache(spec.repo_id, f, cache_dir=str(cdir),
                                                          revision=commit), str):
            fetched.append(f)
        path = hf_hub_download(spec.repo_id, f, revision=commit, cache_dir=str(cdir), endpoint=ep,
                               force_download=force, library_name="nfzoo", library_version=__version__,
                               etag_timeout=call.timeout,
                               tqdm_class=_progress_class(f, progress) if progress else None)
        files[f] = Path(path)
        if not _inside(files[f], repo_folder(spec.repo_id) / "snapshots" / commit):
            raise HubError(f"the Hub at {ep} sent {f} of {spec.repo_id} for another commit than {commit}: "
                           "refusing it; check HF_ENDPOINT.")
    if rev != commit:  # remember the branch -> commit, as the client does, so cache look-ups find it
        write_ref(spec.repo_id, rev, commit)
    return commit, files, fetched


def repo_folder(repo_id: str) -> Path:
    """The cache folder of a (validated) model repo: HF_HUB_CACHE/models--ORG--NAME."""
    return cache_dir() / f"models--{check_repo_id(repo_id).replace('/', '--')}"


def write_ref(repo_id: str, revision: str, commit: str) -> Path:
    """Record branch / tag -> commit in the repo's refs folder, as huggingface_hub does. The revision is
    validated again, and a path that would resolve outside refs/ is refused (defence in depth)."""
    refs = repo_folder(repo_id) / "refs"
    target = refs / check_revision(revision)
    if not is_commit(commit) or not _inside(target, refs):
        raise HubError(f"refusing to write the ref {revision!r} -> {commit!r} outside {refs}.")
    atomic_write_bytes(target, commit.encode())
    return target


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


_NETWORK = {"ConnectError", "ConnectTimeout", "TimeoutException", "ReadTimeout", "NetworkError", "ProxyError",
            "ConnectionError", "Timeout", "RemoteProtocolError", "ReadError", "TimeoutError",
            "ConnectionRefusedError", "gaierror"}


def translate_error(exc: BaseException, spec: Optional[HubSpec] = None,
                    action: str = "download") -> NfzooError:
    """A huggingface_hub / network exception -> one clear nfzoo error."""
    from huggingface_hub import errors as hfe

    what = spec.describe() if spec else "the model"
    ep = endpoint()
    user = bool(spec and spec.user_named)
    for e in _chain(exc):
        names = {c.__name__ for c in type(e).__mro__}
        if isinstance(e, hfe.OfflineModeIsEnabled):
            return HubUnreachableError(f"offline mode is on (HF_HUB_OFFLINE), so {what} cannot be "
                                       f"{action}ed: unset HF_HUB_OFFLINE, or use a model embedded in the "
                                       "zoo.")
        if isinstance(e, hfe.RevisionNotFoundError):
            rev = (spec.revision or "main") if spec else "?"
            return HubNotFoundError(f"revision {rev} of {spec.repo_id if spec else 'the repo'} was not found "
                                    f"on {ep}: check the revision (a branch, tag or commit sha).",
                                    user_input=user)
        if isinstance(e, hfe.RepositoryNotFoundError):
            repo = spec.repo_id if spec else "?"
            return HubNotFoundError(f"repository {repo} was not found on {ep} (or it is private: set "
                                    "HF_TOKEN). Check the name and HF_ENDPOINT.",
                                    user_input=user)
        if "RemoteEntryNotFoundError" in names or ("EntryNotFoundError" in names
                                                    and isinstance(e, hfe.HfHubHTTPError)):
            return HubNotFoundError(f"a file of {what} was not found on {ep} ({_first_line(e)}).",
                                    user_input=user)
        if isinstance(e, hfe.HfHubHTTPError) and getattr(e, "response", None) is not None:
            status = e.response.status_code
            if status >= 500:
                return HubUnreachableError(f"the Hub at {ep} failed (HTTP {status}) while trying to {action} "
                                           f"{what}: try again later, check HF_ENDPOINT, or use a model "
                                           "embedded in the zoo.")
            if status in (401, 403):
                return HubError(f"the Hub at {ep} refused to {action} {what} (HTTP {status}): check your "
                                "token (HF_TOKEN or `hf auth login`) and its permissions.")
            return HubError(f"the Hub at {ep} answered HTTP {status} while trying to {action} {what}: "
                            f"{_first_line(e)}")
        if any("Timeout" in n for n in names):
            try:
                seconds = hub_timeout()
            except UsageError:
                seconds = DEFAULT_TIMEOUT
            return _timeout_error(_Call(seconds, ep, f"{action} {what}"))
        if names & _NETWORK:
            return HubUnreachableError(f"cannot reach the Hugging Face Hub at {ep} to {action} {what} "
                                       f"({type(e).__name__}). Check HF_ENDPOINT and your network, or use a "
                                       "model embedded in the zoo (`nfzoo list --pretrained` shows each "
                                       "model's source).")
    for e in _chain(exc) if action == "download" else ():
        if isinstance(e, PermissionError) or (isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EROFS,
                                                                                      errno.EPERM)):
            return CacheNotWritableError(_not_writable(f"cannot {action} {what} into the cache", e))
    first = next(iter(_chain(exc)))
    if isinstance(first, OSError) and "Consistency check failed" in str(first):
        return HubError(f"the download of {what} was incomplete (size mismatch): run the pull again.")
    return HubError(f"could not {action} {what}: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(e: BaseException) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return lines[0] if lines else type(e).__name__


def source_of(entry) -> str:
    """embedded / cached / hub / unpublished for a pretrained entry, without network or torch."""
    meta = entry.metadata
    if not is_zoo_entry(meta):
        return "plugin"
    if _embedded_folder(meta) is not None:
        return "embedded"
    try:
        spec = spec_from_entry(entry)
    except UsageError:      # a bad repo id or file name in the index: `nfzoo pull` says which
        return "invalid"
    if spec.status == "unpublished" or not spec.repo_id:
        return "unpublished"
    return "cached" if cached_files(spec) is not None else "hub"


# ------------------------------------------------------------------ publishing
def run_info(directory: os.PathLike) -> Dict[str, Any]:
    """Architecture, config, dataset and metrics of a model or training-run directory."""
    d = Path(directory)
    doc = read_json(d / CONFIG_NAME, "model config")
    if not isinstance(doc, dict) or "architecture" not in doc or not isinstance(doc.get("config"), dict):
        raise ConfigError(f"{d / CONFIG_NAME} is not an nfzoo model config (write it with save_pretrained).")
    info: Dict[str, Any] = {"architecture": doc["architecture"], "config": doc["config"],
                            "dataset": doc.get("dataset"), "metrics": {}, "kind": doc.get("kind", "flow")}
    if info["kind"] == "oracle" and doc.get("test_accuracy") is not None:
        info["metrics"] = {"test_accuracy": doc["test_accuracy"]}
    if (d / "train.json").is_file():
        train = read_json(d / "train.json", "training settings")
        settings = train.get("train") if isinstance(train, dict) else None
        info["dataset"] = settings.get("dataset") if isinstance(settings, dict) else None
    if (d / "history.json").is_file():
        history = read_json(d / "history.json", "training history")
        if not isinstance(history, list):     # found by tests/test_fuzz.py (a TypeError before)
            raise ConfigError(f"{d / 'history.json'} is not a list of epoch records (as `nfzoo train` writes "
                              "it); fix or remove it")
        tested = [r for r in history if isinstance(r, dict) and isinstance(r.get("test_bpd"), (int, float))
                  and not isinstance(r.get("test_bpd"), bool) and math.isfinite(r["test_bpd"])]
        if tested:
            last = tested[-1]
            info["metrics"] = {"test_bpd": round(float(last["test_bpd"]), 4), "epochs": last.get("epoch")}
    return info


def check_safetensors(path: Path) -> None:
    """A cheap structural check of a safetensors file (its JSON header), without torch."""
    try:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            if n > min(100_000_000, path.stat().st_size - 8):
                raise ValueError("header length out of range")
            header = json.loads(f.read(n))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (OSError, ValueError, struct.error) as exc:
        raise ConfigError(f"{path} is not a valid safetensors file ({exc}); it was not uploaded.") from exc


_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _yaml_scalar(v: Any) -> str:
    """A YAML scalar that reads back as the string str(v): plain only for names that YAML cannot take for
    a number, a boolean or null (found by tests/test_fuzz.py: "0" read back as the integer 0), else a
    double-quoted JSON string (valid YAML)."""
    s = str(v)
    plain = re.fullmatch(r"[A-Za-z][A-Za-z0-9_.:/-]*", s) and s.lower() not in _YAML_WORDS and ":" not in s
    if plain:
        return s
    # JSON writes a character beyond U+FFFF as a surrogate pair, which YAML reads as two characters:
    # write it as YAML's 8-digit \U escape instead (the fuzzer found it too)
    return re.sub(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})",
                  lambda m: "\\U%08x" % (0x10000 + ((int(m.group(1), 16) - 0xD800) << 10)
                                          + int(m.group(2), 16) - 0xDC00), json.dumps(s))


def model_card(name: str, info: Dict[str, Any], repo_id: Optional[str] = None,
               zoo_name: Optional[str] = None) -> str:
    """A basic model card: YAML front matter for the Hub, then usage, results and config."""
    arch, ds = info.get("architecture") or "", info.get("dataset")
    metrics = info.get("metrics") or {}
    tags = ["nfzoo", "normalizing-flow", "image-generation"] + ([arch] if arch else [])
    lines = ["---", "library_name: nfzoo", f"license: {_yaml_scalar(info.get('license') or 'mit')}", "tags:"]
    lines += [f"- {_yaml_scalar(t)}" for t in tags]
    if ds:
        lines += ["datasets:", f"- {_yaml_scalar(ds)}"]
    metric_ids = sorted({"bpd" if "bpd" in k else k for k in metrics if k != "epochs"})
    if metric_ids:
        lines += ["metrics:"] + [f"- {_yaml_scalar(m)}" for m in metric_ids]
    lines += ["---", "", f"# {name}", ""]
    desc = info.get("description") or (f"A `{arch}` normalizing flow" + (f" trained on `{ds}`" if ds else "")
                                       + " with nfzoo.")
    lines += [desc, ""]
    if info.get("paper"):
        lines += [f"Paper: {info['paper']}", ""]
    ident = f"hf-hub:{repo_id}" if repo_id else name
    lines += ["## Use", "", "```python", "import nfzoo", "",
              f'model = nfzoo.load("{ident}", download=True)',
              "images = model.sample(16)  # (16, C, H, W) in [0, 1]",
              "```", "", f"    nfzoo pull {ident} && nfzoo sample --model {ident} --out samples.png", ""]
    if zoo_name:
        lines += [f"With the nfzoo-zoo package installed, the name `{zoo_name}` works too (its files are "
                  "pinned by commit and sha256 in the zoo's index).", ""]
    if metrics:
        lines += ["## Results", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in metrics.items()] + [""]
    lines += ["## Config", "", f"Architecture `{arch}`:", "", "| key | value |", "| --- | --- |"]
    lines += [f"| {k} | `{json.dumps(v)}` |" for k, v in (info.get("config") or {}).items()] + [""]
    lines += ["Weights are safetensors; `config.json` holds the architecture and config that rebuild the "
              "model.", "", GENERATED_MARK, ""]
    return "\n".join(lines)


def push(directory: os.PathLike, repo_id: str, token: Optional[str] = None, revision: Optional[str] = None,
         private: Optional[bool] = None, commit_message: Optional[str] = None) -> Dict[str, Any]:
    """Upload config.json, model.safetensors and README.md (generated if the folder has none) to a Hub
    repo (created if needed). Returns the commit sha and the files' sha256: the pins for the zoo index."""
    d = Path(directory)
    if not d.is_dir():
        raise UsageError(f"{d} is not a directory: push a model directory (config.json + model.safetensors).")
    check_repo_id(repo_id, "--repo-id")
    if revision is not None:
        check_revision(revision)
    if not (d / WEIGHTS_NAME).is_file():
        raise UsageError(f"{d} has no {WEIGHTS_NAME}: push a directory written by save_pretrained or "
                         "`nfzoo train`.")
    info = run_info(d)
    check_safetensors(d / WEIGHTS_NAME)
    card = (d / CARD_NAME).read_bytes() if (d / CARD_NAME).is_file() else \
        model_card(repo_id.split("/")[1], info, repo_id).encode()
    files = {CONFIG_NAME: (d / CONFIG_NAME).read_bytes(), WEIGHTS_NAME: (d / WEIGHTS_NAME).read_bytes(),
             CARD_NAME: card}
    if offline():
        raise HubUnreachableError("HF_HUB_OFFLINE is set: unset it to push.")
    from huggingface_hub import CommitOperationAdd, HfApi

    from . import __version__

    spec = HubSpec(name=f"{HF_PREFIX}{repo_id}", repo_id=repo_id, revision=revision, user_named=True)
    try:
        with hub_call(f"push to {repo_id}"):
            api = HfApi(endpoint=endpoint(), token=token, library_name="nfzoo", library_version=__version__)
            api.create_repo(repo_id, exist_ok=True, private=private)
            if revision and revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            ops = [CommitOperationAdd(path_in_repo=n, path_or_fileobj=data) for n, data in files.items()]
            message = commit_message or f"Upload {info['architecture']} model with nfzoo"
            commit = api.create_commit(repo_id, ops, revision=revision, commit_message=message)
    except NfzooError:
        raise
    except ValueError as exc:
        raise UsageError(f"the Hub refused the upload to {repo_id}: {_first_line(exc)}") from exc
    except Exception as exc:
        raise translate_error(exc, spec, action="push") from exc
    return {"repo_id": repo_id, "revision": commit.oid, "branch": revision or "main",
            "url": commit.commit_url,
            "files": {n: hashlib.sha256(data).hexdigest() for n, data in files.items()},
            "card": "given" if (d / CARD_NAME).is_file() else "generated"}


# ------------------------------------------------------------------ the cache, for `nfzoo cache`
def _zoo_repos() -> Dict[str, Any]:
    from .plugins import get_registry

    out = {}
    for e in get_registry().list("pretrained"):
        if is_zoo_entry(e.metadata) and e.metadata.get("repo_id"):
            out.setdefault(e.metadata["repo_id"], e)
    return out


def _scan():
    if not cache_dir().is_dir():
        return None
    from huggingface_hub import scan_cache_dir

    return scan_cache_dir(cache_dir())


def _nfzoo_config(revision) -> bool:
    for f in revision.files:
        if f.file_name == CONFIG_NAME:
            try:
                doc = json.loads(Path(f.file_path).read_text())
            except (OSError, ValueError):
                return False
            return isinstance(doc, dict) and (doc.get("library") == "nfzoo" or
                                              ("architecture" in doc and isinstance(doc.get("config"), dict)))
    return False


def cache_list(name: Optional[str] = None) -> List[Dict[str, Any]]:
    """The cached revisions of nfzoo models (zoo repos, or repos whose config.json is nfzoo's)."""
    zoo = _zoo_repos()
    only = spec_for(name).repo_id if name else None
    info = _scan()
    rows: List[Dict[str, Any]] = []
    if info is None:
        return rows
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or (only and repo.repo_id != only):
            continue
        entry = zoo.get(repo.repo_id)
        if entry is None and not any(_nfzoo_config(r) for r in repo.revisions):
            continue
        spec = spec_from_entry(entry) if entry is not None else None
        for rev in sorted(repo.revisions, key=lambda r: r.last_modified):
            rows.append({"name": entry.name if entry is not None else f"{HF_PREFIX}{repo.repo_id}",
                         "repo_id": repo.repo_id, "revision": rev.commit_hash, "refs": sorted(rev.refs),
                         "pinned": bool(spec and spec.pinned == rev.commit_hash),
                         "files": sorted(f.file_name for f in rev.files), "size": rev.size_on_disk,
                         "path": str(rev.snapshot_path), "_spec": spec,
                         "_files": {f.file_name: Path(f.file_path) for f in rev.files}})
    return rows


def public(row: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def cache_verify(name: Optional[str] = None) -> List[Dict[str, Any]]:
    """Recompute every cached file's sha256 (git id for non-LFS files without a pin) and compare with the
    zoo index (or the blob name). Reports; deletes nothing."""
    out = []
    for row in cache_list(name):
        spec, results = row["_spec"], {}
        for fname, path in sorted(row["_files"].items()):
            exp = _expected_hash(spec, fname, path, row["revision"])
            if exp is None:
                results[fname] = {"status": "unchecked"}
                continue
            got = _digest(exp[0], path)
            pinned = bool(spec and spec.pinned == row["revision"] and fname in spec.pins)
            results[fname] = {"status": "ok" if got == exp[1] else "mismatch", "expected": exp[1],
                              "actual": got, "against": "index" if pinned else "blob name"}
        if row["pinned"]:
            for fname in spec.pins:
                results.setdefault(fname, {"status": "missing"})
        doc = public(row)
        doc["results"] = results
        doc["ok"] = all(r["status"] in ("ok", "unchecked") for r in results.values())
        out.append(doc)
    return out


def cache_remove(name: Optional[str] = None, revision: Optional[str] = None) -> Dict[str, Any]:
    """Delete cached revisions of one model (or of every nfzoo model when name is None)."""
    if revision is not None:
        check_revision(revision)
    rows = cache_list(name)
    if revision:
        rows = [r for r in rows if r["revision"] == revision or revision in r["refs"]]
    info = _scan()
    if not rows or info is None:
        return {"removed": [], "freed": 0}
    strategy = info.delete_revisions(*[r["revision"] for r in rows])
    freed = strategy.expected_freed_size
    # huggingface_hub logs a failed deletion (with its traceback) and goes on: collect those, say it once
    failures: List[logging.LogRecord] = []
    collect = logging.Handler(logging.WARNING)
    collect.emit = failures.append  # type: ignore[method-assign]
    hf_log = logging.getLogger(type(strategy).__module__)      # huggingface_hub.utils._cache_manager
    hf_log.addHandler(collect)
    propagate, hf_log.propagate = hf_log.propagate, False
    try:
        strategy.execute()
    except OSError as exc:
        raise CacheNotWritableError(_not_writable(f"could not remove cached models from {cache_dir()}",
                                                  exc)) from exc
    finally:
        hf_log.removeHandler(collect)
        hf_log.propagate = propagate
    left = [r for r in rows if Path(r["path"]).exists()]
    if left:
        why = next((r.getMessage() for r in failures), "the files are still there")
        raise CacheNotWritableError(
            f"could not remove {', '.join(sorted({r['name'] for r in left}))} from the cache ({why}): make "
            f"{cache_dir()} writable (fix its permissions) or set HF_HUB_CACHE to a folder you own.")
    return {"removed": [public(r) for r in rows], "freed": freed}
