"""`nfzoo bench sampling`: what Inverse-Flow buys. Glow, cinc-flow and inverse-flow of equal depth and
width (same levels, steps, hidden; Glow's affine coupling and the LU 1x1 conv in all three, so the only
difference is the 3x3 conv), random init, in one run:

- time to sample 100 images at 28x28x1 (the mnist5k models' shape) and 32x32x3 (CIFAR shape);
  cinc-flow is sampled with its wavefront inverse and, as the published baseline (the original CInC
  code's sequential back-substitution), with the sequential solve;
- time of one training step (forward, backward, Adam update) at batch 64.

Ratios are baseline_s / candidate_s, so > 1 means the candidate is faster.

With device="cuda" (`nfzoo bench sampling --device cuda`) the models run on the GPU, the solves in the
Triton kernel (cinc-flow and inverse-flow's training step), with cinc-flow's torch wavefront beside it;
the sequential baseline is left out there (it would be minutes of tiny launches).
"""
from __future__ import annotations

from typing import Any, Dict, List

from nfzoo.bench.timing import best_time, device_name, race, row

SHAPES: Dict[str, Dict[str, Any]] = {
    "28x28x1": dict(image_shape=(1, 28, 28), levels=2, steps=4, hidden=64),
    "32x32x3": dict(image_shape=(3, 32, 32), levels=3, steps=4, hidden=64)}


def _models(cfg, cuda: bool):
    import nfzoo

    second = ("cinc-flow (torch wavefront)", "torch") if cuda else ("cinc-flow (sequential)", "sequential")
    return {"glow": nfzoo.create_model("glow", **cfg),
            "cinc-flow": nfzoo.create_model("cinc-flow", coupling="affine", backend="auto", **cfg),
            second[0]: nfzoo.create_model("cinc-flow", coupling="affine", backend=second[1], **cfg),
            "inverse-flow": nfzoo.create_model("inverse-flow", coupling="affine", **cfg)}


def _init(model, shape, torch, device):
    with torch.no_grad():
        model.initialize(torch.rand(64, *shape, generator=torch.Generator().manual_seed(2)).to(device))


def bench_sampling(quick: bool = False, log=print, device: str = "cpu") -> Dict:
    import torch

    cuda = str(device).startswith("cuda")
    n, batch = (10, 16) if quick else (100, 64)
    rows: List[Dict] = []
    for label, cfg in SHAPES.items():
        if quick:
            cfg = dict(cfg, steps=1, hidden=16)
        torch.manual_seed(0)
        models = _models(cfg, cuda)
        second = "cinc-flow (torch wavefront)" if cuda else "cinc-flow (sequential)"
        # the same weights for both cinc-flows: only the inverse's back-end differs
        models[second].load_state_dict(models["cinc-flow"].state_dict())
        shape = cfg["image_shape"]
        for m in models.values():
            m.to(device)
            _init(m, shape, torch, device)
            m.eval()
        gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
        sampler = lambda m: (lambda: m.sample(n, generator=gen()))  # noqa: E731
        with torch.no_grad():
            times = race({name: sampler(m) for name, m in models.items() if "sequential" not in name},
                         repeat=2 if quick else 5, device=device)
            if not cuda:
                seq = models["cinc-flow (sequential)"]
                times["cinc-flow (sequential)"] = best_time(sampler(seq), repeat=1, warmup=0)
        for name, t in times.items():
            log(f"{label}: sample {n} with {name}: {t:.4f} s")
        case = f"sample {n} images {label}, L={cfg['levels']} K={cfg['steps']} H={cfg['hidden']}"
        wave = "cinc-flow (triton)" if cuda else "cinc-flow (wavefront)"
        rows.append(row(case, "glow", "inverse-flow", times["glow"], times["inverse-flow"]))
        rows.append(row(case, wave, "inverse-flow", times["cinc-flow"], times["inverse-flow"]))
        if cuda:
            rows.append(row(case, second, "cinc-flow (triton)", times[second], times["cinc-flow"]))
        else:
            rows.append(row(case, "cinc-flow (sequential, published)", "inverse-flow",
                            times["cinc-flow (sequential)"], times["inverse-flow"]))
        rows.append(row(case, "glow", wave, times["glow"], times["cinc-flow"]))

        x = torch.rand(batch, *shape, generator=torch.Generator().manual_seed(1)).to(device)

        def trainer(m):
            m.train()
            opt = torch.optim.Adam(m.parameters(), lr=1e-4)

            def step():
                opt.zero_grad(set_to_none=True)
                loss = -m.log_prob(x).mean()
                loss.backward()
                opt.step()
            return step

        train_t = race({name: trainer(models[name]) for name in ("glow", "cinc-flow", "inverse-flow")},
                       repeat=2 if quick else 5, warmup=2, device=device)
        for name, t in train_t.items():
            log(f"{label}: training step (batch {batch}) {name}: {t:.4f} s")
        case = f"train step batch {batch} {label}"
        rows.append(row(case, "glow", "inverse-flow", train_t["glow"], train_t["inverse-flow"]))
        rows.append(row(case, "glow", "cinc-flow", train_t["glow"], train_t["cinc-flow"]))
    notes = ["ratio = baseline_s / candidate_s (> 1: candidate faster)",
             "all models: same levels/steps/hidden, affine coupling, LU 1x1 conv; random init"]
    return {"bench": "sampling", "device": device_name(device), "rows": rows, "notes": notes}
