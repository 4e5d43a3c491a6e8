"""`nfzoo serve`: the gallery, a small FastAPI app and one plain page (HTML, CSS and JS shipped in this package
under static/, no CDN, no build step) that lists the zoo and, for a chosen model, samples, interpolates,
inpaints and scores images in the browser.

The app is a renderer, as the CLI is: it calls the core (nfzoo.load, nfzoo.generation, nfzoo.imageio) and the
heads plugin's public functions (nfzoo_heads: interpolate, inpaint, score, typicality_reference).

    from nfzoo_cli.serve import create_app      # app = create_app(); uvicorn.run(app)

- `zoo.py`: the zoo list (registry entries, headline metrics, model cards) and `ModelCache`, the loaded
  models (a small LRU, a lock per model, the typicality references computed once per model).
- `inputs.py`: request parameters and uploads, checked with the core's and the CLI toolkit's rules, so a bad
  value gets the CLI's message.
- `guards.py`: the Content Security Policy on every response, the request body limit.
- `app.py`: the routes, the JSON errors and the time per request kind.

Importing this package imports neither torch nor fastapi; `create_app` does.
"""
from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    """The gallery's FastAPI app (`nfzoo_cli.serve.app.create_app`, imported on first use)."""
    from .app import create_app as build

    return build(*args, **kwargs)
