"""The CInC operator's taps, as both solve back-ends read them (a leaf: it imports no other module of
nfzoo_cinc, so solve.py and triton_solve.py both import it and not each other).

A CInC weight W (C, C, k, k) has an "own" tap U = W[:, :, k-1, k-1], a triangular C x C matrix, and the
other taps R. Both back-ends solve with U^-1 and U^-1 R (see nfzoo_cinc.solve).
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor


def own_tap(weight: Tensor) -> Tensor:
    """U = weight[:, :, -1, -1]: the (C, C) channel mix of a pixel with itself."""
    return weight[:, :, -1, -1]


def is_upper(weight: Tensor) -> bool:
    """Whether the own tap is upper triangular (else it is lower triangular, for an invertible weight)."""
    u = own_tap(weight)
    return torch.equal(torch.tril(u, -1), torch.zeros_like(u))


def check_invertible(weight: Tensor) -> None:
    """Raise a clear error unless the own tap is triangular with a non-zero diagonal."""
    u = own_tap(weight)
    if not (torch.equal(torch.tril(u, -1), torch.zeros_like(u)) or
            torch.equal(torch.triu(u, 1), torch.zeros_like(u))):
        raise ValueError("the own-pixel tap weight[:, :, -1, -1] must be triangular for the CInC solve")
    if bool((torch.diagonal(u) == 0).any()):
        raise ValueError("the own-pixel tap has a zero on its diagonal: the convolution is singular")


def factors(weight: Tensor) -> Tuple[Tensor, Tensor]:
    """(U^-1, U^-1 R): U^-1 (C, C) and the other taps premultiplied by it, as (C, C, k*k) with the own
    tap's column zeroed."""
    check_invertible(weight)
    c, k = weight.shape[0], weight.shape[-1]
    u = own_tap(weight)
    eye = torch.eye(c, dtype=weight.dtype, device=weight.device)
    u_inv = torch.linalg.solve_triangular(u, eye, upper=is_upper(weight))
    rest = weight.reshape(c, c, k * k).clone()
    rest[:, :, -1] = 0
    a = torch.einsum("ij,jkt->ikt", u_inv, rest)
    return u_inv, a
