"""Fuzzing with hypothesis: every registered bijector over random batch sizes (1 included) and odd,
non-square spatial shapes, in float64 through the testing kit and in float32 for dtype and round trip;
labels contexts at random. A shape a bijector cannot take must be refused with a clear error
(nfzoo's UsageError / ConfigError naming the shape), never a crash deep inside."""
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nfzoo.errors import NfzooError
from nfzoo.plugins import get_registry
from nfzoo.testing import check_bijector

ENTRIES = get_registry().list("bijectors")
FUZZ = settings(max_examples=6, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])


def _build(entry, c, h, w):
    """The registered example's constructor arguments, with any image-size argument set to (h, w)."""
    import inspect

    kwargs, _ = entry.metadata["example"]
    kwargs = dict(kwargs)
    target = entry.load()
    params = inspect.signature(target).parameters
    if "shape" in kwargs:
        kwargs["shape"] = (c, h, w)
    if "height" in params and "width" in params:
        kwargs.update(height=h, width=w)
    return target(**kwargs)


def _context(entry, b, data):
    spec = entry.metadata.get("context")
    if spec and spec.startswith("labels:"):
        k = int(spec.split(":")[1])
        return torch.tensor(data.draw(st.lists(st.integers(0, k - 1), min_size=b, max_size=b)))
    return None


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
@FUZZ
@given(b=st.integers(1, 3), h=st.integers(1, 8), w=st.integers(1, 8), data=st.data())
def test_bijector_over_random_shapes(entry, b, h, w, data):
    _, shape = entry.metadata["example"]
    c = shape[1]
    ctx = _context(entry, b, data)
    try:
        bij = _build(entry, c, h, w)
        x = torch.randn(b, c, h, w, dtype=torch.float64)
        bij.double()(x, ctx)
    except NfzooError as exc:                 # refused: the message must say what is wrong with the shape
        assert any(s in str(exc) for s in ("shape", "divisible", "even", "size", "height", "width")), str(exc)
        assume(False)
    check_bijector(_build(entry, c, h, w), (b, c, h, w), ctx)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
@FUZZ
@given(b=st.integers(1, 3), data=st.data())
def test_bijector_keeps_float32(entry, b, data):
    kwargs, shape = entry.metadata["example"]
    c, h, w = shape[1:]
    ctx = _context(entry, b, data)
    bij = _build(entry, c, h, w)
    x = torch.randn(b, c, h, w)
    bij.train()
    with torch.no_grad():
        bij(x, ctx)                           # data-dependent init
        bij.eval()
        z, ld = bij(x, ctx)
        x2, ld2 = bij.inverse(z, ctx)
    assert z.dtype == x2.dtype == ld.dtype == torch.float32 and ld.shape == (b,)
    assert torch.allclose(x2, x, atol=1e-4, rtol=1e-4)
    assert torch.allclose(ld, -ld2, atol=1e-3, rtol=1e-4)
