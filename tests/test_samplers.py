"""Samplers return latents, FlowModel.sample decodes them (issue 21): every registered sampler by name
through `model.sample(n, sampler=NAME, **options)` and `nfzoo.create_sampler`, the images bit-identical
to those the code drew before the change (`sampler_references.safetensors`), and clear refusals."""
from pathlib import Path

import pytest
import torch

import nfzoo
from nfzoo.errors import UnknownNameError, UsageError
from nfzoo.registry.plugins import get_registry
from nfzoo.safeio import load_tensors

REFERENCES = Path(__file__).with_name("sampler_references.safetensors")
TINY = {"image_shape": (1, 8, 4), "levels": 2, "steps": 2, "hidden": 8}
# core architectures (conditional ones with 3 classes) -> the images the ancestral sampler drew before
# glow with scale_floor 0 (the references predate the floor; the floor has its own tests)
CORE = {"glow": {"scale_floor": 0.0}, "glow-c": {"num_classes": 3, "scale_floor": 0.0}, "nice": {}, "realnvp": {},
        "nsf": {}}
Y = torch.tensor([0, 2, 1])
# every registered sampler -> (architecture, config, options) of a tiny model it applies to
DIFFUSION = {"image_shape": [1, 8, 8], "timesteps": 20, "unet_channels": [8, 16], "unet_groups": 8}
GLEM = {"image_shape": (1, 8, 8), "levels": 1, "steps": 1, "hidden": 8, "num_classes": 3, "rfcm_rank": 4}
APPLIES_TO = {
    "ancestral": ("glow", TINY, {}),
    "ddpm-ancestral": ("ddpm", DIFFUSION, {"steps": 4}),
    "ddim": ("ddpm", DIFFUSION, {"steps": 5, "eta": 1.0}),
    "dpm-solver++": ("ddpm", DIFFUSION, {"steps": 4}),
    "rfcm": ("glem", GLEM, {}),
    "tarflow": ("tarflow", {"image_shape": (1, 8, 8), "patch_size": 4, "hidden": 16, "blocks": 2, "layers": 1,
                            "heads": 2}, {}),
}
SAMPLERS = [e.name for e in get_registry().list("samplers")]


def core_model(name):
    """A tiny core model, every weight moved off its init by seeded noise (so each weight matters)."""
    torch.manual_seed(0)
    arch = name.split("-")[0]
    m = nfzoo.create_model(arch, **TINY, **CORE[name])
    y = torch.arange(8) % 3 if m.num_classes else None
    m.initialize(torch.rand(8, 1, 8, 4), y, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return m.eval()


def model_for(sampler):
    arch, config, options = APPLIES_TO[sampler]
    torch.manual_seed(0)
    m = nfzoo.create_model(arch, **config)
    if sampler == "rfcm":
        y = torch.arange(16) % 3
        m.prior.fit_rfcm(m.encode(torch.rand(16, 1, 8, 8), y), y)
    return m.eval(), options


def labels(model, n=3):
    return Y[:n] if model.num_classes else None


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # as the references were drawn: other counts sum floats in another order
    yield
    torch.set_num_threads(threads)


def seeded():
    return torch.Generator().manual_seed(7)


# ------------------------------------------------------------------------ the images stay the same
@pytest.mark.parametrize("name", CORE)
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_core_samples_are_bit_identical_to_the_pre_change_images(one_thread, name, temperature):
    want = load_tensors(REFERENCES)[f"{name}-t{temperature:g}"]
    m = core_model(name)
    for sampler in (None, "ancestral", nfzoo.create_sampler("ancestral")):
        got = m.sample(3, labels(m), temperature=temperature, sampler=sampler, generator=seeded())
        # the same images up to float rounding: a CPU with other vector units sums in another order
        # (1.2e-7 apart on an AMD EPYC); a change to the sampling maths moves them by far more
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5, msg=lambda m: f"{name} {sampler}: {m}")


# ---------------------------------------------------------------- every registered sampler, by name
@pytest.mark.parametrize("name", SAMPLERS)
def test_every_registered_sampler_runs_by_name_and_returns_latents(name):
    assert name in APPLIES_TO, f"add a tiny model that the sampler {name!r} applies to"
    m, options = model_for(name)
    y = labels(m)
    x = m.sample(3, y, sampler=name, generator=seeded(), **options)
    assert x.shape == (3, *m.image_shape) and 0 <= float(x.min()) and float(x.max()) <= 1
    sampler = nfzoo.create_sampler(name)
    sampler.check(m, **options)
    assert torch.equal(x, m.sample(3, y, sampler=sampler, generator=seeded(), **options))
    z = sampler.sample(m, 3, y, generator=seeded(), **options)      # a latent, which the model decodes
    assert z.shape == (3, *m.prior.event_shape) and torch.equal(x, m.decode(z, y))


def test_the_default_sampler_is_the_registered_one_the_model_names():
    m, _ = model_for("ancestral")
    assert m.default_sampler == "ancestral" and m.sampler.name == "ancestral"
    assert torch.equal(m.sample(2, generator=seeded()), m.sample(2, sampler="ancestral", generator=seeded()))


def test_a_sampler_registered_by_a_plugin_is_usable_by_name_and_as_a_default(fresh_registry):
    class Zeros(nfzoo.Sampler):
        """z = 0: the image is the flow's inverse at the prior's mode."""
        name = "zeros"

        def sample(self, model, n, y=None, temperature=1.0, generator=None, **options):
            return torch.zeros(n, *model.prior.event_shape)

    class Mine:
        @nfzoo.hookimpl
        def register_samplers(self, register):
            register("zeros", Zeros, description="the prior's mode")

    fresh_registry.get_registry().register_plugin(Mine(), "mine")
    m, _ = model_for("ancestral")
    want = m.decode(torch.zeros(2, *m.prior.event_shape))
    assert torch.equal(m.sample(2, sampler="zeros"), want)
    m.sampler = "zeros"
    assert isinstance(m.sampler, Zeros) and torch.equal(m.sample(2), want)

    class ZerosByDefault(nfzoo.FlowModel):
        default_sampler = "zeros"

    own = ZerosByDefault(m.bijector, m.prior, m.image_shape)
    assert own.sampler.name == "zeros" and torch.equal(own.sample(2), want)


# ------------------------------------------------------------------------------------- refusals
def test_a_sampler_refuses_a_model_it_does_not_apply_to():
    m, _ = model_for("ancestral")
    with pytest.raises(UsageError, match="takes no options"):
        m.sample(2, sampler="ancestral", steps=5)
    with pytest.raises(UsageError, match="must be a registered name or an nfzoo.Sampler"):
        m.sample(2, sampler=3)
    refusals = {"ddpm-ancestral": "diffusion prior", "ddim": "diffusion prior",
                "dpm-solver++": "diffusion prior", "rfcm": "GLEM model", "tarflow": "TarFlow model"}
    for name in SAMPLERS:
        if name != "ancestral":
            with pytest.raises(UsageError, match=refusals[name]):
                m.sample(2, sampler=name, **APPLIES_TO[name][2])


def test_create_sampler_builds_by_name_and_names_the_closest_for_a_typo():
    assert isinstance(nfzoo.create_sampler("ancestral"), nfzoo.Sampler)
    with pytest.raises(UnknownNameError, match="unknown sampler 'ancestrl'. Did you mean: ancestral"):
        nfzoo.create_sampler("ancestrl")
    m, _ = model_for("ancestral")
    with pytest.raises(UnknownNameError, match="ancestral"):
        m.sample(2, sampler="ancestrl")


# ----------------------------------------------------------------------------------- conditioning
def test_context_is_the_checked_labels_of_a_conditional_model():
    m = nfzoo.create_model("glow", **TINY, num_classes=3)
    assert torch.equal(m.context(torch.tensor([0, 2]), 2), torch.tensor([0, 2]))
    assert torch.equal(m.context(1, 3), torch.tensor([1, 1, 1]))
    with pytest.raises(UsageError, match="class-conditional .3 classes.: pass labels y"):
        m.context(None, 2)
    for bad in (torch.tensor([0, 3]), torch.tensor([-1, 0]), torch.tensor([0, 1, 2])):
        with pytest.raises(UsageError, match=r"labels must be 2 integers in \[0, 2\]"):
            m.context(bad, 2)
    assert nfzoo.create_model("glow", **TINY).context(None, 2) is None


def test_chunked_generation_takes_a_sampler_among_its_options():
    from nfzoo.flows.generation import generate_all

    m, _ = model_for("ancestral")
    want = m.sample(3, generator=seeded())
    assert torch.equal(generate_all(m, 3, seed=7, options={"sampler": "ancestral"}), want)
    assert torch.equal(generate_all(m, 3, seed=7), want)
