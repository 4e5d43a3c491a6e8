"""The `glem` architecture: a Glow-style multi-scale flow whose prior is GLEM's class gaussians.

Where the gaussians live (`class_latent`). The flow's latent z has the image's shape: the last level's
output (the final latent) and the parts split off at the earlier levels, each of those whitened by Glow's
learned split prior (conditioned on the kept half, not on the class), put back in place.
- "top" (default): the class gaussians are the density of the final latent, in place of Glow's learned top
  prior; the whitened split-off parts keep a standard normal. The split priors stay unconditioned: they are
  conditioned on the kept half, which flows on into the final latent, so the class reaches every scale
  through it; and measured on mnist5k, a diagonal gaussian classifier on the whitened split-off part of a
  trained glem flow was worse than one on the final latent (64% vs 79%), so class gaussians there add
  estimation noise (the M-step sees 10% of the data) more than signal.
- "all": the class gaussians cover every dimension of z.

Training (`nfzoo train glem --dataset DS`) follows Algorithm 1 through the trainer's phase hooks:
- the training split is split once (seed `split_seed`) into D_NF (1 - m_split) and D_G (m_split, 10%);
- for the first round(em_fraction * epochs) epochs ("EM rounds"): E-step, one pass over D_NF training the
  flow with the gaussians fixed (loss: the bpd under the image's class gaussian; the KL term does not
  depend on the flow); then M-step, m_passes passes over D_G training the gaussians with the flow fixed
  (loss: bpd + lambda_t R / ln 2, R the normalised repulsion of MultiGaussianPrior, so both are in bits per
  dimension), with the learning rate times prior_lr_scale;
- lambda_t anneals from kl_weight (first round) to kl_weight_final (last round), geometrically
  (kl_schedule="exponential", the default) or linearly. The defaults (0.45 -> 0.25 over the first 15% of
  the epochs, prior_lr_scale 3) are the mnist5k recipe: above lambda ~ 0.3 the M-step's means run apart
  and the E-steps follow them, which is what separates the classes in the latent (with a weak repulsion
  NF-A stays near 75% on mnist5k); stopping the rounds early and slowly bounds the separation, and with
  it the cost in bpd and in sample quality (docs/results/glem-mnist5k-exploration.md);
- the remaining epochs retrain (continue training) the flow on all of the training split with the
  gaussians fixed at their learned values;
- after the last epoch RFCM is fitted on the training split (if rfcm_rank > 0).
Baselines of the paper (section 5.2), by flags:
- lambda = 0 (multimodal NF, no repulsion): `--set kl_weight=0 --set kl_weight_final=0`;
- monomodal + conditional encoding "CE": `--set encoding=ce --set gaussians=single`: every image is padded
  below with 2^levels rows holding its class's code (a fixed prototype, 0.5 +- 0.3 in a seeded sign
  pattern, plus uniform noise of amplitude 0.1 in training; the paper designs its prototypes by a
  regularized least-squares placement, this uses random sign patterns, nearly orthogonal at this size),
  one shared gaussian; classification is argmax_y log p(x, code_y), generated images carry their label in
  their code rows (`sample_with_labels`);
- CE + GLEM: `--set encoding=ce` (codes and class gaussians).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from nfzoo.errors import ConfigError, UsageError
from nfzoo.flows.architectures import multiscale_flow
from nfzoo.flows.bijectors import ActNorm, AffineCoupling, Composite, InvConv1x1
from nfzoo.flows.bijectors.coupling import DEFAULT_SCALE_FLOOR
from nfzoo.flows.model import FlowModel

from .prior import MultiGaussianPrior

PHASES = {"E": "flow on D_NF, gaussians fixed", "M": "gaussians on D_G, flow fixed",
          "F": "flow on all data, gaussians fixed"}


class GLEMFlow(FlowModel):
    """A FlowModel whose prior is a MultiGaussianPrior; classifies by its class likelihoods.

    With `encoding="ce"` (the paper's conditional encoding) each image is padded below with `code_rows`
    rows holding its class's code (a fixed prototype plus uniform noise in training), the flow models the
    padded image, and the class is also read back from the code rows of a generated image. The bpd of a
    CE model is -log p(image, code) per image dimension: it includes the code rows' density, so it is
    not comparable with an unpadded model's."""

    prior: MultiGaussianPrior
    num_classes: int             # the prior's (FlowModel's is Optional: None for an unconditional model)
    prototypes: Tensor           # CE's class codes (a buffer, registered when code_rows > 0)

    def __init__(self, bijector, prior: MultiGaussianPrior, image_shape, preprocess: str = "logit",
                 kl_weight: float = 0.45, kl_weight_final: float = 0.25, em_fraction: float = 0.15,
                 m_split: float = 0.1, m_passes: int = 5, prior_lr_scale: float = 3.0, split_seed: int = 0,
                 code_rows: int = 0, code_noise: float = 0.1, kl_schedule: str = "exponential"):
        super().__init__(bijector, prior, image_shape, preprocess=preprocess, num_classes=prior.num_classes)
        self.kl_weight, self.kl_weight_final = float(kl_weight), float(kl_weight_final)
        self.em_fraction, self.m_split, self.m_passes = float(em_fraction), float(m_split), int(m_passes)
        self.prior_lr_scale, self.split_seed = float(prior_lr_scale), int(split_seed)
        self.code_rows, self.code_noise = int(code_rows), float(code_noise)
        self.kl_schedule = kl_schedule
        if self.code_rows:
            c, _, w = self.image_shape
            gen = torch.Generator().manual_seed(1000 + self.split_seed)
            signs = torch.randint(0, 2, (prior.num_classes, c, self.code_rows, w), generator=gen) * 2.0 - 1.0
            self.register_buffer("prototypes", 0.5 + 0.3 * signs, persistent=False)
        self._stats = {}

    # ------------------------------------------------------------ the flow's input
    def _code(self, y: Tensor, noise: bool, generator: Optional[torch.Generator]) -> Tensor:
        code = self.prototypes[y]
        if noise and self.code_noise > 0:
            dev = generator.device if generator is not None else code.device
            u = torch.rand(code.shape, generator=generator, device=dev, dtype=code.dtype).to(code.device)
            code = code + self.code_noise * (2 * u - 1)
        return code

    def _latent(self, x: Tensor, y: Optional[Tensor], generator=None, noise: bool = True):
        """(z, log|det| from the dequantized image (plus code rows) to z)."""
        xd = self.dequantize(x, generator=generator, noise=noise)
        if self.code_rows:
            if y is None:
                raise UsageError("this GLEM model uses conditional encoding (CE): pass labels y")
            xd = torch.cat([xd, self._code(y, noise, generator)], dim=2)
        v, ld0 = self.to_flow(xd)
        z, ld = self.bijector(v, None)
        return z, ld + ld0

    # draws more than the dequantization noise (class codes / diffusion times and noise): distributed
    # runs give each rank its own stream (nfzoo.distributed)
    @property
    def training_draws_per_image(self) -> Optional[int]:
        return None

    def log_prob(self, x, y=None, generator=None, noise=True):
        ctx = self.context(y, x.shape[0])
        z, ld = self._latent(x, ctx, generator, noise)
        return self.prior.log_prob(z, ctx) + ld - self.dim * math.log(256.0)

    def from_flow(self, v: Tensor) -> Tensor:
        x = super().from_flow(v)
        return x[:, :, :self.image_shape[1]] if self.code_rows else x

    def read_labels(self, v: Tensor) -> Tensor:
        """CE: the class whose prototype is nearest to the code rows of flow-space images v."""
        code = super().from_flow(v)[:, :, self.image_shape[1]:]
        d = ((code.flatten(1)[:, None, :] - self.prototypes.flatten(1)[None]) ** 2).sum(-1)
        return d.argmin(1)

    # ---------------------------------------------------------- inference
    def encode(self, x: Tensor, y: Optional[Tensor] = None) -> Tensor:
        """Images -> latents (8-bit bin centres). The flow is class-agnostic: labels are needed only with
        conditional encoding, whose code rows are part of the flow's input."""
        return self._latent(x, None if y is None else self.context(y, x.shape[0]), noise=False)[0]

    def decode(self, z: Tensor, y: Optional[Tensor] = None, denoise: Optional[bool] = None) -> Tensor:
        v, _ = self.bijector.inverse(z, None)   # GLEM is not noise-augmented: `denoise` changes nothing
        return self.from_flow(v)

    @torch.no_grad()
    def sample_with_labels(self, n: int, y: Optional[Tensor] = None, temperature: float = 1.0,
                           generator: Optional[torch.Generator] = None):
        """(images, labels): labels are y when given, else (CE) read from the generated code rows.
        A monomodal CE model (one shared gaussian) can only sample this way, unconditionally."""
        if y is not None and self.prior.shared:
            raise UsageError("this GLEM model has one shared gaussian (monomodal CE): it cannot sample a "
                             "chosen class; sample without labels and read them from the codes")
        if y is None and not self.code_rows:
            raise UsageError("pass labels y: without conditional encoding the class comes from the gaussian")
        rows = self.context(y, n) if y is not None else None
        z = self.prior.sample(n, rows if rows is not None else torch.zeros(n, dtype=torch.long),
                              temperature=temperature, generator=generator)
        v, _ = self.bijector.inverse(z.to(self.device), None)
        labels = self.read_labels(v) if self.code_rows else rows
        return self.from_flow(v), labels

    @torch.no_grad()
    def sample(self, n, y=None, temperature=None, generator=None, sampler=None, **options):
        """FlowModel.sample; a monomodal CE model (one shared gaussian) refuses labels for a sampler that
        draws from the prior (`Sampler.from_prior`): its gaussian cannot choose a class."""
        sampler = self.get_sampler(sampler)
        if self.prior.shared and y is not None and sampler.from_prior:
            raise UsageError("this GLEM model has one shared gaussian (monomodal CE): it cannot sample a "
                             "chosen class (use model.sample_with_labels(n))")
        return super().sample(n, y=y, temperature=temperature, generator=generator, sampler=sampler, **options)

    @torch.no_grad()
    def class_log_likelihoods(self, x: Tensor, generator: Optional[torch.Generator] = None,
                              noise: bool = False) -> Tensor:
        """log p(x | y) in nats for every class, (B, num_classes) (8-bit bin centres unless `noise`): one
        pass through the flow then every class gaussian; with CE one pass per class (its code rows)."""
        if not self.code_rows:
            z, ld = self._latent(x, None, generator=generator, noise=noise)
            return self.prior.log_prob_all(z) + (ld - self.dim * math.log(256.0))[:, None]
        cols = []
        state = generator.get_state() if generator is not None else None
        for k in range(self.num_classes):
            if generator is not None and state is not None:   # the same dequantization noise for every class
                generator.set_state(state)
            y = torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)
            z, ld = self._latent(x, y, generator=generator, noise=noise)
            cols.append(self.prior.log_prob(z, y) + ld - self.dim * math.log(256.0))
        return torch.stack(cols, 1)

    @torch.no_grad()
    def marginal_log_prob(self, x: Tensor, generator: Optional[torch.Generator] = None,
                          noise: bool = True) -> Tensor:
        """log p(x) = log (1/K) sum_y p(x | y): the mixture over classes with uniform weights, in nats
        (dequantized bound, 8-bit term included): the density comparable with an unconditional flow's."""
        ll = self.class_log_likelihoods(x, generator=generator, noise=noise)
        return torch.logsumexp(ll, 1) - math.log(self.num_classes)

    def classify(self, x: Tensor) -> Tensor:
        """The NF classifier's logits: log p(x | y) per class; argmax is the predicted label (and a
        softmax gives p(y | x) under a uniform class prior)."""
        return self.class_log_likelihoods(x)

    # ------------------------------------------------------------ training
    def em_epochs(self, epochs: int) -> int:
        return min(epochs, max(1, round(self.em_fraction * epochs))) if self.em_fraction > 0 else 0

    def kl_weight_at(self, epoch: int, epochs: int) -> float:
        """lambda_t, from kl_weight (first EM round) to kl_weight_final (last EM round): linearly, or
        geometrically (`kl_schedule="exponential"`: a constant factor per round)."""
        t_max = self.em_epochs(epochs) - 1
        f = min(1.0, epoch / t_max) if t_max > 0 else 0.0
        if self.kl_schedule == "exponential" and self.kl_weight > 0 and self.kl_weight_final > 0:
            return self.kl_weight * (self.kl_weight_final / self.kl_weight) ** f
        return self.kl_weight + (self.kl_weight_final - self.kl_weight) * f

    def split_indices(self, n: int):
        """(D_NF, D_G): the fixed disjoint split of the training set's indices."""
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        g = max(1, round(self.m_split * n))
        if g >= n:
            raise ConfigError(f"m_split={self.m_split} leaves no data for the flow (n={n})")
        return perm[g:], perm[:g]

    def training_plan(self, n, epoch, epochs, generator):
        if epoch >= self.em_epochs(epochs):
            return [("F", torch.randperm(n, generator=generator))]
        nf, g = self.split_indices(n)
        plan = [("E", nf[torch.randperm(len(nf), generator=generator)])]
        if self.m_passes > 0:
            plan.append(("M", torch.cat([g[torch.randperm(len(g), generator=generator)]
                                         for _ in range(self.m_passes)])))
        return plan

    def phase_parameters(self, phase):
        prior = {id(p) for p in self.prior.parameters()}
        if phase == "M":
            return prior
        return {id(p) for p in self.parameters() if id(p) not in prior}

    def optimizer_groups(self):
        prior = list(self.prior.parameters())
        ids = {id(p) for p in prior}
        flow = [p for p in self.parameters() if id(p) not in ids and p.requires_grad]
        return [{"params": flow, "lr_scale": 1.0}, {"params": prior, "lr_scale": self.prior_lr_scale}]

    def training_loss(self, x, y, phase, epoch, epochs, generator=None):
        if y is None:
            raise UsageError("glem trains on labelled data: the data set must have class labels")
        if phase != "M":
            bpd = self.bpd(x, y, generator=generator)
            self._stats = {"phase": phase}
            return bpd.mean(), bpd.detach()
        with torch.no_grad():      # M-step: the flow is fixed
            z, ld = self._latent(x, y, generator)
        logp = self.prior.log_prob(z, y) + ld - self.dim * math.log(256.0)
        bpd = -logp / (self.dim * math.log(2.0))
        lam = self.kl_weight_at(epoch, epochs)
        rep = self.prior.repulsion()
        self._stats = {"kl_weight": lam, "mean_pair_kl_per_dim": -float(rep.detach())}
        return bpd.mean() + lam * rep / math.log(2.0), bpd.detach()

    def epoch_metrics(self):
        return dict(self._stats)

    @torch.no_grad()
    def fit_rfcm(self, dataset, batch_size: int = 500) -> None:
        """RFCM: re-estimate each class's mean and covariance from the projected data set."""
        from nfzoo.data import iterate

        was = self.training
        self.eval()
        zs, ys = [], []
        for x, y in iterate(dataset, batch_size, shuffle=False):
            zs.append(self.encode(x.to(self.device), y.to(self.device) if self.code_rows else None).cpu())
            ys.append(torch.as_tensor(y))
        self.prior.fit_rfcm(torch.cat(zs), torch.cat(ys))
        self.train(was)

    def after_training(self, train_set) -> None:
        if self.prior.rfcm_rank > 0:
            self.fit_rfcm(train_set)


def glem(image_shape=(1, 28, 28), levels: int = 2, steps: int = 4, hidden: int = 64,
         num_classes: Optional[int] = 10, blocks: int = 0, a: float = 1.0, b: float = 1.0, c: float = 0.25,
         kl_weight: float = 0.45, kl_weight_final: float = 0.25, em_fraction: float = 0.15,
         m_split: float = 0.1, m_passes: int = 5, prior_lr_scale: float = 3.0, split_seed: int = 0,
         rfcm_rank: int = 64, preprocess: str = "logit", split_bias: bool = False,
         class_latent: str = "top", encoding: str = "none", gaussians: str = "class",
         kl_schedule: str = "exponential", scale_floor: float = DEFAULT_SCALE_FLOOR) -> GLEMFlow:
    """GLEM: a Glow-style flow (ActNorm, LU 1x1 conv, affine coupling; multi-scale with learned split
    priors) whose prior is one learned diagonal gaussian per class, Sigma_y = psi(S_y),
    psi = a / (1 + exp(-b s)) + c; trained with the EM-like alternation and the annealed KL repulsion.
    `scale_floor`: the couplings' smallest scale (nfzoo.flows.bijectors.coupling.sigmoid_log_scale)."""
    if num_classes is None or int(num_classes) < 2:
        raise ConfigError(f"glem needs num_classes >= 2 (one gaussian per class), got {num_classes}")
    if kl_weight < 0 or kl_weight_final < 0:
        raise ConfigError("kl_weight and kl_weight_final must be >= 0")
    if kl_schedule not in ("linear", "exponential"):
        raise ConfigError(f"kl_schedule must be 'linear' or 'exponential', got {kl_schedule!r}")
    if not 0 <= em_fraction <= 1 or not 0 < m_split < 1:
        raise ConfigError(f"em_fraction must be in [0, 1] and m_split in (0, 1), got {em_fraction}, {m_split}")

    def make_steps(ch, _):
        return [Composite([ActNorm(ch), InvConv1x1(ch), AffineCoupling(ch, hidden, blocks, "channel",
                                                                        scale_floor=scale_floor)])
                for _ in range(steps)]
    if encoding not in ("none", "ce") or gaussians not in ("class", "single"):
        raise ConfigError(f"encoding must be 'none' or 'ce' and gaussians 'class' or 'single', got "
                          f"{encoding!r}, {gaussians!r}")
    if gaussians == "single" and encoding != "ce":
        raise ConfigError("gaussians='single' (monomodal) needs encoding='ce': otherwise nothing carries "
                          "the class")
    code_rows = 2 ** levels if encoding == "ce" else 0
    image_shape = tuple(int(v) for v in image_shape)
    flow_shape = (image_shape[0], image_shape[1] + code_rows, image_shape[2])
    if class_latent not in ("top", "all"):
        raise ConfigError(f"class_latent must be 'top' (the final latent) or 'all', got {class_latent!r}")
    flow = multiscale_flow(flow_shape, levels, make_steps, split_prior=True, learn_top=False,
                           num_classes=None, split_bias=split_bias)
    dims = None
    if class_latent == "top":   # the flat positions of the final latent inside z
        ids = torch.arange(math.prod(flow_shape), dtype=torch.float64).reshape(1, *flow_shape)
        dims = flow.latent_parts(ids)[-1].flatten().long()
    prior = MultiGaussianPrior(int(num_classes), flow_shape, a, b, c, rfcm_rank=rfcm_rank, dims=dims,
                               shared=gaussians == "single")
    return GLEMFlow(flow, prior, image_shape, preprocess, kl_weight, kl_weight_final, em_fraction, m_split,
                    m_passes, prior_lr_scale, split_seed, code_rows, kl_schedule=kl_schedule)
