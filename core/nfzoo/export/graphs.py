"""The graphs of an export (nfzoo.export.onnx), one by one: for each of prior, decode, density, prior_log_prob and
unet, the function that is traced, its eager torch reference and the inputs it is checked on; then tracing and
writing it (nfzoo.export.trace) and the check that keeps it: onnxruntime and torch on the same inputs, and
the graph on a batch of one, within CHECK_TOLERANCE. `export_graph` makes one graph file and its manifest
entry; nfzoo.export.onnx plans which graphs a model gets and writes the export folder."""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, cast

import numpy as np
import torch

from nfzoo.export.runner_checks import external_data
from nfzoo.export.trace import BATCH_HINT, ExportError, batch_axes, record_draws, replay_draws, to_onnx, trace
from nfzoo.flows.interfaces import DiffusionPrior
from nfzoo.safeio import sha256_file

CHECK_TOLERANCE = 1e-3
"""A graph is kept when its largest difference from torch on the check inputs is at most this, relative to
max(1, the largest |value|): a wrong graph (a shape or a branch baked in) is far off, float32 rounding
is far below."""

GRAPH_DOCS = {
    "prior": "the default sampler's draw of latents: the noise inputs (drawn as listed in `noise`) [+ label] and "
             "the temperature -> z",
    "decode": "latent z [+ label] -> image in [0, 1]: the flow's inverse (its split priors included) and the "
              "postprocessing",
    "density": "image in [0, 1] [+ label] -> latent z and log|det dz/dx|, at the centre of each 8-bit bin",
    "prior_log_prob": "latent z [+ label] -> log p(z) under the prior, in nats; log p(image) = prior_log_prob + "
                      "logdet - D ln 256",
    "unet": "noisy latent z_t and 0-based timestep t -> the predicted noise (one U-Net step of the reverse "
            "diffusion; the sampling loop is in the runner)",
}


def is_diffusion(model) -> bool:
    """Whether the model's prior has the capability nfzoo.flows.interfaces.DiffusionPrior (it subclasses it)."""
    return isinstance(model.prior, DiffusionPrior)


@contextlib.contextmanager
def labels_unchecked(model) -> Iterator[None]:
    """While tracing, `model.context(y, n)` passes the labels through as they are (None for an unconditional
    model): its range checks are Python on values, which a graph cannot hold; the runner checks labels."""
    model.context = lambda y, n: None if model.num_classes is None else y
    try:
        yield
    finally:
        del model.context


@dataclass
class _Graph:
    """A graph to export: the traced function, example inputs, which are batched, names, the eager reference
    (same signature) and the check inputs for n items."""

    name: str
    fn: Callable
    reference: Callable
    check_inputs: Callable[[int], List[torch.Tensor]]
    inputs: List[str]
    outputs: List[str]
    examples: List[torch.Tensor]
    dynamic: List[bool]
    extra: Dict[str, Any] = field(default_factory=dict)


def _labels(model, n: int) -> List[torch.Tensor]:
    return [] if model.num_classes is None else [torch.arange(n) % model.num_classes]


def latent_shape(model) -> tuple:
    """The shape of one latent: the prior's event_shape, else the image's."""
    return tuple(int(s) for s in getattr(model.prior, "event_shape", model.image_shape))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _prior_graph(model) -> _Graph:
    sampler = model.get_sampler(None)
    options, temperature = model.sampling_options(), model.default_temperature
    conditional = model.num_classes is not None
    runs = {}
    for n in (3, 4):
        draws: list = []
        with record_draws(draws):
            sampler.sample(model, n, y=_labels(model, n)[0] if conditional else None, temperature=temperature,
                           generator=_gen(0), **options)
        runs[n] = draws
    shapes = batch_axes(runs[3], runs[4], 3, 4)
    if not any(s and s[0] == "batch" for s in shapes):
        raise ExportError("no random draw of the prior has one row per sample")
    first = next(i for i, s in enumerate(shapes) if s and s[0] == "batch")
    specs = [{"name": f"noise_{i}", "distribution": d.kind, "shape": s,
              **({"probs": d.probs} if d.probs is not None else {})} for i, (d, s) in enumerate(zip(runs[3], shapes))]
    quiet = copy.copy(sampler)
    quiet.check = lambda *a, **k: None        # its checks ran in the eager runs above; T is a graph input now

    def draw_noise(n: int, seed: int = 0) -> List[torch.Tensor]:
        g, out = _gen(seed), []
        for d, s in zip(runs[3], shapes):
            shape = [n if a == "batch" else a for a in s]
            if d.kind == "categorical":
                out.append(torch.multinomial(torch.tensor(d.probs), math.prod(shape), True, generator=g)
                           .reshape(shape))
            else:
                out.append((torch.randn if d.kind == "normal" else torch.rand)(shape, generator=g, dtype=d.dtype))
        return out

    def fn(*xs):
        noise, t, label = xs[:len(specs)], xs[len(specs)], (xs[len(specs) + 1] if conditional else None)
        with replay_draws(noise), labels_unchecked(model):
            return quiet.sample(model, noise[first].shape[0], y=label, temperature=t, generator=None, **options)

    def reference(*xs):
        noise, t, label = xs[:len(specs)], xs[len(specs)], (xs[len(specs) + 1] if conditional else None)
        with replay_draws(noise):
            return sampler.sample(model, noise[first].shape[0], y=label, temperature=float(t), generator=None,
                                  **options)

    def check_inputs(n: int) -> List[torch.Tensor]:
        return [*draw_noise(n, 1), torch.tensor(temperature, dtype=torch.float32), *_labels(model, n)]

    return _Graph("prior", fn, reference, check_inputs, [s["name"] for s in specs] + ["temperature"]
                  + (["label"] if conditional else []), ["z"], check_inputs(BATCH_HINT),
                  [True] * len(specs) + [False] + ([True] if conditional else []),
                  {"noise": specs, "draw_noise": draw_noise})


def _sample_latents(model, n: int) -> torch.Tensor:
    """Latents for the decode check: the default sampler's (flows), or standard normal (diffusion)."""
    if is_diffusion(model):
        return torch.randn(n, *latent_shape(model), generator=_gen(2))
    y = _labels(model, n)
    return model.get_sampler(None).sample(model, n, y=y[0] if y else None, temperature=model.default_temperature,
                                          generator=_gen(2), **model.sampling_options())


def decode_refusal(model) -> Optional[str]:
    """Why the decode graph of `model` cannot be exported, known before any tracing (None: nothing known): a
    model that denoises its samples with its own score (TarFlow's noise_sigma > 0) needs a backward pass."""
    if getattr(model, "noise_sigma", 0) > 0:
        return ("this model denoises its samples with its own score (noise_sigma > 0): a backward pass through the "
                "flow (torch.autograd), which a graph does not hold")
    return None


def _decode_graph(model) -> _Graph:
    why = decode_refusal(model)
    if why:
        raise ExportError(why)
    conditional = model.num_classes is not None

    def fn(z, label=None):
        with labels_unchecked(model):
            return model.decode(z, label)

    def reference(z, label=None):
        return model.decode(z, label)

    def check_inputs(n: int) -> List[torch.Tensor]:
        return [_sample_latents(model, n), *_labels(model, n)]

    return _Graph("decode", fn, reference, check_inputs, ["z"] + (["label"] if conditional else []), ["image"],
                  check_inputs(BATCH_HINT), [True] * (2 if conditional else 1))


def _flow_latent(model, x, label):
    v, ld0 = model.to_flow(model.dequantize(x, noise=False))
    z, ld = model.bijector(v, model.context(label, x.shape[0]))
    return z, ld + ld0


def _density_graph(model) -> _Graph:
    conditional = model.num_classes is not None

    def fn(x, label=None):
        with labels_unchecked(model):
            return _flow_latent(model, x, label)

    def reference(x, label=None):
        z = model.encode(x, label)               # the model's own encoder: the generic path must agree
        return z, _flow_latent(model, x, label)[1]

    def check_inputs(n: int) -> List[torch.Tensor]:
        y = _labels(model, n)
        return [model.decode(_sample_latents(model, n), *y), *y]

    return _Graph("density", fn, reference, check_inputs, ["image"] + (["label"] if conditional else []),
                  ["z", "logdet"], check_inputs(BATCH_HINT), [True] * (2 if conditional else 1))


def _prior_log_prob_graph(model) -> _Graph:
    conditional = model.num_classes is not None

    def fn(z, label=None):
        with labels_unchecked(model):
            return model.prior.log_prob(z, model.context(label, z.shape[0]))

    def reference(z, label=None):
        return model.prior.log_prob(z, model.context(label, z.shape[0]))

    def check_inputs(n: int) -> List[torch.Tensor]:
        return [_sample_latents(model, n), *_labels(model, n)]

    return _Graph("prior_log_prob", fn, reference, check_inputs, ["z"] + (["label"] if conditional else []),
                  ["log_prob"], check_inputs(BATCH_HINT), [True] * (2 if conditional else 1))


def _unet_graph(model) -> _Graph:
    prior = model.prior

    def fn(z, t):
        return prior.eps(z, t)

    def check_inputs(n: int) -> List[torch.Tensor]:
        return [torch.randn(n, *latent_shape(model), generator=_gen(3)),
                torch.randint(0, int(prior.timesteps), (n,), generator=_gen(4))]

    return _Graph("unet", fn, fn, check_inputs, ["z_t", "t"], ["eps"], check_inputs(BATCH_HINT), [True, True])


BUILDERS = {"prior": _prior_graph, "decode": _decode_graph, "density": _density_graph,
            "prior_log_prob": _prior_log_prob_graph, "unet": _unet_graph}


def _check(graph: _Graph, path: Path, n: int) -> Dict[str, Any]:
    """Run the ONNX graph (onnxruntime, CPU) and the torch reference on the same n inputs, and the graph on
    the first item alone (batch 1): the largest absolute and relative differences per output."""
    import onnxruntime as ort

    xs = graph.check_inputs(n)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    arrays = [(k, x.numpy(), dyn) for k, x, dyn in zip(graph.inputs, xs, graph.dynamic) if k in names]
    # the graphs' outputs are dense tensors (onnxruntime types run's answers as any ONNX value)
    got = cast(List[np.ndarray], session.run(None, {k: a for k, a, _ in arrays}))
    one = cast(List[np.ndarray], session.run(None, {k: (a[:1] if dyn else a) for k, a, dyn in arrays}))
    with torch.no_grad():
        ref = graph.reference(*xs)
    ref = ref if isinstance(ref, tuple) else (ref,)
    out: Dict[str, Any] = {"items": n}
    for name, r, g, g1 in zip(graph.outputs, ref, got, one):
        r = r.detach().double().numpy()
        diff = float(np.abs(r - g).max())
        scale = max(1.0, float(np.abs(r).max()))
        out[name] = {"max_abs_diff": diff, "max_rel_diff": diff / scale,
                     "batch_of_one_max_abs_diff": float(np.abs(g1 - g[:1]).max())}
    return out


def _within(check: Dict[str, Any]) -> Optional[str]:
    for name, c in check.items():
        if isinstance(c, dict) and (c["max_rel_diff"] > CHECK_TOLERANCE or
                                    c["batch_of_one_max_abs_diff"] > CHECK_TOLERANCE * (1 + c["max_abs_diff"])):
            return (f"the exported graph disagrees with torch on {name}: max |diff| {c['max_abs_diff']:.3g} "
                    f"(relative {c['max_rel_diff']:.3g}), batch of one {c['batch_of_one_max_abs_diff']:.3g}")
    return None


def check_self_contained(path: Path) -> None:
    """Raise ExportError unless the ONNX file at `path` holds all its tensors itself: the runner refuses a
    graph with external data (a tensor kept in another file), so the export never writes one (to_onnx saves
    with external_data=False; this makes sure of it, with the runner's own reading of the bytes)."""
    outside = external_data(Path(path).read_bytes())
    if outside:
        raise ExportError(f"the exported graph keeps data outside its file ({'; '.join(outside[:3])}), which the "
                          "runner refuses")


def export_graph(model, name: str, tmp: Path, check: int) -> Dict[str, Any]:
    """Trace, export and check (on `check` items) the graph `name` of `model` into tmp/NAME.onnx; its manifest
    entry. ExportError when the graph cannot be made or disagrees with torch."""
    with torch.no_grad():
        graph = BUILDERS[name](model)
        gm = trace(graph.fn, graph.examples, graph.dynamic)
        path = tmp / f"{name}.onnx"
        onnx_graph = to_onnx(gm, graph.examples, graph.dynamic, path, graph.inputs, graph.outputs)
        check_self_contained(path)
        checked = _check(graph, path, check)
    bad = _within(checked)
    if bad:
        raise ExportError(bad)
    entry = {"file": path.name, "sha256": sha256_file(path), "what": GRAPH_DOCS[name],
             "inputs": onnx_graph.inputs, "outputs": onnx_graph.outputs, "opset": onnx_graph.opset,
             "nodes": onnx_graph.nodes, "check": checked}
    if "noise" in graph.extra:
        entry["noise"] = graph.extra["noise"]
    return entry
