"""nfzoo-gallery: `nfzoo serve`, the gallery, a small FastAPI app and one plain page (HTML, CSS and JS shipped
in this package under static/, no CDN, no build step) that lists the zoo and, for a chosen model, samples,
interpolates, inpaints and scores images in the browser. The plugin adds the `serve` command to the CLI
(register_commands).

The app is a renderer, as the CLI is: it calls the core (nfzoo.load, nfzoo.flows.generation, nfzoo.imageio) and the
heads plugin's public functions (nfzoo_heads: interpolate, inpaint, score, typicality_reference).

    from nfzoo_gallery import create_app      # app = create_app(); uvicorn.run(app)

- `zoo.py`: the zoo list (registry entries, headline metrics, model cards) and `ModelCache`, the loaded
  models (a small LRU, a lock per model, the typicality references computed once per model).
- `inputs.py`: request parameters and uploads, checked with the core's and the CLI toolkit's rules, so a bad
  value gets the CLI's message.
- `guards.py`: the Content Security Policy on every response, the request body limit, the host, origin and
  token checks.
- `budget.py`, `work.py`: the seconds per request kind, the worker threads; `features.py` the request kinds.
- `routes.py`: the routes, as routers (the page and the zoo; the features); `app.py`: `create_app`, which
  wires the middleware, the JSON errors and the routers.
- `cli.py`: the `serve` command; `plugin.py`: its registration.

Importing this package imports neither torch nor fastapi; `create_app` does, on first access.
"""

__version__ = "0.2.0"

from nfzoo.lazy import lazy_exports

_LAZY = {"create_app": "app"}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
