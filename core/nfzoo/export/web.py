"""The web export (issue 39): a model's sampler as a static site that samples in the browser, no server code.

`export_web(model, directory)` writes into `directory`:

    index.html, app.js       the page and its script (a plain JS module, no build step; nfzoo.export's
                             web_page/ folder): a grid of samples for a seed, temperature and label (a row per
                             class for a class-conditional model), an interpolation between two seeds, the time
                             each took; everything computed in the browser by onnxruntime-web (wasm, one thread)
    model/                   the sample direction as `nfzoo export --direction sample` writes it (prior.onnx,
                             decode.onnx, manifest.json, and the numpy runner's files); the page checks each graph
                             against the manifest's sha256 before it loads it (where the browser has crypto.subtle)
    ort/                     onnxruntime-web's files (nfzoo.export.ortweb: the npm package at a pinned version,
                             checked against pinned sha256, fetched once into a cache; nothing from a CDN)
    site.json                what the site is: the model, onnxruntime-web's version and files with their sha256
    README.md                a Hugging Face static Space's front matter (sdk: static) and how to serve the folder

The page draws its noise with its own seeded generator (xoshiro128** seeded by splitmix32, normals by
Box-Muller): not numpy's PCG64 and ziggurat, so a seed gives other images in the browser than in the numpy
runner. Given the same noise, the images agree (window.nfzoo.sampleFromNoise, which the tests call with the
runner's draw_noise: within 1e-4).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from nfzoo.errors import UsageError
from nfzoo.export.graphs import is_diffusion
from nfzoo.export.onnx import export_model
from nfzoo.export.ortweb import ORT_WEB_MODULE, ORT_WEB_VERSION, copy_ort_web, ort_web_files
from nfzoo.safeio import atomic_write_json

PAGE = Path(__file__).with_name("web_page")
PAGE_FILES = ("index.html", "app.js")
MODEL_DIR = "model"
ORT_DIR = "ort"
SITE_NAME = "site.json"


def export_web(model, directory, name: Optional[str] = None, check: int = 8,
               progress: Optional[Callable[[str, int, int], None]] = None) -> Dict[str, Any]:
    """Write the static site of `model` (a flow; its sample direction) into `directory` (made if missing); return
    what site.json says, with the model's export manifest under "manifest". onnxruntime-web's files are had first
    (an OrtWebUnavailableError, exit 1, before anything is written when they can be neither fetched nor found in
    the cache); a diffusion model is a UsageError (the page has no DDIM loop)."""
    if is_diffusion(model):
        raise UsageError("the web export samples flows only: a diffusion model's DDIM loop runs in the numpy "
                         "runner; export it with --format onnx")
    ort_web_files()                        # fetched (or found in the cache) before the export's work
    directory = Path(directory)
    manifest = export_model(model, directory / MODEL_DIR, directions=["sample"], name=name, check=check,
                            progress=progress)
    ort_files = copy_ort_web(directory / ORT_DIR)
    for f in PAGE_FILES:
        shutil.copyfile(PAGE / f, directory / f)
    title = manifest["model"]["name"]
    site = {"format": "web", "site_version": 1, "nfzoo_version": manifest["nfzoo_version"], "model": title,
            "model_dir": MODEL_DIR, "page": list(PAGE_FILES),
            "ort_web": {"version": ORT_WEB_VERSION, "dir": ORT_DIR, "module": ORT_WEB_MODULE, "files": ort_files,
                        "threads": 1, "source": f"npm onnxruntime-web@{ORT_WEB_VERSION} (MIT)"},
            "noise": "the page's own generator (xoshiro128** + Box-Muller): seeds differ from the numpy runner's"}
    atomic_write_json(directory / SITE_NAME, site)
    (directory / "README.md").write_text(readme(title, manifest), encoding="utf-8")
    site["bytes"] = site_bytes(directory)
    return {**site, "manifest": manifest}


def site_bytes(directory) -> int:
    """The size of the site's files, in bytes."""
    return sum(p.stat().st_size for p in Path(directory).rglob("*") if p.is_file())


def readme(title: str, manifest: Dict[str, Any]) -> str:
    """README.md: a static Hugging Face Space's front matter, then what the folder is and how to serve it."""
    shape = "x".join(str(s) for s in manifest["image_shape"])
    classes = f", {manifest['num_classes']} classes" if manifest.get("num_classes") else ""
    return f"""---
title: {title}
emoji: 🌀
colorFrom: indigo
colorTo: gray
sdk: static
app_file: index.html
pinned: false
tags:
- nfzoo
- normalizing-flows
- onnx
---

# {title} in the browser

Samples of the nfzoo model `{title}` ({shape} images{classes}), computed in your browser by
onnxruntime-web {ORT_WEB_VERSION} (WebAssembly, one thread): no server code, nothing fetched from elsewhere.
Written by `nfzoo export {title} --format web`.

Serve the folder with any static file server and open it:

    python -m http.server -d . 8000      # then http://127.0.0.1:8000/

`model/` holds the ONNX graphs, `manifest.json` (what each graph is, its sha256) and a numpy + onnxruntime
runner (`model/nfzoo_onnx_runner.py`). The page's noise generator is its own, so a seed gives other samples
here than in the runner; the same noise gives the same images (within 1e-4).
"""
