"""Errors nfzoo raises on purpose. Each says what went wrong and how to fix it.

`exit_code` is what the CLI exits with: 2 for bad usage or bad input, 1 for a failure while running.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class NfzooError(Exception):
    """Base of nfzoo's errors; the message says what to do. The CLI exits with `exit_code` (1: a failure
    while running)."""
    exit_code = 1


class UsageError(NfzooError):
    """Bad usage or bad input (exit code 2)."""

    exit_code = 2


class UnknownNameError(UsageError, KeyError):
    """An unknown name of some kind (architecture, pretrained model, sampler, ...), with the closest known
    names in the message (exit code 2)."""
    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = ""):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        msg = f"unknown {kind} {name!r}."
        if close:
            msg += " Did you mean: " + ", ".join(close) + "?"
        elif known:
            shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            msg += f" Known: {shown}."
        else:
            msg += f" No {kind} is registered."
        if hint:
            msg += " " + hint
        super().__init__(msg)
        self.kind, self.name, self.suggestions = kind, name, close

    def __str__(self) -> str:  # KeyError would add quotes
        return self.args[0]


class ConfigError(UsageError):
    """A config (or config.json) that cannot build a model, or does not match its weights."""


class CorruptFileError(UsageError):
    """A file that is truncated, corrupt, or not what it claims to be. It is never loaded."""


class DatasetUnavailableError(UsageError):
    """A data set that is not present on this machine and cannot be downloaded now."""


class DataError(UsageError):
    """A data set's files that cannot be trained on (a corrupt or truncated image, images of different sizes,
    no images to hold out), found by the scan before training; the message names the file (exit code 2)."""


class PluginConflictError(NfzooError):
    """Two plugins registered the same name."""


class TrainingDivergedError(NfzooError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""

    exit_code = 1


class PreemptedError(NfzooError):
    """Training got SIGTERM (a scheduler's preemption): a checkpoint of the exact position was written and
    the run stopped; `--resume` continues it. Exit code 143 (128 + SIGTERM), as a killed process's."""

    exit_code = 143


class HubError(NfzooError):
    """A failure while getting or publishing weights through the Hugging Face Hub (exit code 1)."""

    exit_code = 1


class HubUnreachableError(HubError):
    """The Hub endpoint cannot be reached (offline, network down, HF_HUB_OFFLINE set, server errors)."""


class HubNotFoundError(HubError):
    """A repo, revision or file that the Hub does not have. Exit code 2 when the user named it."""

    def __init__(self, message: str, user_input: bool = False):
        super().__init__(message)
        self.exit_code = 2 if user_input else 1


class NotCachedError(HubError):
    """Weights that are neither embedded nor in the local cache, and downloading was not asked for."""


class UnpublishedError(HubError):
    """A zoo entry whose weights are not published yet."""


class ChecksumError(HubError):
    """A file whose sha256 does not match the zoo index. A bad cached copy is deleted, never loaded."""


class CacheNotWritableError(NfzooError):
    """The Hugging Face cache folder cannot be changed (read-only, or owned by someone else): an environment
    problem, exit code 1. The message names the folder and says to fix its permissions or set HF_HUB_CACHE."""


class NfzooWarning(UserWarning):
    """Something the user should know that does not stop the work (e.g. a corrupt checkpoint skipped on
    --resume, the previous one used instead). Python prints it on stderr."""
