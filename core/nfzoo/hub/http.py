"""How nfzoo's Hub requests behave: timeouts, answers checked, errors translated.

The real `huggingface_hub` client does the HTTP work; `hub_call` runs a group of its requests as one nfzoo
operation. Through hooks on the client factory (`set_client_factory`, public), every request of an
operation gets a connect / read / write timeout (`hub_timeout`), a request that timed out ends the operation
instead of being retried, and the commit sha, ETag and X-Repo-Commit the Hub answers (they become cache
paths) are refused unless they are what the Hub sends. Outside an operation the hooks do nothing. The one
private name this needs (the factory installed now, to wrap it) is read through `nfzoo.compat`.
`translate_error` turns a client or network exception into one clear nfzoo error. Torch-free.
"""
from __future__ import annotations

import contextlib
import contextvars
import errno
import logging
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from nfzoo import compat
from nfzoo.constants import DEFAULT_TIMEOUT, TIMEOUT_ENV
from nfzoo.errors import CacheNotWritableError, HubError, HubNotFoundError, HubUnreachableError, NfzooError, UsageError
from nfzoo.hub.names import first_line, is_commit
from nfzoo.hub.settings import endpoint, hub_timeout, not_writable

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,254}$")  # an ETag that becomes a blob's file name

Progress = Callable[[str, int, Optional[int]], None]  # (file name, bytes done, total bytes or None)


@dataclass
class HubCall:
    """One nfzoo Hub operation (a download, a push): its timeout and what its requests have done so far."""

    timeout: float
    endpoint: str
    doing: str                          # e.g. "download hf-hub:org/name" (for messages)
    sent_at: Optional[float] = None     # when the request that has no response yet was sent
    timed_out: bool = False


_CALL: contextvars.ContextVar[Optional[HubCall]] = contextvars.ContextVar("nfzoo_hub_call", default=None)


def _timeout_error(call: HubCall) -> HubUnreachableError:
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

    def __init__(self, stream, call: HubCall):
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
            # normalised as huggingface_hub does
            if etag is not None and not _SAFE_NAME.fullmatch(etag.lstrip("W/").strip('"')):
                raise HubError(f"the Hub at {call.endpoint} answered the {key} {etag[:80]!r}, which is not a "
                               f"plain file name, while trying to {call.doing}: nothing was written; check "
                               "HF_ENDPOINT.")


def _wrap_stream(response, call: HubCall):
    """The response's body stream, guarded; a subclass of its HTTP library's SyncByteStream, as it checks."""
    library = sys.modules.get(type(response).__module__.split(".")[0])
    base = getattr(library, "SyncByteStream", None)
    if base is None or not isinstance(response.stream, base):
        return response.stream
    guarded = type("GuardedStream", (_GuardedStream, base), {})
    return guarded(response.stream, call)


def _install_hooks() -> None:
    """Make huggingface_hub's HTTP clients call our hooks (they do nothing outside an nfzoo operation).

    Through `set_client_factory` (public), wrapping the factory in place (a user's own included: read with
    `compat.hf_client_factory`), so a client that huggingface_hub makes anew (it does after a connection
    error) has them too."""
    import huggingface_hub

    current = compat.hf_client_factory()
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
    call = HubCall(hub_timeout(), endpoint(), doing)
    _install_hooks()
    token = _CALL.set(call)
    # after a timeout the client logs "Trying to resume download..." before our hook ends the operation
    quiet = logging.Filter()
    quiet.filter = lambda record: not call.timed_out  # type: ignore[method-assign]
    loggers = [logging.getLogger(name) for name in ("huggingface_hub.file_download", compat.hf_http_logger_name())]
    for log in loggers:
        log.addFilter(quiet)
    try:
        yield call
    finally:
        _CALL.reset(token)
        for log in loggers:
            log.removeFilter(quiet)


def progress_class(filename: str, progress: Progress):
    """A tqdm stand-in for huggingface_hub's http_get that reports bytes of `filename` to `progress`."""
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


# ------------------------------------------------------------------ errors
def _chain(exc: Optional[BaseException]):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


_NETWORK = {"ConnectError", "ConnectTimeout", "TimeoutException", "ReadTimeout", "NetworkError", "ProxyError",
            "ConnectionError", "Timeout", "RemoteProtocolError", "ReadError", "TimeoutError",
            "ConnectionRefusedError", "gaierror"}


def translate_error(exc: BaseException, spec: Any = None, action: str = "download") -> NfzooError:
    """A huggingface_hub / network exception -> one clear nfzoo error. `spec` is the `nfzoo.hub.fetch.HubSpec`
    being worked on (its describe(), repo_id, revision and user_named are used), or None."""
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
            return HubNotFoundError(f"a file of {what} was not found on {ep} ({first_line(e)}).",
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
                            f"{first_line(e)}")
        if any("Timeout" in n for n in names):
            try:
                seconds = hub_timeout()
            except UsageError:
                seconds = DEFAULT_TIMEOUT
            return _timeout_error(HubCall(seconds, ep, f"{action} {what}"))
        if names & _NETWORK:
            return HubUnreachableError(f"cannot reach the Hugging Face Hub at {ep} to {action} {what} "
                                       f"({type(e).__name__}). Check HF_ENDPOINT and your network, or use a "
                                       "model embedded in the zoo (`nfzoo list --pretrained` shows each "
                                       "model's source).")
    for e in _chain(exc) if action == "download" else ():
        if isinstance(e, PermissionError) or (isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EROFS,
                                                                                      errno.EPERM)):
            return CacheNotWritableError(not_writable(f"cannot {action} {what} into the cache", e))
    first = next(iter(_chain(exc)))
    if isinstance(first, OSError) and "Consistency check failed" in str(first):
        return HubError(f"the download of {what} was incomplete (size mismatch): run the pull again.")
    return HubError(f"could not {action} {what}: {type(exc).__name__}: {first_line(exc)}")
