"""Samples a user can trust (issue 22): no zoo model returns a non-finite pixel from any sampler that
applies to it; the bounded coupling scale that makes the inverse stable; noise augmentation and the
denoising step; the measured sampling defaults a model carries."""
import json
import math

import pytest
import torch

import nfzoo
from nfzoo.errors import ConfigError, UsageError
from nfzoo.flows.bijectors.coupling import AffineCoupling, sigmoid_log_scale
from nfzoo.flows.generation import generate, sampling_labels
from nfzoo.flows.interfaces import Bijector
from nfzoo.flows.model import FlowModel
from nfzoo.flows.priors import StandardNormal
from nfzoo.loading.pretrained import resolve_pretrained
from nfzoo.registry.plugins import get_registry
from nfzoo.testing import check_bijector

TEMPERATURES = (0.5, 0.7, 1.0)


def zoo_models():
    return [e.name for e in get_registry().list("pretrained")
            if e.metadata.get("kind", "flow") == "flow" and resolve_pretrained(e.name).path]


DIFFUSION_STEPS = {"ddim": 10, "dpm-solver++": 10, "ddpm-ancestral": 25}


def applicable(model, temperature):
    """(name, options) of every registered sampler that runs on `model` at `temperature`, with small step
    counts for the diffusion samplers (their full schedules are the same maths, 40-100x longer). On a
    diffusion model the core's `ancestral` is the prior's own 1000-step ancestral sampler, the same maths as
    `ddpm-ancestral`, which runs here respaced."""
    out = []
    diffusion = getattr(model.prior, "temperature_one_only", False)
    for entry in get_registry().list("samplers"):
        if diffusion and entry.name == "ancestral":
            continue
        options = {"steps": DIFFUSION_STEPS[entry.name]} if entry.name in DIFFUSION_STEPS else {}
        try:
            nfzoo.create_sampler(entry.name).check(model, temperature=temperature, **options)
        except UsageError:
            continue
        out.append((entry.name, options))
    return out


@pytest.fixture(scope="module")
def loaded():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = nfzoo.load(name)
        return cache[name]
    return get


@pytest.mark.parametrize("name", zoo_models())
def test_no_zoo_model_samples_a_non_finite_pixel(loaded, name):
    """The CI-sized version of docs/results/samples (10,000 samples per model, sampler and temperature
    there): 200 samples per flow sampler and temperature, 8 per diffusion sampler (temperature 1 only)."""
    m = loaded(name)
    ran = 0
    for t in TEMPERATURES:
        for sampler, options in applicable(m, t):
            n = 8 if getattr(m.prior, "temperature_one_only", False) else 200
            labels = sampling_labels(m, n).labels
            bad = 0
            for _, x, _ in generate(m, n, labels, t, seed=1, options={"sampler": sampler, **options}):
                bad += int((~torch.isfinite(x.flatten(1)).all(1)).sum())
                assert float(x.min()) >= 0 and float(x.max()) <= 1
            assert bad == 0, f"{name}: {bad} of {n} samples non-finite with {sampler} at T={t}"
            ran += 1
    assert ran >= 1


# ----------------------------------------------------------------------------- the bounded scale
def test_sigmoid_log_scale_is_glows_at_floor_zero_and_bounded_above_it():
    h = torch.linspace(-200, 200, 1001)
    assert torch.equal(sigmoid_log_scale(h, 0.0), torch.nn.functional.logsigmoid(h + 2.0))
    s = sigmoid_log_scale(h, 0.05).exp()
    assert float(s.min()) >= 0.05 * (1 - 1e-6) and float(s.max()) <= 1.0        # float32 rounding
    assert math.isclose(float(s[0]), 0.05, rel_tol=1e-6)           # h -> -inf: exactly the floor
    assert sigmoid_log_scale(torch.zeros(1), 0.05).exp().item() == pytest.approx(0.05 + 0.95 / (1 + math.exp(-2)))


@pytest.mark.parametrize("floor", [0.0, 0.05, 0.5])
def test_a_floored_affine_coupling_passes_the_kit(floor):
    torch.manual_seed(0)
    layer = AffineCoupling(4, 8, scale_floor=floor)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    check_bijector(layer, (3, 4, 6, 5))


def test_the_floored_inverse_amplifies_by_at_most_one_over_the_floor():
    """Whatever the net says (here: scale logits of -1e4, Glow's scale ~ 0), the inverse divides by >= floor."""
    layer = AffineCoupling(2, 4, scale_floor=0.05)
    with torch.no_grad():
        layer.net.out.conv.bias.copy_(torch.tensor([0.0, -1e4]))   # t = 0, h = -1e4
    z = torch.randn(4, 2, 3, 3)
    x, _ = layer.inverse(z)
    assert torch.isfinite(x).all()
    assert float((x[:, 1:] / z[:, 1:]).abs().max()) == pytest.approx(1 / 0.05, rel=1e-5)
    glow = AffineCoupling(2, 4, scale_floor=0.0)
    with torch.no_grad():
        glow.net.out.conv.bias.copy_(torch.tensor([0.0, -1e4]))
    assert not torch.isfinite(glow.inverse(z)[0]).all()              # Glow's own scale overflows


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan")])
def test_a_scale_floor_outside_0_1_is_refused(bad):
    with pytest.raises((ValueError, ConfigError), match="scale_floor"):
        nfzoo.create_model("glow", image_shape=(1, 8, 4), levels=1, steps=1, hidden=4, scale_floor=bad)


def test_new_models_get_the_floor_and_old_configs_keep_theirs():
    from nfzoo.flows.bijectors.coupling import DEFAULT_SCALE_FLOOR

    for arch in ("glow", "inverse-flow", "cinc-flow", "quad-flow", "glem"):
        extra = {"num_classes": 3} if arch == "glem" else {}
        m = nfzoo.create_model(arch, image_shape=(1, 8, 8), levels=1, steps=1, hidden=4, **extra)
        floors = {getattr(mod, "scale_floor") for mod in m.modules() if hasattr(mod, "scale_floor")}
        assert floors == {DEFAULT_SCALE_FLOOR}, arch
        assert m.config["scale_floor"] == DEFAULT_SCALE_FLOOR


# ------------------------------------------------------------------------ noise augmentation
class Scale(Bijector):
    """z = a * v: log p(v) = log N(a v; 0, I) + D log a, whose score is -a^2 v."""

    def __init__(self, a):
        super().__init__()
        self.a = a
        self.unused = torch.nn.Parameter(torch.zeros(()))     # a model has a device: one parameter

    def forward(self, x, context=None):
        return self.a * x, x.new_full((x.shape[0],), x[0].numel() * math.log(self.a))

    def inverse(self, z, context=None):
        return z / self.a, z.new_full((z.shape[0],), -z[0].numel() * math.log(self.a))


def test_denoise_is_tweedies_step_with_the_models_own_score():
    m = FlowModel(Scale(2.0), StandardNormal((1, 4, 4)), (1, 4, 4), noise_sigma=0.1)
    v = torch.randn(3, 1, 4, 4)
    torch.testing.assert_close(m.denoise(v), v + 0.1 ** 2 * (-(2.0 ** 2) * v))
    clean = FlowModel(Scale(2.0), StandardNormal((1, 4, 4)), (1, 4, 4))
    assert torch.equal(clean.denoise(v), v)


def test_sampling_denoises_unless_told_not_to():
    m = FlowModel(Scale(2.0), StandardNormal((1, 4, 4)), (1, 4, 4), noise_sigma=0.3)
    g = lambda: torch.Generator().manual_seed(0)            # noqa: E731
    z = m.prior.sample(2, generator=g())
    raw = m.from_flow(z / 2.0)
    assert torch.equal(m.sample(2, generator=g(), denoise=False), raw)
    torch.testing.assert_close(m.sample(2, generator=g()), m.from_flow((z / 2.0) * (1 - 0.09 * 4)))


def test_training_sees_noisy_data_and_bpd_stays_the_clean_one():
    torch.manual_seed(0)
    kw = dict(image_shape=(1, 8, 8), levels=1, steps=1, hidden=4)
    m = nfzoo.create_model("glow", noise_sigma=0.2, **kw)
    x = torch.rand(6, 1, 8, 8)
    m.initialize(x)
    g = lambda: torch.Generator().manual_seed(3)            # noqa: E731
    _, noisy = m.training_loss(x, None, "all", 0, 1, generator=g())
    clean = m.bpd(x, generator=g()).detach()
    assert not torch.allclose(noisy, clean)                  # the loss is on x + sigma * eps
    assert m.training_draws_per_image is None                # gaussian draws too: no per-image count
    plain = nfzoo.create_model("glow", **kw)
    assert plain.training_draws_per_image == plain.dim


@pytest.mark.parametrize("bad", [-1.0, 11.0, float("nan")])
def test_noise_sigma_outside_its_range_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="noise_sigma"):
        nfzoo.create_model("glow", image_shape=(1, 8, 4), levels=1, steps=1, hidden=4, noise_sigma=bad)


# ---------------------------------------------------------------------- measured sampling defaults
def test_sampling_defaults_travel_in_config_json_and_apply(tmp_path):
    m = nfzoo.create_model("glow", image_shape=(1, 8, 4), levels=1, steps=1, hidden=4)
    m.set_sampling({"sampler": "ancestral", "temperature": 0.6, "source": "docs/results/x.json"})
    m.save_pretrained(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "config.json").read_text())
    assert doc["sampling"] == {"sampler": "ancestral", "temperature": 0.6, "source": "docs/results/x.json"}
    back = nfzoo.load(str(tmp_path / "m"))
    assert back.default_temperature == 0.6 and back.sampler.name == "ancestral"
    g = lambda: torch.Generator().manual_seed(0)            # noqa: E731
    assert torch.equal(back.sample(2, generator=g()), back.sample(2, temperature=0.6, generator=g()))


@pytest.mark.parametrize("sampling", [{"temperature": -1}, {"temperature": "hot"}, {"sampler": 3},
                                      {"steps": 4}, {"temperature": True}])
def test_a_bad_sampling_record_is_a_config_error_naming_the_file(tmp_path, sampling):
    m = nfzoo.create_model("glow", image_shape=(1, 8, 4), levels=1, steps=1, hidden=4)
    m.save_pretrained(tmp_path / "m")
    p = tmp_path / "m" / "config.json"
    doc = json.loads(p.read_text())
    doc["sampling"] = sampling
    p.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="config.json"):
        nfzoo.load(str(tmp_path / "m"))


def test_without_a_record_the_temperature_is_one():
    m = nfzoo.create_model("glow", image_shape=(1, 8, 4), levels=1, steps=1, hidden=4)
    assert m.default_temperature == 1.0 and m.sampler.name == "ancestral"


def test_a_split_priors_scale_is_bounded_so_sampling_stays_finite():
    from nfzoo.flows.bijectors.multiscale import SPLIT_LOG_SCALE_BOUND, GaussianSplit

    split = GaussianSplit(2, 2)
    with torch.no_grad():
        split.conv.conv.bias.copy_(torch.tensor([0.0, 500.0, 0.0, -500.0]))   # log sigma +500 and -500
    x, ld = split.inverse(torch.ones(3, 2, 4, 4), context=torch.zeros(3, 2, 4, 4))
    assert torch.isfinite(x).all() and torch.isfinite(ld).all()
    assert float(x[:, 0].max()) == pytest.approx(math.exp(SPLIT_LOG_SCALE_BOUND), rel=1e-5)
    check_bijector(GaussianSplit(2, 2), (3, 2, 4, 4), context=torch.randn(3, 2, 4, 4))
