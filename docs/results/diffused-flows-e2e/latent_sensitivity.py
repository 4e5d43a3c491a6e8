"""How a model's latent z0 = f(x) looks on the background (pixels at 0) and on the digit, and how far
the flow's inverse moves the pixels when z0 is perturbed by gaussian noise of a given scale.

    python docs/results/diffused-flows-e2e/latent_sensitivity.py MODEL [MODEL ...]

MODEL: a zoo name or model directory (any model with a bijector: a flow, ddpm, diffused-flows).
500 test images of mnist5k, dequantization noise seed 0, perturbation seed 1.
"""
import sys

import torch

import nfzoo
from nfzoo.data import load_dataset


def main() -> None:
    torch.set_num_threads(1)
    x, _ = load_dataset("mnist5k", "test").batch(torch.arange(500))
    bg = x < 0.5 / 255
    for name in sys.argv[1:]:
        m = nfzoo.load(name)
        m.eval()
        with torch.no_grad():
            v, _ = m.to_flow(m.dequantize(x, generator=torch.Generator().manual_seed(0)))
            z, _ = m.bijector(v, None)
            x0 = m.from_flow(m.bijector.inverse(z, None)[0])
            print(f"{name}: latent RMS background {z[bg].pow(2).mean().sqrt():.3f}, digit "
                  f"{z[~bg].pow(2).mean().sqrt():.3f}; max |z0| background {z[bg].abs().max():.2f}, digit "
                  f"{z[~bg].abs().max():.2f} ({bg.float().mean():.0%} of pixels are background)")
            g = torch.Generator().manual_seed(1)
            for s in (0.1, 0.5, 1.0):
                zz = z + s * torch.randn(z.shape, generator=g)
                d = (m.from_flow(m.bijector.inverse(zz, None)[0]) - x0).abs()
                spots = (d[bg] > 0.25).float().mean()
                print(f"  z0 + N(0, {s}^2): mean |dx| background {d[bg].mean():.4f} "
                      f"({spots:.2%} of background pixels move > 0.25), digit {d[~bg].mean():.4f}")


if __name__ == "__main__":
    main()
