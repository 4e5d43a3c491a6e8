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
