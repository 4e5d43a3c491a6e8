"""How long a gallery request may compute, and how it is stopped.

Every request kind has a budget of seconds (`DEFAULT_BUDGETS`, `nfzoo serve --request-seconds`). The work runs
in a worker thread under a `Deadline`: a torch function mode (torch.overrides.TorchFunctionMode, local to that
thread) that raises `Stopped` at the next torch operation once the budget is spent, the client has gone, or the
server is stopping. So any model, sampler or head stops within one operation, with no help from its code, and
the model's lock is released at once.

`Costs` keeps what the requests measured: the least seconds per unit of work (an image, times its sampler's
steps) seen for a model, request kind and setting. A request that would take more than its budget even at that
rate is refused before it starts (HTTP 422, saying what would fit); a request stopped at its budget records
budget / units as the least rate, so the same request is refused at once the next time."""
from __future__ import annotations

import math
import threading
import time
from typing import Any, Dict, Optional, Tuple

from torch.overrides import TorchFunctionMode

from nfzoo.errors import NfzooError, UsageError

DEFAULT_BUDGETS: Dict[str, float] = {"sample": 15.0, "interpolate": 15.0, "inpaint": 15.0, "score": 15.0}
"""Seconds a request of each kind may compute (a request answers in seconds on a CPU; what takes longer
belongs on the command line: `nfzoo sample`, `nfzoo inpaint`, `nfzoo score`)."""


class Stopped(NfzooError):
    """A request's work stopped before it ended: its budget was spent (HTTP 503), its client left (499, nobody
    reads it) or the server is stopping (503)."""

    def __init__(self, message: str, status: int = 503, reason: str = "budget"):
        super().__init__(message)
        self.status, self.reason = status, reason


class TooCostly(UsageError):
    """A request whose measured cost is over its budget, refused before it starts (HTTP 422)."""


class Deadline(TorchFunctionMode):
    """A torch function mode that stops the work of one thread: at the first torch operation after `seconds`
    (None: no limit), after `cancel` is set (the client left) or after `stopping` is set (the server stops).
    Used as `with Deadline(...):` around the work, in the thread that computes it; other threads are not
    affected (torch's function modes are thread-local)."""

    def __init__(self, seconds: Optional[float], cancel: Optional[threading.Event] = None,
                 stopping: Optional[threading.Event] = None, what: str = "the request"):
        super().__init__()
        self.seconds, self.what = seconds, what
        self.cancel, self.stopping = cancel, stopping
        self.started = time.monotonic()
        self.end = math.inf if seconds is None else self.started + float(seconds)

    def check(self) -> None:
        """Raise Stopped if the work must stop now."""
        if self.stopping is not None and self.stopping.is_set():
            raise Stopped("the gallery is stopping: the work of this request was stopped", 503, "stopping")
        if self.cancel is not None and self.cancel.is_set():
            raise Stopped("the client closed the connection: the work of this request was stopped", 499, "client")
        if time.monotonic() > self.end:
            raise Stopped(f"{self.what} took more than its budget of {self.seconds:g} s and was stopped: ask for "
                          "fewer images or steps (the command line has no such limit: nfzoo sample, nfzoo inpaint)",
                          503, "budget")

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.check()
        return func(*args, **(kwargs or {}))


class Costs:
    """The least seconds per unit of work measured so far, by (model, kind, setting). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rate: Dict[Tuple[str, str, str], float] = {}

    def record(self, key: Tuple[str, str, str], seconds: float, units: float) -> None:
        """A request of `units` units took `seconds` (or was stopped after `seconds`: a lower bound too)."""
        if units <= 0 or seconds <= 0:
            return
        rate = seconds / units
        with self._lock:
            self._rate[key] = min(rate, self._rate.get(key, math.inf))

    def estimate(self, key: Tuple[str, str, str], units: float) -> Optional[float]:
        """The least seconds `units` units can take by what was measured (None: nothing measured yet)."""
        with self._lock:
            rate = self._rate.get(key)
        return None if rate is None else rate * units

    def check(self, key: Tuple[str, str, str], units: float, budget: float, what: str, fewer: str) -> None:
        """Refuse (TooCostly) a request the measured rate says cannot end inside `budget` seconds."""
        est = self.estimate(key, units)
        if est is not None and est > budget:
            rate = est / units
            fits = max(0, int(budget / rate)) if rate > 0 else 0
            raise TooCostly(f"{what} would take about {est:.0f} s by what this model measured here, more than the "
                            f"gallery's budget of {budget:g} s a request: ask for {fewer} (about {fits} fit)")


def budgets(seconds: Optional[float] = None) -> Dict[str, float]:
    """The budget of every request kind: DEFAULT_BUDGETS, or `seconds` for all of them."""
    if seconds is None:
        return dict(DEFAULT_BUDGETS)
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"a request's budget must be a number of seconds > 0, got {seconds!r}")
    return {k: float(seconds) for k in DEFAULT_BUDGETS}
