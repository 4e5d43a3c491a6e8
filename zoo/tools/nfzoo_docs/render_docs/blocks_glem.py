"""GLEM: the glem block (models.json names its runs: the zoo model and its lambda = 0 twin)."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .chain import glem_numbers, legacy_glem_eval
from .knowledge import block_config
from .registry import block
from .results import Results, num, pct, table


@block("glem")
def b_glem(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """GLEM and its lambda = 0 twin: NF-A and both bpds; the older single-seed sample metrics while they
    still describe the weights (the sample-quality files have the rest)."""
    rows, rels, legacy_rows, notes = [], [], [], []
    for run in block_config("glem")["runs"]:
        label, name = run["label"], run["model"]
        g = glem_numbers(res, name)
        rels += [v[1] for v in g.values()]
        rows.append([label, pct(g["nf_a"][0]) if "nf_a" in g else "-", num(g.get("bpd", (None,))[0], 4),
                     num(g.get("mixture", (None,))[0], 4)])
        legacy = legacy_glem_eval(res, name)
        if legacy:
            d = res.json(legacy)

            def cell(key):
                c = d[key]
                return (f"{c['fid']:.2f} / {c['coverage']:.3f} / {pct(c['label_reliability'])} / "
                        f"{c['nonfinite_samples']}")
            legacy_rows.append([label, cell("t0.7"), cell("t1.0"), cell("rfcm-t0.7")])
            r = d["rfcm-t0.7"]
            notes.append(f"{pct(r['label_reliability'] * (1000 - r['nonfinite_samples']) / 1000)} ({label})")
    out = table(["model", "NF-A", "test bpd p(x given y)", "test bpd mixture p(x)"], rows)
    if legacy_rows:
        out += ["", "Sample quality measured with the evaluation above (one seed, seed 0):", ""]
        out += table(["model", "T=0.7 diagonal: FID / Cov. / L-R / non-finite",
                      "T=1.0 diagonal: FID / Cov. / L-R / non-finite", "T=0.7 RFCM: FID / Cov. / L-R / non-finite"],
                     legacy_rows)
        out += ["", "1000 samples per case (100 per class); FID and Coverage on oracle-mnist5k features against "
                "the 1000 test images; L-R (label reliability): the oracle's accuracy on the samples; non-finite "
                "samples (the flow's inverse overflowing) are left out of the metrics. Counting them as wrong, "
                "the RFCM label reliability at T=0.7 would be " + " and ".join(notes) + "."]
    return out + res.sources(rels)
