"""`nfzoo bench export`: the exported samplers (nfzoo.export.onnx, ONNX in onnxruntime) against torch eager, the same
model and the same batch, measured in one run (interleaved, best of the repeats: nfzoo.bench.timing.race).

Rows:
- each zoo model whose sample direction exports (embedded weights, no network): torch's `model.sample(100)`
  at its default sampling against the exported sampler's `ExportedModel.sample(100)` (numpy draws the noise,
  onnxruntime runs the prior and decode graphs; diffusion models: the runner's DDIM loop over the U-Net
  graph, the model's steps and eta). GLEM samples labels 0..9 in turn on both sides;
- the issue's goal: the exported inverse-flow sampler against glow's eager one at 32x32x3, 100 images, both
  random-init models built as `nfzoo bench sampling` builds them (levels 3, steps 4, hidden 64, affine
  couplings, LU 1x1 convs, ActNorm initialised on a fixed batch), and inverse-flow eager against exported at
  that shape.

onnxruntime runs with as many intra-op threads as torch has (torch.get_num_threads(); one inter-op thread),
so both use the same cores. The export itself is timed apart (`export_s`), not in the ratio. ratio =
baseline_s / candidate_s: > 1 means the candidate is faster.

`--quick` (a smoke test): tiny random glow and inverse-flow on 8 x 8 x 3 images, 10 samples, one repeat,
no zoo model.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from nfzoo.bench.timing import device_name, race, row

MODELS = ("inverse-flow-mnist5k", "glow-mnist5k", "realnvp-mnist5k", "nsf-mnist5k", "quad-flow-mnist5k",
          "cinc-flow-mnist5k", "glem-mnist5k", "ddpm-mnist5k", "diffused-flows-mnist5k")
GOAL: Dict[str, Any] = dict(image_shape=(3, 32, 32), levels=3, steps=4, hidden=64)   # nfzoo bench sampling's 32x32x3
TINY: Dict[str, Any] = dict(image_shape=(3, 8, 8), levels=1, steps=1, hidden=8)      # --quick
GOAL_RATIO = 1.5        # issue 24: the exported inverse-flow sampler >= 1.5x faster than glow's eager one


def _random_init(arch: str, cfg: Dict, **extra):
    """A random-init model as `nfzoo bench sampling` builds it: seeded, ActNorm initialised on a fixed batch."""
    import torch

    import nfzoo

    torch.manual_seed(0)
    m = nfzoo.create_model(arch, **cfg, **extra)
    with torch.no_grad():
        m.initialize(torch.rand(64, *cfg["image_shape"], generator=torch.Generator().manual_seed(2)))
    return m.eval()


def _exported(model, name: str, tmp: Path, threads: int):
    """(runner, export seconds): the model's sample direction exported into tmp/NAME and loaded."""
    from nfzoo.export.onnx import export_model
    from nfzoo.export.runner import ExportedModel

    t0 = time.perf_counter()
    export_model(model, tmp / name, directions=["sample"], name=name, check=2)
    return ExportedModel(tmp / name, threads=threads), time.perf_counter() - t0


def bench_export(quick: bool = False, log=print) -> Dict:
    """torch eager against the exported (onnxruntime) sampler for each zoo model, and the exported
    inverse-flow against glow eager at 32x32x3 (tiny 8x8x3 models with `quick`). Returns the bench document:
    rows of ratios (> 1: the candidate is faster), each with its `export_s`."""
    import torch

    import nfzoo

    n, repeat = (10, 1) if quick else (100, 3)
    threads = torch.get_num_threads()
    rows: List[Dict] = []
    notes = ["ratio = baseline_s / candidate_s (> 1: candidate faster); export time (export_s) not included",
             f"onnxruntime: CPUExecutionProvider, intra-op threads = torch.get_num_threads() = {threads}, "
             "inter-op 1; both sides sample the same batch with their own noise (the runner's PortableRng, numpy's "
             "default_rng before issue 39)"]
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="nfzoo-bench-export-") as tmp:
        tmp = Path(tmp)
        for name in (() if quick else MODELS):
            try:
                model = nfzoo.load(name).eval()
                runner, export_s = _exported(model, name, tmp, threads)
            except Exception as exc:      # a model that is not there or does not export: say so, go on
                notes.append(f"{name}: skipped ({type(exc).__name__}: {str(exc)[:200]})")
                continue
            y = None if model.num_classes is None else torch.arange(n) % model.num_classes
            label = None if y is None else y.numpy()
            with torch.no_grad():
                times = race({"torch": lambda: model.sample(n, y=y, generator=gen()),
                              "onnx": lambda: runner.sample(n, seed=0, label=label)}, repeat=repeat)
            log(f"{name}: sample {n}: torch eager {times['torch']:.4f} s, onnxruntime {times['onnx']:.4f} s "
                f"(export {export_s:.1f} s)")
            rows.append(row(f"{name}: sample {n}", "torch eager", "onnxruntime", times["torch"], times["onnx"],
                            export_s=export_s))
        cfg = TINY if quick else GOAL
        shape = "x".join(map(str, (*cfg["image_shape"][1:], cfg["image_shape"][0])))
        glow = _random_init("glow", cfg)
        inverse = _random_init("inverse-flow", cfg, coupling="affine")
        runner, export_s = _exported(inverse, "inverse-flow-goal", tmp, threads)
        with torch.no_grad():
            times = race({"glow": lambda: glow.sample(n, generator=gen()),
                          "inverse-flow": lambda: inverse.sample(n, generator=gen()),
                          "onnx": lambda: runner.sample(n, seed=0)}, repeat=repeat)
        for k, t in times.items():
            log(f"{shape}: sample {n} with {k}: {t:.4f} s")
        case = f"sample {n} images {shape}, L={cfg['levels']} K={cfg['steps']} H={cfg['hidden']}"
        goal = {} if quick else {"goal_ratio": GOAL_RATIO, "goal_met": times["glow"] / times["onnx"] >= GOAL_RATIO}
        rows.append(row(case, "glow (torch eager)", "inverse-flow (exported, onnxruntime)", times["glow"],
                        times["onnx"], export_s=export_s, **goal))
        rows.append(row(case, "inverse-flow (torch eager)", "inverse-flow (exported, onnxruntime)",
                        times["inverse-flow"], times["onnx"], export_s=export_s))
    notes.append(f"goal (issue 24): the exported inverse-flow sampler at least {GOAL_RATIO:g}x faster than glow's "
                 "eager one at 32x32x3, 100 images" + (" (not measured by --quick: tiny models)" if quick else ""))
    return {"bench": "export", "device": device_name("cpu"), "rows": rows, "notes": notes}
