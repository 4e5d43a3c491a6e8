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

Requests run in FastAPI's threadpool; a model computes one request at a time (its lock), different models in
parallel. Request bodies are limited to `max_upload_bytes` (413 otherwise, `BodyLimit`), images to 4096 x 4096
pixels (checked from the header before decoding). Every response carries a Content Security Policy of 'self'
only: the page loads nothing from elsewhere.
"""
from __future__ import annotations

import base64
import statistics
import threading
import time
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
from .guards import BodyLimit, SecurityHeaders
from .inputs import (MAX_GRID, MAX_INTERPOLATION, MAX_SCORE_FILES, MAX_STEPS, MAX_TEMPERATURE, MAX_UPLOAD_BYTES,
                     check_float, check_int, check_label, check_seed, check_shape, pick_image, read_upload,
                     safe_name)
from .zoo import ModelCache, ReferenceFn, card_html, resolve, summary, zoo_entries

STATIC = Path(__file__).resolve().parent / "static"
INPAINT_DEFAULTS = {"latent": {"iters": 50}, "repaint": {"steps": 20, "resample": 2}}
"""The page's inpainting settings when a request gives none: fewer than `nfzoo inpaint`'s (300 iterations;
50 steps x 3 resamplings) so that one digit answers in about a second on a CPU; the form sets more. On 8
mnist5k test digits (12x12 box, one busy CPU thread) glow-mnist5k took 0.9 / 2.3 / 9.0 s per digit at 50 / 100
/ 300 iterations for a mean absolute error in the box of 0.324 / 0.296 / 0.288; inverse-flow-mnist5k 2.4 / 4.1 /
12.1 s for 0.461 / 0.427 / 0.398."""


class RequestTimes:
    """Seconds the models computed, per request kind (sample, interpolate, inpaint, score, load):
    what GET /api/stats reports, the gallery's benchmark."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: Dict[str, List[float]] = {}

    def add(self, kind: str, seconds: float) -> None:
        """Record one request of `kind` that took `seconds`."""
        with self._lock:
            self._times.setdefault(kind, []).append(float(seconds))

    def summary(self) -> Dict[str, Dict[str, float]]:
        """{kind: {count, mean_s, median_s, min_s, max_s, last_s}}."""
        with self._lock:
            return {k: {"count": len(v), "mean_s": statistics.fmean(v), "median_s": statistics.median(v),
                        "min_s": min(v), "max_s": max(v), "last_s": v[-1]} for k, v in sorted(self._times.items())}


def status_of(exc: NfzooError) -> int:
    """The HTTP status of an nfzoo error: 404 an unknown name, 400 other bad input, 409 weights that are not
    on this server (unpublished, not cached), 500 a failure while running."""
    if isinstance(exc, UnknownNameError):
        return 404
    if isinstance(exc, UsageError):
        return 400
    if isinstance(exc, HubError):
        return 409
    return 500


def data_url(png: bytes) -> str:
    """PNG bytes as a data: URL the page shows as is."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _heads() -> Any:
    """The nfzoo-heads plugin (interpolate, inpaint, score), or 501 saying how to get it."""
    from nfzoo.plugins import get_registry

    if not {"inpaint", "score", "augment"} <= set(get_registry().registry("heads")):
        raise HTTPException(501, "this feature needs the nfzoo-heads plugin (pip install nfzoo-heads; it is not "
                                 "installed, or NFZOO_LOAD_PLUGINS leaves it out)")
    import nfzoo_heads

    return nfzoo_heads


def _read(upload: Optional[UploadFile]) -> Optional[bytes]:
    return None if upload is None else upload.file.read()


def create_app(cache: Optional[ModelCache] = None, *, capacity: int = 3, device: str = "cpu",
               reference_fn: Optional[ReferenceFn] = None, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               allowed_hosts: Optional[List[str]] = None) -> FastAPI:
    """The gallery app. `cache` (or a new ModelCache(capacity, device, reference_fn)) holds the models;
    `max_upload_bytes` bounds every request body; `allowed_hosts` (None: any), the Host headers it answers
    (`nfzoo serve` on 127.0.0.1 answers only 127.0.0.1 and localhost: a page elsewhere cannot reach it by DNS
    rebinding). The cache's background work stops with the app."""
    cache = cache or ModelCache(capacity, device, reference_fn)
    times = RequestTimes()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        cache.close()

    # no /docs or /redoc: FastAPI's pages load their scripts from a CDN, and the gallery is offline
    app = FastAPI(title="nfzoo gallery", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  lifespan=lifespan)
    app.state.cache, app.state.times = cache, times
    too_large = (f"the request is larger than the gallery's limit of {max_upload_bytes / 2 ** 20:g} MB "
                 f"({max_upload_bytes:,} bytes): upload smaller image files, or fewer at a time")
    # (FastAPI's own max_body_size answers a declared oversize body in plain text, whatever the handlers say)
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes, message=too_large)
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(NfzooError)
    async def nfzoo_error(request: Request, exc: NfzooError) -> JSONResponse:
        from ..exits import one_line

        return JSONResponse({"error": one_line(str(exc))}, status_code=status_of(exc))

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
            msg = f"no such page: {request.url.path} (the page is at /, the API under /api)"
        else:
            msg = str(exc.detail)
        return JSONResponse({"error": msg}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    def loaded(name: str) -> Any:
        slot, seconds = cache.get(name)
        if seconds:
            times.add("load", seconds)
        return slot, seconds

    # ------------------------------------------------------------------------------------- page, zoo
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
        """The model's typicality reference (start=true begins computing it; wait=true waits for it)."""
        return cache.reference(name, start=start, wait=wait)

    @app.get("/api/samplers")
    def samplers() -> Dict[str, Any]:
        """The registered samplers (a model's sampler refuses the ones it cannot use, saying why)."""
        from nfzoo.plugins import get_registry

        return {"samplers": [{"name": e.name, "plugin": e.plugin, "description": e.description}
                             for e in get_registry().list("samplers")]}

    @app.get("/api/stats")
    def stats() -> Dict[str, Any]:
        """Seconds per request kind since the server started, and the models loaded now."""
        import torch

        return {"kinds": times.summary(), "reference_seconds": cache.reference_seconds(), "loaded": cache.loaded(),
                "torch_threads": torch.get_num_threads()}

    # ---------------------------------------------------------------------------------------- features
    @app.post("/api/sample")
    def sample(model: str = Form(...), n: int = Form(16), seed: int = Form(0),
               temperature: Optional[float] = Form(None), label: Optional[int] = Form(None),
               per_class: bool = Form(False), sampler: Optional[str] = Form(None), steps: Optional[int] = Form(None),
               eta: Optional[float] = Form(None)) -> Dict[str, Any]:
        """A grid of samples, as `nfzoo sample` draws them (the same images for the same settings)."""
        from nfzoo.generation import generate_all, sampling_labels
        from nfzoo.imageio import grid_png_bytes

        n = check_int("n", n, 1, MAX_GRID)
        seed = check_seed(seed)
        temperature = check_float("temperature", temperature, 0, MAX_TEMPERATURE)
        steps = None if steps is None else check_int("steps", steps, 1, MAX_STEPS)
        eta = check_float("eta", eta, 0, 1)
        sampler = sampler.strip() if sampler and sampler.strip() else None
        slot, load_s = loaded(model)
        m = slot.model
        smp = m.get_sampler(sampler)                     # an unknown name: the closest registered ones
        given = {k: v for k, v in (("steps", steps), ("eta", eta)) if v is not None}
        options = m.sampling_options(sampler, **given)
        t = m.default_temperature if temperature is None else temperature
        smp.check(m, temperature=t, **options)
        y, total, nrow = sampling_labels(m, n, label, per_class, name=slot.name)
        if total > MAX_GRID:
            raise UsageError(f"a grid here holds at most {MAX_GRID} images and this asks for {total} "
                             f"({n} per class): ask for fewer")
        with slot.lock:
            t0 = time.perf_counter()
            x = generate_all(m, total, y, t, seed, {"sampler": smp.name, **options})
            seconds = time.perf_counter() - t0
        times.add("sample", seconds)
        return {"image": data_url(grid_png_bytes(x, nrow)), "n": total, "nrow": nrow, "seed": seed,
                "temperature": t, "sampler": smp.name, "options": options, "label": label, "per_class": per_class,
                "seconds": seconds, "load_seconds": load_s}

    @app.post("/api/interpolate")
    def interpolate(model: str = Form(...), steps: int = Form(8), a_index: Optional[int] = Form(None),
                    b_index: Optional[int] = Form(None), a_file: Optional[UploadFile] = File(None),
                    b_file: Optional[UploadFile] = File(None)) -> Dict[str, Any]:
        """The spherical latent path between two images (nfzoo_heads.interpolate), as `nfzoo augment
        --interpolate` draws it."""
        from nfzoo.imageio import grid_png_bytes

        heads = _heads()
        steps = check_int("steps", steps, 2, MAX_INTERPOLATION)
        slot, load_s = loaded(model)
        m, entry = slot.model, slot.entry
        a = pick_image("image A", a_index, a_file, _read(a_file), slot.name, entry.dataset, m.image_shape)
        b = pick_image("image B", b_index, b_file, _read(b_file), slot.name, entry.dataset, m.image_shape)
        with slot.lock:
            t0 = time.perf_counter()
            path = heads.interpolate(m, a, b, steps)
            seconds = time.perf_counter() - t0
        times.add("interpolate", seconds)
        return {"image": data_url(grid_png_bytes(path, nrow=steps)), "steps": steps, "seconds": seconds,
                "load_seconds": load_s}

    @app.post("/api/inpaint")
    def inpaint(model: str = Form(...), box: str = Form(...), index: Optional[int] = Form(None),
                file: Optional[UploadFile] = File(None), seed: int = Form(0), label: Optional[int] = Form(None),
                iters: Optional[int] = Form(None), steps: Optional[int] = Form(None)) -> Dict[str, Any]:
        """Fill a box of an image under the model's prior (nfzoo_heads.inpaint); the other pixels come back
        unchanged. iters (flows) or steps (diffusion) as in `nfzoo inpaint --set`; none: INPAINT_DEFAULTS."""
        import torch

        from nfzoo.imageio import single_png_bytes

        heads = _heads()
        from nfzoo_heads.inpainting import is_diffusion, parse_box

        seed = check_seed(seed)
        bx = parse_box(box)
        options = {}
        if iters is not None:
            options["iters"] = check_int("iters", iters, 0, MAX_STEPS)
        if steps is not None:
            options["steps"] = check_int("steps", steps, 1, MAX_STEPS)
        slot, load_s = loaded(model)
        m = slot.model
        label = check_label(m, slot.name, label)
        if not options:
            options = dict(INPAINT_DEFAULTS["repaint" if is_diffusion(m) else "latent"])
        x = pick_image("the image", index, file, _read(file), slot.name, slot.entry.dataset, m.image_shape)
        mask = heads.box_mask(x.shape, bx)
        y = None if label is None else torch.tensor([label], device=m.device)
        with slot.lock:
            t0 = time.perf_counter()
            filled = heads.inpaint(m, x.unsqueeze(0), mask, torch.Generator().manual_seed(seed), y=y, **options)
            seconds = time.perf_counter() - t0
        times.add("inpaint", seconds)
        return {"image": data_url(single_png_bytes(filled[0])), "input": data_url(single_png_bytes(x)),
                "box": list(bx), "filled_pixels": int(mask.sum()), "options": options, "seed": seed,
                "seconds": seconds, "load_seconds": load_s}

    @app.post("/api/score")
    def score(model: str = Form(...), files: List[UploadFile] = File(...), seed: int = Form(0),
              wait: bool = Form(False)) -> Dict[str, Any]:
        """Per-image bpd and typicality of uploaded images (nfzoo_heads.score), as `nfzoo score` gives them.
        The typicality needs the model's reference (computed once, in the background): until it is ready the
        records hold bpd only and "reference" says "computing" (wait=true waits for it)."""
        import torch

        heads = _heads()
        seed = check_seed(seed)
        if len(files) > MAX_SCORE_FILES:
            raise UsageError(f"at most {MAX_SCORE_FILES} images a request, got {len(files)}: score fewer at a time")
        slot, load_s = loaded(model)
        m = slot.model
        xs = [check_shape(read_upload(_read(f) or b"", f.filename, m.image_shape[0]), safe_name(f.filename),
                          slot.name, m.image_shape) for f in files]     # every file checked before scoring
        ref = cache.reference(slot.name, start=True, wait=wait)
        mean = ref["reference"]["mean_bpd"] if ref["state"] == "ready" else None
        with slot.lock:
            t0 = time.perf_counter()
            records = heads.score(m, torch.stack(xs), mean, seed)
            seconds = time.perf_counter() - t0
        times.add("score", seconds)
        return {"records": [{"name": safe_name(f.filename), **r} for f, r in zip(files, records)],
                "reference": ref, "seed": seed, "seconds": seconds, "load_seconds": load_s}

    return app
