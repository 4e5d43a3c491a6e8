"""Issue 25, table 3: GLEM's Table 5 (paper 003) re-run on the zoo's glem-mnist5k: sampling temperature
T = 1.2 .. 0.7 with the ancestral sampler (the learned diagonal class gaussians, covariance scaled by T^2)
and with RFCM (the re-estimated full-covariance gaussians), label reliability (L-R) and FID. Evaluation
only: no training.

    python docs/results/papers/table3_glem_table5_temperature.py [--force] [--seeds N] [--samples N]

Per (sampler, T) it runs, from the repository root,

    nfzoo eval glem-mnist5k --dataset mnist5k --samples 2000 --seeds 5 --temperature T --sampler S \
        --out docs/results/papers/table3_glem_table5_temperature/S-tT.json

(2000 samples per seed, seeds 0-4, 200 per class; FID / Coverage / L-R in the features of the zoo's
oracle-mnist5k against the 1000 mnist5k test images), skipping a file that exists unless --force, then
writes table3_glem_table5_temperature.json (every number, every command, the script's own provenance)
and table3_glem_table5_temperature.md.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from nfzoo_docs import papers as C   # the paper-table scripts' shared code (zoo/tools/nfzoo_docs/papers)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
NAME = "table3_glem_table5_temperature"
OUT = HERE / NAME
MODEL = "glem-mnist5k"
TEMPERATURES = (1.2, 1.1, 1.0, 0.9, 0.8, 0.7)          # the paper's
EXTRA = (0.6, 0.5, 0.4, 0.3)                           # below its range: where our FID minimum lies
ALL = TEMPERATURES + EXTRA
SAMPLERS = ("ancestral", "rfcm")

# Paper 003, Table 5 (CIFAR-100, GLEM lambda_0 = 10): columns T = 1.2 .. 0.7, then RFCM (its temperature is
# not stated; its other numbers equal Table 6's config #5, whose T is the paper's default).
PAPER = {
    "T": [1.2, 1.1, 1.0, 0.9, 0.8, 0.7],
    "CNN-A": [42.99, 43.63, 44.64, 45.22, 44.99, 44.17], "CNN-A RFCM": 49.74,
    "FID": [30.15, 28.17, 26.90, 26.33, 26.45, 27.21], "FID RFCM": 25.55,
    "Cov": [16.13, 17.21, 18.47, 19.15, 19.33, 19.19], "Cov RFCM": 22.47,
    "L-R": [26.82, 28.92, 30.86, 32.51, 33.67, 34.69], "L-R RFCM": 33.56,
}


def fname(sampler: str, t: float) -> Path:
    return OUT / f"{sampler}-t{t:g}.json"


def measure(samples: int, seeds: int, force: bool) -> None:
    exe = Path(sys.executable).with_name("nfzoo")
    for sampler in SAMPLERS:
        for t in ALL:
            out = fname(sampler, t)
            if out.exists() and not force:
                continue
            cmd = [str(exe), "eval", MODEL, "--dataset", "mnist5k", "--samples", str(samples), "--seeds", str(seeds),
                   "--temperature", f"{t:g}", "--sampler", sampler, "--out", str(out.relative_to(ROOT))]
            print(shlex.join(["nfzoo", *cmd[1:]]), flush=True)
            subprocess.run(cmd, cwd=ROOT, check=True)


def pm(s, digits=2, pct=False):
    k = 100 if pct else 1
    return f"{s['mean'] * k:.{digits}f} +- {s['sd'] * k:.{digits}f}"


def load_rows():
    rows = {}
    for sampler in SAMPLERS:
        for t in ALL:
            d = json.loads(fname(sampler, t).read_text())
            rows[(sampler, t)] = d
    return rows


def claims(rows):
    """Each of the paper's three claims, checked on the measured means (and their sds)."""
    def m(s, t, key):
        return rows[(s, t)]["summary"][key]["mean"]

    def sd(s, t, key):
        return rows[(s, t)]["summary"][key]["sd"]

    out = []
    # 1. L-R rises as T falls (monotone over 1.2 -> 0.7), ancestral sampler; and below the paper's range
    lr = [m("ancestral", t, "label_reliability") for t in TEMPERATURES]
    steps = [b - a for a, b in zip(lr, lr[1:])]
    rising = all(s > 0 for s in steps)
    lr_all = [m("ancestral", t, "label_reliability") for t in ALL]
    rising_all = all(b > a for a, b in zip(lr_all, lr_all[1:]))
    out.append({"claim": "L-R rises as T falls (1.2 -> 0.7)", "paper": "26.82 -> 34.69, every step up",
                "ours": " -> ".join(f"{100 * v:.1f}" for v in lr) + " (ancestral); "
                        + ("still rising" if rising_all else "not monotone") + f" down to T = {ALL[-1]:g} ("
                        + " -> ".join(f"{100 * v:.1f}" for v in lr_all[len(TEMPERATURES):]) + ")",
                "verdict": "reproduced" if rising else "not reproduced",
                "detail": {"lr_means": lr, "steps": steps, "lr_means_all": lr_all, "rising_all": rising_all}})
    # 2. FID U-shaped in T with its minimum near 0.9: argmin of the mean FID over the whole grid, per sampler
    where = {}
    for s in SAMPLERS:
        fid_s = [m(s, t, "fid") for t in ALL]
        i = min(range(len(ALL)), key=fid_s.__getitem__)
        where[s] = {"t_best": ALL[i], "fid_best": fid_s[i], "interior": 0 < i < len(ALL) - 1, "fid_means": fid_s}
    fid = where["ancestral"]["fid_means"][:len(TEMPERATURES)]
    near = where["ancestral"]["t_best"] in (1.0, 0.9, 0.8)
    out.append({"claim": "FID U-shaped in T, lowest near T = 0.9", "paper": "minimum 26.33 at T = 0.9 (1.2 .. 0.7)",
                "ours": "; ".join(f"{s}: minimum {w['fid_best']:.2f} at T = {w['t_best']:g}"
                                  + (" (U-shaped)" if w["interior"] else " (at the grid's edge)")
                                  for s, w in where.items())
                        + "; ancestral over the paper's range: "
                        + ", ".join(f"{t:g}: {v:.2f}" for t, v in zip(TEMPERATURES, fid)),
                "verdict": "reproduced" if near and where["ancestral"]["interior"] else
                           ("not reproduced (the U-shape holds, its minimum lies at a lower T)"
                            if where["ancestral"]["interior"] else "not reproduced"),
                "detail": where})
    # 3. RFCM best: at every T (the whole grid), RFCM's FID lower by more than the two sds, Coverage higher;
    # and RFCM's best FID below the diagonal gaussians' best
    fid_a = {t: m("ancestral", t, "fid") for t in ALL}
    fid_r = {t: m("rfcm", t, "fid") for t in ALL}
    best_a, best_r = min(fid_a, key=fid_a.get), min(fid_r, key=fid_r.get)
    fid_better = all(fid_r[t] + sd("rfcm", t, "fid") < fid_a[t] - sd("ancestral", t, "fid") for t in ALL)
    cov_better = all(m("rfcm", t, "coverage") > m("ancestral", t, "coverage") for t in ALL)
    lr_better = all(m("rfcm", t, "label_reliability") > m("ancestral", t, "label_reliability") for t in ALL)
    ok = fid_better and cov_better and fid_r[best_r] < fid_a[best_a]
    yes = {True: "at every T", False: "not at every T"}
    out.append({"claim": "RFCM best (lower FID, higher Coverage than the diagonal gaussians)",
                "paper": "RFCM FID 25.55 vs best T 26.33; Cov 22.47 vs 19.33; L-R 33.56 (below T = 0.8, 0.7)",
                "ours": f"best RFCM FID {fid_r[best_r]:.2f} (T = {best_r:g}) vs best ancestral {fid_a[best_a]:.2f} "
                        f"(T = {best_a:g}); from T = {ALL[0]:g} to {ALL[-1]:g}, RFCM's FID lower {yes[fid_better]}, "
                        f"Coverage higher {yes[cov_better]}, L-R higher {yes[lr_better]}",
                "verdict": "reproduced" if ok else "not reproduced",
                "detail": {"rfcm_fid_means": fid_r, "ancestral_fid_means": fid_a,
                           "fid_lower_every_T_beyond_sds": fid_better, "coverage_higher_every_T": cov_better,
                           "lr_higher_every_T": lr_better}})
    return out


def write(rows, samples, seeds, argv):
    from nfzoo.evaluation.results import provenance

    cl = claims(rows)
    any_doc = next(iter(rows.values()))
    doc = {
        "table": "issue 25 item 3: GLEM Table 5 (paper 003), temperature and RFCM",
        "model": MODEL, "dataset": "mnist5k (test split, 1000 images)", "oracle": any_doc["oracle"],
        "features": any_doc["features"], "samples_per_seed": samples, "seeds": any_doc["seeds"],
        "temperatures": list(TEMPERATURES), "extra_temperatures": list(EXTRA), "samplers": list(SAMPLERS), "paper": PAPER,
        "rows": [{"sampler": s, "temperature": t, "summary": d["summary"],
                  "nonfinite_samples": d["nonfinite_samples"], "n_samples": d["n_samples"],
                  "file": str(fname(s, t).relative_to(ROOT)), "measured_by": d["measured_by"]}
                 for (s, t), d in rows.items()],
        "claims": cl,
        "measured_by": provenance(shlex.join(["python", str(Path(__file__).relative_to(ROOT)), *argv])),
    }
    C.publish(NAME, doc, markdown(rows, cl, doc), indent=1)


def markdown(rows, cl, doc) -> str:
    prov = doc["measured_by"]
    L = [f"# GLEM Table 5 (temperature, RFCM) on {MODEL}",
         "",
         f"Issue 25, table 3. Written by `{prov['command']}` on {prov['date']} at commit {prov['commit']} "
         f"({prov['threads']} thread(s)). Raw numbers: `{NAME}.json`; one file per row under `{NAME}/`.",
         "",
         "Paper: CIFAR-100, GLEM with lambda_0 = 10, its proxy metrics FID, Coverage and L-R; its RFCM column "
         "gives no temperature. Ours: "
         f"the zoo's {MODEL} (mnist5k, 2 levels x 4 steps), {doc['samples_per_seed']} samples per seed "
         f"(balanced classes) x seeds {doc['seeds'][0]}-{doc['seeds'][-1]}, mean +- sd over the seeds; FID, "
         f"Coverage (k = 5) and L-R (the oracle's accuracy on the samples' labels) in the features of "
         f"{doc['oracle']} against the 1000 test images. The two data sets differ, so compare the orderings, "
         "not the values. Temperatures 0.6 .. 0.3 are beyond the paper's range, added to find where our FID "
         "minimum lies. CNN-A per temperature is not measured here (one ResNet-18 on 5000 generated images took "
         "19 min on this machine, docs/results/heads/cnn-a-glem-mnist5k.json; table 4 measures CNN-A against the "
         "number of images).",
         "",
         "| T | paper FID | ours FID (ancestral) | ours FID (RFCM) | paper Cov % | ours Cov % (ancestral) "
         "| ours Cov % (RFCM) | paper L-R % | ours L-R % (ancestral) | ours L-R % (RFCM) |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, t in enumerate(ALL):
        a, r = rows[("ancestral", t)]["summary"], rows[("rfcm", t)]["summary"]
        paper = (lambda k: f"{PAPER[k][i]:.2f}") if i < len(TEMPERATURES) else (lambda k: "-")
        L.append(f"| {t:g} | {paper('FID')} | {pm(a['fid'])} | {pm(r['fid'])} | {paper('Cov')} | "
                 f"{pm(a['coverage'], 1, True)} | {pm(r['coverage'], 1, True)} | {paper('L-R')} | "
                 f"{pm(a['label_reliability'], 1, True)} | {pm(r['label_reliability'], 1, True)} |")
    L.append(f"| RFCM (paper) | {PAPER['FID RFCM']:.2f} | | | {PAPER['Cov RFCM']:.2f} | | | {PAPER['L-R RFCM']:.2f} "
             "| | |")
    nonfinite = {f"{s} T={t:g}": d["nonfinite_samples"] for (s, t), d in rows.items() if d["nonfinite_samples"]}
    L += ["", "Non-finite samples (left out of the metrics): "
          + (", ".join(f"{k}: {v}" for k, v in nonfinite.items()) if nonfinite else "none") + ".", "",
          "## Claims", "", "| claim | paper | ours | verdict |", "| --- | --- | --- | --- |"]
    for c in cl:
        L.append(f"| {c['claim']} | {c['paper']} | {c['ours']} | **{c['verdict']}** |")
    L += ["", "## Commands", ""]
    for row in doc["rows"]:
        L.append(f"- `{row['measured_by']['command']}`")
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="re-run the evaluations even where files exist")
    ap.add_argument("--samples", type=int, default=2000, help="samples per seed")
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0 .. N-1")
    args = ap.parse_args(argv)
    measure(args.samples, args.seeds, args.force)
    rows = load_rows()
    write(rows, args.samples, args.seeds, sys.argv[1:] if argv is None else argv)
    print((HERE / f"{NAME}.md").read_text())


if __name__ == "__main__":
    main()
