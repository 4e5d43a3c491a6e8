"""Exported samplers (issue 24): a model's sampling direction, and where its operations allow its density
direction, as ONNX graphs that run without torch, with a small numpy + onnxruntime runner.

`export_model(model, directory)` writes into `directory`:

    manifest.json            what each graph is, its inputs and outputs (shapes, dtypes), the files'
                             sha256, the opset, the model's name, config and default sampling, the parity
                             checks run at export time, and for anything not exported the precise reason
    prior.onnx               the default sampler's draw (flows): noise inputs, as the manifest lists them
                             (standard normal, uniform or categorical draws) [+ label], temperature -> z
    decode.onnx              z [+ label] -> image in [0, 1]: the flow's inverse (its learned split priors,
                             conditioned on the kept half of the latent, are part of it) and postprocessing
    density.onnx             image in [0, 1] [+ label] -> z and log|det dz/dx| at the centre of the image's
                             8-bit bins (what `FlowModel.encode` computes, with the log-det)
    prior_log_prob.onnx      z [+ label] -> log p(z): log p(x) = that + logdet - D ln 256 (`log_prob`)
    unet.onnx                diffusion models (a prior that is a nfzoo.interfaces.DiffusionPrior): (z_t, t) ->
                             the predicted noise; the DDIM loop is the runner's, over the prior's ddim_schedule()
    nfzoo_onnx_runner.py     the runner (nfzoo.onnx_runner, copied: it needs only numpy and onnxruntime):
                             `ExportedModel(directory).sample(n, seed, temperature, label)`

Directions: "sample" is prior + decode (flows) or unet + decode (diffusion: the runner runs nfzoo's DDIM
sampler with the model's steps and eta); "density" is density + prior_log_prob. How a graph is made:
nfzoo.export_trace. Each graph is checked against the torch model with onnxruntime on a few inputs when it
is written (`check` of each graph in the manifest); a graph that disagrees is not kept.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch

from .compat import CompatError
from .errors import UnknownNameError, UsageError
from .export_trace import BATCH_HINT, ExportError, batch_axes, describe, record_draws, replay_draws, to_onnx, trace
from .interfaces import DDIM_SCHEDULE_KEYS, DiffusionPrior
from .onnx_runner import external_data
from .safeio import atomic_write_json, sha256_file

FORMATS = ("onnx",)
DIRECTIONS = ("sample", "density")
MANIFEST_NAME = "manifest.json"
RUNNER_NAME = "nfzoo_onnx_runner.py"
MANIFEST_VERSION = 1
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
    """Whether the model's prior has the capability nfzoo.interfaces.DiffusionPrior (it subclasses it)."""
    return isinstance(model.prior, DiffusionPrior)


def direction_graphs(model) -> Dict[str, List[str]]:
    """The graphs of each direction for this model: sample = prior + decode (flows) or unet + decode
    (diffusion); density = density + prior_log_prob (flows) or density (diffusion)."""
    if is_diffusion(model):
        return {"sample": ["unet", "decode"], "density": ["density"]}
    return {"sample": ["prior", "decode"], "density": ["density", "prior_log_prob"]}


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


def _latent_shape(model) -> tuple:
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
        return torch.randn(n, *_latent_shape(model), generator=_gen(2))
    y = _labels(model, n)
    return model.get_sampler(None).sample(model, n, y=y[0] if y else None, temperature=model.default_temperature,
                                          generator=_gen(2), **model.sampling_options())


def _decode_graph(model) -> _Graph:
    if model.noise_sigma > 0:
        raise ExportError("this model denoises its samples with its own score (noise_sigma > 0): a backward pass "
                          "through the flow (torch.autograd), which a graph does not hold")
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
        return [torch.randn(n, *_latent_shape(model), generator=_gen(3)),
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
    got = session.run(None, {k: a for k, a, _ in arrays})
    one = session.run(None, {k: (a[:1] if dyn else a) for k, a, dyn in arrays})
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


def _diffusion_sampling(model) -> Dict[str, Any]:
    """The runner's DDIM settings: the prior's `ddim_schedule()` (float32 cumulative alphas, the spacing of
    the steps, the clip of the predicted z0, ...: DDIM_SCHEDULE_KEYS, in that order), then the steps and eta
    of the model's default sampling when that is ddim (T steps and eta 0 otherwise). UsageError if the
    schedule lacks one of the keys."""
    prior = model.prior
    schedule = prior.ddim_schedule()
    missing = [k for k in DDIM_SCHEDULE_KEYS if k not in schedule]
    if missing:
        raise UsageError(f"cannot export this model: its prior's {type(prior).__name__}.ddim_schedule() lacks "
                         f"{', '.join(missing)} (a DiffusionPrior gives every one of {', '.join(DDIM_SCHEDULE_KEYS)})")
    options = model.sampling_options() if model.sampling.get("sampler") == "ddim" else {}
    steps = int(options.get("steps", prior.timesteps))
    return {**{k: schedule[k] for k in DDIM_SCHEDULE_KEYS}, "steps": steps, "eta": float(options.get("eta", 0.0))}


def export_model(model, directory, directions: Optional[Sequence[str]] = None, fmt: str = "onnx",
                 name: Optional[str] = None, check: int = 8,
                 progress: Optional[Callable[[str, int, int], None]] = None) -> Dict[str, Any]:
    """Export `model` (a FlowModel; it is put in eval mode on the CPU) into `directory` (made if missing); return
    the manifest (also written there as manifest.json). `directions`: "sample" and/or "density" (None: both,
    each as far as its operations allow, with the reason for what does not export; a direction asked for by
    name that cannot be exported completely is a UsageError naming why). `check` items per graph are run
    through onnxruntime and torch (differences recorded in the manifest; a graph off by more than
    CHECK_TOLERANCE is dropped with that as its reason). `progress(what, done, total)` after each graph."""
    if fmt not in FORMATS:
        raise UnknownNameError("export format", fmt, FORMATS)
    asked = list(dict.fromkeys(directions)) if directions else list(DIRECTIONS)
    for d in asked:
        if d not in DIRECTIONS:
            raise UnknownNameError("export direction", d, DIRECTIONS)
    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"exporting needs {', '.join(missing)} (torch's ONNX exporter and the check): pip install "
                         "onnx onnxscript onnxruntime")
    model = model.cpu().eval()
    plan = direction_graphs(model)
    ddim = _diffusion_sampling(model) if is_diffusion(model) else None      # before any work: it may refuse
    wanted = list(dict.fromkeys(g for d in asked for g in plan[d]))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    graphs: Dict[str, Any] = {}
    reasons: Dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix=".nfzoo-export-", dir=directory) as tmp:
        for i, g in enumerate(wanted):
            if progress:
                progress(g, i, len(wanted))
            try:
                graphs[g] = _export_graph(model, g, Path(tmp), check)
            except ExportError as exc:
                reasons[g] = str(exc)
            except CompatError:          # torch lacks an API nfzoo relies on: not this model's fault, stop
                raise
            except Exception as exc:     # what torch or onnxruntime raise on a model they cannot take
                reasons[g] = describe(exc)
        if progress:
            progress("", len(wanted), len(wanted))
        exported = {d: [g for g in plan[d] if g in graphs] for d in asked}
        incomplete = {d: [g for g in plan[d] if g not in graphs] for d in asked}
        if directions:
            bad = {d: gs for d, gs in incomplete.items() if gs}
            if bad:
                raise UsageError("cannot export the " + "; the ".join(
                    f"{d} direction of this model: " + "; ".join(f"{g}: {reasons[g]}" for g in gs)
                    for d, gs in bad.items()))
        if not graphs:
            raise UsageError("nothing of this model could be exported: "
                             + "; ".join(f"{g}: {r}" for g, r in reasons.items()))
        for g, info in graphs.items():
            shutil.move(str(Path(tmp) / info["file"]), str(directory / info["file"]))
    runner = Path(__file__).with_name("onnx_runner.py")
    shutil.copyfile(runner, directory / RUNNER_NAME)
    manifest = _manifest(model, name, graphs, reasons, asked, exported, incomplete, ddim)
    manifest["runner"] = {"file": RUNNER_NAME, "sha256": sha256_file(directory / RUNNER_NAME),
                          "needs": ["numpy", "onnxruntime"],
                          "usage": "from nfzoo_onnx_runner import ExportedModel; ExportedModel(DIR).sample(16, seed=0)"}
    atomic_write_json(directory / MANIFEST_NAME, manifest)
    return manifest


def check_self_contained(path: Path) -> None:
    """Raise ExportError unless the ONNX file at `path` holds all its tensors itself: the runner refuses a
    graph with external data (a tensor kept in another file), so the export never writes one (to_onnx saves
    with external_data=False; this makes sure of it, with the runner's own reading of the bytes)."""
    outside = external_data(Path(path).read_bytes())
    if outside:
        raise ExportError(f"the exported graph keeps data outside its file ({'; '.join(outside[:3])}), which the "
                          "runner refuses")


def _export_graph(model, name: str, tmp: Path, check: int) -> Dict[str, Any]:
    """Trace, export and check one graph into tmp/NAME.onnx; its manifest entry."""
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


def _manifest(model, name, graphs, reasons, asked, exported, incomplete, ddim) -> Dict[str, Any]:
    import onnxruntime

    from . import __version__

    diffusion = ddim is not None
    sampling = {"sampler": model.get_sampler(None).name, "temperature": model.default_temperature,
                "options": model.sampling_options(), "kind": "diffusion" if diffusion else "flow"}
    if diffusion:
        sampling["ddim"] = ddim
        if sampling["sampler"] != "ddim":
            sampling["runner_note"] = (f"the model's default sampler is {sampling['sampler']}; the runner's loop "
                                       "is DDIM (with the steps and eta given to it)")
    directions = {}
    for d in asked:
        directions[d] = {"graphs": exported[d], "complete": not incomplete[d]}
    not_exported = {g: reasons[g] for g in reasons}
    if diffusion and "density" in asked:
        not_exported.setdefault("prior_log_prob", "a diffusion prior has no exact log-density: its likelihood is "
                                "a variational bound estimated at a random timestep per image (T U-Net calls "
                                "for the full bound), not a function of the latent a graph computes")
    return {"manifest_version": MANIFEST_VERSION, "format": "onnx", "nfzoo_version": __version__,
            "onnxruntime_checked": onnxruntime.__version__, "torch": torch.__version__,
            "model": {"name": name or model.architecture, "architecture": model.architecture,
                      "config": model.config, "sampling": dict(model.sampling)},
            "image_shape": list(model.image_shape), "latent_shape": list(_latent_shape(model)),
            "num_classes": model.num_classes, "dim": int(math.prod(model.image_shape)),
            "opset": max((g["opset"] for g in graphs.values()), default=None),
            "sampling": sampling, "directions": directions, "graphs": graphs, "not_exported": not_exported}
