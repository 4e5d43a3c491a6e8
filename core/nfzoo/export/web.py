"""The web export (issue 39): a model's sampler as a static site that samples in the browser, no server code.

`export_web(model, directory)` writes into `directory`:

    index.html, app.js       the page and its script (a plain JS module, no build step; nfzoo.export's
                             web_page/ folder): a grid of samples for a seed, temperature and label (a row per
                             class for a class-conditional model), an interpolation between two seeds, the images
                             of a latents file (.npy), the time each took; everything computed in the browser by
                             onnxruntime-web (wasm; one thread per core where the page is cross-origin isolated,
                             else one)
    model/                   the sample direction as `nfzoo export --direction sample` writes it (prior.onnx or,
                             for a diffusion model, unet.onnx; decode.onnx; manifest.json; the numpy runner's
                             files); the page checks each graph against the manifest's sha256 before it loads it
                             (where the browser has crypto.subtle)
    ort/                     onnxruntime-web's files (nfzoo.export.ortweb: the npm package at a pinned version,
                             checked against pinned sha256, fetched once into a cache; nothing from a CDN)
    site.json                what the site is: the model, onnxruntime-web's version and files with their sha256
    README.md                a Hugging Face static Space's front matter (sdk: static) and how to serve the folder

The page draws its noise with the numpy runner's generator (nfzoo.export.runner_noise.PortableRng, written again in
app.js bit for bit), so a seed gives the same images in the browser as `ExportedModel(DIR).sample(n, seed=S)`
(within 1e-4, the difference of onnxruntime-web's kernels from onnxruntime's). A diffusion model's DDIM loop runs
in JavaScript as the runner's ddim() does, in float32, over the U-Net graph.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from nfzoo.errors import UsageError
from nfzoo.export.graphs import decode_refusal, is_diffusion
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
    the cache); a model whose sample direction does not export is a UsageError naming why (exit 2)."""
    why = decode_refusal(model)
    if why:                                # before the minutes of tracing the prior: the decode graph cannot be had
        raise UsageError(f"cannot export this model for the browser: its decode graph cannot be exported: {why}; "
                         "the page needs the sample direction (nfzoo sample runs it with torch)")
    ort_web_files()                        # fetched (or found in the cache) before the export's work
    directory = Path(directory)
    made = not (directory / MODEL_DIR).exists()
    try:
        manifest = export_model(model, directory / MODEL_DIR, directions=["sample"], name=name, check=check,
                                progress=progress)
    except Exception:
        if made and (directory / MODEL_DIR).is_dir() and not any((directory / MODEL_DIR).iterdir()):
            (directory / MODEL_DIR).rmdir()        # a refused export leaves no empty folder behind
        raise
    ort_files = copy_ort_web(directory / ORT_DIR)
    for f in PAGE_FILES:
        shutil.copyfile(PAGE / f, directory / f)
    title = manifest["model"]["name"]
    site = {"format": "web", "site_version": 1, "nfzoo_version": manifest["nfzoo_version"], "model": title,
            "model_dir": MODEL_DIR, "page": list(PAGE_FILES),
            "ort_web": {"version": ORT_WEB_VERSION, "dir": ORT_DIR, "module": ORT_WEB_MODULE, "files": ort_files,
                        "threads": "one per core (navigator.hardwareConcurrency) where the page is cross-origin "
                                   "isolated (COOP/COEP headers), else 1",
                        "source": f"npm onnxruntime-web@{ORT_WEB_VERSION} (MIT)"},
            "sampling": "diffusion (DDIM in JavaScript)" if is_diffusion(model) else "flow",
            "noise": "nfzoo-counter32 v1 (PortableRng, model/nfzoo_onnx_noise.py): a seed gives the runner's images"}
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
onnxruntime-web {ORT_WEB_VERSION} (WebAssembly): no server code, nothing fetched from elsewhere.
Written by `nfzoo export {title} --format web`.

Serve the folder with any static file server and open it:

    python -m http.server -d . 8000      # then http://127.0.0.1:8000/

onnxruntime-web runs one thread per core when the page is cross-origin isolated (served with the headers
`Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`), else one thread
(as behind `python -m http.server`, and on a Hugging Face Space that does not send them); the page says which.

`model/` holds the ONNX graphs, `manifest.json` (what each graph is, its sha256) and a numpy + onnxruntime
runner (`model/nfzoo_onnx_runner.py`). The page draws its noise with the runner's generator, so a seed gives the
same images here as `python model/nfzoo_onnx_runner.py model --seed S -n N --out x.npy` (within 1e-4); the
runner's `--save-latents z.npy` writes latents that the page's "latents from a file" decodes.
"""


def publish_site(directory, repo_id: str, token: Optional[str] = None, private: Optional[bool] = None,
                 commit_message: Optional[str] = None) -> Dict[str, Any]:
    """Upload a site folder that export_web wrote to the Hugging Face static Space `repo_id` (created if needed,
    sdk static), every file of the folder in one commit (HfApi.upload_folder with repo_type="space"); what
    `nfzoo push SITE --repo-id ORG/NAME` does for a site. Returns {"repo_id", "url", "revision", "files"}. A folder
    without site.json is a UsageError; the Hub's refusals and failures are translated as `nfzoo push`'s are.
    A Space need not send the COOP/COEP headers that threads need: there the page runs one thread."""
    from nfzoo.errors import HubUnreachableError, NfzooError
    from nfzoo.hub.fetch import HubSpec
    from nfzoo.hub.http import hub_call, translate_error
    from nfzoo.hub.names import check_repo_id, first_line
    from nfzoo.hub.settings import endpoint, offline

    d = Path(directory)
    if not (d / SITE_NAME).is_file():
        raise UsageError(f"{d} is not a site written by `nfzoo export NAME --format web` (it has no {SITE_NAME})")
    check_repo_id(repo_id, "--repo-id")
    if offline():
        raise HubUnreachableError("HF_HUB_OFFLINE is set: unset it to push.")
    from huggingface_hub import HfApi

    from nfzoo import __version__

    files = sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())
    spec = HubSpec(name=f"hf-hub:{repo_id}", repo_id=repo_id, revision=None, user_named=True)
    try:
        with hub_call(f"push to the Space {repo_id}"):
            api = HfApi(endpoint=endpoint(), token=token, library_name="nfzoo", library_version=__version__)
            url = api.create_repo(repo_id, repo_type="space", space_sdk="static", exist_ok=True, private=private)
            commit = api.upload_folder(folder_path=str(d), repo_id=repo_id, repo_type="space",
                                       commit_message=commit_message or "Upload an nfzoo web export")
    except NfzooError:
        raise
    except ValueError as exc:
        raise UsageError(f"the Hub refused the upload to the Space {repo_id}: {first_line(exc)}") from exc
    except Exception as exc:
        raise translate_error(exc, spec, action="push") from exc
    return {"repo_id": repo_id, "url": str(url), "revision": commit.oid, "files": files}
