"""Samples of tiny GLEM models for fixed seeds, against the images the code drew before samplers returned
latents (issue 21): the decode moved into FlowModel.sample, the images stayed bit-identical.
`reference_samples.safetensors` holds those images (float32) and the labels read from CE codes."""
from pathlib import Path

import pytest
import torch

import nfzoo
from nfzoo.safeio import load_tensors

REFERENCES = Path(__file__).with_name("reference_samples.safetensors")
MODELS = {
    "glem": {"image_shape": (1, 8, 8), "levels": 1, "steps": 2, "hidden": 8, "num_classes": 3,
             "rfcm_rank": 4, "scale_floor": 0.0},
    "glem-ce": {"image_shape": (1, 8, 8), "levels": 1, "steps": 1, "hidden": 8, "num_classes": 3,
                "rfcm_rank": 2, "encoding": "ce", "scale_floor": 0.0},
}   # scale_floor 0: the references predate the bounded coupling scale
Y = [0, 2, 1]
# (case, model, sampler (None: the model's default), temperature)
CASES = [("glem-default", "glem", None, 1.0), ("glem-default-t07", "glem", None, 0.7),
         ("glem-ancestral", "glem", "ancestral", 1.0), ("glem-rfcm", "glem", "rfcm", 1.0),
         ("glem-rfcm-t07", "glem", "rfcm", 0.7), ("ce-default", "glem-ce", None, 1.0),
         ("ce-rfcm", "glem-ce", "rfcm", 1.0)]


def reference_model(name):
    """A tiny glem model, every weight moved off its init by seeded noise, RFCM fitted on noise."""
    torch.manual_seed(0)
    m = nfzoo.create_model("glem", **MODELS[name])
    y = torch.arange(16) % 3
    m.initialize(torch.rand(16, 1, 8, 8), y)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    m.eval()
    with torch.no_grad():
        x = torch.rand(16, 1, 8, 8, generator=g)
        m.prior.fit_rfcm(m.encode(x, y if m.code_rows else None), y)
    return m


@pytest.fixture(scope="module")
def models():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # as the references were drawn: other counts sum floats in another order
    yield {name: reference_model(name) for name in MODELS}
    torch.set_num_threads(threads)


@pytest.mark.parametrize("case,name,sampler,temperature", CASES, ids=[c[0] for c in CASES])
def test_samples_are_bit_identical_to_the_pre_change_images(models, case, name, sampler, temperature):
    want = load_tensors(REFERENCES)[case]
    got = models[name].sample(3, torch.tensor(Y), temperature=temperature, sampler=sampler,
                              generator=torch.Generator().manual_seed(7))
    # the same images up to float rounding: a CPU with other vector units sums in another order
    # (~1e-6 apart on an AMD EPYC); a change to the sampling maths moves them by far more
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5, msg=lambda m: f"{case}: {m}")


def test_sample_with_labels_is_bit_identical_to_the_pre_change_images(models):
    refs = load_tensors(REFERENCES)
    images, labels = models["glem-ce"].sample_with_labels(3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(images, refs["ce-with-labels"], rtol=0, atol=1e-5)
    assert torch.equal(labels, refs["ce-with-labels-y"])
