"""The paper-table scripts' reporting: numbers as text, the claim rules' orderings and labels, the tables
written beside the scripts (docs/results/papers/NAME.json and NAME.md), their common command line."""
from __future__ import annotations

import argparse
from typing import Any, Dict, Optional, Sequence

from .runs import GLEM_BASE, PAPERS, SCHEDULE, log, write


def fmt(stat: Optional[Dict[str, float]], scale: float = 1.0, digits: int = 1) -> str:
    """'mean +- sd (n)' of a mean_sd dict, or 'pending' when missing."""
    if stat is None:
        return "pending"
    if isinstance(stat, (int, float)):
        return f"{stat * scale:.{digits}f}"
    s = f"{stat['mean'] * scale:.{digits}f}"
    if stat.get("n", 1) > 1:
        s += f" +- {stat['sd'] * scale:.{digits}f}"
    return s


def ordered(values: Dict[str, Optional[Dict[str, float]]], order: Sequence[str], higher_better: bool = True,
            strict_margin: bool = False) -> Optional[bool]:
    """Whether the means follow `order` (best first): each one above (below, if lower is better) the
    next; with `strict_margin`, by more than the larger of the two sds. None if any value is missing."""
    vals = [values.get(k) for k in order]
    if any(v is None for v in vals):
        return None
    for a, b in zip(vals, vals[1:]):
        diff = (a["mean"] - b["mean"]) if higher_better else (b["mean"] - a["mean"])
        margin = max(a.get("sd", 0.0), b.get("sd", 0.0)) if strict_margin else 0.0
        if not diff > margin:
            return False
    return True


def publish(name: str, doc: Any, markdown: str, indent: int = 2) -> None:
    """Write NAME.json (atomically) and NAME.md beside these scripts."""
    write(PAPERS / f"{name}.json", doc, indent)
    (PAPERS / f"{name}.md").write_text(markdown.rstrip("\n") + "\n")
    log(f"wrote docs/results/papers/{name}.md")


def label(ok: Optional[bool], why_untestable: str = "its runs are not finished") -> str:
    if ok is None:
        return f"not testable here ({why_untestable})"
    return "reproduced" if ok else "not reproduced"


def common_args(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--report-only", action="store_true", help="rewrite the table from the cached "
                   "measurements; train and measure nothing")
    return p


def schedule_text() -> str:
    return ("`nfzoo train glem --dataset mnist5k " + " ".join(f"--{k} {v}" for k, v in SCHEDULE.items()) +
            " " + " ".join(f"--set {k}={v}" for k, v in GLEM_BASE.items()) + " --seed S` plus each variant's "
            "`--set` keys: the glem-mnist5k recipe (80 epochs, em_fraction 0.15 = 12 EM rounds) cut to 24 "
            "epochs keeping its 12 EM rounds (em_fraction 0.5), then 12 epochs of the flow on all the data")


# ---- the labelling rule every table states and follows ---------------------------------------------------------
# A claim is an ordering (or a shape made of orderings) of values measured over training seeds, each a mean_sd
# dict {"mean", "sd", "n"}. Each step of the ordering is judged against one training-seed sd (the larger of the
# two values' sds): it "holds" beyond it, is "reversed" beyond it, or lies "within" it; a value with fewer than
# MIN_SEEDS runs has no sd to judge by, so its steps lie "within". A plain number (the paper's own table) is a
# value with no spread. The states combine: any step reversed -> the claim is not reproduced; every step holds ->
# reproduced; otherwise inconclusive at this scale. A missing value (a run not finished) -> not testable here.
MIN_SEEDS = 2
HOLDS, REVERSED, WITHIN = "holds", "reversed", "within"
RULE = ("Labels follow one rule (nfzoo_docs.papers.report): a claimed ordering is **reproduced** when each of its "
        "steps holds by more than one training-seed sd (the larger sd of the two values compared), **not "
        "reproduced** when a step is reversed by more than one sd, and **inconclusive at this scale** otherwise, "
        f"including when a value rests on fewer than {MIN_SEEDS} training seeds (no sd to judge by); **not "
        "testable here** while a run is missing.")


def _stat(v: Any) -> Optional[Dict[str, float]]:
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return {"mean": float(v), "sd": 0.0, "n": float("inf")}
    return v


def step(a: Any, b: Any, higher_better: bool = True, margin: float = 0.0) -> Optional[str]:
    """Whether a comes before b (a above b; below it if lower is better) by more than `margin`, judged
    against one sd: HOLDS when the gap exceeds margin + sd, REVERSED when it falls short of margin - sd,
    else WITHIN; None if a value is missing. `margin` asks for a gap of that size (e.g. "more than 5 points
    above"); a negative margin asks for "no more than |margin| below"."""
    a, b = _stat(a), _stat(b)
    if a is None or b is None:
        return None
    diff = (a["mean"] - b["mean"]) if higher_better else (b["mean"] - a["mean"])
    if min(a.get("n", 1), b.get("n", 1)) < MIN_SEEDS:
        return WITHIN
    sd = max(a.get("sd", 0.0), b.get("sd", 0.0))
    if diff > margin + sd:
        return HOLDS
    if diff < margin - sd:
        return REVERSED
    return WITHIN


def combine(states: Sequence[Optional[str]]) -> Optional[str]:
    """All steps of a claim together: None if any is missing, REVERSED if any is, HOLDS if all do, else WITHIN."""
    if any(s is None for s in states):
        return None
    if any(s == REVERSED for s in states):
        return REVERSED
    return HOLDS if all(s == HOLDS for s in states) else WITHIN


def ordering(values: Dict[str, Any], order: Sequence[str], higher_better: bool = True) -> Optional[str]:
    """The state of "order[0] before order[1] before ...", step by adjacent step."""
    return combine([step(values.get(a), values.get(b), higher_better) for a, b in zip(order, order[1:])])


def extreme(values: Dict[str, Any], key: str, highest: bool = True) -> Optional[str]:
    """The state of "values[key] is the highest (lowest) of all"."""
    return combine([step(values.get(key), v, highest) for k, v in values.items() if k != key])


def increasing(vals: Sequence[Any]) -> Optional[str]:
    """The state of "each value above the one before"."""
    return combine([step(b, a) for a, b in zip(vals, vals[1:])])


def interior_extreme(vals: Sequence[Any], lowest: bool) -> Optional[str]:
    """The state of "the curve's best (lowest or highest) point lies inside the range": HOLDS when an interior
    point beats both end points beyond the spread, REVERSED when an end point beats every interior point
    beyond it, else WITHIN."""
    s = [_stat(v) for v in vals]
    if any(v is None for v in s) or len(s) < 3:
        return None
    better = not lowest       # step(a, b, higher_better) with "better" meaning lower for a minimum
    inner = range(1, len(s) - 1)
    if any(step(s[i], s[0], better) == HOLDS and step(s[i], s[-1], better) == HOLDS for i in inner):
        return HOLDS
    if any(all(step(s[e], s[i], better) == HOLDS for i in inner) for e in (0, len(s) - 1)):
        return REVERSED
    return WITHIN


def rising_then_flat(vals: Sequence[Any], tol: float) -> Optional[str]:
    """The state of "the largest value is more than `tol` above the first, and from the first value within `tol`
    of the largest on, none falls more than `tol` below the largest (a plateau of two points or more)": HOLDS
    when the rise exceeds tol beyond the spread and no later value drops beyond tol + spread; REVERSED when the
    rise falls short of tol beyond the spread or a plateau value drops below top - tol beyond it."""
    s = [_stat(v) for v in vals]
    if any(v is None for v in s):
        return None
    top = max(range(len(s)), key=lambda i: s[i]["mean"])
    rise = step(s[top], s[0], True, margin=tol)
    start = next(i for i, v in enumerate(s) if v["mean"] >= s[top]["mean"] - tol)
    plateau = [step(s[i], s[top], True, margin=-tol) for i in range(start, len(s)) if i != top]
    if len(s) - start < 2 and len(s) >= 2:   # the largest value comes last, alone: still rising, no plateau
        plateau.append(step(s[-2], s[top], True, margin=-tol))
    return combine([rise, *plateau])


def verdict(state: Optional[str], why_untestable: str = "its runs are not finished") -> str:
    """The label of a claim's state (RULE)."""
    if state is None:
        return f"not testable here ({why_untestable})"
    return {HOLDS: "reproduced", REVERSED: "not reproduced", WITHIN: "inconclusive at this scale"}[state]


def fmt_n(stat: Optional[Dict[str, float]], scale: float = 1.0, digits: int = 1) -> str:
    """fmt with the number of training runs, 'mean +- sd (n = k)'."""
    if stat is None or isinstance(stat, (int, float)):
        return fmt(stat, scale, digits)
    return f"{fmt(stat, scale, digits)} (n = {stat.get('n', 1)})"
