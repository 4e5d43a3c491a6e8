"""The sampling pipeline: the one way nfzoo draws images from a model (`nfzoo sample`, `nfzoo eval --samples`,
the sample metrics and the gallery all call it).

    pipe = nfzoo.SamplingPipeline(model)                             # the model's measured sampler and temperature
    out = pipe(64, seed=0)                                            # out.images: (64, C, H, W) in [0, 1]
    pipe = nfzoo.SamplingPipeline(model, sampler="ddim", temperature=1.0, steps=50, eta=1.0)
    out = pipe(8, per_class=True, seed=0)                             # a row of 8 per class: out.nrow
    pipe.save_grid("grid.png", 64, seed=0)                             # a PNG grid
    pipe.save_folder("samples/", 10_000, seed=0)                      # one PNG each, streamed in constant memory

What it settles, once, in this order: the sampler (a registered name, a Sampler, or None: the model's own),
its options (the model's measured ones when that sampler is the measured one, the given ones on top:
`FlowModel.sampling_options`), the temperature (None: the model's measured one), the sampler's own check of
the model and options (a UsageError naming the fix), optionally torch.compile of the flow. Then each call
draws labels by the core's policy (`nfzoo.flows.generation.sampling_labels`: one class, a row per class, or every
class in turn) and generates in seeded chunks (`nfzoo.flows.generation`), so image i depends only on (seed, i, n),
however many processes share the work (`dist`, a torchrun context: each rank draws whole chunks).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import torch

from nfzoo.constants import GRID_MAX
from nfzoo.flows import generation
from nfzoo.flows.generation import Labels
from nfzoo.flows.interfaces import Sampler


def compile_model(model: Any, what: str = "sample", on_warning: Optional[Callable[[str], None]] = None) -> None:
    """torch.compile the model's flow in place (nfzoo.flows.compiling.compile_flow, for `what`: "sample", "eval");
    a reason to run eager, now or when the first call fails to compile, goes to `on_warning` once. torch's
    own notes on graph breaks (which cost speed, not correctness) are left to TORCH_LOGS=graph_breaks."""
    import os

    from nfzoo.flows.compiling import compile_flow

    if not os.environ.get("TORCH_LOGS"):
        import warnings

        from nfzoo.compat import quiet_dynamo_logs

        quiet_dynamo_logs()
        warnings.filterwarnings("ignore", message="Dynamo detected a call to a `functools.lru_cache`")
    reason = compile_flow(model, what, on_fallback=on_warning)
    if reason is not None and on_warning is not None:
        on_warning(reason)


@dataclass
class LabelPlan:
    """The labels of one draw: `labels` (None for an unconditional model, else a rule made per chunk), the
    number of images `total` (n, or n per class) and the images per grid row `nrow`."""

    labels: Union[None, torch.Tensor, Labels]
    total: int
    nrow: int


@dataclass
class SampleOutput:
    """What a pipeline call gives: the images (total, C, H, W) in [0, 1] on the CPU (None on ranks other than
    the first), their labels' plan, and the images per grid row."""

    images: Optional[torch.Tensor]
    plan: LabelPlan

    @property
    def nrow(self) -> int:
        """Images per grid row (n for a row per class)."""
        return self.plan.nrow


class SamplingPipeline:
    """A model with its sampler, options and temperature settled and checked (see the module). `options` and
    keyword arguments are the sampler's options (steps, eta, a plugin sampler's own); `name` is how messages
    call the model; `compile` compiles the flow in place (`on_warning(reason)` is told when it runs eager)."""

    def __init__(self, model: Any, sampler: Union[str, Sampler, None] = None, temperature: Optional[float] = None,
                 options: Optional[Dict[str, Any]] = None, *, name: Optional[str] = None, compile: bool = False,
                 on_warning: Optional[Callable[[str], None]] = None, **more_options: Any):
        self.model = model
        self.name = name or getattr(model, "architecture", "") or "the model"
        self.sampler: Sampler = model.get_sampler(sampler)       # an unknown name: the closest registered ones
        self.options: Dict[str, Any] = model.sampling_options(self.sampler.name, **{**(options or {}),
                                                                                      **more_options})
        self.temperature = float(model.default_temperature if temperature is None else temperature)
        self.sampler.check(model, temperature=self.temperature, **self.options)
        if compile:
            compile_model(model, "sample", on_warning)

    def plan(self, n: Optional[int] = None, label: Optional[int] = None, per_class: bool = False) -> LabelPlan:
        """The labels, image count and grid rows of a draw of n images (None: 64, or 8 per class), of class
        `label`, or n per class (`nfzoo.flows.generation.sampling_labels`: a refused label names the fix)."""
        y, total, nrow = generation.sampling_labels(self.model, n, label, per_class, name=self.name)
        return LabelPlan(y, total, nrow)

    def _plan(self, n: Union[None, int, LabelPlan], label: Optional[int], per_class: bool) -> LabelPlan:
        return n if isinstance(n, LabelPlan) else self.plan(n, label, per_class)

    def _generate_options(self) -> Dict[str, Any]:
        return {"sampler": self.sampler, **self.options}

    def stream(self, n: Union[None, int, LabelPlan] = None, *, label: Optional[int] = None, per_class: bool = False,
               seed: int = 0, dist: Any = None) -> Iterator[Tuple[int, torch.Tensor, Optional[torch.Tensor]]]:
        """(first index, images, labels) for this rank's chunks, one chunk in memory at a time."""
        p = self._plan(n, label, per_class)
        return generation.generate(self.model, p.total, p.labels, self.temperature, seed, self._generate_options(),
                                   dist)

    def __call__(self, n: Union[None, int, LabelPlan] = None, *, label: Optional[int] = None,
                 per_class: bool = False, seed: int = 0, dist: Any = None,
                 progress: Optional[Callable[[int, int], None]] = None) -> SampleOutput:
        """All the images of a draw, gathered on the first rank (a grid's worth: stream large draws)."""
        p = self._plan(n, label, per_class)
        x = generation.generate_all(self.model, p.total, p.labels, self.temperature, seed,
                                    self._generate_options(), dist, progress)
        return SampleOutput(x, p)

    def save_grid(self, path: Union[str, Path], n: Union[None, int, LabelPlan] = None, *,
                  label: Optional[int] = None, per_class: bool = False, seed: int = 0,
                  dist: Any = None) -> SampleOutput:
        """Draw and write one PNG grid (at most GRID_MAX images) on the first rank."""
        from nfzoo.errors import UsageError
        from nfzoo.imageio import save_grid_png

        p = self._plan(n, label, per_class)
        if p.total > GRID_MAX:
            raise UsageError(f"a grid holds at most {GRID_MAX} images and this asks for {p.total}: write one PNG "
                             f"per sample to a folder (it streams in constant memory; its grid.png shows the first "
                             f"{GRID_MAX})")
        out = self(p, seed=seed, dist=dist)
        if dist is None or dist.is_main:
            assert out.images is not None  # generate_all gathers the images on the first rank
            save_grid_png(out.images, Path(path), p.nrow)
        return out

    def save_folder(self, folder: Union[str, Path], n: Union[None, int, LabelPlan] = None, *,
                    label: Optional[int] = None, per_class: bool = False, seed: int = 0, dist: Any = None) -> int:
        """Draw and write one PNG per image (FOLDER/000000.png, ...), each at its own size and channels, in
        constant memory (the ranks write their own chunks), and FOLDER/grid.png of the first GRID_MAX.
        Returns the number of images."""
        from nfzoo.imageio import save_grid_png, save_single_png

        p = self._plan(n, label, per_class)
        folder = Path(folder)
        first = []                 # the first GRID_MAX images, for grid.png; nothing else is kept
        for start, x, _ in self.stream(p, seed=seed, dist=dist):
            for j in range(x.shape[0]):
                save_single_png(x[j], folder / f"{start + j:06d}.png")
            if start < GRID_MAX:
                first.append(x[:GRID_MAX - start].clone())
            del x
        shown = torch.cat(first) if first else torch.empty(0, *self.model.image_shape)
        shown = dist.gather_tensor(shown) if dist is not None else shown
        if dist is None or dist.is_main:
            save_grid_png(shown, folder / "grid.png", p.nrow if p.total <= GRID_MAX else 32)
        return p.total
