"""The paper tables' timing records (Tables 7 and 8): every timed call is kept with the machine's state (nproc,
the load average before and after), summarised as median and spread (min, max, quartiles), and a speed claim
is judged by the labelling rule (report.RULE) over repeated rounds: each round times every case once, back to
back, so a round's ratio between two cases is one observation, and the rounds play the part of the training
seeds (the ratio's median against a bound, with one sd of the rounds' ratios as the spread).

A timing is only evidence from an idle machine: IDLE says when a record counts as one (every 1-min load average
recorded during the run at most the timing's own threads + IDLE_MARGIN); a record from a loaded machine labels
its claims "not testable here"."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

IDLE_MARGIN = 0.5
IDLE = (f"a timing counts as evidence only from an idle machine: every 1-min load average recorded before and "
        f"after its timed calls at most its torch threads + {IDLE_MARGIN:g} (the timing's own process accounts "
        "for its threads)")


def machine() -> Dict[str, Any]:
    """The machine a timing ran on (nfzoo.bench.timing.machine: nproc, the cpus this process may use, the cpu's
    name, torch's threads, the load average)."""
    from nfzoo.bench.timing import machine as _machine

    return _machine()


def loadavg() -> List[float]:
    """The 1-, 5- and 15-min load averages (nfzoo.bench.timing.load_average, to 3 decimals)."""
    from nfzoo.bench.timing import load_average

    return load_average(3)


def timed(fn: Callable[[], Any]) -> Dict[str, Any]:
    """One timed call: {"seconds", "load_before", "load_after"} (the call's result is dropped)."""
    before = loadavg()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "load_before": before, "load_after": loadavg()}


def spread(values: Sequence[float]) -> Optional[Dict[str, float]]:
    """{"median", "min", "max", "q1", "q3", "sd", "n"} of the values (quartiles and sd need two values)."""
    v = sorted(float(x) for x in values)
    if not v:
        return None
    q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else (v[0], v[0], v[0])
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "q1": q1, "q3": q3,
            "sd": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v)}


def as_stat(s: Optional[Dict[str, float]]) -> Optional[Dict[str, float]]:
    """A spread as the rule's value (report.step): the median as the centre, one sd of the rounds as its spread,
    the number of rounds as n."""
    return None if s is None else {"mean": s["median"], "sd": s["sd"], "n": s["n"]}


def round_ratios(calls: Sequence[Dict[str, Any]], num: str, den: str, **where: Any) -> List[float]:
    """The per-round ratios seconds(num) / seconds(den) of the calls matching `where` (e.g. shape=...), over
    the rounds in which both cases were timed."""
    by: Dict[Any, Dict[str, float]] = {}
    for c in calls:
        if all(c.get(k) == v for k, v in where.items()):
            by.setdefault(c["round"], {})[c["case"]] = c["seconds"]
    return [r[num] / r[den] for _, r in sorted(by.items()) if num in r and den in r]


def loads_of(record: Dict[str, Any]) -> List[float]:
    """Every 1-min load average a timing record holds (its start and end, and before and after each call)."""
    out = [record["load_start"][0], record["load_end"][0]] if "load_start" in record else []
    for c in record.get("calls", []):
        out += [c["load_before"][0], c["load_after"][0]]
    return out


def idle(record: Dict[str, Any]) -> bool:
    """Whether the record's machine was idle (IDLE)."""
    loads = loads_of(record)
    return bool(loads) and max(loads) <= record["threads"] + IDLE_MARGIN


def machine_text(record: Dict[str, Any]) -> str:
    """'nproc N (cpu), T torch thread(s), 1-min load a before .. b after (max m): idle|loaded'."""
    m = record.get("machine") or {}
    loads = loads_of(record)
    state = "idle" if idle(record) else "loaded"
    where = f"nproc {m.get('nproc') or 'not recorded'}" + (f" ({m['cpu']})" if m.get("cpu") else "")
    if not loads:
        return f"{where}, {record.get('threads', '?')} torch thread(s), load not recorded"
    return (f"{where}, {record['threads']} torch thread(s), 1-min load average {loads[0]:.2f} before, "
            f"{loads[1] if 'load_end' in record else loads[-1]:.2f} after, at most {max(loads):.2f} during the "
            f"timed calls: {state}")


def fmt_spread(s: Optional[Dict[str, float]], digits: int = 2, unit: str = "") -> str:
    """'median (min-max, n = k)'."""
    if s is None:
        return "pending"
    return (f"{s['median']:.{digits}f}{unit} (min {s['min']:.{digits}f}, max {s['max']:.{digits}f}, "
            f"sd {s['sd']:.{digits}f}, n = {s['n']})")
