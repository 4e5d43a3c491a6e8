"""How a gallery request's work runs: `Gallery.work` runs a feature in a worker thread (at most `workers` at a
time) while it watches the client; `Gallery.run` computes on a model under its lock, the request's deadline
(nfzoo_gallery.budget) and the measured cost; `RequestTimes` is what GET /api/stats reports."""
from __future__ import annotations

import statistics
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import anyio
from fastapi import Request

from .budget import Costs, Deadline, Stopped, TooCostly
from .zoo import Loaded, ModelCache

DISCONNECT_POLL_S = 0.1     # how often a running request looks whether its client is still there


class RequestTimes:
    """Seconds the models computed, per request kind (sample, interpolate, inpaint, score, load), and how many
    requests of each kind were stopped (budget, client, stopping) or refused for their cost: what GET
    /api/stats reports, the gallery's benchmark."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: Dict[str, List[float]] = {}
        self._ends: Dict[str, Dict[str, int]] = {}

    def add(self, kind: str, seconds: float) -> None:
        """Record one request of `kind` that took `seconds`."""
        with self._lock:
            self._times.setdefault(kind, []).append(float(seconds))

    def end(self, kind: str, how: str) -> None:
        """Count a request of `kind` that ended otherwise than with its answer (`how`: budget, client,
        stopping, refused)."""
        with self._lock:
            ends = self._ends.setdefault(kind, {})
            ends[how] = ends.get(how, 0) + 1

    def summary(self) -> Dict[str, Dict[str, Any]]:
        """{kind: {count, mean_s, median_s, min_s, max_s, last_s, stopped: {how: count}}}."""
        with self._lock:
            out: Dict[str, Dict[str, Any]] = {
                k: {"count": len(v), "mean_s": statistics.fmean(v), "median_s": statistics.median(v),
                    "min_s": min(v), "max_s": max(v), "last_s": v[-1]} for k, v in sorted(self._times.items())}
            for k, ends in self._ends.items():
                out.setdefault(k, {"count": 0})["stopped"] = dict(ends)
            return out


class Ticket:
    """One request's work: its budget, the event set when its client leaves, and the server's stop event."""

    def __init__(self, kind: str, budget: float, cancel: threading.Event, stopping: threading.Event):
        self.kind, self.budget, self.cancel, self.stopping = kind, budget, cancel, stopping

    def deadline(self, what: str) -> Deadline:
        """The torch function mode that stops this request's work (see nfzoo_gallery.budget)."""
        return Deadline(self.budget, self.cancel, self.stopping, what)

    def acquire(self, lock: threading.Lock, name: str) -> None:
        """Take a model's lock, giving up (Stopped) when the client leaves, the server stops, or the model
        stays busy for the whole budget."""
        waited = Deadline(self.budget, self.cancel, self.stopping, f"waiting for {name}")
        while not lock.acquire(timeout=0.05):
            try:
                waited.check()
            except Stopped as exc:
                if exc.reason == "budget":
                    raise Stopped(f"{name} stayed busy with other requests for {self.budget:g} s: try again",
                                  503, "busy") from None
                raise


class Gallery:
    """The app's state: the models (ModelCache), the time per request kind, the measured costs, the budgets,
    and the limit on work running at once."""

    def __init__(self, cache: ModelCache, budgets: Dict[str, float], workers: int):
        self.cache, self.budgets = cache, budgets
        self.times, self.costs = RequestTimes(), Costs()
        self.limiter = anyio.CapacityLimiter(int(workers))

    def loaded(self, name: str) -> "tuple[Loaded, float]":
        """The loaded model `name` and the seconds its loading took in this call (0: loaded before)."""
        slot, seconds = self.cache.get(name)
        if seconds:
            self.times.add("load", seconds)
        return slot, seconds

    def run(self, ticket: Ticket, slot: Loaded, setting: str, units: float, what: str, fewer: str,
            fn: Callable[..., Any], stepwise: bool = False) -> "tuple[Any, float]":
        """fn() on `slot`'s model under its lock and the request's deadline: (its result, seconds). Refused
        first when the measured cost of `units` units of `setting` is over the budget; the seconds per unit
        are recorded (a stop at the budget records a lower bound).

        `stepwise`: fn takes the deadline's `check` and calls it between its steps (e.g. as nfzoo_heads.inpaint's
        progress callback), so it stops within one step, and it runs without the deadline's torch function
        mode, which sends every torch operation through Python (about 8 us each: an inpainting's 60,000
        operations took twice as long under it). For work made of many small steps; otherwise fn() runs under
        the mode and stops within one torch operation."""
        key = (slot.name, ticket.kind, setting)
        try:
            self.costs.check(key, units, ticket.budget, what, fewer)
        except TooCostly:
            self.times.end(ticket.kind, "refused")
            raise
        ticket.acquire(slot.lock, slot.name)
        try:
            t0 = time.perf_counter()
            deadline = ticket.deadline(what)
            if stepwise:
                deadline.check()
                out = fn(deadline.check)
            else:
                with deadline:
                    out = fn()
            seconds = time.perf_counter() - t0
        except Stopped as exc:
            self.times.end(ticket.kind, exc.reason)
            if exc.reason == "budget":
                self.costs.record(key, time.perf_counter() - t0, units)
            raise
        finally:
            slot.lock.release()
        self.costs.record(key, seconds, units)
        self.times.add(ticket.kind, seconds)
        return out, seconds

    async def work(self, request: Request, kind: str, job: Callable[[Ticket], Any]) -> Any:
        """job(ticket) in a worker thread (at most `workers` at a time), while this task watches the client:
        when it closes the connection, or this task is cancelled (the server stops), the work stops at its
        next torch operation."""
        ticket = Ticket(kind, self.budgets[kind], threading.Event(), self.cache.stopping)

        async def watch() -> None:
            while not ticket.cancel.is_set():
                if await request.is_disconnected():
                    ticket.cancel.set()
                    return
                await anyio.sleep(DISCONNECT_POLL_S)

        failed: Optional[Exception] = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            try:
                result = await anyio.to_thread.run_sync(job, ticket, limiter=self.limiter, abandon_on_cancel=True)
            except Exception as exc:          # raised below, outside the task group (not as an ExceptionGroup)
                failed = exc
            finally:
                ticket.cancel.set()
                tg.cancel_scope.cancel()
        if failed is not None:
            raise failed
        return result
