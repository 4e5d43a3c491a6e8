"""The testing kit: `check_bijector` verifies any Bijector the way nfzoo's own tests do.

Third-party plugin authors call it from their tests:

    from nfzoo.testing import check_bijector
    check_bijector(MyBijector(channels=4), (2, 4, 6, 5))
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

import torch

if TYPE_CHECKING:
    from nfzoo.flows.interfaces import Bijector

MAX_JACOBIAN_DIM = 4096


def _close(a, b, atol, rtol, what):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    if not torch.allclose(a, b, atol=atol, rtol=rtol):
        err = (a - b).abs().max().item()
        raise AssertionError(f"{what}: max abs difference {err:.3g} (atol={atol}, rtol={rtol})")


def _ctx(context, i, n):
    if context is None:
        return None
    if torch.is_tensor(context) and context.dim() > 0 and context.shape[0] == n:
        return context[i:i + 1]
    return context


def check_bijector(bijector: Bijector, input_shape: Sequence[int], context: Optional[Any] = None,
                   atol: float = 1e-6, rtol: float = 1e-5, perturb: float = 0.02, seed: int = 0,
                   jacobian_samples: int = 2) -> Dict[str, float]:
    """Check a bijector in float64 on inputs of `input_shape` (batch first). Raises AssertionError.

    1. data-dependent init (one forward in train mode), then every parameter is perturbed by
       N(0, perturb^2) so zero-initialised layers do not hide mistakes;
    2. train and eval mode give the same answers after init;
    3. logdet has shape (B,);
    4. round trip: inverse(forward(x)) == x, and the forward and inverse logdets sum to 0;
    5. logdet equals log|det| of autograd's Jacobian, per sample (forward and inverse);
    6. every parameter receives a finite, non-zero gradient from a likelihood-style loss.
    The bijector passed in is not modified (a deep copy is checked). Returns the largest errors seen.
    """
    gen = torch.Generator().manual_seed(seed)
    bij = copy.deepcopy(bijector).double()
    x = torch.randn(tuple(input_shape), generator=gen, dtype=torch.float64)
    if torch.is_tensor(context) and torch.is_floating_point(context):
        context = context.double()
    n = x.shape[0]
    report: Dict[str, float] = {}

    bij.train()
    with torch.no_grad():
        bij(x, context)  # data-dependent init happens here
        for p in bij.parameters():
            p.add_(perturb * torch.randn(p.shape, generator=gen, dtype=p.dtype))

    z_train, ld_train = bij(x, context)
    bij.eval()
    z, ld = bij(x, context)
    _close(z_train, z, atol, rtol, "forward output differs between train and eval mode")
    _close(ld_train, ld, atol, rtol, "forward logdet differs between train and eval mode")
    if tuple(ld.shape) != (n,):
        raise AssertionError(f"forward logdet must have shape (B,) = ({n},), got {tuple(ld.shape)}")

    x_back, ld_inv = bij.inverse(z, context)
    if tuple(ld_inv.shape) != (n,):
        raise AssertionError(f"inverse logdet must have shape (B,) = ({n},), got {tuple(ld_inv.shape)}")
    _close(x_back, x, atol, rtol, "round trip inverse(forward(x)) != x")
    _close(ld + ld_inv, torch.zeros_like(ld), atol, rtol, "forward and inverse logdets do not sum to 0")
    report["round_trip_err"] = (x_back - x).abs().max().item()

    d = x[0].numel()
    if d <= MAX_JACOBIAN_DIM:
        worst = 0.0
        for i in range(min(n, jacobian_samples)):
            xi, ci = x[i:i + 1], _ctx(context, i, n)
            zi = z[i:i + 1]

            def fwd(v):
                return bij(v.view_as(xi), ci)[0].reshape(-1)

            def inv(v):
                return bij.inverse(v.view_as(zi), ci)[0].reshape(-1)

            for name, fn, point, expected in (("forward", fwd, xi, ld[i]), ("inverse", inv, zi, ld_inv[i])):
                try:
                    jac = torch.autograd.functional.jacobian(fn, point.reshape(-1), vectorize=True)
                except RuntimeError:  # an op without a batching rule: one backward per output
                    jac = torch.autograd.functional.jacobian(fn, point.reshape(-1))
                if jac.shape[0] != jac.shape[1]:
                    raise AssertionError(f"{name} Jacobian is not square: {tuple(jac.shape)}")
                _, logabsdet = torch.linalg.slogdet(jac)
                _close(expected, logabsdet, 1e-5, 1e-6,
                       f"{name} logdet of sample {i} != log|det J| from autograd")
                worst = max(worst, abs(expected.item() - logabsdet.item()))
        report["logdet_err"] = worst

    bij.train()
    bij.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    z, ld = bij(x, context)
    xr, ld_r = bij.inverse(z.detach() * 0.9, context)
    loss = 0.5 * (z ** 2).sum() - ld.sum() + (xr ** 2).sum() + ld_r.sum()
    loss.backward()
    if x.grad is None or not torch.isfinite(x.grad).all():
        raise AssertionError("the input received no (or a non-finite) gradient")
    for name, p in bij.named_parameters():
        if p.grad is None:
            raise AssertionError(f"parameter {name!r} received no gradient")
        if not torch.isfinite(p.grad).all():
            raise AssertionError(f"parameter {name!r} received a non-finite gradient")
        if p.grad.abs().sum() == 0:
            raise AssertionError(f"parameter {name!r} received an all-zero gradient")
    return report


def tiny_multiscale(channels: int = 2, height: int = 8, width: int = 4, num_classes: Optional[int] = None,
                    hidden: int = 8):
    """A test fixture: a two-level Glow-style multi-scale bijector (squeeze, one step, split to a learned
    gaussian; squeeze, one step, learned top gaussian, class-conditional with `num_classes`) on inputs
    (B, channels, height, width), height and width divisible by 4. Small enough for `check_bijector`:

        check_bijector(tiny_multiscale(num_classes=3), (2, 2, 8, 4), context=torch.tensor([0, 2]))
    """
    from nfzoo.flows.bijectors import (
        ActNorm,
        AffineCoupling,
        Composite,
        GaussianSplit,
        InvConv1x1,
        Level,
        MultiScale,
        TopGaussian,
    )

    c1 = channels * 4
    lv1 = Level([Composite([ActNorm(c1), InvConv1x1(c1), AffineCoupling(c1, hidden)])], squeeze=True,
                split=GaussianSplit(c1 // 2, c1 - c1 // 2), keep_channels=c1 // 2)
    c2 = (c1 // 2) * 4
    lv2 = Level([Composite([ActNorm(c2), InvConv1x1(c2), AffineCoupling(c2, hidden)])], squeeze=True)
    return MultiScale([lv1, lv2], top=TopGaussian((c2, height // 4, width // 4), num_classes))
