"""Issue 36: the images of `nfzoo sample` (grid and folder), the gallery's grids and `nfzoo eval --samples`' sample
metrics are bit-identical to what they were before sampling moved into one library pipeline
(pipeline_references.safetensors / .json, written by tests/pipeline_outputs.py before the change)."""
import json

import pipeline_outputs as po
import pytest
import torch
from safetensors.torch import load_file


@pytest.fixture(scope="module")
def references():
    return load_file(str(po.IMAGES))


@pytest.mark.parametrize("source", ["sample", "gallery"])
def test_the_images_are_those_drawn_before(references, source):
    got = po.sample_outputs() if source == "sample" else po.gallery_outputs()
    expected = {k: v for k, v in references.items() if k.startswith("gallery-") == (source == "gallery")}
    assert sorted(got) == sorted(expected)
    for name, x in got.items():
        assert x.dtype == torch.uint8 and torch.equal(x, expected[name]), name


def test_the_gallery_draws_what_nfzoo_sample_draws(references):
    assert torch.equal(references["gallery-inverse-flow"], references["inverse-flow-default"])
    assert torch.equal(references["gallery-glem-per-class"], references["glem-per-class"])
    assert torch.equal(references["gallery-ddpm-ddim4"], references["ddpm-ddim4"])


def test_eval_sample_metrics_are_those_measured_before():
    """The same samples give the same metrics: counts and shares exactly; FID to 1e-9 (its matrix square root
    sums in another order with another number of BLAS threads, a difference of ~1e-14 relative)."""
    expected = json.loads(po.NUMBERS.read_text())["eval"]
    got = po.eval_numbers()
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if key in ("fid", "bpd"):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=0), key
        else:
            assert got[key] == value, key
