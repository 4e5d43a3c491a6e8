"""The models' static browser pages: the sites `nfzoo export NAME --format web --out DIR/NAME` writes
(nfzoo.export.web.export_web: a page that samples in the browser with onnxruntime-web), served by the gallery
under /web/NAME/ when `nfzoo serve --web-sites DIR` names the folder that holds them, and linked from the model's
panel on the page.

Sites are built by the operator, never by a web request: an export takes seconds to minutes of CPU, writes about
17 MB per model and may download onnxruntime-web (a 35 MB tarball) the first time, none of which a request
should be able to start. `nfzoo serve --web-sites DIR --export-web NAME` builds a missing one before serving
(`build_site`).

Only a zoo name's folder is served (the name rule of the gallery, nfzoo_gallery.zoo.resolve, decided without
looking at the disk), only when it holds a web export's site.json for that model, and only files under it: every
part of the path is letters, digits and `._-` not starting with a dot (no `..`, no hidden files), the file found
must lie inside the site once links are resolved, and be at most MAX_FILE_BYTES. The answers carry SITE_CSP, the
gallery's 'self'-only policy with WebAssembly compilation (onnxruntime-web) and the page's inline style allowed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from nfzoo.errors import UnknownNameError, UsageError

PREFIX = "/web/"
"""Where the sites are served: /web/NAME/ is NAME's page."""
SITE_FILE = "site.json"
MAX_FILE_BYTES = 64 << 20
"""The largest file of a site the gallery serves (onnxruntime-web's binary is about 12 MB)."""
MAX_SITE_JSON_BYTES = 1 << 20
MAX_DEPTH = 8
SITE_CSP = (b"default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            b"script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; worker-src 'self' blob:; "
            b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
"""The Content Security Policy of a served site: 'self' only, as the gallery's, with 'wasm-unsafe-eval' (the browser
compiles onnxruntime-web's WebAssembly) and the page's own <style> allowed."""
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".mjs": "text/javascript; charset=utf-8", ".json": "application/json", ".wasm": "application/wasm",
               ".md": "text/markdown; charset=utf-8", ".png": "image/png", ".txt": "text/plain; charset=utf-8",
               ".css": "text/css; charset=utf-8"}
"""Media types by suffix (a module script and WebAssembly need theirs, and nosniff is set); others are bytes."""
_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


class NotInSite(UnknownNameError):
    """A /web/ address the gallery does not serve (HTTP 404, as an unknown name): the message says why."""

    def __init__(self, message: str):
        UsageError.__init__(self, message)
        self.kind, self.name, self.suggestions = "page", "", []


def media_type(path: Path) -> str:
    """The Content-Type of a site's file."""
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def read_site(folder: Path) -> Optional[Dict[str, Any]]:
    """The folder's site.json when it is a web export's (format "web"), else None."""
    p = folder / SITE_FILE
    try:
        if not p.is_file() or p.stat().st_size > MAX_SITE_JSON_BYTES:
            return None
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == "web" else None


class WebSites:
    """The folder of exported sites, one sub-folder per zoo model, named by its zoo name (None: no sites; every
    /web/ request is then a 404 that says how to serve them)."""

    def __init__(self, root: Optional[os.PathLike] = None):
        self.root = None if root is None else Path(root).expanduser().resolve()
        if self.root is not None and not self.root.is_dir():
            raise UsageError(f"--web-sites {root}: not a folder; export a model's page into it first: nfzoo export "
                             f"NAME --format web --out {self.root / 'NAME'}")

    def site(self, name: str) -> Optional[Path]:
        """The folder of the zoo model `name`'s site (its zoo name's), or None when there is none (or it holds
        another model's)."""
        from .zoo import resolve

        if self.root is None:
            return None
        entry = resolve(name)
        folder = self.root / entry.name
        doc = read_site(folder)
        if doc is None:
            return None
        try:
            same = resolve(str(doc.get("model", ""))).name == entry.name
        except (UnknownNameError, UsageError):
            same = False
        return folder if same else None

    def link(self, name: str) -> Optional[str]:
        """The page's relative address of `name`'s site ("web/NAME/"), or None."""
        from .zoo import resolve

        return f"{PREFIX.lstrip('/')}{resolve(name).name}/" if self.site(name) is not None else None

    def file(self, name: str, path: str) -> Path:
        """The file `path` ("" is index.html) of `name`'s site, checked (the module docstring); UnknownNameError
        (404) for anything else, saying why without the server's paths."""
        from .zoo import resolve

        entry = resolve(name)                # an unknown or non-zoo name: 404 before any look at the disk
        if self.root is None:
            raise NotInSite(f"this gallery serves no browser pages: export {entry.name}'s (nfzoo export {entry.name} "
                            f"--format web --out SITES/{entry.name}) and start it with nfzoo serve --web-sites SITES")
        parts = [p for p in (path or "index.html").split("/")]
        if len(parts) > MAX_DEPTH or not all(_PART.fullmatch(p) for p in parts):
            raise NotInSite(f"no such file in {entry.name}'s browser page: {path[:100]!r} (a site's paths are "
                            "letters, digits and ._-, no .., no hidden files)")
        site = self.site(entry.name)
        if site is None:
            raise NotInSite(f"this gallery has no browser page of {entry.name}: export it (nfzoo export {entry.name} "
                            f"--format web --out SITES/{entry.name}, SITES the folder given to nfzoo serve "
                            "--web-sites)")
        target = site.joinpath(*parts)
        try:
            real = target.resolve(strict=True)
            inside = real.is_relative_to(site.resolve(strict=True))
            ok = inside and real.is_file() and real.stat().st_size <= MAX_FILE_BYTES
        except (OSError, RuntimeError):
            ok = False
        if not ok:
            raise NotInSite(f"no such file in {entry.name}'s browser page: {path[:100]!r}")
        return real


def build_site(sites: WebSites, name: str, log: Callable[[str], None] = print) -> Optional[Path]:
    """Export the zoo model `name`'s browser page into the sites' folder (nfzoo.export.web.export_web, into a
    temporary folder beside it, then renamed), unless it is there already; the site's folder, or None when it
    was there. Run by `nfzoo serve --export-web NAME` before serving, never by a request."""
    import nfzoo
    from nfzoo.export import export_web

    from .zoo import resolve

    if sites.root is None:
        raise UsageError("--export-web needs --web-sites DIR: the folder the page is written into and served from")
    entry = resolve(name)
    if sites.site(entry.name) is not None:
        log(f"{entry.name}: its browser page is in the sites' folder already")
        return None
    final = sites.root / entry.name
    if final.exists():
        raise UsageError(f"{final} exists and is not a web export of {entry.name}: move it away, or give another "
                         "--web-sites folder")
    log(f"exporting {entry.name}'s browser page (nfzoo export {entry.name} --format web)...")
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=sites.root))
    try:
        export_web(nfzoo.load(entry.name), tmp, name=entry.name)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
