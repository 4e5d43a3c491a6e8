"""The latent-augmentation figures of the README (glow-mnist5k, mnist5k test images, seed 0):
interpolation-glow-mnist5k.png (rows 0->1, 2->3, 4->5, 6->7, 10 steps) and latent-mixup-glow-mnist5k.png
(40 same-class mixes, sorted by class).

    python docs/results/heads/make_figures.py
"""
from pathlib import Path

import torch

import nfzoo
import nfzoo_heads
from nfzoo.data import load_dataset
from nfzoo_heads.images import save_png


def main() -> None:
    here = Path(__file__).parent
    x, y = load_dataset("mnist5k", "test").batch(torch.arange(1000))
    m = nfzoo.load("glow-mnist5k")

    def first(c):
        return x[(y == c).nonzero()[0, 0]]

    rows = [nfzoo_heads.interpolate(m, first(a), first(b), steps=10) for a, b in ((0, 1), (2, 3), (4, 5), (6, 7))]
    save_png(torch.cat(rows), here / "interpolation-glow-mnist5k.png", nrow=10)
    mix, lab = nfzoo_heads.latent_mixup(m, x, y, n=40, generator=torch.Generator().manual_seed(0))
    save_png(mix[lab.argsort(stable=True)], here / "latent-mixup-glow-mnist5k.png", nrow=10)


if __name__ == "__main__":
    main()
