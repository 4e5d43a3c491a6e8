"""Issue 41 (ab.py): a training worker. Reads a number N per line on stdin, runs N training steps (batch 64 of
mnist5k, Adam 1e-3, gradient norm clipped at 50), prints "wall cpu" seconds. usage: train_worker.py KIND ARCH"""
import os
import sys
import time
import warnings

import torch

from nfzoo.data import load_dataset


def main() -> None:
    torch.set_num_threads(1)
    kind, arch = sys.argv[1], sys.argv[2]
    train = load_dataset("mnist5k", "train")
    torch.manual_seed(0)
    x, _ = train.batch(torch.arange(512))
    if kind == "nfzoo":
        import nfzoo

        model = nfzoo.create_model(arch, image_shape=(1, 28, 28), levels=2, hidden=64,
                                   **({"steps": 4} if arch == "glow" else {}))
        model.initialize(x, generator=torch.Generator().manual_seed(2))

        def loss(xb, g):
            return model.bpd(xb, generator=g).mean()
    else:
        import normflows as nf

        from nfzoo.bench.train import Settings, _normflows_bpd, build_normflows

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build_normflows(nf, Settings(hidden=int(arch)), net_actnorm=os.environ.get("NETACT") == "1")
        with torch.no_grad():
            _normflows_bpd(model, x, torch.Generator().manual_seed(2))

        def loss(xb, g):
            return _normflows_bpd(model, xb, g).mean()
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    noise = torch.Generator().manual_seed(1)
    gp = torch.Generator().manual_seed(0)
    batches = [train.batch(torch.randperm(len(train), generator=gp)[:64])[0] for _ in range(8)]
    count = [0]


    def step():
        xb = batches[count[0] % len(batches)]
        count[0] += 1
        opt.zero_grad(set_to_none=True)
        value = loss(xb, noise)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 50)
        opt.step()
        return value.item()


    for _ in range(3):
        step()
    print("ready", sum(p.numel() for p in model.parameters() if p.requires_grad), flush=True)
    for line in sys.stdin:
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(int(line)):
            step()
        print(time.perf_counter() - t0, time.thread_time() - c0, flush=True)


if __name__ == "__main__":
    main()
