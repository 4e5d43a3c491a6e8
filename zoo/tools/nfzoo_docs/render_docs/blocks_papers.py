"""The papers' tables (issue 25): one line per claim, from the JSON each docs/results/papers/table*.py script
wrote (papers-fidelity)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .registry import block
from .results import RESULTS, Results

PAPER_TABLES = (   # docs/results/papers/<stem>.json: the issue-25 scripts' outputs, in the README's order
    ("table1_glem_baselines", "GLEM Tables 1-2: GLEM against lambda = 0, CE and CEGLEM"),
    ("table2_glem_lambda", "GLEM Table 3: the lambda sweep"),
    ("table3_glem_table5_temperature", "GLEM Table 5: temperature and RFCM"),
    ("table4_glem_table4_cnn_a", "GLEM Table 4: CNN-A against the number of generated images"),
    ("table5_glem_augment", "GLEM Table 9: latent augmentation added to the standard one"),
    ("table6_glem_as_paper", "GLEM as the paper has it: gaussians on the whole latent, EM through training"),
    ("table7_diffused_flows_table5_4", "Diffused-Flows Table 5.4: FID, sampling time, NLL"),
    ("table8_sampling_time", "Sampling time: FInC, CInC, Glow, Inverse-Flow"),
)


def _claims(d: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """(claim, label, what we observed) of a paper table's JSON, whichever of the scripts' two shapes."""
    raw = d.get("claims")
    if raw is None and isinstance(d.get("claim"), dict):        # table5: one claim, its text in the paper field
        c = d["claim"]
        diff = d.get("paired_difference") or {}
        sm = diff.get("summary") or {}
        seen = (f"standard + latent minus standard, same seed: {100 * sm['mean']:+.2f} +- {100 * sm['sd']:.2f} "
                f"points over seeds {diff.get('seeds')}" if sm.get("mean") is not None else "pending")
        raw = [{"claim": "latent augmentation added to the standard one beats the standard one alone",
                "label": c["label"], "observed": seen}]
    out = []
    for c in raw or []:
        label = c.get("label") or c.get("verdict")
        seen = c.get("observed") or c.get("ours")
        out.append((str(c["claim"]), str(label), str(seen)))
    return out


def _records_line(d: Dict[str, Any]) -> Optional[str]:
    """Whether the table rebuilds from the records in git (its JSON's rebuilds_from_records), in words."""
    rb = d.get("rebuilds_from_records")
    if not isinstance(rb, dict):
        return None
    if rb.get("ok"):
        return "rebuilds from the records in git (`--report-only` on a clean clone)"
    missing = rb.get("missing") or []
    head = "; ".join(str(m) for m in missing[:4])
    more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
    return f"does not yet rebuild from records alone: missing {head}{more}"


def _stat_text(dd: Dict[str, Any], key: str, digits: int) -> str:
    x, sd = dd.get(key), dd.get(key + "_sd")
    if x is None:
        return "pending"
    within = " (within one training-seed sd)" if dd.get(key + "_state") == "within" else ""
    return f"{x:+.{digits}f}" + (f" [sd {sd:.{digits}f}]" if sd is not None else "") + within


@block("papers-fidelity")
def b_papers_fidelity(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """One line per claim of the papers' tables (issue 25), from the JSON each script wrote, with whether the
    table rebuilds from the records in git and its caveats."""
    out: List[str] = []
    rels: List[str] = []
    rule = None
    for stem, title in PAPER_TABLES:
        rel = f"{RESULTS}/papers/{stem}.json"
        link = f"[{title}](docs/results/papers/{stem}.md)"
        if not res.exists(rel):
            out.append(f"- {link}: not measured yet (`python docs/results/papers/{stem}.py`).")
            continue
        rels.append(rel)
        d = res.json(rel)
        rule = rule or d.get("rule")
        claims = _claims(d)
        extra = []
        rec = _records_line(d)
        if rec:
            extra.append(f"  - Records: {rec}.")
        if d.get("caveats"):
            extra.append("  - Caveats: " + "; ".join(str(c) for c in d["caveats"]) + ".")
        if not claims and stem == "table6_glem_as_paper":
            rows = d.get("against_reference") or {}
            algo = next((k for k in rows if "em1" in k and "all" in k and "lam" not in k), None)
            dd = rows.get(algo) or {}
            if dd.get("nf_a") is None:
                out.append(f"- {link}: no claim of the paper's to label; runs pending.")
                out += extra
                continue
            out.append(f"- {link}: no claim of the paper's to label; gaussians on all 784 dims with EM all 24 "
                       "epochs (Algorithm 1's placement and schedule, without its final retraining on a generated "
                       f"set) against the zoo's design: NF-A {_stat_text(dd, 'nf_a', 1)} points, L-R "
                       f"{_stat_text(dd, 'l_r', 1)} points, FID {_stat_text(dd, 'fid', 2)}, bpd "
                       f"{_stat_text(dd, 'bpd', 3)}.")
            out += extra
            continue
        out.append(f"- {link}:")
        out += [f"  - {claim}: **{label}** ({seen})" for claim, label, seen in claims]
        out += extra
    head = [rule, ""] if rule else []
    return head + out + res.sources(rels)
