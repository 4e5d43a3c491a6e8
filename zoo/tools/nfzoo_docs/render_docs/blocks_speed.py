"""Speed: `nfzoo bench train / cinc / sampling / scaling` on the CPU and the GPU runs' benchmarks and CUDA test
logs (docs/results/gpu/run1, run2)."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .registry import block
from .results import RESULTS, Results, bench_rows, num, table


@block("bench-train")
def b_bench_train(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench train`: nfzoo against normflows, matched (row 1) and at both libraries' defaults (row 2,
    in files written since issue 41)."""
    rel = f"{RESULTS}/bench-train.json"
    runs = bench_rows(res, rel)
    labels = ["matched", "defaults"]
    rows = []
    for i, r in enumerate(runs):
        for who in ("candidate", "baseline"):
            rows.append([labels[i] if i < len(labels) else r["case"], r[who], f"{r[f'{who}_images_per_s']:.0f}",
                         f"{r[f'{who}_test_bpd']:.3f}", f"{r[f'{who}_params']:,}"])
    out = table(["comparison", "library", "images / s", "test bpd after the run", "parameters"], rows)
    out += [""] + [f"- {r['case']}; ratio of the mean times {r['ratio']:.2f} (nfzoo / normflows speed)"
                   + (f", of the CPU times {r['cpu_ratio']:.2f}" if "cpu_ratio" in r else "") + "."
                   for r in runs]
    out += ["", "One run. The file's notes give the setting (the median ratio, the optimiser, the split priors, how "
            "the defaults' parameter counts are matched)."]
    return out + res.sources([rel])


def _solve_case(case: str) -> Tuple[str, str, str]:
    m = re.match(r"solve (\d+x\d+), C=(\d+), batch (\d+)", case)
    return (m.group(1), m.group(2), m.group(3)) if m else (case, "", "")


@block("bench-cinc")
def b_bench_cinc(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench cinc` on the CPU: the wavefront solve against the sequential and the dense solve."""
    rel = f"{RESULTS}/bench-cinc.json"
    cases: Dict[str, Dict[str, Any]] = {}
    extra = []
    for r in bench_rows(res, rel):
        if not r["case"].startswith("solve"):
            extra.append(f"{r['case']}: {r['baseline']} {r['baseline_s']:.3f} s, {r['candidate']} "
                         f"{r['candidate_s']:.3f} s.")
            continue
        c = cases.setdefault(r["case"], {"wavefront": r["candidate_s"]})
        c[r["baseline"]] = r["baseline_s"]
    rows = []
    for case, c in cases.items():
        img, ch, _ = _solve_case(case)
        seq, dense, wf = c.get("sequential"), c.get("dense solve_triangular"), c["wavefront"]
        rows.append([img, ch, num(seq, 3), num(dense, 4), num(wf, 4), f"{seq / wf:.0f}x" if seq else "-",
                     f"{dense / wf:.2g}x" if dense else "-"])
    out = table(["image", "C", "sequential s", "dense s", "wavefront s", "vs sequential", "vs dense"], rows)
    out += ["", f"Batch 16, one run; {res.json(rel)['device']}; \"-\": not run (the dense operator would "
            "need more than 0.6 GB)."] + [""] * bool(extra) + extra
    return out + res.sources([rel])


def _sampling_table(res: Results, rels: Sequence[str], labels: Sequence[str]) -> List[str]:
    """Times per (case, model) of `nfzoo bench sampling` documents, one column per document."""
    cols: List[Dict[Tuple[str, str], float]] = []
    order: List[Tuple[str, str]] = []
    for rel in rels:
        t: Dict[Tuple[str, str], float] = {}
        for r in bench_rows(res, rel):
            for who, s in ((r["baseline"], r["baseline_s"]), (r["candidate"], r["candidate_s"])):
                t[(r["case"], who)] = s
                if (r["case"], who) not in order:
                    order.append((r["case"], who))
        cols.append(t)
    rows = [[case, who] + [f"{1000 * c[(case, who)]:.1f} ms" if (case, who) in c else "-" for c in cols]
            for case, who in order]
    return table(["case", "model"] + list(labels), rows)


@block("bench-sampling")
def b_bench_sampling(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench sampling` on the CPU."""
    rel = f"{RESULTS}/bench-sampling.json"
    out = _sampling_table(res, [rel], [res.json(rel)["device"]])
    out += ["", "Random init, equal depth and width (affine coupling and LU 1x1 conv in all); one run. "
            "\"sequential, published\" is cinc-flow inverted by the original code's back-substitution."]
    return out + res.sources([rel])


@block("gpu-cinc")
def b_gpu_cinc(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench cinc --device cuda`: the Triton kernel against the torch wavefront on the GPU."""
    rel = f"{RESULTS}/gpu/run2/bench-cinc-cuda.json"
    cases: Dict[str, Dict[str, Any]] = {}
    for r in bench_rows(res, rel):
        c = cases.setdefault(r["case"], {"dot": r["candidate_s"]})
        c[r["baseline"]] = r["baseline_s"]
        if "max_abs_diff_vs_float64" in r:
            c["diff"] = r["max_abs_diff_vs_float64"]
    rows = []
    for case, c in cases.items():
        img, ch, batch = _solve_case(case)
        tw, fma = c.get("torch wavefront (cuda)"), c.get("triton kernel, fma form")
        rows.append([img, ch, batch, num(tw and 1000 * tw, 2), num(fma and 1000 * fma, 2), num(1000 * c["dot"], 2),
                     f"{tw / fma:.1f}x" if tw and fma else "-", f"{c['diff']:.0e}" if "diff" in c else "-"])
    out = table(["image", "C", "batch", "torch wavefront (ms)", "Triton, fma form: the default (ms)",
                 "Triton, tl.dot form (ms)", "default vs torch wavefront", "max abs diff vs float64"], rows)
    out += ["", f"{res.json(rel)['device']}; best of 5, interleaved."]
    return out + res.sources([rel])


@block("gpu-sampling")
def b_gpu_sampling(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench sampling --device cuda`, both GPU runs."""
    rels = [f"{RESULTS}/gpu/run1/bench-sampling-cuda.json", f"{RESULTS}/gpu/run2/bench-sampling-cuda.json"]
    out = _sampling_table(res, rels, ["run1", "run2"])
    out += ["", f"{res.json(rels[1])['device']}, the same machine for both runs; the difference between the runs "
            "is the spread of one GPU's timings from one call to the next."]
    return out + res.sources(rels)


@block("gpu-tests")
def b_gpu_tests(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The summary line of the CUDA test runs."""
    rels = [f"{RESULTS}/gpu/run1/pytest-cuda.log", f"{RESULTS}/gpu/run2/pytest-cuda.log"]
    rows = []
    for rel in rels:
        lines = [ln for ln in res.text(rel).splitlines() if re.search(r"\d+ (passed|failed)", ln)]
        rows.append([rel.split("/")[-2], f"`{lines[-1].strip(' =')}`" if lines else "-"])
    return table(["run", "`pytest -k cuda` (cinc and inverse-flow tests)"], rows) + res.sources(rels)


@block("bench-scaling")
def b_bench_scaling(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench scaling`: training images/s, CPU processes and GPU precision."""
    rels = [f"{RESULTS}/bench-scaling-cpu.json", f"{RESULTS}/gpu/run2/bench-scaling-cuda.json"]
    rows = []
    for rel in rels:
        for r in bench_rows(res, rel):
            rows.append([r["case"], r["baseline"], f"{r['images_per_s_baseline']:,.0f}", r["candidate"],
                         f"{r['images_per_s_candidate']:,.0f}", f"{r['ratio']:.2f}",
                         f"{r['test_bpd_baseline']:.3f} / {r['test_bpd_candidate']:.3f}"])
    out = table(["case", "baseline", "images / s", "candidate", "images / s", "ratio", "test bpd after the run"],
                rows)
    out += ["", "The last epoch of real `nfzoo train` runs, one run each."]
    return out + res.sources(rels)

