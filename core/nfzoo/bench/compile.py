"""`nfzoo bench compile`: what torch.compile buys at sampling and evaluation time, eager against compiled
(`nfzoo.flows.compiling.compile_flow`: the bijector's forward and inverse) in one run.

For the zoo's glow-mnist5k and inverse-flow-mnist5k (embedded, no network), each loaded once and copied
(the same weights: one copy stays eager, the other is compiled):

- sampling a batch of 100 images at the model's default temperature and sampler (the same seed for both);
- bpd of the first 100 images of mnist5k's test split (no dequantization noise, so both see the same
  input).

The first compiled call (the compilation; torch.compile is lazy) is timed on its own and reported as
`compile_s` (shorter when inductor's on-disk cache already holds the kernels), then both are timed
interleaved (nfzoo.bench.timing.race: a warm-up call each, best of the repeats). `max_abs_diff` is the
largest difference between the eager and the compiled output (images in [0, 1], or bpd). A case whose
compilation failed runs eager and says so in a note. ratio = baseline_s / candidate_s, so > 1 means
compiled is faster.

`--quick` (a smoke test): a tiny random Glow on 8 x 8 images instead of the zoo models, 10 samples and a
batch of 16, one repeat.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, cast

from nfzoo.bench.timing import _sync, device_name, race, row

MODELS = ("glow-mnist5k", "inverse-flow-mnist5k")
TINY: Dict[str, Any] = dict(image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)    # --quick (and the tests)


def _models(quick: bool, device: str):
    """(label, model, test images) on `device`, the model in eval mode, one at a time."""
    import torch

    import nfzoo

    if quick:
        x = torch.rand(16, *TINY["image_shape"], generator=torch.Generator().manual_seed(1))
        torch.manual_seed(0)
        m = nfzoo.create_model("glow", **TINY)
        m.initialize(x)
        yield "tiny glow " + "x".join(map(str, TINY["image_shape"][1:])), m.to(device).eval(), x.to(device)
        return
    from nfzoo.data import ArrayDataset, load_dataset

    test = cast(ArrayDataset, load_dataset("mnist5k", "test"))   # an offline data set (nfzoo.data.OFFLINE)
    x = test.batch(torch.arange(100))[0].to(device)
    for name in MODELS:
        yield name, nfzoo.load(name).to(device).eval(), x


def bench_compile(quick: bool = False, log=print, device: str = "cpu") -> Dict:
    """Eager against torch.compile'd sampling and bpd for the zoo's glow-mnist5k and inverse-flow-mnist5k
    (a tiny Glow with `quick`). Returns the bench document: rows of ratios (> 1: compiled faster), with
    `compile_s` (the first compiled call) and `max_abs_diff` (eager vs compiled outputs) per case."""
    import copy

    import torch

    from nfzoo.flows.compiling import compile_flow, compiled_state

    n = 10 if quick else 100
    repeat = 1 if quick else 5
    rows: List[Dict] = []
    notes = ["ratio = baseline_s / candidate_s (> 1: compiled faster); warm-up and compilation excluded "
             "(compile_s: the first compiled call)",
             "compiled: torch.compile(dynamic=False) of the bijector's forward and inverse "
             "(nfzoo.flows.compiling.compile_flow); preprocessing and the prior's draws stay eager",
             "compile_s depends on inductor's on-disk cache (TORCHINDUCTOR_CACHE_DIR): a second run on the same "
             "machine finds the kernels built by the first"]
    for label, eager, x in _models(quick, device):
        compiled = copy.deepcopy(eager)         # the same weights, compiled
        fallbacks: List[str] = []
        reason = compile_flow(compiled, "sampling and bpd", on_fallback=fallbacks.append)
        if reason is not None:
            fallbacks.append(reason)
        images = "random" if quick else "mnist5k test"
        gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
        cases = {f"{label}: sample {n} (T={eager.default_temperature:g})":
                 lambda m: m.sample(n, generator=gen()),
                 f"{label}: bpd of {x.shape[0]} {images} images": lambda m: m.bpd(x, noise=False)}
        for case, work in cases.items():
            before = len(fallbacks)
            with torch.no_grad():
                expected = work(eager)
                t0 = time.perf_counter()
                got = work(compiled)            # compiles (lazily), or falls back
                _sync(device)
                compile_s = time.perf_counter() - t0
                diff = float((got - expected).abs().max())
                times = race({"eager": lambda: work(eager), "compiled": lambda: work(compiled)},
                             repeat=repeat, device=device)
            fell = reason is not None or len(fallbacks) > before or compiled_state(compiled) is None
            candidate = "torch.compile (fell back to eager)" if fell else "torch.compile"
            log(f"{case}: eager {times['eager']:.4f} s, compiled {times['compiled']:.4f} s "
                f"(compilation {compile_s:.1f} s), max |diff| {diff:.3g}")
            rows.append(row(case, "eager", candidate, times["eager"], times["compiled"],
                            compile_s=compile_s, max_abs_diff=diff))
        for r in dict.fromkeys(fallbacks):
            notes.append(f"{label} fell back to eager: {r}")
    return {"bench": "compile", "device": device_name(device), "rows": rows, "notes": notes}

