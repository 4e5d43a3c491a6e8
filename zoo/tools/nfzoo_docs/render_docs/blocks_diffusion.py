"""The diffusion models' studies: `nfzoo bench diffusion` (bench-diffusion), FID over sampling seeds
(fid-seeds) and Diffused-Flows' objectives (diffused-flows-objectives); models.json names their models and
runs."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .chain import last_tested
from .knowledge import block_config
from .registry import block
from .results import (
    BENCH_DIFFUSION,
    FID_SEEDS,
    RenderError,
    Results,
    bench_rows,
    block_commit,
    fid_seeds,
    num,
    pm,
    rel_results,
    table,
)


@block("bench-diffusion")
def b_bench_diffusion(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench diffusion`: FID, Coverage and time per case (one run, seed 0)."""
    rows = []
    for r in bench_rows(res, BENCH_DIFFUSION):
        rows.append([r["case"], str(r.get("n_samples")), str(r.get("nonfinite", 0)), num(r.get("fid_common"), 2),
                     num(r.get("fid"), 2), num(r.get("coverage"), 3), num(r["candidate_s"], 2),
                     f"{r['ratio']:.1f}x", num(r.get("fid_ratio"), 2)])
    out = table(["case", "samples", "non-finite", "FID (first 200)", "FID (all)", "Coverage",
                 "s / 100 samples", "speed-up vs ddpm ancestral", "FID (first 200) / ddpm ancestral's"], rows)
    out += ["", "One run, one seed (seed 0): the spread over seeds is in the next table. FID and Coverage (k = 5, "
            "all samples) on oracle-mnist5k features against the 1000 test images; the full-T ancestral cases "
            "drew 200 samples, the others 500, so \"FID (first 200)\" is the one to compare across cases. \"ddim "
            "S\" is deterministic DDIM (eta = 0), \"eta=1\" the ancestral sampler over the same S steps."]
    return out + res.sources([BENCH_DIFFUSION])


@block("fid-seeds")
def b_fid_seeds(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """FID over sampling seeds for a reference diffusion model and a candidate (models.json), and the
    candidate's ratio to the reference's ancestral mean."""
    cfg = block_config("fid-seeds")
    ref, cand = cfg["reference"], cfg["candidate"]
    fs = fid_seeds(res)
    anc = fs.get((ref["model"], ref["sampler"], ref["steps"], float(ref["eta"])))
    if anc is None:
        raise RenderError(f"{FID_SEEDS} lacks the {ref['model']} ancestral line (the ratios' reference)")
    commits = {v["block"] for v in fs.values()}
    newest = block_commit(list(fs.values())[-1]["block"])

    def cell(v):
        if v is None:
            return "-"
        c = block_commit(v["block"])
        return pm(v["summary"], 2) + (f" (at {c})" if len(commits) > 1 and c != newest else "")
    rows, rels = [], [FID_SEEDS]
    cand_anc = [r for r in bench_rows(res, BENCH_DIFFUSION) if r["case"] == cfg["candidate_ancestral_case"]]
    if cand_anc:
        rels.append(BENCH_DIFFUSION)
        f0 = cand_anc[0]["fid_common"]
        rows.append([f"ancestral T={ref['steps']}", cell(anc), f"{f0:.2f} (1 seed, seed 0: {BENCH_DIFFUSION})",
                     f"{f0 / anc['summary']['mean']:.2f}x (1 seed)"])
    for eta in (1.0, 0.0):
        for steps in (50, 20, 10):
            dd, df = fs.get((ref["model"], "ddim", steps, eta)), fs.get((cand, "ddim", steps, eta))
            ratio = f"{df['summary']['mean'] / anc['summary']['mean']:.2f}x" if df else "-"
            rows.append([f"DDIM {steps} steps, eta {eta:g}", cell(dd), cell(df), ratio])
    out = table(["sampler", ref["model"], cand, cfg["ratio_header"]], rows)
    out += ["", f"FID (200 samples, oracle-mnist5k features, against the 1000 test images), mean +- sd over "
            f"sampling seeds 0-{anc['summary']['n'] - 1} ({anc['summary']['n']} seeds); a cell marked \"at "
            "COMMIT\" comes from an earlier block of the file (the same ddpm weights)."]
    return out + res.sources(rels)


@block("diffused-flows-objectives")
def b_objectives(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Diffused-Flows' objectives on mnist5k with the shallow glow: bound, FID over seeds, latent RMS (the runs:
    models.json)."""
    fs = fid_seeds(res)
    rows, rels = [], [FID_SEEDS]
    for run in block_config("diffused-flows-objectives")["runs"]:
        label, rel, key = run["label"], rel_results(run["history"]), run.get("fid_seeds_model")
        h = res.history(rel)
        rels.append(rel)
        by = {r["epoch"]: r for r in h}
        rms = " -> ".join(num(by[e].get("latent_rms"), 2) for e in sorted({1, 10, h[-1]["epoch"]}) if e in by)
        fids = [fs.get((key, "ddim", s, 0.0)) for s in (10, 20, 50)] if key else [None] * 3
        fid = " / ".join(pm(f["summary"], 1) if f else "-" for f in fids) if key else "not measured"
        rows.append([label, str(h[-1]["epoch"]), num(last_tested(h)["test_bpd"], 3), fid, rms])
    out = table(["objective", "epochs", "test bound (bpd, seed 0)", "DDIM 10 / 20 / 50 FID (eta 0, 200 samples, "
                 "mean +- sd over 5 seeds)", "latent RMS, epoch 1 -> 10 -> last"], rows)
    return out + res.sources(rels)
