"""nfzoo-quad: Quad-coupling and quad-flow."""
import pytest
import torch

from nfzoo.testing import check_bijector
from nfzoo_quad.coupling import QuadCoupling, split_sizes


@pytest.mark.parametrize("channels", [4, 5, 8])
@pytest.mark.parametrize("shape", [(1, 5, 7), (3, 5, 7), (1, 1, 9), (3, 1, 9)])
def test_kit_on_non_square_inputs(channels, shape):
    b, h, w = shape
    check_bijector(QuadCoupling(channels, hidden=8), (b, channels, h, w))


def test_split_sizes():
    assert split_sizes(4) == [1, 1, 1, 1]
    assert split_sizes(6) == [2, 2, 1, 1]
    assert sum(split_sizes(13)) == 13


def _perturbed(channels=4, hidden=8):
    q = QuadCoupling(channels, hidden).double()
    with torch.no_grad():
        for p in q.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return q


def test_structure_first_block_passes_and_block_k_reads_only_blocks_before_it():
    q = _perturbed(4)
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: q(t)[0], x).reshape(36, 36)
    block = lambda i: slice(9 * i, 9 * (i + 1))  # noqa: E731
    assert torch.equal(jac[block(0), block(0)], torch.eye(9, dtype=torch.float64))
    for i in range(4):
        for j in range(i + 1, 4):
            assert torch.equal(jac[block(i), block(j)], torch.zeros(9, 9, dtype=torch.float64))
    for i in range(1, 4):  # the diagonal blocks are the sigmoid scales, in (0, 1)
        d = torch.diagonal(jac[block(i), block(i)])
        assert bool(((d > 0) & (d < 1)).all())


@pytest.mark.parametrize("floor", [0.0, 0.05])
def test_zero_init_starts_as_constant_scale(floor):
    q = QuadCoupling(4, 8, scale_floor=floor)
    x = torch.randn(2, 4, 5, 5)
    z, ld = q(x)
    s = floor + (1 - floor) * torch.sigmoid(torch.tensor(2.0))     # the thesis's sigmoid(2) at floor 0
    torch.testing.assert_close(z[:, 1:], x[:, 1:] * s)
    torch.testing.assert_close(ld, torch.full((2,), 75 * torch.log(s).item()))


def test_the_floored_sequential_inverse_stays_finite():
    q = QuadCoupling(4, 8)                      # default floor 0.05
    with torch.no_grad():
        for net in q.nets:
            net.out.conv.bias.fill_(-1e4)       # every scale logit far below 0: Glow's scale would be ~0
    x, _ = q.inverse(torch.randn(2, 4, 5, 5))
    assert torch.isfinite(x).all()


def test_needs_four_channels_and_says_how_to_fix():
    with pytest.raises(ValueError, match="squeeze"):
        QuadCoupling(3)


def test_quad_flow_round_trip_and_registration():
    import nfzoo
    from nfzoo.registry.plugins import get_registry

    assert get_registry().get("architectures", "quad-flow").plugin == "quad"
    m = nfzoo.create_model("quad-flow", image_shape=(1, 8, 4), levels=2, steps=1, hidden=8)
    check_bijector(m.bijector, (2, 1, 8, 4))
    from nfzoo.errors import ConfigError

    with pytest.raises(ConfigError, match="blocks"):
        nfzoo.create_model("quad-flow", image_shape=(1, 8, 8), blocks=1)
