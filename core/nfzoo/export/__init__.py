"""Export: a model's sampler (and density) as ONNX graphs, traced with the noise as inputs and checked
against torch, and the numpy + onnxruntime runner copied into every export.

The web export (a static site sampling in the browser with onnxruntime-web): web, ortweb.

Modules: graphs, onnx, ortweb, runner, runner_checks, trace, web. Its public names are exported lazily (importing
the wing imports no torch).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from nfzoo.lazy import lazy_exports

if TYPE_CHECKING:
    from .graphs import check_self_contained, decode_refusal, export_graph, is_diffusion, labels_unchecked, latent_shape
    from .onnx import direction_graphs, export_model
    from .ortweb import OrtWebUnavailableError, ort_web_files
    from .runner import ExportedModel, PortableRng
    from .runner_checks import check_manifest, external_data, read_export
    from .trace import (
        Draw,
        ExportError,
        FoldConstants,
        OnnxGraph,
        batch_axes,
        describe,
        fake_inputs,
        record_draws,
        replay_draws,
        to_onnx,
    )
    from .web import export_web, publish_site

_LAZY = {
    "Draw": "trace", "ExportError": "trace", "ExportedModel": "runner", "FoldConstants": "trace",
    "OnnxGraph": "trace", "batch_axes": "trace", "check_manifest": "runner_checks", "check_self_contained": "graphs",
    "describe": "trace", "direction_graphs": "onnx", "export_graph": "graphs", "export_model": "onnx",
    "external_data": "runner_checks", "fake_inputs": "trace", "is_diffusion": "graphs", "labels_unchecked": "graphs",
    "latent_shape": "graphs", "read_export": "runner_checks", "record_draws": "trace", "replay_draws": "trace",
    "to_onnx": "trace", "OrtWebUnavailableError": "ortweb", "ort_web_files": "ortweb", "export_web": "web",
    "PortableRng": "runner", "decode_refusal": "graphs", "publish_site": "web",
}
__all__ = [
    "Draw", "ExportError", "ExportedModel", "FoldConstants", "OnnxGraph", "OrtWebUnavailableError", "PortableRng",
    "batch_axes", "check_manifest", "check_self_contained", "decode_refusal", "describe", "direction_graphs",
    "export_graph", "export_model", "export_web", "external_data", "fake_inputs", "is_diffusion", "labels_unchecked",
    "latent_shape", "ort_web_files", "publish_site", "read_export", "record_draws", "replay_draws", "to_onnx",
]
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
