"""`nfzoo bench train`: Glow training on mnist5k, nfzoo (candidate) against normflows (baseline), twice.

Row 1, matched: both models have the same size (L levels of squeeze -> K steps of ActNorm, LU 1x1 conv, affine coupling
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

Row 2, defaults: what a user comparing the two libraries out of the box sees. nfzoo's `glow` with its
defaults (at the bench's L, K, H) against normflows' default `GlowBlock` Glow (no ActNorm in its coupling
nets, biases instead), whose hidden width is chosen to give the parameter count closest to nfzoo's
(`match_hidden`). The four models are trained in the same run, a step of each in turn (the order rotates).
Each step is timed on the wall clock and in the thread's CPU time (the latter counts none of the time the
process waits for a core, so its ratio holds on a loaded machine too).

normflows is an optional dependency (the `bench` extra); it is imported only here.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, cast

from nfzoo.bench.timing import load_average
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


def build_nfzoo_defaults(s: Settings):
    """nfzoo's Glow as `nfzoo.create_model` builds it by default, at the bench's size (L, K, H)."""
    import nfzoo

    return nfzoo.create_model("glow", image_shape=IMAGE_SHAPE, levels=s.levels, steps=s.steps_per_level,
                              hidden=s.hidden)


def build_normflows(nf, s: Settings, net_actnorm: bool = True, hidden: Optional[int] = None):
    """Glow as normflows builds it (nf.MultiscaleFlow, its levels listed coarsest first, each flow
    written in the generative direction z -> x). Level j (finest j = 0) works on C * 2^(j+2) channels
    at (H, W) / 2^(j+1); every level but the last factors out half of its channels. `net_actnorm`:
    ActNorm (instead of a bias) after the hidden convs of the coupling nets, as Glow and nfzoo (False is
    GlowBlock's default). `hidden`: the coupling nets' width (None: the bench's H)."""
    c, h, w = IMAGE_SHAPE
    hidden = s.hidden if hidden is None else hidden
    L = s.levels
    q0, flows, merges = [], [], []
    for i in range(L):                       # normflows' order: i = 0 is the coarsest level
        j = L - 1 - i                        # the same level counted from the input
        channels = c * 2 ** (j + 2)
        hh, ww = h // 2 ** (j + 1), w // 2 ** (j + 1)
        level = [nf.flows.GlowBlock(channels, hidden, scale=True, scale_map="sigmoid",
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


def _build_normflows_quietly(nf, s: Settings, net_actnorm: bool = True, hidden: Optional[int] = None):
    import warnings

    with warnings.catch_warnings():  # normflows 1.7 calls the deprecated torch.lu in Invertible1x1Conv
        warnings.simplefilter("ignore", UserWarning)
        return build_normflows(nf, s, net_actnorm, hidden)


def match_hidden(nf, s: Settings, target: int, span: int = 16) -> int:
    """The hidden width of normflows' default GlowBlock Glow (no ActNorm in the nets) whose trainable
    parameter count is closest to `target`, among s.hidden - span .. s.hidden + span (a tie goes to the
    width nearer s.hidden)."""
    widths = range(max(1, s.hidden - span), s.hidden + span + 1)
    counts = {h: count_params(_build_normflows_quietly(nf, s, net_actnorm=False, hidden=h)) for h in widths}
    return min(widths, key=lambda h: (abs(counts[h] - target), abs(h - s.hidden)))


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
        self.cpu_times: List[float] = []  # the thread's CPU seconds of each timed step
        self.recent: List[float] = []

    def bpd(self, x, generator):
        """Per-image bpd (8-bit discretisation included), shape (B,)."""
        return self._bpd(self.model, x, generator)

    def step(self, step: int, x, timed: bool) -> None:
        import torch

        t0, c0 = time.perf_counter(), time.thread_time()
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
        dt, dc = time.perf_counter() - t0, time.thread_time() - c0
        if not math.isfinite(value):
            raise TrainingDivergedError(f"{self.name} diverged at step {step + 1} of the benchmark "
                                        f"(loss {value}); this benchmark's settings are fixed, please "
                                        "report it")
        if timed:
            self.times.append(dt)
            self.cpu_times.append(dc)
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

    @property
    def cpu_s_per_step(self) -> float:
        """Mean CPU seconds of the thread per timed step (time waiting for a core not counted)."""
        return sum(self.cpu_times) / max(len(self.cpu_times), 1)

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


def _row(case: str, baseline: "_Trainee", candidate: "_Trainee", base_bpd: float, cand_bpd: float,
         s: Settings) -> Dict:
    """One `nfzoo bench` row: the mean step times (wall clock and CPU), their ratios, images/s, test bpd,
    parameters and the total step time of each model (the test bpd is reached in that time)."""
    b, c = baseline, candidate
    return {"case": case, "baseline": b.name, "candidate": c.name, "baseline_s": b.s_per_step,
            "candidate_s": c.s_per_step, "ratio": b.s_per_step / c.s_per_step,
            "baseline_images_per_s": s.batch_size / b.s_per_step, "candidate_images_per_s": s.batch_size / c.s_per_step,
            "baseline_test_bpd": base_bpd, "candidate_test_bpd": cand_bpd, "baseline_params": count_params(b.model),
            "candidate_params": count_params(c.model), "median_ratio": b.median_s / c.median_s,
            "baseline_cpu_s": b.cpu_s_per_step, "candidate_cpu_s": c.cpu_s_per_step,
            "cpu_ratio": b.cpu_s_per_step / c.cpu_s_per_step, "baseline_train_s": sum(b.times),
            "candidate_train_s": sum(c.times)}


# ---------------------------------------------------------------- the benchmark
def bench_train(quick: bool = False, log=print) -> Dict:
    """Train nfzoo's Glow against normflows' twice in one run, matched (row 1) and at both libraries'
    defaults (row 2); return the `nfzoo bench` document."""
    try:
        import normflows as nf
    except ImportError as exc:
        raise UsageError(MISSING) from exc
    import os

    import torch

    from nfzoo.data import ArrayDataset, load_dataset

    s = QUICK if quick else DEFAULT
    load_before = load_average()
    threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # one process, one setting: the same for all models
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
    torch.manual_seed(s.seed)
    cand_default = _Trainee("nfzoo (glow defaults)", build_nfzoo_defaults(s), _nfzoo_bpd, s)
    default_hidden = match_hidden(nf, s, count_params(cand_default.model))
    torch.manual_seed(s.seed)
    base_default = _Trainee("normflows (GlowBlock defaults)",
                            _build_normflows_quietly(nf, s, net_actnorm=False, hidden=default_hidden),
                            _normflows_bpd, s)
    trainees = [baseline, candidate, base_default, cand_default]
    for t in trainees:
        t.model.train()
    size = f"L={s.levels} K={s.steps_per_level} H={s.hidden} batch {s.batch_size}, {s.train_steps} steps"
    case = f"glow {DATASET} {size}"
    case_default = (f"glow {DATASET} {size}; defaults: nfzoo glow vs normflows GlowBlock "
                    f"(hidden {default_hidden}, parameter count matched)")
    log(f"bench train: {case}; {threads} torch threads; params nfzoo {count_params(candidate.model):,}, "
        f"normflows {count_params(baseline.model):,}; defaults: nfzoo {count_params(cand_default.model):,}, "
        f"normflows {count_params(base_default.model):,} (hidden {default_hidden})")

    # data-dependent ActNorm init: the same images with the same noise for all
    g = torch.Generator().manual_seed(s.seed + 2)
    idx = torch.randperm(len(train), generator=g)[:min(s.init_batch, len(train))]
    x_init, _ = train.batch(idx)
    for t in (candidate, cand_default):
        t.model.initialize(x_init, generator=torch.Generator().manual_seed(s.seed + 2))
    with torch.no_grad():  # normflows' ActNorm initialises itself on the first batch it sees
        for t in (baseline, base_default):
            t.bpd(x_init, torch.Generator().manual_seed(s.seed + 2))

    order = batch_order(len(train), s)
    t_start = time.perf_counter()
    for step, bidx in enumerate(order):
        x, _ = train.batch(bidx)
        timed = step >= s.untimed_steps
        k = step % len(trainees)   # rotate who goes first, so all see the same machine load
        for t in trainees[k:] + trainees[:k]:
            t.step(step, x, timed)
        if (step + 1) % s.log_every == 0 or step + 1 == len(order):
            log(f"  step {step + 1}/{len(order)}: train bpd / ms per step: "
                + ", ".join(f"{t.name} {t.recent[-1]:.3f} / {t.s_per_step * 1e3:.1f}" for t in trainees))
    train_wall = time.perf_counter() - t_start

    log(f"  evaluating all on the {len(test)} {DATASET} test images")
    bpds = {t.name: t.evaluate(test, s) for t in trainees}
    rows = [_row(case, baseline, candidate, bpds[baseline.name], bpds[candidate.name], s),
            _row(case_default, base_default, cand_default, bpds[base_default.name], bpds[cand_default.name], s)]
    timed_steps = candidate.timed_steps
    notes = [
        f"torch {torch.__version__}, normflows {getattr(nf, '__version__', '?')}; {threads} torch "
        f"threads for all; {os.cpu_count()} CPUs; load average {load_before} before, {load_average()} after",
        f"{s.train_steps} optimizer steps each on the same batches of {s.batch_size} (seeded reshuffles "
        f"of the {len(train)} training images); the first {s.untimed_steps} are not timed, s/step and "
        f"images/s are over the other {timed_steps}; the four models are stepped in turn (rotating "
        f"which goes first), so all see the same machine load; {train_wall:.1f} s in all",
        "ratio: of the mean wall-clock times per step (baseline / candidate: > 1 is nfzoo faster); "
        "median_ratio: of the median times; cpu_ratio: of the mean CPU times of the thread per step "
        "(time spent waiting for a core on a loaded machine not counted); *_train_s: the step time each "
        "model spent to reach its test bpd",
        f"row 1 (matched): median s/step normflows {baseline.median_s:.4g}, nfzoo {candidate.median_s:.4g}",
        f"row 2 (defaults): nfzoo's `glow` as create_model builds it (split_bias False) against normflows' "
        f"GlowBlock with its defaults (net_actnorm=False: biases, no ActNorm, in the coupling nets; LU 1x1 "
        f"conv; sigmoid scale) at hidden width {default_hidden}, the width in {s.hidden} +- 16 whose "
        f"parameter count ({count_params(base_default.model):,}) is closest to nfzoo's "
        f"({count_params(cand_default.model):,}); everything else as row 1",
        f"Adam lr {s.lr:g}, linear warm-up over {s.warmup_steps} steps, gradient norm clipped at "
        f"{s.grad_clip:g}; seed {s.seed} for every model's initial weights (different draws: the "
        "libraries build their layers in different orders)",
        "dequantization x = (round(255 img) + u) / 256 with the same seeded noise for all; normflows "
        "is fed x - 1/2 (nfzoo's 'shift' preprocessing, log|det| 0); bpd = (-log p + D ln 256) / "
        f"(D ln 2) on the whole test split ({len(test)} images), eval mode, no grad, the same noise",
        f"ActNorm data-dependent init on the same {len(x_init)} images with the same noise "
        "(normflows normalises by the unbiased std, nfzoo by the biased one"
        + (", and nfzoo leaves (nearly) constant channels at scale 1)" if dead_std else ")"),
        ("row 1 coupling nets: conv3x3 - ActNorm - ReLU - conv1x1 - ActNorm - ReLU - zero-init conv3x3 in "
         "both (normflows GlowBlock(net_actnorm=True))" if net_actnorm else
         "row 1 coupling nets: conv3x3 - ReLU - conv1x1 - ReLU - zero-init conv3x3 in both"),
        *(["difference: nfzoo scales the zero-initialised output conv of its coupling nets and split "
           "priors by exp(3 s) with a learned per-channel s (Glow's Conv2dZeros); normflows' "
           "ConvNet2d has no such scale"] if out_scale else []),
        "split priors: normflows' MultiscaleFlow has unconditional base distributions, a learned "
        "per-element diagonal gaussian (nf.distributions.DiagGaussian) for each split-off half; nfzoo "
        "(glow with split_bias=True in row 1) has the same learned per-element mean and log-scale plus "
        "Glow's split2d term conditioned on the kept half (a zero-initialised conv3x3); nfzoo's default "
        "(row 2) has the conditional term only. The top prior is a learned per-element gaussian in all.",
    ]
    return {"bench": "train", "device": f"cpu ({threads} threads)", "nproc": os.cpu_count(),
            "threads": threads, "load_average": {"before": load_before, "after": load_average()},
            "rows": rows, "notes": notes}
