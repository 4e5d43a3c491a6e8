"""The Hugging Face cache on disk, as nfzoo reads and repairs it: a repo's files at a revision, each checked
against its expected hash (the zoo index's sha256, else its blob's name), bad copies discarded, the verified
copy kept through a forced pull, and refs written. No network, no torch.

The cache layout is huggingface_hub's: HF_HUB_CACHE/models--ORG--NAME/{blobs,snapshots/COMMIT,refs}, a
snapshot file being a symlink to its blob, which is named by the file's sha256 (LFS) or git blob id.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

from nfzoo.errors import CacheNotWritableError, HubError
from nfzoo.hub.names import check_repo_id, check_revision, inside, is_commit, is_sha256
from nfzoo.hub.settings import cache_dir, not_writable
from nfzoo.safeio import atomic_write_bytes, sha256_file


def cached_files(spec) -> Optional[Dict[str, Path]]:
    """The files of `spec` (a HubSpec) in the HF cache at its revision (refs resolve branches), all at one
    commit, or None when a required one is missing. No network."""
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


def expected_hash(spec, name: str, path: Path, commit: str) -> Optional[Tuple[str, str]]:
    """("sha256" | "git", hex) to check the cached file `name` at `path` against: the pin of `spec` (a
    HubSpec, or None) when `commit` is the pinned one, else the name of its cache blob; else None."""
    if spec is not None and spec.pinned == commit and name in spec.pins:
        return "sha256", spec.pins[name]
    blob = os.readlink(path) if path.is_symlink() else ""
    blob = os.path.basename(blob)
    if is_sha256(blob):
        return "sha256", blob
    if is_commit(blob):
        return "git", blob
    return None


def file_digest(kind: str, path: Path) -> str:
    """A file's "sha256" digest, or its "git" blob id (sha1 of `blob <size>\\0` + content), in hex."""
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


def check_files(spec, files: Dict[str, Path], commit: Optional[str] = None,
                delete: bool = True) -> List[BadFile]:
    """Check cached files (of `spec`, a HubSpec, or None); returns the bad ones, which are deleted (with
    delete=True) where the cache lets us (a read-only cache: `kept` says so; never loaded either way)."""
    bad = []
    for name, path in files.items():
        exp = expected_hash(spec, name, path, commit or path.parent.name)
        if exp is None:
            continue
        got = file_digest(exp[0], path)
        if got != exp[1]:
            kept = None
            if delete:
                try:
                    discard(path)
                except OSError as exc:
                    kept = f"{type(exc).__name__}: {exc.strerror or exc}"
            bad.append(BadFile(name, exp[1], got, path, kept))
    return bad


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


class Keeper:
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
            raise CacheNotWritableError(not_writable(f"cannot download again into {repo_dir}", exc)) from exc
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
        """Forget the kept copies (delete the hard links / copies; the cache itself is left as it is)."""
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)


def _blob_verifies(blob: Path) -> bool:
    kind = "sha256" if is_sha256(blob.name) else "git" if is_commit(blob.name) else None
    return kind is not None and file_digest(kind, blob) == blob.name


def repo_folder(repo_id: str) -> Path:
    """The cache folder of a (validated) model repo: HF_HUB_CACHE/models--ORG--NAME."""
    return cache_dir() / f"models--{check_repo_id(repo_id).replace('/', '--')}"


def write_ref(repo_id: str, revision: str, commit: str) -> Path:
    """Record branch / tag -> commit in the repo's refs folder, as huggingface_hub does. The revision is
    validated again, and a path that would resolve outside refs/ is refused (defence in depth)."""
    refs = repo_folder(repo_id) / "refs"
    target = refs / check_revision(revision)
    if not is_commit(commit) or not inside(target, refs):
        raise HubError(f"refusing to write the ref {revision!r} -> {commit!r} outside {refs}.")
    atomic_write_bytes(target, commit.encode())
    return target
