"""Issue 41: torch.profiler (self CPU time per op, ms per step) of nfzoo's default Glow and normflows' default
GlowBlock Glow (L=2, K=4, H=64, batch 64, Adam), profiled in the same process in alternating chunks (so machine
load falls on both alike), then cProfile (Python's view: where the interpreter spends its time) of nfzoo's step.
The before profile: the same command with PYTHONPATH pointing at the previous core (see ab.py).

    OMP_NUM_THREADS=1 .venv/bin/python docs/results/issue41/profile_step.py [ROWS]
"""
import collections
import cProfile
import io
import pstats
import sys
import warnings

import normflows as nf
import torch
from torch.profiler import ProfilerActivity, profile

import nfzoo
from nfzoo.bench.train import Settings, _normflows_bpd, build_normflows
from nfzoo.data import load_dataset


def main() -> None:
    torch.set_num_threads(1)
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    torch.manual_seed(0)
    x, _ = load_dataset("mnist5k", "train").batch(torch.arange(512))
    m = nfzoo.create_model("glow", image_shape=(1, 28, 28), levels=2, steps=4, hidden=64)
    m.initialize(x, generator=torch.Generator().manual_seed(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = build_normflows(nf, Settings(), net_actnorm=False)
    with torch.no_grad():
        _normflows_bpd(b, x, torch.Generator().manual_seed(2))


    def trainer(model, loss):
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        g = torch.Generator().manual_seed(1)

        def step(xb):
            opt.zero_grad(set_to_none=True)
            loss(model, xb, g).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 50)
            opt.step()
        return step


    steps = {"nfzoo": trainer(m, lambda mod, xb, g: mod.bpd(xb, generator=g).mean()),
             "normflows": trainer(b, lambda mod, xb, g: _normflows_bpd(mod, xb, g).mean())}
    xb = x[:64]
    for f in steps.values():
        for _ in range(3):
            f(xb)
    total = {k: collections.Counter() for k in steps}
    chunks, per = 6, 3
    for r in range(chunks):
        for name in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
            with profile(activities=[ProfilerActivity.CPU]) as p:
                for _ in range(per):
                    steps[name](xb)
            for e in p.key_averages():
                total[name][e.key] += e.self_cpu_time_total / 1e3 / (chunks * per)
    for name, c in total.items():
        print(f"== {name}: self CPU {sum(c.values()):.1f} ms/step (torch.profiler)")
        for k, v in c.most_common(rows):
            print(f"  {v:8.2f}  {k}")
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(5):
        steps["nfzoo"](xb)
    pr.disable()
    out = io.StringIO()
    pstats.Stats(pr, stream=out).sort_stats("tottime").print_stats(rows)
    print("== nfzoo: cProfile of 5 steps, by own time")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:4000])


if __name__ == "__main__":
    main()
