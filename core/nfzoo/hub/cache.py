"""The `nfzoo cache` commands' work: list, verify and remove the cached revisions of nfzoo models (zoo
repos, or repos whose config.json is nfzoo's) in the Hugging Face cache, through huggingface_hub's cache
scan. No network, no torch.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from nfzoo.constants import CONFIG_NAME, HF_PREFIX
from nfzoo.errors import CacheNotWritableError
from nfzoo.hub.fetch import is_zoo_entry, spec_for, spec_from_entry
from nfzoo.hub.files import expected_hash, file_digest
from nfzoo.hub.names import check_revision
from nfzoo.hub.settings import cache_dir, not_writable


def _zoo_repos() -> Dict[str, Any]:
    from nfzoo.registry.plugins import get_registry

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
    """A `cache_list` row without its private keys (those starting with `_`): what the CLI prints."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def cache_verify(name: Optional[str] = None) -> List[Dict[str, Any]]:
    """Recompute every cached file's sha256 (git id for non-LFS files without a pin) and compare with the
    zoo index (or the blob name). Reports; deletes nothing."""
    out = []
    for row in cache_list(name):
        spec, results = row["_spec"], {}
        for fname, path in sorted(row["_files"].items()):
            exp = expected_hash(spec, fname, path, row["revision"])
            if exp is None:
                results[fname] = {"status": "unchecked"}
                continue
            got = file_digest(exp[0], path)
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
        raise CacheNotWritableError(not_writable(f"could not remove cached models from {cache_dir()}",
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
