"""`nfzoo bench cinc`: the CInC inverse, and sampling with it.

1. Solving M x = y for one CInC conv (a freshly initialised CInCConv2d, whose operator is well
   conditioned), batch 16, channels 12 and 48, images 8..64 pixels square: the wavefront (candidate)
   against the sequential back-substitution of the original code (baseline), and against a dense
   torch.linalg.solve_triangular on the materialised CHW x CHW operator (baseline; operator built
   outside the timing, and skipped where it would not fit in memory).
2. Sampling 100 images (28x28): cinc-flow against Glow of equal depth and width. Both use Glow's affine
   coupling here, so the only difference is the CInC conv (and its wavefront inverse) in each step.

With device="cuda" (`nfzoo bench cinc --device cuda`) the candidate is the compiled Triton kernel and the
baselines are the torch wavefront and the dense solve on the same GPU; sizes go up to 128x128, at batch 16
and 256 (one Triton program per image, so a small batch leaves most of the GPU idle). The sequential
back-substitution (thousands of tiny launches on a GPU) is timed there only at 8x8 and 16x16.
"""
from __future__ import annotations

from typing import Dict, List

from nfzoo.bench.timing import best_time, device_name, race, row

SIZES = (8, 16, 32, 64)
CHANNELS = (12, 48)
BATCH = 16
DENSE_MAX_DIM = 12288          # CHW: the dense operator is (CHW)^2 floats, 0.6 GB at this size


def bench_cinc(quick: bool = False, log=print, device: str = "cpu") -> Dict:
    import torch

    if str(device).startswith("cuda"):
        return _bench_cinc_cuda(quick, log, device)
    from .conv import CInCConv2d
    from .solve import dense_operator, dense_solve, sequential_solve, wavefront_solve

    sizes = (8, 16) if quick else SIZES
    rows: List[Dict] = []
    torch.manual_seed(0)
    for c in CHANNELS:
        weight = CInCConv2d(c).weight().detach()
        for s in sizes:
            y = torch.randn(BATCH, c, s, s)
            case = f"solve {s}x{s}, C={c}, batch {BATCH}"
            t_wave = best_time(lambda: wavefront_solve(y, weight), repeat=5)
            t_seq = best_time(lambda: sequential_solve(y, weight), repeat=1, warmup=0)
            err = (wavefront_solve(y, weight) - sequential_solve(y, weight)).abs().max().item()
            rows.append(row(case, "sequential", "wavefront", t_seq, t_wave, max_abs_diff=err))
            log(f"{case}: sequential {t_seq:.4f} s, wavefront {t_wave:.4f} s ({t_seq / t_wave:.1f}x)")
            if c * s * s <= DENSE_MAX_DIM:
                op = dense_operator(weight, (c, s, s))
                t_dense = best_time(lambda: dense_solve(y, weight, operator=op), repeat=3)
                rows.append(row(case, "dense solve_triangular", "wavefront", t_dense, t_wave))
                del op
            else:
                log(f"{case}: dense operator skipped ({(c * s * s) ** 2 * 4 / 1e9:.1f} GB)")

    import nfzoo

    n = 20 if quick else 100
    cfg = dict(image_shape=(1, 28, 28), levels=2, steps=4 if not quick else 2, hidden=64)
    glow = nfzoo.create_model("glow", **cfg).eval()
    cinc = nfzoo.create_model("cinc-flow", coupling="affine", backend="torch", **cfg).eval()
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with torch.no_grad():
        for m in (glow, cinc):
            m.initialize(torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(2)))
        t = race({"glow": lambda: glow.sample(n, generator=gen()),
                  "cinc": lambda: cinc.sample(n, generator=gen())}, repeat=5)
        t_glow, t_cinc = t["glow"], t["cinc"]
    case = f"sample {n} images 28x28, L=2 K={cfg['steps']} H=64"
    rows.append(row(case, "glow", "cinc-flow (wavefront)", t_glow, t_cinc))
    log(f"{case}: glow {t_glow:.4f} s, cinc-flow {t_cinc:.4f} s")
    notes = ["ratio = baseline_s / candidate_s; > 1 means the candidate is faster",
             "the dense solve excludes building the operator; it is not used anywhere outside this bench"]
    return {"bench": "cinc", "device": device_name(), "rows": rows, "notes": notes}


def _bench_cinc_cuda(quick: bool, log, device: str) -> Dict:
    import torch

    from . import triton_solve as ts
    from .conv import CInCConv2d
    from .solve import dense_operator, dense_solve, sequential_solve, wavefront_solve

    if not ts.available():
        raise RuntimeError("the cuda bench needs triton (pip install triton)")
    sizes = (8, 16) if quick else (8, 16, 32, 64, 128)
    batches = (16,) if quick else (16, 256)
    rows: List[Dict] = []
    torch.manual_seed(0)
    for c in CHANNELS:
        weight = CInCConv2d(c).weight().detach().to(device)
        for batch in batches:
            for s in sizes:
                y = torch.randn(batch, c, s, s, device=device)
                case = f"solve {s}x{s}, C={c}, batch {batch}"
                t = race({"triton": lambda: ts.triton_solve(y, weight),
                          "dot": lambda: ts.triton_solve(y, weight, kernel="dot"),
                          "torch": lambda: wavefront_solve(y, weight)}, repeat=5, warmup=2, device=device)
                ref = wavefront_solve(y.double(), weight.double())
                err = (ts.triton_solve(y, weight).double() - ref).abs().max().item()
                rows.append(row(case, "torch wavefront (cuda)", "triton kernel", t["torch"], t["triton"],
                                max_abs_diff_vs_float64=err))
                rows.append(row(case, "triton kernel, tl.dot form", "triton kernel", t["dot"], t["triton"]))
                log(f"{case}: torch wavefront {t['torch']:.5f} s, triton {t['triton']:.5f} s "
                    f"({t['torch'] / t['triton']:.1f}x; tl.dot form {t['dot']:.5f} s), max |diff| {err:.2e}")
                if s <= 16 and batch == batches[0]:
                    t_seq = best_time(lambda: sequential_solve(y, weight), repeat=1, warmup=1, device=device)
                    rows.append(row(case, "sequential (cuda)", "triton kernel", t_seq, t["triton"]))
                if c * s * s <= 2 * DENSE_MAX_DIM:
                    op = dense_operator(weight, (c, s, s))
                    t_dense = best_time(lambda: dense_solve(y, weight, operator=op), repeat=3, device=device)
                    rows.append(row(case, "dense solve_triangular (cuda)", "triton kernel", t_dense,
                                    t["triton"]))
                    del op
    notes = ["ratio = baseline_s / candidate_s; > 1 means the candidate is faster",
             "candidate: the compiled Triton kernel (one program per image, input channels summed by outer "
             "products); all timings on the same GPU",
             "the tl.dot form is the same kernel with one tl.dot per tap (an option, not the default)",
             "the dense solve excludes building the operator; it is not used anywhere outside this bench"]
    return {"bench": "cinc", "device": device_name(device), "rows": rows, "notes": notes}
