"""Sample quality: the README's samples and zoo-defaults tables and a card's samples block (one row per
sample-quality file), the real images' reference (real-reference) and an oracle's accuracy (oracle)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from nfzoo.evaluation.results import MEASURED_BY

from .chain import bpd_cell, history_rel
from .knowledge import in_order
from .registry import block
from .results import RESULTS, RenderError, Results, pct, pm, table
from .samples import (
    accuracy_file,
    default_line,
    nonfinite,
    reference_files,
    sample_source,
    sample_summary,
    sampler_label,
    sampling_default,
    share_once,
)


@block("samples")
def b_samples(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Sample quality: one row per docs/results/samples file (of one model when arg is given); the setting
    of the model's config.json "sampling" marked as the default."""
    files = res.sample_files(arg)
    if not files:
        where = f"{RESULTS}/samples/{arg}/" if arg else f"{RESULTS}/samples/"
        out = [f"No sample-quality result file under {where} yet: no number, no row. `nfzoo eval MODEL --dataset "
               "mnist5k --samples N --seeds S -t T [--sampler NAME] --out FILE` writes one (FILE: "
               "docs/results/samples/MODEL/SAMPLER-tT.json), and this table then has its row."]
        line = default_line(res, arg) if arg else None
        return out + ["", line] if line else out
    summaries = [(rel, sample_summary(res, rel)) for rel in files]
    defaults = {m: sampling_default(res, m)[1] for m in {s["model"] for _, s in summaries}}
    with_lr = any("label_reliability" in s["summary"] for _, s in summaries)
    recog, recog_note = share_once([s["doc"] for _, s in summaries])
    rows, feats = [], []
    for rel, s in summaries:
        d, sm = s["doc"], s["summary"]
        f = d.get("oracle") if d.get("features", "oracle") == "oracle" else d.get("features")
        if str(f) not in feats:
            feats.append(str(f))
        label = sampler_label(d) + (" (the default)" if defaults.get(s["model"]) == rel else "")
        row = [label, f"{d.get('temperature', '-')}", pm(sm["fid"], 2), pm(sm.get("coverage"), 3),
               pm(sm.get("density"), 3), pm(sm.get("recognisable"), 1, True)]
        row += [pm(sm.get("label_reliability"), 1, True)] * with_lr + [nonfinite(d), sample_source(s, rel)]
        rows.append(([] if arg else [s["model"]]) + row)
    head = (([] if arg else ["model"]) + ["sampler", "T", "FID", "Coverage", "Density", recog]
            + ["label reliability"] * with_lr + ["non-finite samples", "source (samples x seeds; measured)"])
    out = table(head, rows)
    out += ["", "Each value is mean +- sd over the seeds (samples x seeds: samples per seed x seeds); FID, "
            "Coverage and Density (k = 5) against the 1000 test images in the features of "
            f"{' / '.join(feats)}; recognisable: the share of samples the oracle classifies with probability "
            ">= 0.9; non-finite samples (all seeds together) are left out of the other metrics. Compare FIDs "
            "only at the same sample count and features."] + recog_note
    lines = [default_line(res, m) for m in ([arg] if arg else in_order(defaults))]
    lines = [ln for ln in lines if ln]
    if lines:
        out += [""] + (lines if arg else [f"- {ln}" for ln in lines])
    out += ["", "Commands:", ""] + [f"- `{r}`: `{(res.json(r).get(MEASURED_BY) or {}).get('command', 'not recorded')}`"
                                    for r in files]
    return out


@block("zoo-defaults")
def b_zoo_defaults(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Across the zoo: each model's default sampling setting (config.json "sampling") with its FID,
    recognisable share and non-finite samples, the model's test bpd, the worst non-finite count over all of
    the model's sample files; and real images in place of samples, for scale."""
    rows, rels, counts, undecided = [], [], set(), []
    for name in in_order(index):
        if index[name].get("kind", "flow") != "flow":
            continue
        files = res.sample_files(name)
        sampling, rel = sampling_default(res, name)
        if rel is None:
            if files:
                undecided.append(name)
            continue
        s = sample_summary(res, rel)
        d, sm = s["doc"], s["summary"]
        counts.add(s["per_seed"])
        bpd, brels = bpd_cell(res, name, mixture=True) if res.exists(history_rel(name)) else ("-", [])
        worst = max(files, key=lambda r: res.json(r).get("nonfinite_samples", 0))    # the first of the most
        wd = res.json(worst)
        rows.append([name, f"{sampler_label(d)}, T={d.get('temperature')}", pm(sm["fid"], 2),
                     pm(sm.get("recognisable"), 1, True), nonfinite(d), bpd,
                     f"{nonfinite(wd)} ({Path(worst).stem}, of {len(files)} file(s))", f"`{rel}`"])
        rels += [rel] + brels
    if not rows:
        out = ["No zoo model has a measured default sampling setting yet (config.json \"sampling\" with its "
               "result file under docs/results/samples/): no number, no row. `python docs/results/samples/sweep.py` "
               "measures, `--choose` picks the defaults, and this table then has their rows."]
        return out + ([""] + [f"Measured, no default chosen yet: {', '.join(undecided)}."] if undecided else [])
    refs = [r for r in reference_files(res) if res.json(r).get("n_samples") in counts] or reference_files(res)
    real = None
    for r in refs:
        d = res.json(r)
        real = d.get("recognisable_real", real)
        rows.append([f"real images ({d['n_samples']} training images per seed, in place of samples)", "-",
                     pm(d["summary"]["fid"], 2), pm(d["summary"]["recognisable"], 1, True), "-", "-", "-", f"`{r}`"])
        rels.append(r)
    head = ["model", "default: sampler, T", "FID", "recognisable", "non-finite samples", "test bpd",
            "most non-finite samples over its files", "source"]
    out = table(head, rows)
    out += ["", "The default setting is the model's config.json \"sampling\" (what `model.sample` and `nfzoo "
            "sample` use when given no sampler, options or temperature), chosen by "
            "`docs/results/samples/sweep.py --choose`: "
            "the lowest mean FID among the settings without non-finite samples. FID (oracle-mnist5k features, "
            "against the 1000 test images) and the recognisable share (oracle probability >= 0.9) as mean +- sd "
            "over the file's seeds; compare a model's FID with the real-image row of its sample count"
            + (f"; the test images themselves are recognisable at {pct(real)}" if real is not None else "")
            + ". The last column: the most non-finite samples any of the model's sample files has (that file's "
            "name: sampler and temperature); the Sample quality table has every file."]
    if undecided:
        out += ["", f"Measured, no default chosen yet: {', '.join(undecided)}."]
    return out + res.sources(rels)


@block("real-reference")
def b_real_reference(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """What real training images score in place of samples (one row per sample count): the scale of the
    sample metrics."""
    rows, rels = [], reference_files(res)
    if not rels:
        raise RenderError(f"no {RESULTS}/real-reference/mnist5k-oracle-nN.json: run "
                          "docs/results/real-reference/real_reference.py")
    for rel in rels:
        d = res.json(rel)
        s = d["summary"]
        rows.append([f"{d['n_samples']} real mnist5k training images", f"{d['n_samples']} x {len(d['seeds'])}",
                     pm(s["fid"], 2), pm(s["coverage"], 3), pm(s["density"], 3), pm(s["recognisable"], 1, True),
                     str(d.get("oracle"))])
    d = res.json(rels[0])
    out = table(["in place of samples", "samples x seeds", "FID", "Coverage", "Density", "recognisable",
                 "features"], rows)
    out += ["", f"Against the same 1000 test images (mean +- sd over draws of training images, one per seed); "
            f"the test images themselves are recognisable at {pct(d['recognisable_real'])}. Compare a model's "
            "row with the row of its sample count."]
    return out + res.sources(rels)


@block("oracle", needs_model=True)
def b_oracle(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The oracle's accuracy on the test split."""
    rel = accuracy_file(arg)
    if rel is None:
        raise RenderError(f"oracle:{arg}: models.json gives {arg} no test_accuracy_file")
    d = res.json(rel)
    acc = d["oracle_test_accuracy"]
    out = table(["metric", "value"],
                [["test accuracy (mnist5k test split, 1000 images)", f"{pct(acc)} ({round(acc * d['n_real'])} / "
                  f"{d['n_real']})"],
                 ["recognisable (largest softmax output >= 0.9) on the test split", pct(d["recognisable_real"])]])
    return out + res.sources([rel])
