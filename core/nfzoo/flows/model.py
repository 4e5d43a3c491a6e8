"""FlowModel: preprocessing + bijector + prior + sampler + a JSON-able config.

Images at the boundary are floats in [0, 1] (or uint8), shape (B, C, H, W). They are quantized to 8 bits,
dequantized with uniform noise, x = (k + u) / 256, and mapped into the flow's space ("shift": x - 1/2, as
Glow; "logit": logit(a + (1 - 2a) x), as RealNVP). `log_prob` is the dequantized lower bound on the
log-probability of the 8-bit image in nats, so `bpd = -log_prob / (D ln 2)` includes the discretisation
term and is comparable with the papers.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from nfzoo.constants import CONFIG_NAME, WEIGHTS_NAME
from nfzoo.errors import ConfigError, UsageError
from nfzoo.flows.interfaces import Bijector, Prior, Sampler
from nfzoo.hub.mixin import HubMixin
from nfzoo.safeio import atomic_write_json, load_tensors, save_tensors

LOGIT_ALPHA = 0.05


def to_unit(x: Tensor) -> Tensor:
    """Accept uint8 (0..255) or floats in [0, 1]; return floats in [0, 1]."""
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not torch.is_floating_point(x):
        raise UsageError(f"images must be uint8 or float in [0, 1], got dtype {x.dtype}")
    return x


class FlowModel(nn.Module, HubMixin):
    """Images <-> latents: x in [0, 1] -> dequantize -> to_flow -> bijector -> z ~ prior. `sample` draws
    latents with a sampler (the registry's `default_sampler` unless told otherwise) and decodes them.
    Hub conventions (nfzoo.hub.mixin): `save_pretrained`, `push_to_hub`, `FlowModel.from_pretrained`."""

    default_sampler: str = "ancestral"
    """The registered name of the sampler `sample` uses when given none (a subclass names its own)."""

    def __init__(self, bijector: Bijector, prior: Prior, image_shape,
                 sampler: Union[str, Sampler, None] = None, preprocess: str = "shift",
                 num_classes: Optional[int] = None, noise_sigma: float = 0.0):
        super().__init__()
        if preprocess not in ("shift", "logit"):
            raise ConfigError(f"preprocess must be 'shift' or 'logit', got {preprocess!r}")
        noise_sigma = float(noise_sigma)
        if not (0.0 <= noise_sigma <= 10.0):
            raise ConfigError(f"noise_sigma must be in [0, 10] (0: no noise augmentation), got {noise_sigma}")
        self.noise_sigma = noise_sigma
        self.bijector = bijector
        self.prior = prior
        self.image_shape = tuple(int(s) for s in image_shape)
        self.preprocess = preprocess
        self.num_classes = num_classes
        self._sampler = sampler
        self.architecture: str = ""
        self.config: Dict[str, Any] = {}
        self.sampling: Dict[str, Any] = {}
        """The sampling defaults a trained model ships with, chosen by measurement: {"sampler": a registered
        name, "temperature": T, "options": that sampler's options (e.g. {"steps": 20, "eta": 1.0} for ddim),
        "source": the result file that chose them}; config.json carries them ("sampling"), `sample` and the
        CLI use them when told nothing else (`set_sampling`, `sampling_options`)."""

    @property
    def sampler(self) -> Sampler:
        """The sampler `sample` uses by default: the one set (a Sampler or a registered name), else the
        registry's `default_sampler`, built on first use."""
        if not isinstance(self._sampler, Sampler):
            self._sampler = self.get_sampler(self._sampler or self.sampling.get("sampler")
                                             or self.default_sampler)
        return self._sampler

    @sampler.setter
    def sampler(self, value: Union[str, Sampler]) -> None:
        """Set the default sampler: a registered name or a Sampler."""
        self._sampler = value

    @property
    def default_temperature(self) -> float:
        """The temperature `sample` uses when given none: the measured one in `sampling`, else 1.0."""
        return float(self.sampling.get("temperature", 1.0))

    def set_sampling(self, sampling: Optional[Dict[str, Any]], source: str = "config") -> None:
        """Set the measured sampling defaults ({"sampler", "temperature", "options", "source"}, each optional),
        checked: a ConfigError names `source` and the bad key. None or {} clears them. "options" needs a
        "sampler" (they are that sampler's): names to finite numbers, at most 16 of them."""
        sampling = dict(sampling or {})
        unknown = set(sampling) - {"sampler", "temperature", "options", "source"}
        if unknown:
            raise ConfigError(f"{source}: \"sampling\" has unknown key(s) {', '.join(sorted(unknown))}; it takes "
                              "sampler, temperature, options and source")
        if "options" in sampling:
            opts = sampling["options"]
            if not isinstance(opts, dict) or len(opts) > 16:
                raise ConfigError(f"{source}: sampling.options must be an object of at most 16 sampler options "
                                  f"(e.g. {{\"steps\": 20, \"eta\": 1.0}}), got {opts!r:.80}")
            if opts and "sampler" not in sampling:
                raise ConfigError(f"{source}: sampling.options are a sampler's options: name it in sampling.sampler")
            for k, v in opts.items():
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                if not (isinstance(k, str) and k.isidentifier() and ok):
                    raise ConfigError(f"{source}: sampling.options.{k} must be a finite number under an option "
                                      f"name, got {v!r:.80}")
            sampling["options"] = dict(opts)
        if "sampler" in sampling and not (isinstance(sampling["sampler"], str) and sampling["sampler"]):
            raise ConfigError(f"{source}: sampling.sampler must be a registered sampler's name")
        if "temperature" in sampling:
            t = sampling["temperature"]
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not (0 <= t <= 100):
                raise ConfigError(f"{source}: sampling.temperature must be a number in [0, 100], got {t!r}")
        if "source" in sampling and not isinstance(sampling["source"], str):
            raise ConfigError(f"{source}: sampling.source must be a string (the result file)")
        self.sampling = sampling
        if not isinstance(self._sampler, Sampler) and "sampler" in sampling:
            self._sampler = None       # rebuilt from sampling["sampler"] on first use

    def sampling_options(self, sampler: Union[str, Sampler, None] = None, **given: Any) -> Dict[str, Any]:
        """The options `sample` passes to `sampler` (None: this model's default): the measured ones of
        `sampling` ("options") when that sampler is the measured one, with `given` on top; else `given`.
        `model.sampling_options()` is the shipped setting; `model.sampling_options(steps=50)` changes one."""
        name = sampler if isinstance(sampler, str) else self.get_sampler(sampler).name
        recorded = self.sampling.get("options") or {}
        if recorded and name == self.sampling.get("sampler"):
            return {**recorded, **given}
        return dict(given)

    def get_sampler(self, sampler: Union[str, Sampler, None] = None) -> Sampler:
        """`sampler` as a Sampler: None is this model's default (`self.sampler`), a name is built through
        the registry (`nfzoo.create_sampler`), a Sampler is itself."""
        from nfzoo.flows.samplers import create_sampler

        if sampler is None:
            return self.sampler
        if isinstance(sampler, str):
            return create_sampler(sampler)
        if not isinstance(sampler, Sampler):
            raise UsageError(f"sampler must be a registered name or an nfzoo.Sampler, got {sampler!r}")
        return sampler

    @property
    def dim(self) -> int:
        """Dimensions of one image, C * H * W (bpd's denominator)."""
        return math.prod(self.image_shape)

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.parameters()).device

    # ------------------------------------------------------------- pre/post
    def _check(self, x: Tensor) -> Tensor:
        x = to_unit(x)
        if tuple(x.shape[1:]) != self.image_shape:
            raise UsageError(f"this model takes images of shape {self.image_shape} (C, H, W), got "
                             f"{tuple(x.shape[1:])}")
        return x

    def dequantize(self, x: Tensor, generator: Optional[torch.Generator] = None,
                   noise: bool = True) -> Tensor:
        """[0, 1] images -> 8-bit levels k -> (k + u) / 256 with u ~ U[0, 1) (u = 1/2 without noise)."""
        k = torch.round(self._check(x) * 255.0)
        if noise:
            dev = generator.device if generator is not None else x.device
            u = torch.rand(k.shape, generator=generator, device=dev, dtype=k.dtype).to(k.device)
        else:
            u = torch.full_like(k, 0.5)
        return (k + u) / 256.0

    def to_flow(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """[0, 1] -> the flow's input space, with log|det|."""
        if self.preprocess == "shift":
            return x - 0.5, x.new_zeros(x.shape[0])
        a = LOGIT_ALPHA
        p = a + (1 - 2 * a) * x
        v = torch.log(p) - torch.log1p(-p)
        ld = (math.log(1 - 2 * a) - torch.log(p) - torch.log1p(-p)).reshape(x.shape[0], -1).sum(1)
        return v, ld

    def from_flow(self, v: Tensor) -> Tensor:
        """The flow's input space back to images in [0, 1]: v + 1/2 (`shift`) or
        (sigmoid(v) - alpha) / (1 - 2 alpha) (`logit`), clamped to [0, 1]."""
        if self.preprocess == "shift":
            x = v + 0.5
        else:
            x = (torch.sigmoid(v) - LOGIT_ALPHA) / (1 - 2 * LOGIT_ALPHA)
        return x.clamp(0.0, 1.0)

    def context(self, y: Optional[Tensor], n: int) -> Optional[Tensor]:
        """What the bijector and the prior are conditioned on for n images with labels y: None for an
        unconditional model; for a class-conditional one the (n,) long tensor of labels on the model's
        device (one label is repeated n times). Labels missing or outside [0, num_classes) raise
        UsageError."""
        if self.num_classes is None:
            return None
        if y is None:
            raise UsageError(f"this model is class-conditional ({self.num_classes} classes): pass labels y")
        y = torch.as_tensor(y, device=self.device).long().reshape(-1)
        if y.numel() == 1 and n > 1:
            y = y.expand(n)
        if y.numel() != n or bool((y < 0).any()) or bool((y >= self.num_classes).any()):
            raise UsageError(f"labels must be {n} integers in [0, {self.num_classes - 1}]")
        return y

    # ------------------------------------------------------------ densities
    def log_prob(self, x: Tensor, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
                 noise: bool = True, augment: bool = False) -> Tensor:
        """Dequantized lower bound of log P(8-bit image) in nats, shape (B,). `augment=True` (training of a
        model with `noise_sigma` > 0, TarFlow's noise augmentation) adds N(0, noise_sigma^2) noise in the
        flow's input space after the preprocessing: the density of the noisy data, not of the images."""
        xd = self.dequantize(x, generator=generator, noise=noise)
        v, ld0 = self.to_flow(xd)
        if augment and self.noise_sigma > 0:
            dev = generator.device if generator is not None else v.device
            eps = torch.randn(v.shape, generator=generator, device=dev, dtype=v.dtype).to(v.device)
            v = v + self.noise_sigma * eps
        ctx = self.context(y, x.shape[0])
        z, ld = self.bijector(v, ctx)
        return self.prior.log_prob(z, ctx) + ld + ld0 - self.dim * math.log(256.0)

    def bpd(self, x: Tensor, y: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
            noise: bool = True) -> Tensor:
        """Bits per dimension (8-bit discretisation included), shape (B,)."""
        return -self.log_prob(x, y, generator=generator, noise=noise) / (self.dim * math.log(2.0))

    def encode(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """Images -> latents (deterministic: the centre of each 8-bit bin)."""
        v, _ = self.to_flow(self.dequantize(x, noise=False))
        return self.bijector(v, self.context(y, x.shape[0]))[0]

    def decode(self, z: Tensor, y: Optional[Tensor] = None, denoise: Optional[bool] = None) -> Tensor:
        """Latents -> images in [0, 1]. A model trained with noise augmentation (`noise_sigma` > 0) takes one
        denoising step (`denoise`) before leaving the flow's space, unless denoise=False."""
        ctx = self.context(y, z.shape[0])
        v, _ = self.bijector.inverse(z, ctx)
        if self.noise_sigma > 0 and denoise is not False:
            v = self.denoise(v, y)
        return self.from_flow(v)

    def denoise(self, v: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """TarFlow's denoising step (Zhai et al. 2024, sec. 2.3) in the flow's input space:
        v + sigma^2 * grad_v log p(v), Tweedie's estimate of the clean point from the model's own score
        (one forward and one backward pass; no other network). Identity when noise_sigma is 0."""
        if self.noise_sigma <= 0:
            return v
        ctx = self.context(y, v.shape[0])
        with torch.enable_grad():
            v = v.detach().requires_grad_(True)
            z, ld = self.bijector(v, ctx)
            score, = torch.autograd.grad((self.prior.log_prob(z, ctx) + ld).sum(), v)
        return (v + self.noise_sigma ** 2 * score).detach()

    @torch.no_grad()
    def sample(self, n: int, y: Optional[Tensor] = None, temperature: Optional[float] = None,
               generator: Optional[torch.Generator] = None, sampler: Union[str, Sampler, None] = None,
               denoise: Optional[bool] = None, **options) -> Tensor:
        """n images in [0, 1]: z = sampler.sample(self, n, y, temperature, generator, **options), then
        `decode(z, y)`. `sampler`: a registered name ("ddim"), a Sampler, or None for this model's default;
        `options` go to the sampler (e.g. steps=50, eta=1.0 for ddim), which refuses (UsageError) a model
        or options it does not take: `model.sample(16, sampler="ddim", steps=50, eta=1.0)` on a
        diffusion model. A noise-augmented model (`noise_sigma` > 0) denoises its samples unless
        denoise=False (see `denoise`). temperature None: `default_temperature` (the measured one); the
        measured sampler's options apply under the options given (`sampling_options`)."""
        temperature = self.default_temperature if temperature is None else temperature
        options = self.sampling_options(sampler, **options)
        z = self.get_sampler(sampler).sample(self, n, y=y, temperature=temperature, generator=generator,
                                             **options)
        return self.decode(z.to(self.device), y, denoise=denoise)

    @torch.no_grad()
    def initialize(self, x: Tensor, y: Optional[Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> None:
        """Data-dependent initialisation (ActNorm) from a batch of images."""
        was = self.training
        self.train()
        self.log_prob(x, y, generator=generator)
        self.train(was)

    # ------------------------------------------------------------- training
    # The trainer (nfzoo.training.trainer.Trainer) asks the model how to train it; a plugin's model overrides
    # these to train in phases (GLEM's EM alternation), with another loss, or with per-group lr scales.
    def training_plan(self, n: int, epoch: int, epochs: int,
                      generator: torch.Generator) -> List[Tuple[str, Tensor]]:
        """The phases of one epoch: [(phase name, training-set indices in order)]. Default: one phase
        "all" over the whole shuffled training set."""
        return [("all", torch.randperm(n, generator=generator))]

    def training_loss(self, x: Tensor, y: Optional[Tensor], phase: str, epoch: int, epochs: int,
                      generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """(loss to minimise, per-image bpd) of a training batch. Default: the mean bpd."""
        if self.noise_sigma > 0:     # TarFlow's noise augmentation: the bpd of the noisy data
            bpd = -self.log_prob(x, y, generator=generator, augment=True) / (self.dim * math.log(2.0))
        else:
            bpd = self.bpd(x, y, generator=generator)
        return bpd.mean(), bpd.detach()

    @property
    def training_draws_per_image(self) -> Optional[int]:
        """How many uniform float32 numbers training_loss and bpd draw from their generator per image:
        the dequantization noise, one per dimension. A model whose loss draws other numbers too returns
        None. Distributed training and evaluation use it to give each image the noise it would get on
        one process (nfzoo.distributed). With noise augmentation (gaussian draws too): None."""
        return None if self.noise_sigma > 0 else self.dim

    def phase_parameters(self, phase: str) -> Optional[set]:
        """ids of the parameters that take a step in `phase` (None: all of them)."""
        return None

    def optimizer_groups(self) -> List[Dict[str, Any]]:
        """Optimizer parameter groups; a group's "lr_scale" multiplies the scheduled learning rate."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr_scale": 1.0}]

    def after_training(self, train_set) -> None:
        """Called once after the last epoch, before the final save (default: nothing)."""

    def epoch_metrics(self) -> Dict[str, Any]:
        """Extra numbers for the epoch's record in history.json (default: none)."""
        return {}

    # ---------------------------------------------------------- persistence
    def config_document(self) -> Dict[str, Any]:
        """What config.json holds: library, nfzoo version, architecture and config."""
        from nfzoo import __version__

        doc = {"library": "nfzoo", "nfzoo_version": __version__, "architecture": self.architecture,
               "config": self.config}
        if self.sampling:
            doc["sampling"] = dict(self.sampling)
        return doc

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write config.json and model.safetensors (each atomically) into a directory (HubMixin's hook)."""
        d = Path(save_directory)
        save_tensors(self.state_dict(), d / WEIGHTS_NAME, metadata={"format": "pt", "library": "nfzoo"})
        atomic_write_json(d / CONFIG_NAME, self.config_document())

    def load_weights(self, path: Union[str, os.PathLike], strict: bool = True) -> None:
        """Load a safetensors file of weights into this model, checked against it (strict: every tensor, and
        only those)."""
        tensors = load_tensors(path, device="cpu")
        load_state_strict(self, tensors, source=str(path), strict=strict)


def check_tensors(model: nn.Module, tensors: Dict[str, Tensor], source: str) -> None:
    """Weights that may be loaded into `model`: where the model has a floating-point tensor the file's must
    be floating point (int8 or bool weights are not silently cast) and finite; where it has an integer or
    bool buffer (ActNorm's `initialized`, index buffers) the file's must have that very dtype. A tensor
    that breaks this raises CorruptFileError naming it."""
    from nfzoo.errors import CorruptFileError

    own = model.state_dict()
    for k, v in tensors.items():
        if k not in own:
            continue
        want = own[k].dtype
        if want.is_floating_point or want.is_complex:
            if not (v.dtype.is_floating_point or v.dtype.is_complex):
                raise CorruptFileError(f"tensor {k} in {source} has dtype {v.dtype}, but the model's is {want}: "
                                       "weights must be floating point. The file was not loaded.")
            if not bool(torch.isfinite(v).all()):
                bad = int((~torch.isfinite(v)).sum())
                raise CorruptFileError(f"tensor {k} in {source} holds {bad} non-finite value(s) (NaN or "
                                       "infinity): the weights are corrupt or come from a diverged run. The "
                                       "file was not loaded.")
        elif v.dtype != want:
            raise CorruptFileError(f"tensor {k} in {source} has dtype {v.dtype}, but the model's is {want}. "
                                   "The file was not loaded.")


def load_state_strict(model: nn.Module, tensors: Dict[str, Tensor], source: str, strict: bool = True):
    """Load a state dict; missing, unexpected or mis-shaped tensors are a ConfigError naming them, tensors
    of the wrong kind or with non-finite values a CorruptFileError (check_tensors)."""
    own = model.state_dict()
    if strict:
        from nfzoo.loading.limits import name_mismatch

        names = name_mismatch(own, tensors)
        if names:
            raise ConfigError(f"the weights in {source} do not match the model built from its config: "
                              + names + ". Check that config.json belongs to these weights.")
    bad = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items()
           if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)]
    if bad:
        raise ConfigError(f"the weights in {source} do not match the model built from its config: "
                          f"{len(bad)} tensors have other shapes ({'; '.join(bad[:3])}). Check that "
                          "config.json belongs to these weights.")
    check_tensors(model, tensors, source)
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items() if k in own},
                          strict=strict)
