"""nfzoo-cinc: the CInC conv, its inverse back-ends (wavefront, Triton, sequential), FInC, cinc-flow."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nfzoo.testing import check_bijector
from nfzoo_cinc.conv import CInCConv2d, FInCUnit, MaskedKernel
from nfzoo_cinc.solve import conv_tl, conv_tl_transposed, dense_solve, sequential_solve, solve, wavefront_solve

HERE = Path(__file__).resolve().parent
PLUGIN = HERE.parent


def random_weight(c, k=3, std=0.1, dtype=torch.float64, seed=0, lower=False):
    """A well-conditioned CInC weight: triangular own tap, diagonal in [1, 2)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(c, c, k, k, generator=g, dtype=dtype) * std
    u = torch.triu(w[:, :, -1, -1]) if not lower else torch.tril(w[:, :, -1, -1])
    u.diagonal().copy_(1 + torch.rand(c, generator=g, dtype=dtype))
    w[:, :, -1, -1] = u
    return w


SHAPES = [(1, 4, 5, 7), (3, 4, 5, 7), (3, 3, 1, 9), (2, 2, 9, 1), (1, 5, 1, 1), (3, 6, 6, 6)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dilation,k", [(1, 3), (2, 3), (1, 2)])
def test_wavefront_matches_the_sequential_oracle(shape, dilation, k):
    w = random_weight(shape[1], k)
    x = torch.randn(shape, dtype=torch.float64)
    y = conv_tl(x, w, dilation)
    ref = sequential_solve(y, w, dilation)
    torch.testing.assert_close(ref, x, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(wavefront_solve(y, w, dilation), ref, atol=1e-10, rtol=1e-10)
    yt = conv_tl_transposed(x, w, dilation)
    torch.testing.assert_close(wavefront_solve(yt, w, dilation, transpose=True), x, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(sequential_solve(yt, w, dilation, transpose=True), x, atol=1e-10, rtol=1e-10)


def test_transposed_conv_is_the_adjoint():
    w = random_weight(3)
    x, g = torch.randn(2, 3, 4, 6, dtype=torch.float64), torch.randn(2, 3, 4, 6, dtype=torch.float64)
    assert torch.allclose((conv_tl(x, w) * g).sum(), (x * conv_tl_transposed(g, w)).sum())


def test_float32_wavefront_close_to_oracle_and_dense():
    w = random_weight(4, dtype=torch.float32)
    y = torch.randn(3, 4, 5, 7)
    ref = sequential_solve(y.double(), w.double()).float()
    torch.testing.assert_close(wavefront_solve(y, w), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dense_solve(y.double(), w.double()).float(), ref, atol=1e-5, rtol=1e-5)


def test_lower_triangular_own_tap_is_solved_too():
    w = random_weight(4, lower=True)
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    torch.testing.assert_close(solve(conv_tl(x, w), w), x)


def test_singular_or_non_triangular_own_tap_is_refused():
    w = random_weight(3)
    w[1, 1, -1, -1] = 0
    with pytest.raises(ValueError, match="singular"):
        solve(torch.randn(1, 3, 4, 4, dtype=torch.float64), w)
    w = random_weight(3)
    w[2, 0, -1, -1] = w[0, 2, -1, -1] = 0.5
    with pytest.raises(ValueError, match="triangular"):
        solve(torch.randn(1, 3, 4, 4, dtype=torch.float64), w)
    with pytest.raises(ValueError, match="backend"):
        solve(torch.randn(1, 3, 4, 4, dtype=torch.float64), random_weight(3), backend="cython")


@pytest.mark.parametrize("cls,channels", [(CInCConv2d, 4), (FInCUnit, 8)])
@pytest.mark.parametrize("shape", [(1, 5, 7), (3, 5, 7), (1, 1, 9), (3, 1, 9)])
def test_kit_on_non_square_inputs(cls, channels, shape):
    b, h, w = shape
    check_bijector(cls(channels), (b, channels, h, w))


def test_logdet_is_hw_sum_log_diag_and_diagonal_cannot_vanish():
    conv = CInCConv2d(3)
    with torch.no_grad():
        conv.kernel.log_diag.copy_(torch.tensor([-50.0, 0.3, 2.0]))
    x = torch.randn(2, 3, 4, 5)
    _, ld = conv(x)
    assert torch.allclose(ld, torch.full((2,), 20 * (-50.0 + 0.3 + 2.0)))
    assert bool((conv.kernel.diagonal() != 0).all())


def test_masked_entries_get_no_gradient_and_stay_zero():
    k = MaskedKernel(4)
    opt = torch.optim.SGD(k.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (k() ** 2).sum().backward()
        assert torch.equal(k.raw.grad * (1 - k.mask), torch.zeros_like(k.raw))
        opt.step()
    own = k()[:, :, -1, -1]
    assert torch.equal(torch.tril(own, -1), torch.zeros_like(own))


def test_finc_unit_needs_channels_divisible_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        FInCUnit(6)


def test_finc_corners_pad_from_four_sides():
    unit = FInCUnit(4).double()
    x = torch.zeros(1, 4, 5, 5, dtype=torch.float64)
    x[:, :, 2, 2] = 1.0  # an impulse in the middle: each group spreads away from its own corner
    z, _ = unit(x)
    nz = [torch.nonzero(z[0, i].abs() > 0) for i in range(4)]
    assert nz[0][:, 0].min() >= 2 and nz[0][:, 1].min() >= 2      # top-left padded: spreads down-right
    assert nz[1][:, 0].min() >= 2 and nz[1][:, 1].max() <= 2      # top-right: down-left
    assert nz[2][:, 0].max() <= 2 and nz[2][:, 1].min() >= 2      # bottom-left: up-right
    assert nz[3][:, 0].max() <= 2 and nz[3][:, 1].max() <= 2      # bottom-right: up-left


TRITON_CHECK = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from test_cinc import random_weight
from nfzoo_cinc.solve import sequential_solve
from nfzoo_cinc.triton_solve import triton_solve
out = []
for shape, dtype, k, dil, transpose in [((3, 4, 5, 7), torch.float32, 3, 1, False),
                                       ((1, 4, 5, 7), torch.float32, 3, 1, True),
                                       ((3, 3, 1, 9), torch.float64, 3, 2, False),
                                       ((2, 5, 4, 3), torch.float64, 2, 1, True)]:
    w = random_weight(shape[1], k, dtype=dtype, std=0.05)
    y = torch.randn(shape, dtype=dtype)
    ref = sequential_solve(y.double(), w.double(), dil, transpose)
    for kernel in (["dot", "fma"] if dtype == torch.float32 else ["fma"]):
        got = triton_solve(y, w, dil, transpose, kernel=kernel)
        out.append([list(shape), str(dtype) + kernel, transpose, (got.double() - ref).abs().max().item()])
print(json.dumps(out))
"""


def test_triton_kernel_matches_the_oracle_under_the_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-c", TRITON_CHECK, str(HERE)], capture_output=True, text=True,
                         env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for shape, dtype, transpose, err in json.loads(res.stdout.strip().splitlines()[-1]):
        tol = 1e-5 if "float32" in dtype else 1e-10
        assert err < tol, (shape, dtype, transpose, err)


def test_cinc_flow_is_an_exact_bijection_and_samples():
    import nfzoo

    for coupling in ("quad", "affine"):
        m = nfzoo.create_model("cinc-flow", image_shape=(1, 8, 12), levels=2, steps=1, hidden=8,
                               coupling=coupling)
        check_bijector(m.bijector, (3, 1, 8, 12))
        imgs = m.sample(2, generator=torch.Generator().manual_seed(0))
        assert imgs.shape == (2, 1, 8, 12) and torch.isfinite(imgs).all()


def test_cinc_flow_rejects_an_unknown_coupling():
    import nfzoo
    from nfzoo.errors import ConfigError

    with pytest.raises(ConfigError, match="coupling"):
        nfzoo.create_model("cinc-flow", image_shape=(1, 8, 8), coupling="cubic")


def test_dense_solve_is_used_only_by_the_bench():
    root = PLUGIN.parents[1]
    users = []
    for path in list(root.glob("core/**/*.py")) + list(root.glob("plugins/*/nfzoo_*/**/*.py")):
        if "dense_solve" in path.read_text() or "dense_operator" in path.read_text():
            users.append(path.relative_to(root).as_posix())
    assert sorted(users) == ["plugins/cinc/nfzoo_cinc/bench.py", "plugins/cinc/nfzoo_cinc/solve.py"]


def test_registered_from_the_plugin():
    from nfzoo.registry.plugins import get_registry

    reg = get_registry()
    assert reg.get("architectures", "cinc-flow").plugin == "cinc"
    assert reg.get("bijectors", "cinc-conv").plugin == "cinc"
    assert reg.get("benchmarks", "cinc").plugin == "cinc"


def _nfzoo_json(*args):
    res = subprocess.run([sys.executable, "-m", "nfzoo_cli", *args, "--json"], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_uninstalling_the_plugin_removes_its_models_and_breaks_nothing_else(tmp_path):
    listed = {e["name"]: e for e in _nfzoo_json("list")}
    assert listed["cinc-flow"]["plugin"] == "cinc" and listed["quad-flow"]["plugin"] == "quad"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    res = subprocess.run([*pip, "uninstall", "-y", "nfzoo-cinc"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    try:
        names = {e["name"] for e in _nfzoo_json("list")}
        assert "cinc-flow" not in names and {"glow", "nsf", "quad-flow"} <= names
        assert "inverse-flow" not in names      # built on the CInC solve: its plugin reports why
        plugins = {p["name"]: p for p in _nfzoo_json("plugins")}
        assert "cinc" not in plugins and plugins["quad"]["error"] is None
        assert "nfzoo-cinc" in plugins["inverse-flow"]["error"]
        res = subprocess.run([sys.executable, "-m", "nfzoo_cli", "sample", "--model", "glow", "-n", "4",
                              "--out", str(tmp_path / "glow.png")],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    finally:
        res = subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(PLUGIN)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
    assert "cinc-flow" in {e["name"] for e in _nfzoo_json("list")}


# ----------------------------------------------------------------------------- on a GPU (skipped elsewhere)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the compiled Triton kernel)")


@cuda
@pytest.mark.parametrize("shape", [(3, 4, 5, 7), (1, 4, 5, 7), (3, 3, 1, 9), (2, 2, 9, 1), (2, 12, 32, 32),
                                   (4, 48, 16, 16), (2, 5, 33, 17)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("dilation,k", [(1, 3), (2, 3), (1, 2)])
def test_compiled_triton_kernel_matches_the_oracle_on_cuda(shape, dtype, transpose, dilation, k):
    pytest.importorskip("triton")
    from nfzoo_cinc.triton_solve import triton_solve

    w = random_weight(shape[1], k, dtype=dtype, std=0.05)
    y = torch.randn(shape, dtype=dtype)
    ref = wavefront_solve(y.double(), w.double(), dilation, transpose)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for kernel in (("dot", "fma") if dtype == torch.float32 else ("fma",)):
        got = triton_solve(y.cuda(), w.cuda(), dilation, transpose, kernel=kernel)
        assert got.is_cuda and got.dtype == dtype
        torch.testing.assert_close(got.cpu().double(), ref, atol=tol, rtol=tol)


@cuda
def test_auto_backend_picks_triton_on_cuda_and_cinc_flow_matches_the_cpu():
    import nfzoo

    m = nfzoo.create_model("cinc-flow", image_shape=(1, 12, 12), levels=2, steps=2, hidden=16,
                           coupling="affine").double()
    x = torch.rand(4, 1, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        m.initialize(x)
        lp_cpu = m.log_prob(x, generator=torch.Generator().manual_seed(1))
        s_cpu = m.bijector.inverse(m.bijector.forward(x)[0])[0]
        m.cuda()
        lp_gpu = m.log_prob(x.cuda(), generator=torch.Generator().manual_seed(1))
        s_gpu = m.bijector.inverse(m.bijector.forward(x.cuda())[0])[0]
    torch.testing.assert_close(lp_gpu.cpu(), lp_cpu, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(s_gpu.cpu(), s_cpu, atol=1e-8, rtol=1e-8)
