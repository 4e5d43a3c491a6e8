"""Capabilities as interfaces (issue 36, item 4): "is this a diffusion prior?" is asked one way, through
`isinstance(model.prior, nfzoo.flows.interfaces.DiffusionPrior)`, by the export, inpainting and scoring. The zoo's
diffusion priors have the capability and its flows' priors do not; a third-party prior that subclasses the
interface is exported (U-Net graph and the runner's DDIM over its own `ddim_schedule()`), inpainted by RePaint
and scored with repeated estimates without any knowledge of its internals; a prior with the same attribute names
that does not subclass it is a flow's prior to all three (nothing is sniffed); and the core's export names no
diffusers scheduler."""
import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import nfzoo
from nfzoo.errors import UsageError
from nfzoo.export import onnx as export
from nfzoo.flows.interfaces import DDIM_SCHEDULE_KEYS, Bijector, DiffusionPrior, Prior
from nfzoo.flows.model import FlowModel
from nfzoo_heads import inpainting, scoring

ROOT = Path(__file__).resolve().parent.parent
# where the question is asked (the export asks it in export_graphs.py; export.py imports its answer)
CALL_SITES = [ROOT / "core" / "nfzoo" / "export" / "graphs.py",
              ROOT / "plugins" / "heads" / "nfzoo_heads" / "inpainting.py",
              ROOT / "plugins" / "heads" / "nfzoo_heads" / "scoring.py"]
EXPORT_FILES = [ROOT / "core" / "nfzoo" / "export" / "onnx.py", ROOT / "core" / "nfzoo" / "export" / "graphs.py"]
DIFFUSION_NAMES = {"schedule", "scheduler", "eps", "clipped_z0", "timesteps", "alphas_cumprod", "ddim_schedule",
                   "check_steps", "unet", "abar", "betas"}
ZOO_DIFFUSION = ["ddpm-mnist5k", "diffused-flows-mnist5k"]
ZOO_FLOWS = ["cinc-flow-mnist5k", "glem-mnist5k", "glow-mnist5k", "inverse-flow-mnist5k", "nsf-mnist5k",
             "quad-flow-mnist5k", "realnvp-mnist5k", "tarflow-mnist5k"]


def is_diffusion_everywhere(model) -> dict:
    """What each call site makes of the model: export's and inpainting's answer, scoring's repeats, the
    export's plan for the sample direction."""
    return {"export": export.is_diffusion(model), "inpainting": inpainting.is_diffusion(model),
            "scoring_repeats": scoring.default_repeats(model),
            "sample_graphs": export.direction_graphs(model)["sample"]}


DIFFUSION = {"export": True, "inpainting": True, "scoring_repeats": 8, "sample_graphs": ["unet", "decode"]}
FLOW = {"export": False, "inpainting": False, "scoring_repeats": 1, "sample_graphs": ["prior", "decode"]}


# ------------------------------------------------------------------------------------------- the zoo
@pytest.mark.parametrize("name", ZOO_DIFFUSION)
def test_the_zoo_diffusion_priors_have_the_capability(name):
    model = nfzoo.load(name)
    assert isinstance(model.prior, DiffusionPrior) and isinstance(model.prior, nfzoo.DiffusionPrior)
    assert is_diffusion_everywhere(model) == DIFFUSION
    schedule = model.prior.ddim_schedule()
    assert list(schedule) == list(DDIM_SCHEDULE_KEYS)
    assert len(schedule["alphas_cumprod"]) == schedule["num_train_timesteps"] == model.prior.timesteps
    np.testing.assert_allclose(schedule["alphas_cumprod"], model.prior.alphas_cumprod().numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ZOO_FLOWS)
def test_the_zoo_flow_priors_do_not(name):
    model = nfzoo.load(name)
    assert not isinstance(model.prior, DiffusionPrior)
    assert is_diffusion_everywhere(model) == FLOW


# ------------------------------------------------------------------------------- a third-party prior
class Identity(Bijector):
    """z = x."""

    def forward(self, x, context=None):
        return x, x.new_zeros(x.shape[0])

    def inverse(self, z, context=None):
        return z, z.new_zeros(z.shape[0])


def _abar(T: int) -> torch.Tensor:
    return torch.cumprod(1 - torch.linspace(0.01, 0.3, T, dtype=torch.float64), 0)


class ThirdPartyDiffusion(DiffusionPrior):
    """A diffusion prior of another plugin: none of nfzoo_diffused_flows' attributes (no `schedule`, no
    `scheduler`, no diffusers), only the interface's methods; `calls` counts them."""

    def __init__(self, event_shape=(1, 4, 4), T: int = 12, clip: float = 1.0):
        super().__init__()
        self.event_shape = tuple(event_shape)
        self._T, self._clip = T, clip
        self._ac = _abar(T)
        self.net = nn.Conv2d(event_shape[0], event_shape[0], 3, padding=1)
        self.calls = {}

    def _count(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1

    @property
    def timesteps(self):
        return self._T

    def alphas_cumprod(self):
        self._count("alphas_cumprod")
        return self._ac

    def eps(self, z, t):
        return 0.1 * self.net(z) * (1 + t.to(z.dtype) / self._T).view(-1, 1, 1, 1)

    def clipped_z0(self, z, t):
        self._count("clipped_z0")
        ab = self._ac.to(z.device)[t].to(z.dtype).view(-1, 1, 1, 1)
        return ((z - (1 - ab).sqrt() * self.eps(z, t)) / ab.sqrt()).clamp(-self._clip, self._clip)

    def check_steps(self, steps):
        self._count("check_steps")
        if steps is None:
            return self._T
        if not 1 <= steps <= self._T:
            raise UsageError(f"steps must be from 1 to {self._T}")
        return steps

    def ddim_schedule(self):
        self._count("ddim_schedule")
        return {"alphas_cumprod": [float(a) for a in self._ac.float()], "final_alpha_cumprod": 1.0,
                "num_train_timesteps": self._T, "timestep_spacing": "trailing", "prediction_type": "epsilon",
                "clip_sample_range": self._clip, "use_clipped_model_output": True, "init_noise_sigma": 1.0}

    def log_prob(self, z, y=None):     # a stand-in for a bound (scoring averages it: it is random)
        noise = torch.randn_like(z)
        return -0.5 * ((z + 0.1 * noise) ** 2).flatten(1).sum(1) - 0.5 * z[0].numel() * math.log(2 * math.pi)

    def sample(self, n, y=None, temperature=1.0, generator=None):
        return torch.randn(n, *self.event_shape, generator=generator)


class LooksLikeDiffusion(Prior):
    """Every attribute the old checks sniffed for (and the interface's names), but not the interface."""

    def __init__(self, event_shape=(1, 4, 4)):
        super().__init__()
        self.event_shape = tuple(event_shape)
        self.schedule = type("Schedule", (), {"T": 10, "abar": _abar(10)})()
        self.timesteps = 10
        self.shift = nn.Parameter(torch.zeros(()))

    def scheduler(self, kind):
        raise AssertionError("a prior that is not a DiffusionPrior was asked for its scheduler")

    eps = clipped_z0 = alphas_cumprod = check_steps = ddim_schedule = scheduler

    def log_prob(self, z, y=None):
        return -0.5 * ((z - self.shift) ** 2).flatten(1).sum(1) - 0.5 * z[0].numel() * math.log(2 * math.pi)

    def sample(self, n, y=None, temperature=1.0, generator=None):
        return torch.randn(n, *self.event_shape, generator=generator) * temperature


def _model(prior) -> FlowModel:
    torch.manual_seed(0)
    m = FlowModel(Identity(), prior, prior.event_shape)
    m.architecture = type(prior).__name__
    return m.eval()


def test_an_incomplete_diffusion_prior_cannot_be_made():
    class Incomplete(DiffusionPrior):
        def eps(self, z, t):
            return z

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_a_third_party_diffusion_prior_is_recognised_by_all_three():
    prior = ThirdPartyDiffusion()
    model = _model(prior)
    assert is_diffusion_everywhere(model) == DIFFUSION
    ddim = export._diffusion_sampling(model)
    assert ddim == {**prior.ddim_schedule(), "steps": 12, "eta": 0.0}
    assert list(ddim) == [*DDIM_SCHEDULE_KEYS, "steps", "eta"]


def test_a_third_party_diffusion_prior_is_inpainted_by_repaint():
    prior = ThirdPartyDiffusion()
    model = _model(prior)
    x = torch.rand(2, 1, 4, 4)
    mask = inpainting.box_mask((1, 4, 4), (1, 1, 3, 3))
    out = inpainting.inpaint(model, x, mask, torch.Generator().manual_seed(0), steps=4, resample=2)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert torch.equal(out * (1 - mask), x * (1 - mask))
    assert prior.calls["check_steps"] == 1 and prior.calls["alphas_cumprod"] == 1
    assert prior.calls["clipped_z0"] == 3 * 2 + 1          # 3 steps with 2 repeats, then the last step
    with pytest.raises(UsageError, match="from 1 to 12"):
        inpainting.inpaint(model, x, mask, steps=13)      # the prior's own check_steps refuses it
    b = scoring.bpd_of(model, x)                           # 8 estimates of the random stand-in, averaged
    assert b.shape == (2,) and torch.isfinite(b).all()


def test_a_third_party_diffusion_prior_is_exported_and_the_runner_runs_its_ddim(tmp_path):
    pytest.importorskip("onnxruntime")
    from nfzoo.export.runner import ExportedModel

    prior = ThirdPartyDiffusion()
    model = _model(prior)
    manifest = export.export_model(model, tmp_path, directions=["sample"], check=2)
    assert manifest["sampling"]["kind"] == "diffusion"
    assert manifest["sampling"]["ddim"] == {**prior.ddim_schedule(), "steps": 12, "eta": 0.0}
    assert manifest["directions"]["sample"] == {"graphs": ["unet", "decode"], "complete": True}
    runner = ExportedModel(tmp_path, threads=1)
    z = np.random.default_rng(0).standard_normal((3, 1, 4, 4)).astype(np.float32)
    t = np.array([0, 5, 11])
    with torch.no_grad():
        np.testing.assert_allclose(runner.eps(z, t), prior.eps(torch.from_numpy(z), torch.from_numpy(t)).numpy(),
                                   atol=1e-5)
    # the runner's DDIM over the prior's schedule, against the same DDIM in torch (float32, eta 0, clip)
    steps = 4
    zt = runner.ddim([z], steps=steps)
    ac = torch.tensor(prior.ddim_schedule()["alphas_cumprod"], dtype=torch.float32)
    ref = torch.from_numpy(z)
    ts = runner.timesteps(steps)
    with torch.no_grad():
        for j, ti in enumerate(ts):
            tt = torch.full((3,), int(ti))
            a_t = ac[ti]
            a_prev = ac[ti - 12 // steps] if ti - 12 // steps >= 0 else torch.tensor(1.0)
            z0 = ((ref - (1 - a_t).sqrt() * prior.eps(ref, tt)) / a_t.sqrt()).clamp(-1, 1)
            e = (ref - a_t.sqrt() * z0) / (1 - a_t).sqrt()
            ref = a_prev.sqrt() * z0 + (1 - a_prev).sqrt() * e
    np.testing.assert_allclose(zt, ref.numpy(), atol=1e-4)


def test_a_schedule_without_every_key_is_refused_before_any_work(tmp_path):
    class Partial(ThirdPartyDiffusion):
        def ddim_schedule(self):
            d = super().ddim_schedule()
            del d["timestep_spacing"]
            return d

    with pytest.raises(UsageError, match="timestep_spacing"):
        export.export_model(_model(Partial()), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_same_attribute_names_without_the_interface_are_a_flow_prior():
    prior = LooksLikeDiffusion()
    model = _model(prior)
    assert not isinstance(prior, DiffusionPrior)
    assert is_diffusion_everywhere(model) == FLOW
    x = torch.rand(1, 1, 4, 4)
    mask = inpainting.box_mask((1, 4, 4), (1, 1, 3, 3))
    with pytest.raises(UsageError, match="repaint needs a model with a diffusion prior"):
        inpainting.inpaint(model, x, mask, method="repaint")
    out = inpainting.inpaint(model, x, mask, iters=2)      # auto: the latent fit of flows
    assert torch.equal(out * (1 - mask), x * (1 - mask))


# ---------------------------------------------------------------------------------- no sniffing left
def _code_words(path: Path):
    """(line, word) for every name, attribute and string constant of the file's code: docstrings and
    comments left out."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                yield node.lineno, f"{getattr(node, 'module', '') or ''}.{alias.name}"


@pytest.mark.parametrize("path", EXPORT_FILES, ids=lambda p: p.name)
def test_the_core_export_names_no_scheduler_and_no_diffusers(path):
    found = [(line, w) for line, w in _code_words(path) if "scheduler" in w.lower() or "diffusers" in w.lower()]
    assert found == []
    assert not [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute) and
                n.attr == "schedule"]


@pytest.mark.parametrize("path", CALL_SITES + EXPORT_FILES[:1], ids=lambda p: p.name)
def test_no_call_site_sniffs_attributes_for_diffusion(path):
    tree = ast.parse(path.read_text(), str(path))
    sniffing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("hasattr", "getattr") and len(node.args) >= 2:
            name = node.args[1]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)) or name.value in DIFFUSION_NAMES:
                sniffing.append((node.lineno, ast.unparse(node)))
    assert sniffing == []
    asks = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and
            n.func.id == "isinstance" and ast.unparse(n.args[1]) == "DiffusionPrior"]
    assert asks or path not in CALL_SITES, f"{path.name} should ask isinstance(..., DiffusionPrior)"
