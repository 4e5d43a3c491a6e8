"""finc-flow: the FInC unit in Glow's skeleton, registered by the cinc plugin."""
import pytest
import torch

import nfzoo
from nfzoo.testing import check_bijector
from nfzoo_cinc import FInCUnit


@pytest.mark.parametrize("coupling", ["affine", "quad"])
def test_finc_flow_passes_the_kit_and_samples(coupling):
    m = nfzoo.create_model("finc-flow", image_shape=(1, 8, 12), levels=2, steps=1, hidden=8, coupling=coupling)
    units = [mod for mod in m.modules() if isinstance(mod, FInCUnit)]
    assert [u.group * 4 for u in units] == [4, 8]          # one unit per step, at 4 then 8 channels
    check_bijector(m.bijector, (3, 1, 8, 12))
    imgs = m.sample(2, generator=torch.Generator().manual_seed(0))
    assert imgs.shape == (2, 1, 8, 12) and torch.isfinite(imgs).all()


def test_finc_flow_samples_the_same_with_the_sequential_solve():
    torch.manual_seed(0)
    wave = nfzoo.create_model("finc-flow", image_shape=(3, 8, 8), levels=2, steps=1, hidden=8, backend="torch")
    seq = nfzoo.create_model("finc-flow", image_shape=(3, 8, 8), levels=2, steps=1, hidden=8,
                             backend="sequential")
    with torch.no_grad():
        for u in (mod for mod in wave.modules() if isinstance(mod, FInCUnit)):   # off the identity init
            for k in u.kernels:
                k.raw.normal_(0, 0.1)
        seq.load_state_dict(wave.state_dict())
        a = wave.eval().sample(3, generator=torch.Generator().manual_seed(1))
        b = seq.eval().sample(3, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_finc_flow_is_registered_by_the_cinc_plugin():
    from nfzoo.registry.plugins import get_registry

    assert get_registry().get("architectures", "finc-flow").plugin == "cinc"
    assert "finc-flow" in nfzoo.list_models("finc*")
