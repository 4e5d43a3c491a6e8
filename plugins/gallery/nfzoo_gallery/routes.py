"""The gallery's routes, as two routers that `create_app` includes: `pages` (the page, the zoo list and cards,
the test images, the typicality references, the samplers, the stats) and `features` (one POST endpoint per
feature, its work in `Gallery.work`). A route reads the app's state from the request: the Gallery (its models,
times, budgets) is `request.app.state.gallery`, so the routers hold no state and every app built by
`create_app` serves its own.

    GET  /                                   the page
    GET  /api/models                         the zoo: names, data sets, sources, headline metrics
    GET  /api/models/{name}                  one model, with its card as HTML
    GET  /api/models/{name}/test-image       ?index=I: image I of the model's test split (and its label)
    GET  /api/models/{name}/reference        the typicality reference: ready / computing / failed
    GET  /api/samplers                       the registered samplers
    GET  /api/stats                          seconds per request kind (count, mean, median, max, last), and
                                             each typicality reference's
    POST /api/sample                         model, n, seed, temperature, label, per_class, sampler, steps, eta
    POST /api/interpolate                    model, steps, a_index | a_file, b_index | b_file
    POST /api/inpaint                        model, box "x0,y0,x1,y1", index | file, seed, label, iters | steps
    POST /api/score                          model, files (one or more), seed, wait
    GET  /web/{name}/{path}                  the model's exported browser page (`nfzoo serve --web-sites DIR`:
                                             DIR/NAME as `nfzoo export NAME --format web` writes it), its files

The page's assets (static/) are mounted at /static by `create_app`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse

from nfzoo.errors import UsageError

from . import inputs
from .features import data_url, inpaint_job, interpolate_job, sample_job, score_job
from .websites import media_type
from .work import Gallery
from .zoo import card_html, resolve, summary, zoo_entries

STATIC = Path(__file__).resolve().parent / "static"
"""The page's HTML, CSS and JS, shipped in this package."""
MAX_REFERENCE_WAIT_S = 120.0

pages = APIRouter()
"""The page and what it reads: the zoo list and cards, test images, typicality references, samplers, stats."""
features = APIRouter()
"""One endpoint per feature: a multipart form in, JSON out (images as PNG data URLs, the seconds computed)."""
web = APIRouter()
"""The models' exported browser pages (nfzoo_gallery.websites), under /web/NAME/."""


def gallery(request: Request) -> Gallery:
    """The Gallery of the app serving `request` (`create_app` puts it at app.state.gallery)."""
    return request.app.state.gallery


# ----------------------------------------------------------------------------------- the page and the zoo
@pages.get("/", include_in_schema=False)
def index() -> FileResponse:
    """The page (static/index.html)."""
    return FileResponse(STATIC / "index.html", media_type="text/html")


@pages.get("/api/models")
def models(request: Request) -> Dict[str, Any]:
    """The zoo's image models, and which are loaded now."""
    return {"models": [summary(e) for e in zoo_entries()], "loaded": gallery(request).cache.loaded()}


@pages.get("/api/models/{name}")
def model(request: Request, name: str) -> Dict[str, Any]:
    """One zoo model with its card (HTML) and the address of its browser page ("web/NAME/"; null: none here)."""
    entry = resolve(name)
    return {**summary(entry), "card_html": card_html(entry),
            "web_site": request.app.state.web_sites.link(entry.name)}


@pages.get("/api/models/{name}/test-image")
def test_image(name: str, index: int = 0) -> Dict[str, Any]:
    """Image `index` of the model's test split: what interpolation and inpainting can start from."""
    from nfzoo.imageio import single_png_bytes

    entry = resolve(name)
    if not entry.dataset:
        raise UsageError(f"{entry.name} names no data set, so it has no test images: upload an image")
    x, label, count = inputs.split_image(entry.dataset, index)
    return {"dataset": entry.dataset, "index": index, "label": label, "count": count,
            "image": data_url(single_png_bytes(x))}


@pages.get("/api/models/{name}/reference")
def reference(request: Request, name: str, start: bool = False, wait: bool = False) -> Dict[str, Any]:
    """The model's typicality reference (start=true queues it; wait=true waits for it, up to 2 minutes)."""
    return gallery(request).cache.reference(name, start=start, wait=MAX_REFERENCE_WAIT_S if wait else False)


@pages.get("/api/samplers")
def samplers() -> Dict[str, Any]:
    """The registered samplers (a model's sampler refuses the ones it cannot use, saying why)."""
    from nfzoo.registry.plugins import get_registry

    return {"samplers": [{"name": e.name, "plugin": e.plugin, "description": e.description}
                         for e in get_registry().list("samplers")]}


@pages.get("/api/stats")
def stats(request: Request) -> Dict[str, Any]:
    """Seconds per request kind since the server started (and the requests stopped), the budgets, the
    models loaded now."""
    import torch

    g = gallery(request)
    return {"kinds": g.times.summary(), "budgets_s": g.budgets, "reference_seconds": g.cache.reference_seconds(),
            "loaded": g.cache.loaded(), "torch_threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------------------- the features
@features.post("/api/sample")
async def sample(request: Request, model: str = Form(...), n: int = Form(16), seed: int = Form(0),
                 temperature: Optional[float] = Form(None), label: Optional[int] = Form(None),
                 per_class: bool = Form(False), sampler: Optional[str] = Form(None),
                 steps: Optional[int] = Form(None), eta: Optional[float] = Form(None)) -> Dict[str, Any]:
    """A grid of samples, as `nfzoo sample` draws them (the same images for the same settings)."""
    g = gallery(request)
    return await g.work(request, "sample", lambda t: sample_job(g, t, model, n, seed, temperature, label,
                                                                per_class, sampler, steps, eta))


@features.post("/api/interpolate")
async def interpolate(request: Request, model: str = Form(...), steps: int = Form(8),
                      a_index: Optional[int] = Form(None), b_index: Optional[int] = Form(None),
                      a_file: Optional[UploadFile] = File(None),
                      b_file: Optional[UploadFile] = File(None)) -> Dict[str, Any]:
    """The spherical latent path between two images."""
    g = gallery(request)
    return await g.work(request, "interpolate",
                        lambda t: interpolate_job(g, t, model, steps, a_index, b_index, a_file, b_file))


@features.post("/api/inpaint")
async def inpaint(request: Request, model: str = Form(...), box: str = Form(...),
                  index: Optional[int] = Form(None), file: Optional[UploadFile] = File(None),
                  seed: int = Form(0), label: Optional[int] = Form(None), iters: Optional[int] = Form(None),
                  steps: Optional[int] = Form(None)) -> Dict[str, Any]:
    """Fill a box of an image under the model's prior."""
    g = gallery(request)
    return await g.work(request, "inpaint",
                        lambda t: inpaint_job(g, t, model, box, index, file, seed, label, iters, steps))


@features.post("/api/score")
async def score(request: Request, model: str = Form(...), files: List[UploadFile] = File(...),
                seed: int = Form(0), wait: bool = Form(False)) -> Dict[str, Any]:
    """Per-image bpd and typicality of uploaded images."""
    g = gallery(request)
    return await g.work(request, "score", lambda t: score_job(g, t, model, files, seed, wait))


# ------------------------------------------------------------------------------- the models' browser pages
@web.get("/web/{name}", include_in_schema=False)
def web_site_root(request: Request, name: str) -> RedirectResponse:
    """/web/NAME -> /web/NAME/ (the page's relative addresses need the slash)."""
    request.app.state.web_sites.file(name, "")         # a 404 when there is no such page
    return RedirectResponse(f"{request.url.path}/", status_code=307)


@web.get("/web/{name}/{path:path}", include_in_schema=False)
def web_site_file(request: Request, name: str, path: str) -> FileResponse:
    """A file of the model's exported browser page ("" is its index.html), as nfzoo_gallery.websites checks it."""
    f = request.app.state.web_sites.file(name, path)
    return FileResponse(f, media_type=media_type(f))
