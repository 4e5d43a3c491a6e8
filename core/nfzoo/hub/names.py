"""Names from strangers, checked before they touch the network or the disk: Hub repo ids, revisions
(commit shas, branch and tag names) and file paths inside a repo. Torch-free; imports huggingface_hub only
inside `check_repo_id`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional, TypeGuard

from nfzoo.constants import MAX_REVISION_LENGTH
from nfzoo.errors import UsageError

_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def is_commit(revision: Optional[str]) -> TypeGuard[str]:
    """Whether `revision` is a full commit sha (40 lowercase hex digits)."""
    return bool(revision) and bool(_SHA1.fullmatch(revision))


def is_sha256(value: Any) -> bool:
    """Whether `value` is a sha256 hex digest (64 lowercase hex digits)."""
    return isinstance(value, str) and bool(_SHA256.fullmatch(value))


def short_revision(revision: Optional[str]) -> str:
    """A revision for messages: a commit sha's first 10 digits, else the name (None is main)."""
    return revision[:10] if is_commit(revision) else str(revision or "main")


def first_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message (its type name if it has none)."""
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return lines[0] if lines else type(e).__name__


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
        raise UsageError(f"bad {what} {repo_id!r} ({first_line(exc)}): {fix}.") from exc
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


def safe_file_name(name: Any) -> bool:
    """A file path inside a repo: relative, '/'-separated, no empty, '.' or '..' parts, no control chars."""
    return (isinstance(name, str) and 0 < len(name) <= 1000 and not re.search(r"[\x00-\x1f\x7f\\]", name)
            and all(part not in ("", ".", "..") for part in name.split("/")))


def inside(path: Path, folder: Path) -> bool:
    """Whether `path` lies strictly inside `folder` (after resolving `..`, without following symlinks)."""
    return Path(os.path.abspath(folder)) in Path(os.path.abspath(path)).parents
