"""Issue 41: a training step computes with fused forms (`nfzoo.flows.interfaces.fused_training`): each conv -
ActNorm pair of a coupling net and the output scale as one conv, the 1x1 conv as a matrix product, ActNorm and
the LU 1x1 conv as one affine map, channels-last activations on the CPU. They are the same maps as the
layer-by-layer ones (to float64 rounding), with the same gradients; evaluation, sampling and the no-grad forward
of the data-dependent init still compute layer by layer, bit for bit."""
import pytest
import torch

import nfzoo
from nfzoo.flows.bijectors import ActNorm, Composite, CouplingNet, InvConv1x1
from nfzoo.flows.interfaces import fused_training


def _perturbed(module, seed=0, scale=0.05):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _run(module, x, train):
    """Output and parameter gradients of sum(out * w) in train or eval mode."""
    module.train(train)
    module.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out = module(x)
    out = out[0] if isinstance(out, tuple) else out
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    (out * w).sum().backward()
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters()}


def test_fused_training_is_a_training_step_only():
    m = torch.nn.Linear(2, 2)
    assert fused_training(m)
    with torch.no_grad():
        assert not fused_training(m)
    m.eval()
    assert not fused_training(m)


@pytest.mark.parametrize("blocks", [0, 1])
def test_coupling_net_fused_equals_layer_by_layer(blocks):
    torch.manual_seed(0)
    net = CouplingNet(3, 4, hidden=8, blocks=blocks).double()
    x = torch.randn(5, 3, 6, 4, dtype=torch.float64)
    with torch.no_grad():
        net.train()(x)                       # the data-dependent init of the nets' ActNorms
    _perturbed(net)
    out_t, gx_t, gp_t = _run(net, x, train=True)
    out_e, gx_e, gp_e = _run(net, x, train=False)
    assert out_e.abs().max() > 0.1
    torch.testing.assert_close(out_t, out_e, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx_t, gx_e, rtol=1e-12, atol=1e-12)
    assert set(gp_t) == set(gp_e)
    for name in gp_e:
        torch.testing.assert_close(gp_t[name], gp_e[name], rtol=1e-10, atol=1e-12, msg=name)


def test_actnorm_then_lu_conv_fused_equals_the_two_maps():
    torch.manual_seed(1)
    step = Composite([ActNorm(4), InvConv1x1(4)]).double()
    x = torch.randn(6, 4, 3, 5, dtype=torch.float64)
    with torch.no_grad():
        step.train()(x)
    _perturbed(step, scale=0.1)
    fused = step.bijectors[1].forward_after(step.bijectors[0], x)
    z1, ld1 = step.bijectors[0](x)
    z2, ld2 = step.bijectors[1](z1)
    assert fused is not None
    torch.testing.assert_close(fused[0], z2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fused[1], ld1 + ld2, rtol=1e-12, atol=1e-12)
    out_t, gx_t, gp_t = _run(step, x, train=True)
    out_e, gx_e, gp_e = _run(step, x, train=False)
    torch.testing.assert_close(out_t, out_e, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gx_t, gx_e, rtol=1e-12, atol=1e-12)
    for name in gp_e:
        torch.testing.assert_close(gp_t[name], gp_e[name], rtol=1e-10, atol=1e-12, msg=name)


def test_no_fused_form_before_the_actnorm_is_initialised():
    an, conv = ActNorm(4), InvConv1x1(4)
    x = torch.randn(8, 4, 2, 2) * 3 + 1
    assert conv.forward_after(an, x) is None            # the init must see the ActNorm's own input
    assert conv.forward_after(InvConv1x1(4), x) is None  # only an ActNorm before it
    step = Composite([an, conv]).train()
    step(x)
    assert int(an.initialized) == 1
    torch.testing.assert_close(an.bias.detach().view(-1), -x.mean((0, 2, 3)))


def test_loading_an_uninitialised_state_initialises_again():
    an = ActNorm(3).train()
    fresh = {k: v.clone() for k, v in an.state_dict().items()}
    an(torch.randn(16, 3, 2, 2) * 5)
    assert not an.needs_init()
    an.load_state_dict(fresh)                            # initialized = 0 again
    assert an.needs_init()
    x = torch.randn(16, 3, 2, 2) * 2 + 7
    an(x)
    torch.testing.assert_close(an.bias.detach().view(-1), -x.mean((0, 2, 3)))


@pytest.mark.parametrize("arch", ["glow", "realnvp", "nice", "nsf"])
def test_training_step_gradients_equal_the_layer_by_layer_ones(arch):
    torch.manual_seed(0)
    m = nfzoo.create_model(arch, image_shape=(1, 8, 8), levels=2, steps=2, hidden=8)
    x = torch.rand(16, 1, 8, 8)
    m.initialize(x, generator=torch.Generator().manual_seed(1))
    m = _perturbed(m.double(), scale=0.01)
    res = {}
    for train in (True, False):
        m.train(train)
        m.zero_grad(set_to_none=True)
        lp = m.log_prob(x.double(), generator=torch.Generator().manual_seed(2))
        lp.sum().backward()
        res[train] = (lp.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
    torch.testing.assert_close(res[True][0], res[False][0], rtol=1e-12, atol=1e-9)
    assert set(res[True][1]) == set(res[False][1])
    for name, g in res[False][1].items():
        torch.testing.assert_close(res[True][1][name], g, rtol=1e-9, atol=1e-9, msg=name)


def test_the_no_grad_init_forward_is_layer_by_layer_bit_for_bit():
    torch.manual_seed(0)
    net = CouplingNet(2, 4, hidden=8, blocks=1)
    x = torch.randn(4, 2, 4, 4)
    with torch.no_grad():
        net.train()(x)
        _perturbed(net)
        a = net.train()(x)
        b = net.eval()(x)
    assert torch.equal(a, b)
