"""The Hugging Face Hub: resolving and pulling a pretrained model's files into the HF cache (each checked by
sha256), the cache on disk, the HTTP behaviour (timeouts, answers checked), names and revisions from
strangers, the Hub settings, the ModelHubMixin conventions, publishing, and `nfzoo cache`'s work.

Modules: cache, fetch, files, http, mixin, names, publish, settings. Its public names are exported lazily (importing
the wing imports no torch).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from nfzoo.lazy import lazy_exports

if TYPE_CHECKING:
    from .cache import cache_list, cache_remove, cache_verify, public
    from .fetch import HubSpec, Resolved, is_zoo_entry, parse_hf_id, resolve, source_of, spec_for, spec_from_entry
    from .files import (
        BadFile,
        Keeper,
        cached_files,
        check_files,
        discard,
        expected_hash,
        file_digest,
        repo_folder,
        write_ref,
    )
    from .http import HubCall, hub_call, progress_class, translate_error
    from .mixin import HubMixin
    from .names import (
        check_repo_id,
        check_revision,
        first_line,
        inside,
        is_commit,
        is_sha256,
        revision_problem,
        safe_file_name,
        short_revision,
    )
    from .publish import (
        CardResult,
        card_data,
        card_info,
        card_results,
        check_safetensors,
        eval_results_files,
        hub_dataset,
        model_card,
        push,
        run_info,
        sample_results,
    )
    from .settings import cache_dir, endpoint, hub_timeout, not_writable, offline

_LAZY = {
    "BadFile": "files", "CardResult": "publish", "HubCall": "http", "HubMixin": "mixin", "HubSpec": "fetch",
    "Keeper": "files", "Resolved": "fetch", "cache_dir": "settings", "cache_list": "cache", "cache_remove": "cache",
    "cache_verify": "cache", "cached_files": "files", "card_data": "publish", "card_info": "publish",
    "card_results": "publish", "check_files": "files", "check_repo_id": "names", "check_revision": "names",
    "check_safetensors": "publish", "discard": "files", "endpoint": "settings", "eval_results_files": "publish",
    "expected_hash": "files", "file_digest": "files", "first_line": "names", "hub_call": "http",
    "hub_dataset": "publish", "hub_timeout": "settings", "inside": "names", "is_commit": "names",
    "is_sha256": "names", "is_zoo_entry": "fetch", "model_card": "publish", "not_writable": "settings",
    "offline": "settings", "parse_hf_id": "fetch", "progress_class": "http", "public": "cache", "push": "publish",
    "repo_folder": "files", "resolve": "fetch", "revision_problem": "names", "run_info": "publish",
    "safe_file_name": "names", "sample_results": "publish", "short_revision": "names", "source_of": "fetch",
    "spec_for": "fetch", "spec_from_entry": "fetch", "translate_error": "http", "write_ref": "files",
}
__all__ = [
    "BadFile", "CardResult", "HubCall", "HubMixin", "HubSpec", "Keeper", "Resolved", "cache_dir", "cache_list",
    "cache_remove", "cache_verify", "cached_files", "card_data", "card_info", "card_results", "check_files",
    "check_repo_id", "check_revision", "check_safetensors", "discard", "endpoint", "eval_results_files",
    "expected_hash", "file_digest", "first_line", "hub_call", "hub_dataset", "hub_timeout", "inside", "is_commit",
    "is_sha256", "is_zoo_entry", "model_card", "not_writable", "offline", "parse_hf_id", "progress_class", "public",
    "push", "repo_folder", "resolve", "revision_problem", "run_info", "safe_file_name", "sample_results",
    "short_revision", "source_of", "spec_for", "spec_from_entry", "translate_error", "write_ref",
]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
