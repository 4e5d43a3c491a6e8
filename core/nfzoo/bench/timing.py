"""Timing helpers shared by the benchmarks (the core's and the plugins'): wall-clock of a callable,
best of repeats, and the `nfzoo bench` row format."""
from __future__ import annotations

import os
import platform
import time
from typing import Any, Callable, Dict, List, Optional


def device_name(device: str = "cpu") -> str:
    """A label for the device a bench ran on: the GPU's name, or the CPU and torch's thread count."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (cuda)"
    return f"cpu ({torch.get_num_threads()} threads)"


def load_average(digits: int = 2) -> List[float]:
    """The 1-, 5- and 15-minute load averages (os.getloadavg), rounded; [] where the platform has none."""
    try:
        return [round(v, digits) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def machine() -> Dict[str, Any]:
    """What a timing ran on, for its record: nproc (os.cpu_count), the cpus this process may use, the cpu's name,
    the platform, torch's threads, OMP_NUM_THREADS and the load average now."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"nproc": os.cpu_count(), "usable_cpus": usable, "cpu": cpu, "platform": platform.platform(),
            "torch_threads": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "load_average": load_average()}


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def best_time(fn: Callable[[], object], repeat: int = 3, warmup: int = 1, budget_s: float = 30.0,
              device: str = "cpu") -> float:
    """The fastest of `repeat` timed calls after `warmup` untimed ones (fewer repeats when one call
    takes more than budget_s / repeat): the usual estimator of a cost under background noise."""
    for _ in range(warmup):
        fn()
    _sync(device)
    best = float("inf")
    spent = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget_s:
            break
    return best


def row(case: str, baseline: str, candidate: str, baseline_s: float, candidate_s: float,
        **extra) -> Dict:
    """One `nfzoo bench` row: ratio = baseline_s / candidate_s (> 1: the candidate is faster)."""
    out: Dict[str, Optional[object]] = {"case": case, "baseline": baseline, "candidate": candidate,
                                        "baseline_s": baseline_s, "candidate_s": candidate_s,
                                        "ratio": baseline_s / candidate_s if candidate_s else None}
    out.update(extra)
    return out


def race(fns: Dict[str, Callable[[], object]], repeat: int = 5, warmup: int = 1,
         device: str = "cpu") -> Dict[str, float]:
    """Best time of each callable, measured interleaved (round r runs them in a rotated order), so a
    change in machine load during the run hits all candidates alike."""
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    best = {name: float("inf") for name in names}
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            _sync(device)
            t0 = time.perf_counter()
            fns[name]()
            _sync(device)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best
