"""Issue 41: training steps of several models timed in turn, one worker process per model, only one running at a
time, so machine load falls on all alike; reports wall-clock and thread-CPU ms/step and speed relative to the
first model. The `before` flag runs a worker on another copy of the core (NFZOO_BEFORE, e.g. the last commit's:
`mkdir -p /tmp/before && git archive HEAD core/nfzoo | tar -x -C /tmp/before`, then NFZOO_BEFORE=/tmp/before/core).

    OMP_NUM_THREADS=1 .venv/bin/python docs/results/issue41/ab.py ROUNDS STEPS name=kind:arch[:before][:netact] ...
    e.g. ab.py 8 5 nf=normflows:64 before=nfzoo:glow:before after=nfzoo:glow

kind nfzoo: `nfzoo.create_model(arch, image_shape=(1, 28, 28), levels=2, hidden=64)` (steps=4 for glow, else the
architecture's default); kind normflows: the bench's normflows Glow, default GlowBlock (arch = hidden width).
"""
import os
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("train_worker.py")


def main() -> None:
    rounds, n = int(sys.argv[1]), int(sys.argv[2])
    specs = [a.split("=", 1) for a in sys.argv[3:]]
    procs = {}
    for name, spec in specs:
        parts = spec.split(":")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        if "before" in parts[2:]:
            if not os.environ.get("NFZOO_BEFORE"):
                sys.exit("a 'before' worker needs NFZOO_BEFORE: the core folder of the copy to time (docstring)")
            env["PYTHONPATH"] = os.environ["NFZOO_BEFORE"]
        if "netact" in parts[2:]:      # normflows GlowBlock(net_actnorm=True): the bench's matched baseline
            env["NETACT"] = "1"
        procs[name] = subprocess.Popen([sys.executable, str(WORKER), parts[0], parts[1]], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, env=env)
    params = {k: p.stdout.readline().split()[1] for k, p in procs.items()}
    wall = {k: [] for k in procs}
    cpu = {k: [] for k in procs}
    names = list(procs)
    for r in range(rounds):
        for k in (names if r % 2 == 0 else names[::-1]):
            procs[k].stdin.write(f"{n}\n")
            procs[k].stdin.flush()
            w, c = map(float, procs[k].stdout.readline().split())
            wall[k].append(w / n)
            cpu[k].append(c / n)
    for p in procs.values():
        p.stdin.close()
        p.wait()
    ref = names[0]
    print(f"{rounds} rounds of {n} steps; load average {os.getloadavg()}; params {params}")
    for k in names:
        rw = statistics.median([a / b for a, b in zip(wall[ref], wall[k])])
        rc = statistics.median([a / b for a, b in zip(cpu[ref], cpu[k])])
        print(f"{k:>8}: wall {1e3 * statistics.median(wall[k]):7.1f} ms/step (median), cpu "
              f"{1e3 * statistics.median(cpu[k]):7.1f}; speed vs {ref}: wall {rw:.3f} (ratio of sums "
              f"{sum(wall[ref]) / sum(wall[k]):.3f}), cpu {rc:.3f} (ratio of sums {sum(cpu[ref]) / sum(cpu[k]):.3f})")


if __name__ == "__main__":
    main()
