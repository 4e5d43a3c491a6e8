"""Sample-quality files (docs/results/samples/MODEL/SAMPLER-tT.json, written by `nfzoo eval ... --out`): their
summaries, the default setting a model's config.json "sampling" names and the file behind it, the sampler's
label; the real-image references (docs/results/real-reference/mnist5k-oracle-nN.json)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from nfzoo.evaluation.results import MEASURED_BY, mean_sd

from .chain import check_fresh, zoo_config
from .knowledge import model_data
from .results import RESULTS, RenderError, Results, pct, rel_results, short_commit

SAMPLE_KEYS = ("fid", "coverage", "density", "recognisable", "label_reliability")


def sample_summary(res: Results, rel: str) -> Dict[str, Any]:
    """A sample-quality file as {"doc", "model", "stem", "summary": {metric: mean_sd}, "seeds", "n"}."""
    d = res.json(rel)
    if not isinstance(d, dict):
        raise RenderError(f"{rel} is not a JSON object")
    model = d.get("model") or Path(rel).parent.name
    if "summary" in d:
        summary = {k: v for k, v in d["summary"].items() if k in SAMPLE_KEYS}
        seeds = d.get("seeds") or [r.get("seed") for r in d.get("per_seed", [])]
        per_seed = d.get("n_samples", 0) // max(1, len(seeds))
    else:   # one seed: the metrics at the top
        summary = {k: mean_sd([d[k]]) for k in SAMPLE_KEYS if isinstance(d.get(k), (int, float))}
        seeds, per_seed = [d.get("seed", 0)], d.get("n_samples")
    if "fid" not in summary:
        raise RenderError(f"{rel} has no FID (neither 'summary' nor a top-level 'fid')")
    check_fresh(res, rel, d.get("bpd"), Path(rel).parent.name)
    return {"doc": d, "model": model, "stem": Path(rel).stem, "summary": summary, "seeds": seeds,
            "per_seed": per_seed}


def _same(a: Any, b: Any) -> bool:
    """Two settings' values equal (numbers to 1e-9)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) < 1e-9
    return a == b


def sampling_default(res: Results, name: str) -> Tuple[Dict[str, Any], Optional[str]]:
    """(the zoo model's config.json "sampling" ({"sampler", "temperature", "options", "source"}; {} when none), the
    sample file of that setting or None). The file is "source" (docs/results/samples/sweep.py --choose
    writes the file it chose from), which must be a sample file of the model and measure that sampler
    and temperature (else a RenderError); without a source, the model's file of that sampler and
    temperature."""
    sampling = zoo_config(res, name).get("sampling")
    if not isinstance(sampling, dict) or not sampling:
        return {}, None
    where = f"zoo/nfzoo_zoo/models/{name}/config.json"
    files = res.sample_files(name)
    src = sampling.get("source")
    if src:
        if src not in files:
            raise RenderError(f"{where}: sampling.source {src!r} is not a sample-quality file of {name} (one of "
                              f"{RESULTS}/samples/{name}/*.json): measure it or choose again (sweep.py --choose)")
        d = res.json(src)
        for key in ("sampler", "temperature"):
            if key in sampling and not _same(d.get(key), sampling[key]):
                raise RenderError(f"{where}: sampling.{key} is {sampling[key]!r} but its source {src} measured "
                                  f"{key} {d.get(key)!r}")
        if not _same_options(d, sampling):
            raise RenderError(f"{where}: sampling.options are {sampling.get('options') or {}!r} but its source "
                              f"{src} measured {_options(d)!r}")
        return sampling, src
    for rel in files:
        d = res.json(rel)
        if (all(_same(d.get(k), sampling[k]) for k in ("sampler", "temperature") if k in sampling)
                and _same_options(d, sampling)):
            return sampling, rel
    return sampling, None


def _options(d: Dict[str, Any]) -> Dict[str, Any]:
    """The sampler options a sample file measured with (nfzoo.evaluation.results.measured_sampler_options)."""
    from nfzoo.evaluation.results import measured_sampler_options

    return measured_sampler_options(d)


def _same_options(d: Dict[str, Any], sampling: Dict[str, Any]) -> bool:
    """A sample file `d` measured the options of the sampling record (the same keys, equal values)."""
    opts, measured = sampling.get("options") or {}, _options(d)
    return set(opts) == set(measured) and all(_same(opts[k], measured[k]) for k in opts)


def default_line(res: Results, name: str) -> Optional[str]:
    """The sentence that says which sampler and temperature a model uses by default and which file chose them
    (None when its config.json has no "sampling")."""
    sampling, rel = sampling_default(res, name)
    if not sampling:
        return None
    opts = sampling.get("options") or {}
    label = sampler_label({"sampler": sampling.get("sampler", "its default sampler"), **opts,
                           "sampler_options": ",".join(opts)})
    what = f"{label} at T={sampling.get('temperature', 1.0):g}"
    line = (f"Default setting of {name} (its config.json \"sampling\": what `model.sample` and `nfzoo sample` use "
            f"when given no sampler, options or temperature): {what}")
    if rel and sampling.get("source"):
        return line + f", chosen by `docs/results/samples/sweep.py --choose` from `{rel}` (the row marked \"(the " \
                      "default)\": the lowest mean FID among the settings without non-finite samples)."
    if rel:
        return line + f"; its row (marked \"(the default)\") is `{rel}`."
    return line + "; no sample-quality file measures that setting."


def sampler_label(d: Dict[str, Any]) -> str:
    """The sampler and its options, e.g. "ddim, 50 steps, eta 1"."""
    out = str(d.get("sampler") or "default")
    if d.get("steps") is not None:
        out += f", {d['steps']} steps"
    if d.get("eta") is not None:
        out += f", eta {d['eta']:g}"
    for k, v in sorted(_options(d).items()):   # a plugin sampler's own, e.g. guidance 2
        if k not in ("steps", "eta"):
            out += f", {k.replace('_', ' ')} {v:g}" if isinstance(v, (int, float)) else f", {k} {v}"
    return out


def share_once(docs: Sequence[Dict[str, Any]]) -> Tuple[str, List[str]]:
    """The recognisable column's header (the real test images' share beside it when every file has the same)
    and a note for files that disagree."""
    real = sorted({round(float(d["recognisable_real"]), 4) for d in docs
                   if isinstance(d.get("recognisable_real"), (int, float))})
    if len(real) == 1:
        return f"recognisable (real test images: {pct(real[0])})", []
    if not real:
        return "recognisable", []
    return "recognisable", ["", "The real test images' recognisable share differs between these files (oracles): "
                            + ", ".join(pct(r) for r in real) + "."]


def nonfinite(d: Dict[str, Any]) -> str:
    """Non-finite samples over all seeds as "k / N"."""
    return f"{d.get('nonfinite_samples', 0)} / {d.get('n_samples', '-')}"


def sample_source(s: Dict[str, Any], rel: str) -> str:
    """The source cell of a sample-quality row: the file, samples x seeds, when and at which commit."""
    mb = s["doc"].get(MEASURED_BY) or {}
    return (f"`{rel}` ({s['per_seed']} x {len(s['seeds'])}; {str(mb.get('date', '-'))[:10]}, "
            f"{short_commit(mb.get('commit'))})")


def reference_files(res: Results) -> List[str]:
    """docs/results/real-reference/mnist5k-oracle-nN.json, by N."""
    files = (res.root / RESULTS / "real-reference").glob("mnist5k-oracle-n*.json")
    return [p.relative_to(res.root).as_posix()
            for p in sorted(files, key=lambda p: int(re.sub(r"\D", "", p.stem.rsplit("-n", 1)[1]) or 0))]


def accuracy_file(name: str) -> Optional[str]:
    """The file that measured an oracle's test accuracy (models.json "test_accuracy_file"), or None."""
    rel = model_data(name).get("test_accuracy_file")
    return rel_results(rel) if rel else None
