"""The testing kit on the multi-scale container (squeeze, steps, split to a learned gaussian, learned top
gaussian), conditional and not. The container is a test fixture (nfzoo.testing.tiny_multiscale), not a
registered bijector, so the kit's run over every registered bijector does not reach it: it runs here."""
import pytest
import torch

from nfzoo.registry.plugins import get_registry
from nfzoo.testing import check_bijector, tiny_multiscale


@pytest.mark.parametrize("num_classes", [None, 3])
def test_multiscale_container_passes_the_kit(num_classes):
    shape = (2, 2, 8, 4)
    labels = torch.arange(shape[0]) % 3 if num_classes else None
    report = check_bijector(tiny_multiscale(channels=2, num_classes=num_classes), shape, labels)
    assert report["round_trip_err"] < 1e-8 and "logdet_err" in report


def test_the_fixture_is_not_a_registered_bijector():
    entries = get_registry().list("bijectors")
    assert all(e.target != "nfzoo.testing:tiny_multiscale" for e in entries)
    assert "multiscale" not in {e.name for e in entries}
