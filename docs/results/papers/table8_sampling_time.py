"""Issue 25, table 8: the sampling-time table of paper 000 (FInC thesis defence table and the CInC draft,
ALGORITHMS.md "Published numbers"): time to sample 100 images with Glow, cinc-flow (its anti-diagonal
wavefront solve, and the sequential raster-order back-substitution of the original CInC code),
inverse-flow and finc-flow, all of the same size, in one run.

    OMP_NUM_THREADS=1 python docs/results/papers/table8_sampling_time.py [--rounds 12]   # about 4-6 min
    python docs/results/papers/table8_sampling_time.py --report-only      # the table from its record alone

Every model: nfzoo.create_model(ARCH, image_shape=..., levels=L, steps=K, hidden=H, coupling="affine")
with the LU 1x1 conv, so the only difference between them is the k x k conv of each step (none for glow);
random init, then the data-dependent ActNorm init on 64 uniform images (seed 2); sampling at T = 1 with the
models' N(0, I) / learned top priors, generator seed 0, under torch.no_grad, eval mode. The same weights
drive both cinc-flows (only the back-end of the solve differs), and both finc-flows. Shapes: 28x28x1
(MNIST), 32x32x3 (CIFAR-10 / ImageNet32), 64x64x3 (ImageNet64).

Timing: per shape, one untimed warm-up call of every model, then --rounds rounds, each timing every model
once (the order rotated each round); every timed call is saved with the 1-min/5-min/15-min load averages
before and after it, the machine's nproc and torch's thread count, in table8_sampling_time/timing.json
(rewritten after every shape). The table (table8_sampling_time.json and .md) is generated from that record
alone: seconds as median and spread, and each round's ratio between two models (timed back to back, under
the same load) as one observation. A speed claim is judged by the shared rule (C.RULE) over the rounds: the
median ratio must clear the claim's bound by more than one sd of the rounds' ratios, on an idle machine only
(C.IDLE); CPU results are labelled "on this CPU", the paper's GPU claims "not testable here". The first
run's best-of seconds (a loaded 2-cpu machine, no per-call record) are kept in
table8_sampling_time/2026-12-02-best-of.json and label nothing.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from nfzoo_docs import papers as C  # the paper-table scripts' shared code (zoo/tools/nfzoo_docs/papers)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
NAME = "table8_sampling_time"
OUT = HERE / NAME
TIMING = OUT / "timing.json"
LEGACY = OUT / "2026-12-02-best-of.json"
N = 100
ROUNDS = 12

SHAPES = {  # label: (image_shape, levels); steps and hidden are shared
    "28x28x1": ((1, 28, 28), 2),
    "32x32x3": ((3, 32, 32), 3),
    "64x64x3": ((3, 64, 64), 4),
}
STEPS, HIDDEN = 4, 64
# (label, architecture, extra config); the labels are the table's rows
MODELS = (("glow", "glow", {}),
          ("cinc-flow (wavefront)", "cinc-flow", {"backend": "torch"}),
          ("cinc-flow (sequential)", "cinc-flow", {"backend": "sequential"}),
          ("inverse-flow", "inverse-flow", {}),
          ("finc-flow (wavefront)", "finc-flow", {"backend": "torch"}),
          ("finc-flow (sequential)", "finc-flow", {"backend": "sequential"}))

# Paper 000 / ALGORITHMS.md: seconds for 100 samples (GPU unless said); None: not in the table
PAPER = {
    "MNIST": {"FInC": 0.09, "Emerging": 0.62},
    "CIFAR-10": {"FInC": 0.41, "CInC": 7.91, "Emerging": 17.19, "MaCow": 3.23, "Glow (CInC draft)": 0.58,
                 "CInC, 1 CPU core (CInC draft)": 9.3},
    "ImageNet32": {"FInC": 0.52, "CInC": 11.97, "Emerging": 25.79},
    "ImageNet64": {"FInC": 2.11, "CInC": 55.71, "Emerging": 137.04, "MaCow": 8.05},
}
PAPER_OF_SHAPE = {"28x28x1": ["MNIST"], "32x32x3": ["CIFAR-10", "ImageNet32"], "64x64x3": ["ImageNet64"]}
RATIOS = (("cinc-flow (sequential)", "finc-flow (wavefront)"), ("cinc-flow (sequential)", "cinc-flow (wavefront)"),
          ("finc-flow (wavefront)", "glow"), ("cinc-flow (wavefront)", "glow"), ("inverse-flow", "glow"),
          ("cinc-flow (sequential)", "inverse-flow"), ("finc-flow (wavefront)", "cinc-flow (wavefront)"))
ORDERS = 10.0          # "orders of magnitude": at least one, a ratio of 10
NO_GPU = "no GPU lent to this task"


def build(shape, levels, torch, nfzoo):
    models = {}
    for label, arch, extra in MODELS:
        torch.manual_seed(0)
        coupling = {} if arch == "glow" else {"coupling": "affine"}     # glow's only coupling is affine
        models[label] = nfzoo.create_model(arch, image_shape=shape, levels=levels, steps=STEPS, hidden=HIDDEN,
                                           **coupling, **extra)
    models["cinc-flow (sequential)"].load_state_dict(models["cinc-flow (wavefront)"].state_dict())
    models["finc-flow (sequential)"].load_state_dict(models["finc-flow (wavefront)"].state_dict())
    x = torch.rand(64, *shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for label, m in models.items():
            m.initialize(x)
            m.eval()
    # the sequential twins were initialised on the same batch: same weights, same ActNorm
    return models


def measure(threads: int, rounds: int, command: str, out: Path = TIMING, shapes=None):
    """Every model of every shape timed once per round (after one untimed warm-up call each), every call saved
    in `out` with the load averages before and after it (rewritten after every shape; complete at the end)."""
    import torch

    import nfzoo
    from nfzoo.evaluation.results import provenance

    torch.set_num_threads(threads)
    rec = {"what": f"sampling time of {N} images per call; per shape one untimed warm-up call of every model, "
                   f"then {rounds} rounds timing every model once (the order rotated each round); generator seed 0",
           "n_samples": N, "rounds": rounds, "threads": torch.get_num_threads(), "machine": C.machine(),
           "seeds": {"weights": 0, "actnorm_init_batch": 2, "sampling": 0}, "load_start": C.loadavg(),
           "shapes": {}, "calls": [], "complete": False, "measured_by": provenance(command)}
    for label in (shapes or SHAPES):
        shape, levels = SHAPES[label]
        models = build(shape, levels, torch, nfzoo)
        names = list(models)
        with torch.no_grad():
            for k in names:
                models[k].sample(N, generator=torch.Generator().manual_seed(0))
            for r in range(rounds):
                for k in names[r % len(names):] + names[:r % len(names)]:
                    call = C.timed(lambda: models[k].sample(N, generator=torch.Generator().manual_seed(0)))
                    rec["calls"].append({"shape": label, "round": r, "case": k, **call})
            # the two back-ends give the same images (a check that the timed paths compute the same thing)
            same = {}
            for arch in ("cinc-flow", "finc-flow"):
                a = models[f"{arch} (wavefront)"].sample(4, generator=torch.Generator().manual_seed(0))
                b = models[f"{arch} (sequential)"].sample(4, generator=torch.Generator().manual_seed(0))
                same[arch] = float((a - b).abs().max())
        rec["shapes"][label] = {"image_shape": list(shape), "levels": levels, "steps": STEPS, "hidden": HIDDEN,
                                "coupling": "affine",
                                "params": {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()},
                                "max_abs_diff_wavefront_vs_sequential": same}
        C.write(out, rec, indent=1)
        print(label, json.dumps({k: round(C.spread([c["seconds"] for c in rec["calls"] if c["shape"] == label
                                                    and c["case"] == k])["median"], 4) for k in names}),
              "load", C.loadavg(), flush=True)
    rec.update(load_end=C.loadavg(), complete=True)
    C.write(out, rec, indent=1)
    return rec


def summarize(rec):
    """Per shape: every model's seconds (median and spread) and the same-round ratios (each round one
    observation), from the record's calls alone."""
    out = {}
    for label in rec["shapes"]:
        calls = [c for c in rec["calls"] if c["shape"] == label]
        cases = list(dict.fromkeys(c["case"] for c in calls))
        ratios = {}
        for a, b in RATIOS:
            per = C.round_ratios(calls, a, b)
            ratios[f"{a} / {b}"] = {"per_round": per, "spread": C.spread(per)}
        out[label] = {"seconds": {k: C.spread([c["seconds"] for c in calls if c["case"] == k]) for k in cases},
                      "ratios": ratios}
    return out


def _ratio(summary, name):
    return {k: v["ratios"][name] for k, v in summary.items()}


def _state(per_shape, bound, above=True):
    """The rule over the rounds at every shape: the ratio above (below) `bound` beyond one sd of the rounds."""
    return C.combine([C.step(C.as_stat(v["spread"]), bound, higher_better=above) for v in per_shape.values()])


def _ours(per_shape, digits=2):
    return "; ".join(f"{k}: {C.fmt_spread(v['spread'], digits)}" for k, v in per_shape.items()) or "pending"


def _measured(per_shape, what_above, what_below, what_level):
    """Our measurement in words, no label: per shape, the ratio above 1, below 1 or level with it (the rule's
    steps against 1 over the rounds)."""
    words = {C.HOLDS: what_above, C.REVERSED: what_below, C.WITHIN: what_level}
    if not per_shape:
        return "pending (no timing record yet)"
    return "; ".join(f"{k}: {words[C.step(C.as_stat(v['spread']), 1.0)]}" for k, v in per_shape.items())


def claims(summary, idle: bool, machine: str):
    """The paper's timing claims, by the rule over the rounds; CPU labels say "on this CPU"; a loaded machine
    labels nothing."""
    loaded = None if idle else f"timed on a loaded machine ({machine}); rerun on an idle machine"
    if not summary:
        loaded = "no timing record yet: run this script on an idle machine"
    on_loaded = " (a loaded machine)" if summary and not idle else ""

    def label(state):
        if loaded:
            return C.verdict(None, loaded)
        return C.verdict(state) + " on this CPU"

    out = []
    speed = _ratio(summary, "cinc-flow (sequential) / finc-flow (wavefront)")
    out.append({"claim": "FInC (wavefront) samples faster than CInC's sequential solve, on this CPU",
                "paper": "CIFAR-10 7.91 / 0.41 s; ImageNet32 11.97 / 0.52; ImageNet64 55.71 / 2.11 (GPU)",
                "ours": "cinc-flow (sequential) / finc-flow (wavefront), median of the rounds: " + _ours(speed, 1),
                "verdict": label(_state(speed, 1.0)), "state": _state(speed, 1.0)})
    out.append({"claim": "FInC samples 19-26x faster than CInC (GPU)",
                "paper": f"CIFAR-10 {7.91 / 0.41:.1f}x; ImageNet32 {11.97 / 0.52:.1f}x; ImageNet64 "
                         f"{55.71 / 2.11:.1f}x (GPU seconds)",
                "ours": "this CPU's ratios above (a CPU runs the wavefront's diagonals one pixel batch at a time)",
                "verdict": f"not testable here (GPU times; {NO_GPU})", "state": None})
    g = _ratio(summary, "finc-flow (wavefront) / glow")
    out.append({"claim": "FInC samples at least as fast as Glow",
                "paper": "CIFAR-10: FInC 0.41 s (defence table), Glow 0.58 s (CInC draft; another model size), "
                         "both GPU: 0.71x",
                "ours": "a GPU property (the wavefront's H + W - 1 dependent steps run each diagonal's pixels in "
                        "parallel on a GPU); on this CPU see the next row",
                "verdict": f"not testable here (a GPU claim; {NO_GPU})", "state": None})
    out.append({"claim": "finc-flow / glow sampling time on this CPU (our measurement, not the paper's claim)",
                "paper": "-",
                "ours": "finc-flow (wavefront) / glow, median of the rounds: " + _ours(g),
                "verdict": "measured, no label: " + _measured(g, "finc-flow slower beyond the rounds' spread",
                                                              "finc-flow faster beyond the rounds' spread",
                                                              "level within the rounds' spread")
                           + on_loaded,
                "state": None})
    c32 = summary.get("32x32x3")
    cpu = c32["seconds"]["cinc-flow (sequential)"] if c32 else None
    out.append({"claim": "CInC's sequential inverse: 100 CIFAR-10 samples in 9.3 s on one CPU core",
                "paper": "9.3 s (the original Cython back-substitution, per image, float64, the paper's model)",
                "ours": (f"{C.fmt_spread(cpu)} s at 32x32x3, L=3 K={STEPS} H={HIDDEN} (the back-substitution "
                         "vectorised over the batch, float64, one thread)") if cpu else "pending",
                "verdict": "not testable here (another model size and another loop: the seconds do not transfer)",
                "state": None})
    inv = _ratio(summary, "inverse-flow / glow")
    out.append({"claim": "inverse-flow / glow sampling time on this CPU (our comparison: the thesis compares "
                         "Inverse-Flow with CInC, not with Glow)",
                "paper": "-",
                "ours": "inverse-flow / glow, median of the rounds: " + _ours(inv),
                "verdict": "measured, no label: " + _measured(inv, "inverse-flow slower beyond the rounds' spread",
                                                              "inverse-flow faster beyond the rounds' spread",
                                                              "level within the rounds' spread")
                           + on_loaded,
                "state": None})
    seq_inv = _ratio(summary, "cinc-flow (sequential) / inverse-flow")
    st = _state(seq_inv, ORDERS)
    out.append({"claim": "Inverse-Flow samples orders of magnitude faster than CInC, on this CPU",
                "paper": "thesis summary: 'accelerates sampling time by orders of magnitude' (read as at least "
                         f"{ORDERS:g}x)",
                "ours": "cinc-flow (sequential) / inverse-flow, median of the rounds: " + _ours(seq_inv, 1),
                "verdict": label(st), "state": st})
    out.append({"claim": "the same on a GPU", "paper": "all the paper's sampling times are GPU times",
                "ours": NO_GPU, "verdict": f"not testable here ({NO_GPU})", "state": None})
    return out


def legacy_text(old):
    """The first run's best-of seconds (no per-call record), shown for the record, labelling nothing."""
    if old is None:
        return []
    L = [f"## Earlier run ({old['date']}), no label rests on it", "", old["what"], "",
         "| shape | " + " | ".join(old["models"]) + " |", "| --- |" + " --- |" * len(old["models"])]
    for label, r in old["results"].items():
        L.append(f"| {label} (load {r['loadavg_before'][0]:.2f}) | "
                 + " | ".join(f"{r['seconds'][m]:.3f}" for m in old["models"]) + " |")
    return L + [""]


def build_doc(rec, command: str, record_path: Path = TIMING):
    """The table's document from the timing record alone (None: no record yet)."""
    from nfzoo.evaluation.results import provenance

    summary = summarize(rec) if rec else {}
    idle = bool(rec) and C.idle(rec)
    mtext = C.machine_text(rec) if rec else "no record"
    cl = claims(summary, idle, mtext)
    caveats = ["CPU only, one torch thread: the paper's times are GPU times at the paper's (larger) model sizes, "
               "so compare ratios on this CPU, not seconds",
               "random weights after ActNorm's data-dependent init: sampling time does not depend on training",
               "'at Glow's cost' (inverse-flow vs glow) is our comparison, not a claim of the thesis",
               "'FInC at least as fast as Glow' is a GPU claim: the CPU measurement is reported without a label",
               C.IDLE]
    if rec:
        caveats.append(f"{rec['n_samples']} images per call, {rec['rounds']} rounds per shape; {mtext}")
        if not idle:
            caveats.append("the record is from a loaded machine: its claims are not testable until the script is "
                           "rerun on an idle one")
    missing = [] if rec and rec.get("complete") else [str(record_path.relative_to(ROOT))]
    return {"table": "issue 25 item 8: sampling time, 100 images (paper 000)",
            "timing_record": str(record_path.relative_to(ROOT)) if rec else None,
            "n_samples": rec["n_samples"] if rec else N, "rounds": rec["rounds"] if rec else None,
            "threads": rec["threads"] if rec else None, "machine": rec["machine"] if rec else None,
            "idle": idle, "machine_state": mtext, "paper": PAPER,
            "shapes": rec["shapes"] if rec else {}, "results": summary, "claims": cl, "rule": C.RULE,
            "steps": STEPS, "hidden": HIDDEN, "caveats": caveats,
            "rebuilds_from_records": {"ok": not missing, "missing": missing}, "earlier_run": C.read(LEGACY),
            "measured_by": provenance(command)}


def markdown(doc) -> str:
    """The Markdown, generated from the JSON document alone."""
    prov, paper = doc["measured_by"], doc["paper"]
    L = [f"# Sampling time, {doc['n_samples']} images (paper 000's table)", "",
         f"Issue 25, table 8. Written by `{prov['command']}` on {prov['date']} at commit {prov['commit']}, "
         f"torch {prov['torch']}. Raw numbers: `{NAME}.json`, generated from the timing record "
         + (f"`{doc['timing_record']}` (every timed call)" if doc["timing_record"] else "(none yet)") + ".", "",
         f"All models: levels L as listed, K = {doc['steps']} steps per level, hidden {doc['hidden']}, affine "
         "coupling, LU 1x1 "
         "conv; the only difference is each step's k x k conv (glow: none; cinc-flow: a CInC 3x3 conv; finc-flow: "
         "a FInC unit; inverse-flow: the inverse of a CInC conv, i.e. a plain conv when sampling). Random "
         "weights after ActNorm's data-dependent init; time does not depend on training."
         + (f" {doc['n_samples']} images per call; per shape one untimed warm-up call of every model, then "
            f"{doc['rounds']} rounds timing every model once (order rotated); {doc['machine_state']}."
            if doc["timing_record"] else ""), "",
         C.RULE + " For times, the rounds take the training seeds' place: each round's ratio between two models "
         "(timed back to back) is one observation, and only an idle machine's record counts.", "",
         "Caveats:", "", *[f"- {c}" for c in doc["caveats"]], "",
         "Rebuilt from the records in git (`--report-only`): " + ("yes" if doc["rebuilds_from_records"]["ok"] else
                                                                  "no, missing: " + ", ".join(
                                                                      f"`{m}`" for m in
                                                                      doc["rebuilds_from_records"]["missing"]))
         + ".", ""]
    for label, r in doc["results"].items():
        sh = doc["shapes"][label]
        papers = PAPER_OF_SHAPE[label]
        L += [f"## {label} (L = {sh['levels']})", "",
              "| model | ours: seconds (CPU), median (min-max) | ours: / glow, median of the rounds (min-max) | "
              "params | paper: seconds (GPU) |", "| --- | --- | --- | --- | --- |"]
        key_of = {"glow": "Glow (CInC draft)", "cinc-flow (sequential)": "CInC", "finc-flow (wavefront)": "FInC"}
        for m, sp in r["seconds"].items():
            pk = key_of.get(m)
            pv = "; ".join(f"{p} {paper[p][pk]}" for p in papers if pk and pk in paper[p]) or ""
            rg = r["ratios"].get(f"{m} / glow", {}).get("spread") if m != "glow" else None
            rg_text = "1" if m == "glow" else (f"{rg['median']:.2f} ({rg['min']:.2f}-{rg['max']:.2f})" if rg else "-")
            L.append(f"| {m} | {sp['median']:.4f} ({sp['min']:.4f}-{sp['max']:.4f}) | {rg_text} | "
                     f"{sh['params'][m]:,} | {pv} |")
        others = "; ".join(f"{p}: " + ", ".join(f"{k} {v}" for k, v in paper[p].items()) for p in papers)
        L += ["", f"Paper, all rows: {others}.", "",
              "Same-round ratios, median (min-max): " + "; ".join(
                  f"{k} = {v['spread']['median']:.2f} ({v['spread']['min']:.2f}-{v['spread']['max']:.2f})"
                  for k, v in r["ratios"].items() if v["spread"]) + ".",
              f"Wavefront and sequential back-ends give the same samples: max |diff| cinc-flow "
              f"{sh['max_abs_diff_wavefront_vs_sequential']['cinc-flow']:.1e}, finc-flow "
              f"{sh['max_abs_diff_wavefront_vs_sequential']['finc-flow']:.1e}.", ""]
    L += ["## Claims", "", "| claim | paper | ours | verdict |", "| --- | --- | --- | --- |"]
    for c in doc["claims"]:
        L.append(f"| {c['claim']} | {c['paper']} | {c['ours']} | **{c['verdict']}** |")
    L += [""] + legacy_text(doc.get("earlier_run"))
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the paper's CPU number: one core)")
    ap.add_argument("--rounds", type=int, default=ROUNDS, help="rounds per shape (every model timed once a round)")
    ap.add_argument("--report-only", action="store_true", help=f"rewrite the table from {TIMING.name}; time nothing")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", str(Path(__file__).relative_to(ROOT)), *argv])
    if not args.report_only:
        C.require_one_thread()
        measure(args.threads, args.rounds, command)
    doc = build_doc(C.read(TIMING), command)
    C.publish(NAME, doc, markdown(doc), indent=1)
    print((HERE / f"{NAME}.md").read_text())


if __name__ == "__main__":
    main()
