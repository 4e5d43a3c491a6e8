"""Every registered bijector (core and plugins) passes the testing kit; the classic architectures are
invertible with exact log-determinants; the spline is monotonic with the right inverse."""
import pytest
import torch

import nfzoo
from nfzoo.registry.plugins import get_registry
from nfzoo.testing import check_bijector


def _bijector_entries():
    return get_registry().list("bijectors")


@pytest.mark.parametrize("entry", _bijector_entries(), ids=lambda e: e.name)
def test_registered_bijector_passes_the_kit(entry):
    assert "example" in entry.metadata, f"{entry.name} must register example=(kwargs, input_shape)"
    kwargs, shape = entry.metadata["example"]
    ctx = None
    spec = entry.metadata.get("context")
    if spec and spec.startswith("labels:"):
        ctx = torch.arange(shape[0]) % int(spec.split(":")[1])
    report = check_bijector(entry.load()(**kwargs), shape, ctx)
    assert report["round_trip_err"] < 1e-8


@pytest.mark.parametrize("arch", ["nice", "realnvp", "glow", "nsf"])
@pytest.mark.parametrize("conditional", [False, True])
def test_architectures_are_exact_bijections(arch, conditional):
    m = nfzoo.create_model(arch, image_shape=(1, 8, 4), levels=2, steps=2, hidden=8,
                           num_classes=3 if conditional else None)
    ctx = torch.tensor([0, 2]) if conditional else None
    check_bijector(m.bijector, (2, 1, 8, 4), ctx)


def test_kit_catches_a_wrong_logdet():
    from nfzoo.flows.bijectors import Rescale

    class Wrong(Rescale):
        def forward(self, x, context=None):
            z, ld = super().forward(x)
            return z, ld * 0.5

    with pytest.raises(AssertionError, match="logdet"):
        check_bijector(Wrong((2, 3, 3)), (2, 2, 3, 3))


def test_kit_catches_a_wrong_inverse():
    from nfzoo.flows.bijectors import Rescale

    class Wrong(Rescale):
        def inverse(self, z, context=None):
            x, ld = super().inverse(z)
            return x + 1e-3, ld

    with pytest.raises(AssertionError, match="round trip"):
        check_bijector(Wrong((2, 3, 3)), (2, 2, 3, 3))


def test_kit_catches_a_parameter_without_gradient():
    from nfzoo.flows.bijectors import Rescale

    class Unused(Rescale):
        def __init__(self, shape):
            super().__init__(shape)
            self.unused = torch.nn.Parameter(torch.zeros(3))

    with pytest.raises(AssertionError, match="unused"):
        check_bijector(Unused((2, 3, 3)), (2, 2, 3, 3))


def test_spline_is_monotonic_and_identity_outside_the_bound():
    from nfzoo.flows.bijectors.splines import rational_quadratic_spline

    torch.manual_seed(0)
    x = torch.linspace(-4, 4, 801, dtype=torch.float64)
    k = 5
    w, h, d = (torch.randn(1, k, dtype=torch.float64).expand(801, k),
               torch.randn(1, k, dtype=torch.float64).expand(801, k),
               torch.randn(1, k - 1, dtype=torch.float64).expand(801, k - 1))
    y, ld = rational_quadratic_spline(x, w, h, d, bound=3.0)
    assert (y[1:] > y[:-1]).all()
    outside = x.abs() > 3
    assert torch.equal(y[outside], x[outside]) and (ld[outside] == 0).all()
    xb, ldi = rational_quadratic_spline(y, w, h, d, inverse=True, bound=3.0)
    assert torch.allclose(xb, x, atol=1e-10) and torch.allclose(ld + ldi, torch.zeros_like(ld), atol=1e-10)
    # log-derivative against autograd (element-wise map: the Jacobian is diagonal)
    xg = x.clone().requires_grad_(True)
    yg, _ = rational_quadratic_spline(xg, w, h, d, bound=3.0)
    (grad,) = torch.autograd.grad(yg.sum(), xg)
    assert torch.allclose(torch.log(grad), ld, atol=1e-10)


def test_zero_initialised_couplings_start_as_fixed_maps():
    from nfzoo.flows.bijectors import AdditiveCoupling, AffineCoupling, SplineCoupling

    x = torch.randn(3, 4, 5, 6)
    for layer in (AdditiveCoupling(4, 8), SplineCoupling(4, 8, bins=4)):
        z, ld = layer(x)  # train mode: the nets' ActNorms initialise on this batch
        assert torch.allclose(z, x, atol=1e-6) and torch.allclose(ld, torch.zeros(3), atol=1e-5)
    for floor in (0.0, 0.05):   # Glow's scale sigmoid(0 + 2), bounded below by the floor: f + (1 - f) sigmoid(2)
        z, _ = AffineCoupling(4, 8, scale_floor=floor)(x)
        assert torch.allclose(z[:, :2], x[:, :2])
        s = floor + (1 - floor) * torch.sigmoid(torch.tensor(2.0))
        assert torch.allclose(z[:, 2:], x[:, 2:] * s, atol=1e-6)


def test_channel_coupling_rejects_one_channel_with_a_fix():
    from nfzoo.flows.bijectors import AffineCoupling

    with pytest.raises(ValueError, match="squeeze first"):
        AffineCoupling(1, 8)


def test_glow_with_per_position_split_offsets_is_an_exact_bijection():
    m = nfzoo.create_model("glow", image_shape=(1, 8, 4), levels=2, steps=1, hidden=8, split_bias=True)
    splits = [mod for mod in m.modules() if type(mod).__name__ == "GaussianSplit"]
    assert splits and all(s.position is not None and tuple(s.position.shape) == (1, 4, 4, 2) for s in splits)
    check_bijector(m.bijector, (2, 1, 8, 4))


def test_checkerboard_coupling_refuses_a_one_pixel_image():
    """Found by tests/test_fuzz.py: on a 1x1 image a checkerboard mask keeps every pixel or none, so the
    coupling net reads nothing (its weights got no gradient); it is now a clear error."""
    from nfzoo.errors import UsageError
    from nfzoo.flows.bijectors import AffineCoupling

    for parity in (0, 1):
        bij = AffineCoupling(3, hidden=8, mask="checkerboard", parity=parity)
        with pytest.raises(UsageError, match="at least 2 pixels"):
            bij(torch.randn(2, 3, 1, 1))
    check_bijector(AffineCoupling(3, hidden=8, mask="checkerboard", parity=1), (1, 3, 1, 2))


def test_a_flow_given_images_of_another_size_says_so():
    """Found by tests/test_fuzz.py: a multi-scale flow built for 8x4 images given 4x4 ones failed with a
    tensor-size RuntimeError deep inside; its learned top prior now names the shapes."""
    from nfzoo.errors import UsageError
    from nfzoo.testing import tiny_multiscale

    bij = tiny_multiscale(channels=2, height=8, width=4)
    with pytest.raises(UsageError, match="image_shape"):
        bij(torch.randn(1, 2, 4, 4))
    m = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=2, steps=1, hidden=8)
    with pytest.raises(UsageError, match="shape"):
        m.log_prob(torch.rand(2, 1, 16, 16))
