"""`nfzoo bench tarflow [--model NAME]`: seconds per 100 samples of tarflow-mnist5k, or of the TarFlow NAME
(its default sampling: the KV-cache inverse, guided where its sampling says so, and the score denoising step;
a class-conditional one draws labels 0..C-1 in turn) against, in the same run,

- ddpm-mnist5k with DDPM's ancestral sampler over all T = 1000 steps (the issue's baseline),
- ddpm-mnist5k with DDIM over 50 steps (eta 1, the setting whose FID matches the ancestral one's),
- glow-mnist5k (its default sampling),
- tarflow-mnist5k without its key/value cache (every step reruns the whole prefix: what the cache saves).

One batch of 100 images per case, wall clock: the two slow cases (ddpm ancestral, tarflow without cache)
one timed call each, the others the best of a few after a warm-up call.
Ratios are baseline_s / candidate_s: > 1 means TarFlow is faster. `--quick`: tiny random models of the
same kinds (a smoke test of the bench, not a measurement).
"""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional

from nfzoo.bench.timing import best_time, device_name, row

N = 100
TARFLOW = "tarflow-mnist5k"


def _zoo_models(model: str, device: str) -> Dict:
    import nfzoo

    return {"tarflow": nfzoo.load(model, device=device), "ddpm": nfzoo.load("ddpm-mnist5k", device=device),
            "glow": nfzoo.load("glow-mnist5k", device=device)}


def _tiny_models(device: str) -> Dict:
    import torch

    import nfzoo

    torch.manual_seed(0)
    shape = [1, 28, 28]
    models = {"tarflow": nfzoo.create_model("tarflow", image_shape=shape, patch_size=7, hidden=16, blocks=2,
                                            layers=1, heads=2),
              "ddpm": nfzoo.create_model("ddpm", image_shape=shape, timesteps=20, unet_channels=[8, 16]),
              "glow": nfzoo.create_model("glow", image_shape=shape, levels=1, steps=1, hidden=8)}
    models["glow"].initialize(torch.rand(16, *shape, generator=torch.Generator().manual_seed(0)))
    return {k: m.to(device) for k, m in models.items()}


def bench_tarflow(quick: bool = False, log: Callable[[str], None] = print, device: str = "cpu",
                  model: Optional[str] = None) -> Dict:
    """The rows of `nfzoo bench tarflow` (see the module's docstring); `model`: the TarFlow to time (a
    pretrained name or a run directory; default tarflow-mnist5k)."""
    import torch

    models = _tiny_models(device) if quick else _zoo_models(model or TARFLOW, device)
    for m in models.values():
        m.eval()
    n = 10 if quick else N
    ddim_steps = 4 if quick else 50
    T = models["ddpm"].prior.timesteps
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    tf, dd, gl = models["tarflow"], models["ddpm"], models["glow"]
    # a class-conditional TarFlow draws every class in turn (as `nfzoo sample` and `nfzoo eval` do)
    y = None if tf.num_classes is None else torch.arange(n, device=tf.device) % tf.num_classes
    cases = {
        "tarflow": (lambda: tf.sample(n, y=y, generator=gen()), 3),
        "tarflow (no KV cache)": (lambda: _no_cache(tf, n, gen(), y), 1),
        f"ddpm ancestral T={T}": (lambda: dd.sample(n, generator=gen(), sampler="ddpm-ancestral"), 1),
        f"ddpm ddim {ddim_steps} eta=1": (lambda: dd.sample(n, generator=gen(), sampler="ddim", steps=ddim_steps,
                                                            eta=1.0), 2),
        "glow": (lambda: gl.sample(n, generator=gen()), 3),
    }
    times, finite = {}, {}
    with torch.no_grad():
        for name, (fn, repeat) in cases.items():
            t0 = time.perf_counter()
            out = fn()                    # checked; timed too for the slow cases (one call), else a warm-up
            if str(device).startswith("cuda"):
                torch.cuda.synchronize()
            first = time.perf_counter() - t0
            finite[name] = int(torch.isfinite(out).all(dim=(1, 2, 3)).sum())
            times[name] = first if repeat == 1 else best_time(fn, repeat=repeat, warmup=0, device=device)
            log(f"{name}: {times[name]:.3f} s per {n} samples ({finite[name]}/{n} finite)")
    base = "tarflow"
    rows: List[Dict] = []
    for name in cases:
        if name == base:
            continue
        rows.append(row(f"sample {n} images 28x28x1", name, base, times[name], times[base],
                        baseline_finite=finite[name], candidate_finite=finite[base]))
    sampling = dict(tf.sampling) or {"sampler": tf.sampler.name}
    notes = ["ratio = baseline_s / candidate_s (> 1: tarflow faster)",
             f"one batch of {n} per case, wall clock; tarflow at its default sampling {sampling}, "
             f"noise_sigma {tf.noise_sigma} (denoising step included)"
             + (f"; class-conditional: labels 0..{tf.num_classes - 1} in turn" if tf.num_classes is not None else ""),
             "no-KV-cache case: the same inverse rerunning the whole prefix at each step (same images)"]
    if quick:
        notes.append("--quick: tiny random models (a smoke test, not a measurement)")
    return {"bench": "tarflow", "device": device_name(device), "rows": rows, "notes": notes,
            "model": "tiny (quick)" if quick else (model or TARFLOW)}


def _no_cache(model, n: int, generator, y=None):
    """model.sample(n, y) with the inverse run without its key/value cache (the same images)."""
    options = model.sampling_options()
    z = model.sampler.sample(model, n, y=y, temperature=model.default_temperature, generator=generator, **options)
    extra = model.sampler.decode_options(**options) if hasattr(model.sampler, "decode_options") else {}
    return model.decode(z.to(model.device), y, cache=False, **extra)
