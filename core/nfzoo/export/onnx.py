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
    unet.onnx                diffusion models (a prior that is a nfzoo.flows.interfaces.DiffusionPrior): (z_t, t) ->
                             the predicted noise; the DDIM loop is the runner's, over the prior's ddim_schedule()
    nfzoo_onnx_runner.py     the runner (nfzoo.export.runner, copied: it needs only numpy and onnxruntime):
                             `ExportedModel(directory).sample(n, seed, temperature, label)`
    nfzoo_onnx_checks.py     the runner's checks of the folder (nfzoo.export.runner_checks, copied beside it)
    nfzoo_onnx_noise.py      the runner's seeded generator and latents reader (nfzoo.export.runner_noise)

Directions: "sample" is prior + decode (flows) or unet + decode (diffusion: the runner runs nfzoo's DDIM
sampler with the model's steps and eta); "density" is density + prior_log_prob. How a graph is made:
nfzoo.export.trace; what each graph computes and how it is checked: nfzoo.export.graphs. Each graph is
checked against the torch model with onnxruntime on a few inputs when it is written (`check` of each graph in
the manifest); a graph that disagrees is not kept. This module plans which graphs a model gets, writes the
folder (the graphs, the runner's files, the manifest) and says why anything was not exported.
"""
from __future__ import annotations

import importlib.util
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from nfzoo.compat import CompatError
from nfzoo.errors import UnknownNameError, UsageError
from nfzoo.export.graphs import (  # noqa: F401  (the API)
    BUILDERS,
    CHECK_TOLERANCE,
    GRAPH_DOCS,
    check_self_contained,
    export_graph,
    is_diffusion,
    labels_unchecked,
    latent_shape,
)
from nfzoo.export.runner import CHECKS_NAME, NOISE_NAME
from nfzoo.export.trace import ExportError, describe
from nfzoo.flows.interfaces import DDIM_SCHEDULE_KEYS
from nfzoo.safeio import atomic_write_json, sha256_file

FORMATS = ("onnx",)
DIRECTIONS = ("sample", "density")
MANIFEST_NAME = "manifest.json"
RUNNER_NAME = "nfzoo_onnx_runner.py"
RUNNER_FILES = {"runner.py": RUNNER_NAME, "runner_checks.py": CHECKS_NAME, "runner_noise.py": NOISE_NAME}
"""The runner's files: this package's module -> its name in the export folder."""
MANIFEST_VERSION = 1


def direction_graphs(model) -> Dict[str, List[str]]:
    """The graphs of each direction for this model: sample = prior + decode (flows) or unet + decode
    (diffusion); density = density + prior_log_prob (flows) or density (diffusion)."""
    if is_diffusion(model):
        return {"sample": ["unet", "decode"], "density": ["density"]}
    return {"sample": ["prior", "decode"], "density": ["density", "prior_log_prob"]}


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
                graphs[g] = export_graph(model, g, Path(tmp), check)
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
    for module, file in RUNNER_FILES.items():
        shutil.copyfile(Path(__file__).with_name(module), directory / file)
    manifest = _manifest(model, name, graphs, reasons, asked, exported, incomplete, ddim)
    manifest["runner"] = {"file": RUNNER_NAME, "sha256": sha256_file(directory / RUNNER_NAME),
                          "files": {f: sha256_file(directory / f) for f in RUNNER_FILES.values()},
                          "needs": ["numpy", "onnxruntime"],
                          "usage": "from nfzoo_onnx_runner import ExportedModel; ExportedModel(DIR).sample(16, seed=0)"}
    atomic_write_json(directory / MANIFEST_NAME, manifest)
    return manifest


def _manifest(model, name, graphs, reasons, asked, exported, incomplete, ddim) -> Dict[str, Any]:
    import onnxruntime

    from nfzoo import __version__

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
            "image_shape": list(model.image_shape), "latent_shape": list(latent_shape(model)),
            "num_classes": model.num_classes, "dim": int(math.prod(model.image_shape)),
            "opset": max((g["opset"] for g in graphs.values()), default=None),
            "sampling": sampling, "directions": directions, "graphs": graphs, "not_exported": not_exported}
