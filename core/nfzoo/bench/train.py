"""`nfzoo bench train`: Glow training on mnist5k, nfzoo (candidate) against normflows (baseline).

Both models have the same size (L levels of squeeze -> K steps of ActNorm, LU 1x1 conv, affine coupling
with a conv3x3 - conv1x1 - zero-initialised conv3x3 net of H hidden channels and a sigmoid(h + 2) scale
-> split half of the channels; the normflows coupling nets follow nfzoo's in whether they have ActNorm
on their hidden activations), see the same batches in the same order, the same dequantization noise,
the same ActNorm initialisation batch, and the same optimizer (Adam with a linear learning-rate warm-up
and gradient-norm clipping). The two are trained in lockstep, one step of each in turn (which goes first
alternates), so both see the same machine load; only the optimizer steps are timed.

Both are scored on the same scale: bits per dimension of the 8-bit image (the dequantized bound),
bpd = (-log p(x) + D ln 256) / (D ln 2) with x = (k + u) / 256, on the whole test split, with the same
seeded noise. nfzoo's `FlowModel.bpd` does exactly this from [0, 1] images (its "shift" preprocessing,
x - 1/2, has log|det| 0); normflows' model is given the same tensors x - 1/2, so its log_prob is the
same continuous density.

normflows is an optional dependency (the `bench` extra); it is imported only here.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, cast

from nfzoo.errors import TrainingDivergedError, UsageError

DATASET = "mnist5k"
IMAGE_SHAPE = (1, 28, 28)
MISSING = "normflows is not installed: pip install 'nfzoo[bench]' (or pip install normflows)"


@dataclass(frozen=True)
class Settings:
    """The bench's Glow (L levels, K steps per level, H hidden channels) and training recipe, the same for
    nfzoo and normflows."""
    levels: int = 2
    steps_per_level: int = 4          # K
    hidden: int = 64                  # H
    batch_size: int = 64
    train_steps: int = 300            # optimizer steps per model, the first `untimed_steps` not timed
    untimed_steps: int = 5
    lr: float = 1e-3
    warmup_steps: int = 100           # linear warm-up: lr * min(1, (step + 1) / warmup_steps)
    grad_clip: float = 50.0           # max global gradient norm, as nfzoo's trainer
    init_batch: int = 512             # images for the data-dependent ActNorm initialisation
    eval_batch: int = 500
    seed: int = 0
    log_every: int = 50


DEFAULT = Settings()
QUICK = Settings(steps_per_level=2, hidden=32, train_steps=20, warmup_steps=10, init_batch=256,
                 log_every=10)


# ---------------------------------------------------------------- helpers
def dequantize(x, generator):
    """[0, 1] images -> (k + u) / 256, k = round(255 x), u ~ U[0, 1) drawn from `generator` exactly as
    nfzoo's FlowModel.dequantize draws it (so the same seed gives the same noise)."""
    import torch

    k = torch.round(x * 255.0)
    u = torch.rand(k.shape, generator=generator, dtype=k.dtype)
    return (k + u) / 256.0


def count_params(model) -> int:
    """The number of trainable parameters of a torch module."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def build_nfzoo(s: Settings):
    """nfzoo's Glow at the bench's size, with `split_bias=True` (normflows' per-element split prior too)."""
    import nfzoo

    # split_bias: the split priors get normflows' learned per-element gaussian on top of Glow's
    # conditional one, so neither model has a prior the other lacks
    return nfzoo.create_model("glow", image_shape=IMAGE_SHAPE, levels=s.levels, steps=s.steps_per_level,
                              hidden=s.hidden, split_bias=True)


def build_normflows(nf, s: Settings, net_actnorm: bool = True):
    """Glow as normflows builds it (nf.MultiscaleFlow, its levels listed coarsest first, each flow
    written in the generative direction z -> x). Level j (finest j = 0) works on C * 2^(j+2) channels
    at (H, W) / 2^(j+1); every level but the last factors out half of its channels. `net_actnorm`:
    ActNorm (instead of a bias) after the hidden convs of the coupling nets, as Glow and nfzoo."""
    c, h, w = IMAGE_SHAPE
    L = s.levels
    q0, flows, merges = [], [], []
    for i in range(L):                       # normflows' order: i = 0 is the coarsest level
        j = L - 1 - i                        # the same level counted from the input
        channels = c * 2 ** (j + 2)
        hh, ww = h // 2 ** (j + 1), w // 2 ** (j + 1)
        level = [nf.flows.GlowBlock(channels, s.hidden, scale=True, scale_map="sigmoid",
                                    split_mode="channel", leaky=0.0, init_zeros=True, use_lu=True,
                                    net_actnorm=net_actnorm)
                 for _ in range(s.steps_per_level)]
        level.append(nf.flows.Squeeze())     # generative direction: (4C, H/2, W/2) -> (C, H, W)
        flows.append(level)
        if i == 0:
            latent = (channels, hh, ww)       # the top: everything left after the last level
        else:
            merges.append(nf.flows.Merge())  # data direction: split off the second half of channels
            latent = (channels // 2, hh, ww)
        # a learned per-element diagonal gaussian: the same as nfzoo's learned top prior; for the
        # split-off parts normflows has no prior conditioned on the kept half (nfzoo's split2d)
        q0.append(nf.distributions.DiagGaussian(latent, trainable=True))
    return nf.MultiscaleFlow(q0, flows, merges, class_cond=False)


def _build_normflows_quietly(nf, s: Settings, net_actnorm: bool = True):
    import warnings

    with warnings.catch_warnings():  # normflows 1.7 calls the deprecated torch.lu in Invertible1x1Conv
        warnings.simplefilter("ignore", UserWarning)
        return build_normflows(nf, s, net_actnorm)


def _has(model, class_name: str) -> bool:
    """Whether nfzoo's model uses the coupling-net module `class_name` (of nfzoo.flows.bijectors.coupling)."""
    from nfzoo.flows.bijectors import coupling

    cls = getattr(coupling, class_name, None)
    return cls is not None and any(isinstance(m, cls) for m in model.modules())


class _Trainee:
    """One model with its optimizer, its own dequantization-noise generator, and its step timer."""

    def __init__(self, name: str, model, bpd_fn: Callable, s: Settings):
        import torch

        self.name, self.model, self._bpd, self.s = name, model, bpd_fn, s
        self.opt = torch.optim.Adam(model.parameters(), lr=s.lr)
        self.noise = torch.Generator().manual_seed(s.seed + 1)
        self.times: List[float] = []  # seconds of each timed step
        self.recent: List[float] = []

    def bpd(self, x, generator):
        """Per-image bpd (8-bit discretisation included), shape (B,)."""
        return self._bpd(self.model, x, generator)

    def step(self, step: int, x, timed: bool) -> None:
        import torch

        t0 = time.perf_counter()
        lr = self.s.lr * min(1.0, (step + 1) / self.s.warmup_steps) if self.s.warmup_steps > 0 else self.s.lr
        for g in self.opt.param_groups:
            g["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        loss = self.bpd(x, self.noise).mean()
        loss.backward()
        if self.s.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.s.grad_clip)
        self.opt.step()
        value = loss.item()
        dt = time.perf_counter() - t0
        if not math.isfinite(value):
            raise TrainingDivergedError(f"{self.name} diverged at step {step + 1} of the benchmark "
                                        f"(loss {value}); this benchmark's settings are fixed, please "
                                        "report it")
        if timed:
            self.times.append(dt)
        self.recent = (self.recent + [value])[-10:]

    @property
    def timed_steps(self) -> int:
        return len(self.times)

    @property
    def s_per_step(self) -> float:
        """Mean seconds per timed step (so batch / s_per_step is the throughput)."""
        return sum(self.times) / max(len(self.times), 1)

    @property
    def median_s(self) -> float:
        t = sorted(self.times)
        return t[len(t) // 2] if t else 0.0

    def evaluate(self, test, s: Settings) -> float:
        import torch

        self.model.eval()
        gen = torch.Generator().manual_seed(s.seed + 3)
        total, n = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(test), s.eval_batch):
                x, _ = test.batch(torch.arange(i, min(i + s.eval_batch, len(test))))
                b = self.bpd(x, gen)
                if not torch.isfinite(b).all():
                    raise TrainingDivergedError(f"{self.name} gives a non-finite test bpd")
                total += b.double().sum().item()
                n += x.shape[0]
        self.model.train()
        return total / n


def _nfzoo_bpd(model, x, generator):
    return model.bpd(x, generator=generator)


def _normflows_bpd(model, x, generator):
    # the same preprocessing as nfzoo's "shift": (k + u) / 256 - 1/2, a pure shift (log|det| = 0)
    v = dequantize(x, generator) - 0.5
    d = v[0].numel()
    return (-model.log_prob(v, None) + d * math.log(256.0)) / (d * math.log(2.0))


def batch_order(n: int, s: Settings):
    """Index tensors of the training batches: seeded reshuffles of the training set, full batches only."""
    import torch

    g = torch.Generator().manual_seed(s.seed)
    out = []
    while len(out) < s.train_steps:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n - s.batch_size + 1, s.batch_size):
            out.append(perm[i:i + s.batch_size])
            if len(out) == s.train_steps:
                break
    return out


# ---------------------------------------------------------------- the benchmark
def bench_train(quick: bool = False, log=print) -> Dict:
    """Train nfzoo's Glow and normflows' Glow side by side; return the `nfzoo bench` document."""
    try:
        import normflows as nf
    except ImportError as exc:
        raise UsageError(MISSING) from exc
    import torch

    from nfzoo.data import ArrayDataset, load_dataset

    s = QUICK if quick else DEFAULT
    threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # one process, one setting: the same for both models
    train = cast(ArrayDataset, load_dataset(DATASET, "train"))   # an offline data set (nfzoo.data.OFFLINE)
    test = load_dataset(DATASET, "test")
    if tuple(train.image_shape) != IMAGE_SHAPE:
        raise UsageError(f"{DATASET} images are {train.image_shape}, the benchmark expects {IMAGE_SHAPE}")

    torch.manual_seed(s.seed)
    candidate = _Trainee("nfzoo", build_nfzoo(s), _nfzoo_bpd, s)
    net_actnorm = _has(candidate.model, "NetActNorm")  # follow nfzoo's coupling nets
    out_scale = _has(candidate.model, "ZeroConv2d")
    dead_std = any(getattr(m, "dead_std", 0) for m in candidate.model.modules())
    torch.manual_seed(s.seed)
    baseline = _Trainee("normflows", _build_normflows_quietly(nf, s, net_actnorm), _normflows_bpd, s)
    candidate.model.train()
    baseline.model.train()
    case = (f"glow {DATASET} L={s.levels} K={s.steps_per_level} H={s.hidden} batch {s.batch_size}, "
            f"{s.train_steps} steps")
    log(f"bench train: {case}; {threads} torch threads; params nfzoo {count_params(candidate.model):,}, "
        f"normflows {count_params(baseline.model):,}")

    # data-dependent ActNorm init: the same images with the same noise for both
    g = torch.Generator().manual_seed(s.seed + 2)
    idx = torch.randperm(len(train), generator=g)[:min(s.init_batch, len(train))]
    x_init, _ = train.batch(idx)
    candidate.model.initialize(x_init, generator=torch.Generator().manual_seed(s.seed + 2))
    with torch.no_grad():  # normflows' ActNorm initialises itself on the first batch it sees
        baseline.bpd(x_init, torch.Generator().manual_seed(s.seed + 2))

    order = batch_order(len(train), s)
    t_start = time.perf_counter()
    for step, bidx in enumerate(order):
        x, _ = train.batch(bidx)
        timed = step >= s.untimed_steps
        pair = (baseline, candidate) if step % 2 == 0 else (candidate, baseline)
        for t in pair:
            t.step(step, x, timed)
        if (step + 1) % s.log_every == 0 or step + 1 == len(order):
            log(f"  step {step + 1}/{len(order)}: train bpd normflows {baseline.recent[-1]:.3f} "
                f"({baseline.s_per_step * 1e3:.1f} ms/step), nfzoo {candidate.recent[-1]:.3f} "
                f"({candidate.s_per_step * 1e3:.1f} ms/step)")
    train_wall = time.perf_counter() - t_start

    log(f"  evaluating both on the {len(test)} {DATASET} test images")
    base_bpd = baseline.evaluate(test, s)
    cand_bpd = candidate.evaluate(test, s)
    timed_steps = candidate.timed_steps
    row = {
        "case": case,
        "baseline": "normflows",
        "candidate": "nfzoo",
        "baseline_s": baseline.s_per_step,
        "candidate_s": candidate.s_per_step,
        "ratio": baseline.s_per_step / candidate.s_per_step,
        "baseline_images_per_s": s.batch_size / baseline.s_per_step,
        "candidate_images_per_s": s.batch_size / candidate.s_per_step,
        "baseline_test_bpd": base_bpd,
        "candidate_test_bpd": cand_bpd,
        "baseline_params": count_params(baseline.model),
        "candidate_params": count_params(candidate.model),
    }
    notes = [
        f"torch {torch.__version__}, normflows {getattr(nf, '__version__', '?')}; {threads} torch "
        f"threads for both",
        f"{s.train_steps} optimizer steps each on the same batches of {s.batch_size} (seeded reshuffles "
        f"of the {len(train)} training images); the first {s.untimed_steps} are not timed, s/step and "
        f"images/s are over the other {timed_steps}; the two models are stepped in turn (alternating "
        f"which goes first), so both see the same machine load; {train_wall:.1f} s in all",
        f"median s/step (less sensitive to other load on the machine): normflows "
        f"{baseline.median_s:.4g}, nfzoo {candidate.median_s:.4g} (ratio "
        f"{baseline.median_s / candidate.median_s:.3f})",
        f"Adam lr {s.lr:g}, linear warm-up over {s.warmup_steps} steps, gradient norm clipped at "
        f"{s.grad_clip:g}; seed {s.seed} for both models' initial weights (different draws: the "
        "libraries build their layers in different orders)",
        "dequantization x = (round(255 img) + u) / 256 with the same seeded noise for both; normflows "
        "is fed x - 1/2 (nfzoo's 'shift' preprocessing, log|det| 0); bpd = (-log p + D ln 256) / "
        f"(D ln 2) on the whole test split ({len(test)} images), eval mode, no grad, the same noise",
        f"ActNorm data-dependent init on the same {len(x_init)} images with the same noise "
        "(normflows normalises by the unbiased std, nfzoo by the biased one"
        + (", and nfzoo leaves (nearly) constant channels at scale 1)" if dead_std else ")"),
        ("coupling nets: conv3x3 - ActNorm - ReLU - conv1x1 - ActNorm - ReLU - zero-init conv3x3 in "
         "both (normflows GlowBlock(net_actnorm=True))" if net_actnorm else
         "coupling nets: conv3x3 - ReLU - conv1x1 - ReLU - zero-init conv3x3 in both"),
        *(["difference: nfzoo scales the zero-initialised output conv of its coupling nets and split "
           "priors by exp(3 s) with a learned per-channel s (Glow's Conv2dZeros); normflows' "
           "ConvNet2d has no such scale"] if out_scale else []),
        "split priors: normflows' MultiscaleFlow has unconditional base distributions, a learned "
        "per-element diagonal gaussian (nf.distributions.DiagGaussian) for each split-off half; nfzoo "
        "(glow with split_bias=True) has the same learned per-element mean and log-scale plus Glow's "
        "split2d term conditioned on the kept half (a zero-initialised conv3x3). The top prior is a "
        "learned per-element gaussian in both.",
    ]
    return {"bench": "train", "device": f"cpu ({threads} threads)", "rows": [row], "notes": notes}
