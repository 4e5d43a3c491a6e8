"""The gallery's FastAPI app: the page (static/, shipped in this package), the zoo list and cards, and one
endpoint per feature. Each feature endpoint takes a multipart form (numbers, names, uploads) and answers
JSON with the images as PNG data URLs and the seconds the model computed; a bad request answers 4xx with
{"error": "<the message the CLI prints>"}.

    GET  /                                   the page
    GET  /api/models                         the zoo: names, data sets, sources, headline metrics
    GET  /api/models/{name}                  one model, with its card as HTML
    GET  /api/models/{name}/test-image       ?index=I: image I of the model's test split (and its label)
    GET  /api/models/{name}/reference        the typicality reference: ready / computing / failed
    GET  /api/samplers                       the registered samplers
    POST /api/sample                         model, n, seed, temperature, label, per_class, sampler, steps, eta
    POST /api/interpolate                    model, steps, a_index | a_file, b_index | b_file
    POST /api/inpaint                        model, box "x0,y0,x1,y1", index | file, seed, label, iters | steps
    POST /api/score                          model, files (one or more), seed, wait
    GET  /api/stats                          seconds per request kind (count, mean, median, max, last), and
                                             each typicality reference's

Each feature's work runs in a worker thread (at most `workers` at a time); a model computes one request at a time
(its lock), different models in parallel. Every request kind has a budget of seconds (nfzoo_cli.serve.budget):
the work stops at the first torch operation past it, when the client closes the connection, or when the server
stops; a request the model's measured cost says cannot fit is refused before it starts (422). Request bodies
are limited to `max_upload_bytes` (413 otherwise, `BodyLimit`); an uploaded image's size is compared with the
model's from its header, before anything is decoded. Every response carries a Content Security Policy of
'self' only; requests from other sites' pages are refused (`SameOrigin`); the Host is checked on loopback
(`HostCheck`), the token elsewhere (`TokenCheck`). The threat model: README, "Security".
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Dict, List, Optional

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from nfzoo.errors import HubError, NfzooError, UnknownNameError, UsageError

from . import inputs
from .budget import Stopped, TooCostly, budgets as default_budgets
from .features import data_url, inpaint_job, interpolate_job, sample_job, score_job
from .guards import BodyLimit, HostCheck, SameOrigin, SecurityHeaders, TokenCheck
from .inputs import MAX_UPLOAD_BYTES
from .messages import public_message
from .work import Gallery
from .zoo import ModelCache, ReferenceFn, card_html, resolve, summary, zoo_entries

STATIC = Path(__file__).resolve().parent / "static"
MAX_REFERENCE_WAIT_S = 120.0


def status_of(exc: NfzooError) -> int:
    """The HTTP status of an nfzoo error: 404 an unknown name, 422 a request too costly for its budget, 400
    other bad input, 409 weights that are not on this server (unpublished, not cached), 503 (or 499) work
    stopped, 500 a failure while running."""
    if isinstance(exc, Stopped):
        return exc.status
    if isinstance(exc, UnknownNameError):
        return 404
    if isinstance(exc, TooCostly):
        return 422
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, HubError):
        return 409
    return 500


# ------------------------------------------------------------------------------------------------- the app
def create_app(cache: Optional[ModelCache] = None, *, capacity: int = 3, device: str = "cpu",
               reference_fn: Optional[ReferenceFn] = None, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               allowed_hosts: Optional[List[str]] = None, token: Optional[str] = None,
               request_seconds: Optional[float] = None, workers: int = 4) -> FastAPI:
    """The gallery app. `cache` (or a new ModelCache(capacity, device, reference_fn)) holds the models;
    `max_upload_bytes` bounds every request body; `allowed_hosts` (None: any), the Host headers it answers
    (`nfzoo serve` on a loopback address answers only loopback names: a page elsewhere cannot reach it by DNS
    rebinding); `token` (None: none), the token every request must carry (`nfzoo serve --allow-remote`);
    `request_seconds` (None: budget.DEFAULT_BUDGETS), every request kind's budget; `workers`, the requests
    computing at once. Requests from other sites' pages are always refused. The cache's background work stops
    with the app."""
    cache = cache or ModelCache(capacity, device, reference_fn)
    g = Gallery(cache, default_budgets(request_seconds), workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        cache.close()

    # no /docs or /redoc: FastAPI's pages load their scripts from a CDN, and the gallery is offline
    app = FastAPI(title="nfzoo gallery", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  lifespan=lifespan)
    app.state.cache, app.state.times, app.state.gallery = cache, g.times, g
    too_large = (f"the request is larger than the gallery's limit of {max_upload_bytes / 2 ** 20:g} MB "
                 f"({max_upload_bytes:,} bytes): upload smaller image files, or fewer at a time")
    # (FastAPI's own max_body_size answers a declared oversize body in plain text, whatever the handlers say)
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes, message=too_large)
    app.add_middleware(SameOrigin)
    if token:
        app.add_middleware(TokenCheck, token=token)
    if allowed_hosts:
        app.add_middleware(HostCheck, allowed=list(allowed_hosts))
    app.add_middleware(SecurityHeaders)
    _errors(app)
    _routes(app, g)
    return app


def _errors(app: FastAPI) -> None:
    """Every error answers JSON {"error": message}: the CLI's message, the server's paths cut."""
    @app.exception_handler(NfzooError)
    async def nfzoo_error(request: Request, exc: NfzooError) -> JSONResponse:
        return JSONResponse({"error": public_message(exc)}, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_form(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "form"))
            got = f" (got {e['input']!r:.40})" if "input" in e and e.get("type") != "missing" else ""
            parts.append(f"{where}: {e.get('msg', 'invalid')}{got}")
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404 and exc.detail in (None, "Not Found"):
            msg = f"no such page: {request.url.path[:200]} (the page is at /, the API under /api)"
        else:
            msg = str(exc.detail)
        return JSONResponse({"error": msg}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _routes(app: FastAPI, g: Gallery) -> None:
    """The page, the zoo and the features (each feature's work in `Gallery.work`)."""
    cache, times = g.cache, g.times

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/models")
    def models() -> Dict[str, Any]:
        """The zoo's image models, and which are loaded now."""
        return {"models": [summary(e) for e in zoo_entries()], "loaded": cache.loaded()}

    @app.get("/api/models/{name}")
    def model(name: str) -> Dict[str, Any]:
        """One zoo model with its card (HTML)."""
        entry = resolve(name)
        return {**summary(entry), "card_html": card_html(entry)}

    @app.get("/api/models/{name}/test-image")
    def test_image(name: str, index: int = 0) -> Dict[str, Any]:
        """Image `index` of the model's test split: what interpolation and inpainting can start from."""
        from nfzoo.imageio import single_png_bytes

        entry = resolve(name)
        if not entry.dataset:
            raise UsageError(f"{entry.name} names no data set, so it has no test images: upload an image")
        x, label, count = inputs.split_image(entry.dataset, index)
        return {"dataset": entry.dataset, "index": index, "label": label, "count": count,
                "image": data_url(single_png_bytes(x))}

    @app.get("/api/models/{name}/reference")
    def reference(name: str, start: bool = False, wait: bool = False) -> Dict[str, Any]:
        """The model's typicality reference (start=true queues it; wait=true waits for it, up to 2 minutes)."""
        return cache.reference(name, start=start, wait=MAX_REFERENCE_WAIT_S if wait else False)

    @app.get("/api/samplers")
    def samplers() -> Dict[str, Any]:
        """The registered samplers (a model's sampler refuses the ones it cannot use, saying why)."""
        from nfzoo.plugins import get_registry

        return {"samplers": [{"name": e.name, "plugin": e.plugin, "description": e.description}
                             for e in get_registry().list("samplers")]}

    @app.get("/api/stats")
    def stats() -> Dict[str, Any]:
        """Seconds per request kind since the server started (and the requests stopped), the budgets, the
        models loaded now."""
        import torch

        return {"kinds": times.summary(), "budgets_s": g.budgets, "reference_seconds": cache.reference_seconds(),
                "loaded": cache.loaded(), "torch_threads": torch.get_num_threads()}

    @app.post("/api/sample")
    async def sample(request: Request, model: str = Form(...), n: int = Form(16), seed: int = Form(0),
                     temperature: Optional[float] = Form(None), label: Optional[int] = Form(None),
                     per_class: bool = Form(False), sampler: Optional[str] = Form(None),
                     steps: Optional[int] = Form(None), eta: Optional[float] = Form(None)) -> Dict[str, Any]:
        """A grid of samples, as `nfzoo sample` draws them (the same images for the same settings)."""
        return await g.work(request, "sample", lambda t: sample_job(g, t, model, n, seed, temperature, label,
                                                                    per_class, sampler, steps, eta))

    @app.post("/api/interpolate")
    async def interpolate(request: Request, model: str = Form(...), steps: int = Form(8),
                          a_index: Optional[int] = Form(None), b_index: Optional[int] = Form(None),
                          a_file: Optional[UploadFile] = File(None),
                          b_file: Optional[UploadFile] = File(None)) -> Dict[str, Any]:
        """The spherical latent path between two images."""
        return await g.work(request, "interpolate",
                            lambda t: interpolate_job(g, t, model, steps, a_index, b_index, a_file, b_file))

    @app.post("/api/inpaint")
    async def inpaint(request: Request, model: str = Form(...), box: str = Form(...),
                      index: Optional[int] = Form(None), file: Optional[UploadFile] = File(None),
                      seed: int = Form(0), label: Optional[int] = Form(None), iters: Optional[int] = Form(None),
                      steps: Optional[int] = Form(None)) -> Dict[str, Any]:
        """Fill a box of an image under the model's prior."""
        return await g.work(request, "inpaint",
                            lambda t: inpaint_job(g, t, model, box, index, file, seed, label, iters, steps))

    @app.post("/api/score")
    async def score(request: Request, model: str = Form(...), files: List[UploadFile] = File(...),
                    seed: int = Form(0), wait: bool = Form(False)) -> Dict[str, Any]:
        """Per-image bpd and typicality of uploaded images."""
        return await g.work(request, "score", lambda t: score_job(g, t, model, files, seed, wait))
