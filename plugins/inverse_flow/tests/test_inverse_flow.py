"""nfzoo-inverse-flow: the adjoint backward of the solve, the bijector, and a sampler with no solve."""
import pytest
import torch

import nfzoo
from nfzoo.testing import check_bijector
from nfzoo_cinc import solve as solve_mod
from nfzoo_cinc.solve import conv_tl, wavefront_solve
from nfzoo_inverse_flow.conv import InverseConv2d, inverse_conv_solve


def weight_and_mask(c, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(c, c, 3, 3, generator=g, dtype=torch.float64) * 0.2
    u = torch.triu(w[:, :, -1, -1])
    u.diagonal().copy_(1 + torch.rand(c, generator=g, dtype=torch.float64))
    w[:, :, -1, -1] = u
    mask = torch.ones_like(w)
    mask[:, :, -1, -1] = torch.triu(torch.ones(c, c))
    return w.requires_grad_(True), mask


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 1, 6), (3, 3, 5, 3)])
def test_gradcheck_input_and_weight(shape):
    w, mask = weight_and_mask(shape[1])
    y = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda y, w: inverse_conv_solve(y, w * mask), (y, w))


def test_adjoint_gradients_equal_autograd_through_the_wavefront():
    w, mask = weight_and_mask(4, seed=1)
    y = torch.randn(2, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 4, 6, 5, dtype=torch.float64)
    ga = torch.autograd.grad((inverse_conv_solve(y, w * mask) * g).sum(), (y, w))
    gb = torch.autograd.grad((wavefront_solve(y, w * mask) * g).sum(), (y, w))
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b)


def test_backward_saves_only_the_output_and_the_weight():
    """O(activations): the graph of the solve keeps z and W, not per-tap maps or per-step copies."""
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    w, mask = weight_and_mask(4)
    weight = (w * mask).detach().requires_grad_(True)
    y = torch.randn(2, 4, 16, 16, dtype=torch.float64, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        inverse_conv_solve(y, weight)
    assert sum(saved) == y.numel() + weight.numel()


@pytest.mark.parametrize("shape", [(1, 4, 5, 7), (3, 4, 5, 7), (1, 4, 1, 9), (3, 4, 1, 9)])
def test_kit_on_non_square_inputs(shape):
    check_bijector(InverseConv2d(shape[1]), shape)


def test_inverse_is_one_convolution():
    conv = InverseConv2d(3)
    z = torch.randn(2, 3, 4, 4)
    x, _ = conv.inverse(z)
    torch.testing.assert_close(x, conv_tl(z, conv.weight()))


def _boom(*args, **kwargs):
    raise AssertionError("a solve ran on the sampling path")


def test_sampling_runs_no_solve(monkeypatch):
    m = nfzoo.create_model("inverse-flow", image_shape=(1, 8, 8), levels=2, steps=2, hidden=8)
    m.initialize(torch.rand(4, 1, 8, 8))
    m.eval()
    for name in ("solve", "wavefront_solve", "sequential_solve", "dense_solve"):
        monkeypatch.setattr(solve_mod, name, _boom)
    imgs = m.sample(3, generator=torch.Generator().manual_seed(0))
    assert imgs.shape == (3, 1, 8, 8) and torch.isfinite(imgs).all()
    with pytest.raises(AssertionError, match="sampling path"):  # the normalizing direction does solve
        m.log_prob(torch.rand(2, 1, 8, 8))


def test_inverse_flow_is_an_exact_bijection():
    for coupling in ("affine", "quad"):
        m = nfzoo.create_model("inverse-flow", image_shape=(1, 8, 4), levels=2, steps=1, hidden=8,
                               coupling=coupling)
        check_bijector(m.bijector, (2, 1, 8, 4))


def test_registered_from_the_plugin():
    from nfzoo.registry.plugins import get_registry

    reg = get_registry()
    assert reg.get("architectures", "inverse-flow").plugin == "inverse-flow"
    assert reg.get("benchmarks", "sampling").plugin == "inverse-flow"


def test_the_main_job_samples_the_embedded_default_offline(tmp_path):
    """README's main command: the family name resolves to the zoo's embedded inverse-flow-mnist5k."""
    import os
    import subprocess
    import sys

    from PIL import Image

    out = tmp_path / "samples.png"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
    res = subprocess.run([sys.executable, "-m", "nfzoo_cli", "sample", "--model", "inverse-flow", "-n", "4",
                          "--temperature", "0.7", "--seed", "0", "--out", str(out)],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert Image.open(out).size[0] > 28
    from nfzoo.loading.api import resolve_pretrained

    assert resolve_pretrained("inverse-flow").name == "inverse-flow-mnist5k"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the compiled Triton kernel)")
def test_triton_solve_and_its_adjoint_on_cuda_match_the_torch_path():
    from nfzoo_inverse_flow.conv import inverse_conv_solve

    torch.manual_seed(0)
    c = 6
    w = torch.randn(c, c, 3, 3, dtype=torch.float64) * 0.05
    u = torch.triu(w[:, :, -1, -1])
    u.diagonal().copy_(1 + torch.rand(c, dtype=torch.float64))
    w[:, :, -1, -1] = u
    y = torch.randn(3, c, 9, 13, dtype=torch.float64)
    outs = {}
    for dev, backend in (("cpu", "torch"), ("cuda", "triton")):
        wd = w.clone().to(dev).requires_grad_(True)
        yd = y.clone().to(dev).requires_grad_(True)
        z = inverse_conv_solve(yd, wd, 1, backend)
        (z * torch.linspace(-1, 1, z.numel(), dtype=z.dtype, device=dev).view_as(z)).sum().backward()
        outs[dev] = (z.detach().cpu(), yd.grad.cpu(), wd.grad.cpu())
    for a, b in zip(outs["cpu"], outs["cuda"]):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)
