"""The gallery's FastAPI app: `create_app` wires the middleware (guards.py), the JSON errors and the routers
(routes.py: the page and the zoo; one endpoint per feature) around a `Gallery` (work.py), the app's state at
app.state.gallery. Each feature endpoint takes a multipart form (numbers, names, uploads) and answers JSON with
the images as PNG data URLs and the seconds the model computed; a bad request answers 4xx with
{"error": "<the message the CLI prints>"}. The routes are listed in nfzoo_gallery.routes.

Each feature's work runs in a worker thread (at most `workers` at a time); a model computes one request at a time
(its lock), different models in parallel. Every request kind has a budget of seconds (nfzoo_gallery.budget):
the work stops at the first torch operation past it, when the client closes the connection, or when the server
stops; a request the model's measured cost says cannot fit is refused before it starts (422). Request bodies
are limited to `max_upload_bytes` (413 otherwise, `BodyLimit`); an uploaded image's size is compared with the
model's from its header, before anything is decoded. Every response carries a Content Security Policy of
'self' only; requests from other sites' pages are refused (`SameOrigin`); the Host is checked on loopback
(`HostCheck`), the token elsewhere (`TokenCheck`). The threat model: README, "Security".
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from os import PathLike
from typing import List, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from nfzoo.errors import HubError, NfzooError, UnknownNameError, UsageError

from .budget import Stopped, TooCostly
from .budget import budgets as default_budgets
from .guards import BodyLimit, HostCheck, SameOrigin, SecurityHeaders, TokenCheck
from .inputs import MAX_UPLOAD_BYTES
from .messages import public_message
from .routes import STATIC, features, pages, web
from .websites import PREFIX as WEB_PREFIX
from .websites import SITE_CSP, WebSites
from .work import Gallery
from .zoo import ModelCache, ReferenceFn


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
               request_seconds: Optional[float] = None, workers: int = 4,
               web_sites: Optional[PathLike] = None) -> FastAPI:
    """The gallery app. `cache` (or a new ModelCache(capacity, device, reference_fn)) holds the models;
    `max_upload_bytes` bounds every request body; `allowed_hosts` (None: any), the Host headers it answers
    (`nfzoo serve` on a loopback address answers only loopback names: a page elsewhere cannot reach it by DNS
    rebinding); `token` (None: none), the token every request must carry (`nfzoo serve --allow-remote`);
    `request_seconds` (None: budget.DEFAULT_BUDGETS), every request kind's budget; `workers`, the requests
    computing at once; `web_sites` (None: none), the folder of the models' exported browser pages, served under
    /web/NAME/ (nfzoo_gallery.websites). Requests from other sites' pages are always refused. The cache's
    background work stops with the app."""
    cache = cache or ModelCache(capacity, device, reference_fn)
    g = Gallery(cache, default_budgets(request_seconds), workers)
    sites = WebSites(web_sites)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        cache.close()

    # no /docs or /redoc: FastAPI's pages load their scripts from a CDN, and the gallery is offline
    app = FastAPI(title="nfzoo gallery", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json",
                  lifespan=lifespan)
    app.state.cache, app.state.times, app.state.gallery, app.state.web_sites = cache, g.times, g, sites
    too_large = (f"the request is larger than the gallery's limit of {max_upload_bytes / 2 ** 20:g} MB "
                 f"({max_upload_bytes:,} bytes): upload smaller image files, or fewer at a time")
    # (FastAPI's own max_body_size answers a declared oversize body in plain text, whatever the handlers say)
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes, message=too_large)
    app.add_middleware(SameOrigin)
    if token:
        app.add_middleware(TokenCheck, token=token)
    if allowed_hosts:
        app.add_middleware(HostCheck, allowed=list(allowed_hosts))
    app.add_middleware(SecurityHeaders, policies={WEB_PREFIX: SITE_CSP})
    _errors(app)
    app.include_router(pages)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(features)
    app.include_router(web)
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
