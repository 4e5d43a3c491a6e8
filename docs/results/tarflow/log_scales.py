"""How close a TarFlow's log-scales come to their bound (max_log_scale, m): per block, the largest |a_raw|
and |a| = m |tanh(a_raw / m)| over the mnist5k test split (bin centres, no noise) and over 1000 of the
model's own samples at T = 1 (latents from torch.Generator().manual_seed(0)), while inverting.

    python docs/results/tarflow/log_scales.py MODEL
"""
import sys

import torch

import nfzoo
from nfzoo.data import iterate, load_dataset


def main() -> None:
    torch.set_num_threads(1)
    m = nfzoo.load(sys.argv[1])
    m.eval()
    seen = {i: [] for i in range(len(m.bijector.blocks))}

    def hook(i):
        def fn(module, args, out):
            seen[i].append(out[..., :out.shape[-1] // 2].detach().abs().max().item())
        return fn

    hooks = [b.proj_out.register_forward_hook(hook(i)) for i, b in enumerate(m.bijector.blocks)]  # noqa: F841
    with torch.no_grad():
        for x, _ in iterate(load_dataset("mnist5k", "test"), 500, shuffle=False):
            m.encode(x)
        test = {i: max(v) for i, v in seen.items()}
        for v in seen.values():
            v.clear()
        g = torch.Generator().manual_seed(0)
        for _ in range(10):
            m.bijector.inverse(m.prior.sample(100, generator=g))
        samp = {i: max(v) for i, v in seen.items()}
    bound = m.bijector.blocks[0].max_log_scale
    tanh = lambda r: bound * torch.tanh(torch.tensor(r / bound)).item()  # noqa: E731
    for i in seen:
        print(f"block {i}: test max |a_raw| {test[i]:.3f} (|a| {tanh(test[i]):.3f}); samples max |a_raw| "
              f"{samp[i]:.3f} (|a| {tanh(samp[i]):.3f}); bound {bound:g}")


if __name__ == "__main__":
    main()
