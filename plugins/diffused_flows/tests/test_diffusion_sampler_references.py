"""Samples of tiny diffusion models for fixed seeds and options, against the images the code drew before
samplers returned latents (issue 21): the decode moved into FlowModel.sample, the images stayed
bit-identical. `reference_samples.safetensors` holds those images (float32, 3 per case)."""
from pathlib import Path

import pytest
import torch

import nfzoo
from nfzoo.safeio import load_tensors

REFERENCES = Path(__file__).with_name("reference_samples.safetensors")
TINY = {"image_shape": [1, 8, 8], "timesteps": 20, "unet_channels": [8, 16], "unet_groups": 8}
# scale_floor 0: the references predate the bounded coupling scale
MODELS = {"ddpm": {}, "diffused-flows": {"levels": 1, "steps": 1, "hidden": 8, "latent_clip": 3.0,
                                         "flow_options": {"scale_floor": 0.0}}}
# (case, architecture, sampler (None: the model's default), options)
CASES = [
    ("ddpm-default", "ddpm", None, {}),
    ("ddpm-ancestral-7", "ddpm", "ddpm-ancestral", {"steps": 7}),
    ("ddpm-ddim-5", "ddpm", "ddim", {"steps": 5}),
    ("ddpm-ddim-5-eta1", "ddpm", "ddim", {"steps": 5, "eta": 1.0}),
    ("ddpm-dpm-4", "ddpm", "dpm-solver++", {"steps": 4}),
    ("ddpm-core-ancestral", "ddpm", "ancestral", {}),
    ("df-default", "diffused-flows", None, {}),
    ("df-ddim-5-eta05", "diffused-flows", "ddim", {"steps": 5, "eta": 0.5}),
    ("df-dpm-4", "diffused-flows", "dpm-solver++", {"steps": 4}),
    ("df-core-ancestral", "diffused-flows", "ancestral", {}),
]


def reference_model(arch):
    """A tiny model whose every weight is moved off its init by seeded noise (so each weight matters)."""
    torch.manual_seed(0)
    m = nfzoo.create_model(arch, **TINY, **MODELS[arch])
    m.initialize(torch.rand(16, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return m.eval()


@pytest.fixture(scope="module")
def models():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # as the references were drawn: other counts sum floats in another order
    yield {arch: reference_model(arch) for arch in MODELS}
    torch.set_num_threads(threads)


@pytest.mark.parametrize("case,arch,sampler,options", CASES, ids=[c[0] for c in CASES])
def test_samples_are_bit_identical_to_the_pre_change_images(models, case, arch, sampler, options):
    want = load_tensors(REFERENCES)[case]
    got = models[arch].sample(3, sampler=sampler, generator=torch.Generator().manual_seed(7), **options)
    # the same images up to float rounding: a CPU with other vector units sums in another order
    # (~1e-6 apart on an AMD EPYC); a change to the sampling maths moves them by far more
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5, msg=lambda m: f"{case}: {m}")


@pytest.mark.parametrize("options,message", [({"steps": 0}, "from 1 to the model's T = 20"),
                                             ({"eta": 1.5}, "--eta must be a number from 0"),
                                             ({"temperature": 0.7}, "temperature 1 only")])
def test_a_diffusion_sampler_by_name_checks_its_options(models, options, message):
    with pytest.raises(nfzoo.errors.UsageError, match=message):
        models["ddpm"].sample(2, sampler="ddim", **options)
