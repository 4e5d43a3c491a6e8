"""`nfzoo serve`: the gallery, a local web app (nfzoo_cli.serve) that lists the zoo and samples, interpolates,
inpaints and scores images with a chosen model in the browser. Offline: the page's HTML, CSS and JS ship in
the package."""
from __future__ import annotations

import os
import socket
from typing import List, Optional

import typer

from ..toolkit import err, finite, parse_device

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def default_threads() -> int:
    """Torch threads for the server: OMP_NUM_THREADS when set, else half the CPUs, 1 to 4. A request works on
    a few small images, where more threads gain little, and the other half is left to requests for other
    models and to the typicality references (on a busy 2-core machine 2 threads made an inpainting 10x slower
    than 1: OpenMP's workers spin)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, (os.cpu_count() or 1) // 2))


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one), made here so that a port in use or a bad
    host is a clear error before anything loads, and so that port 0's choice can be printed."""
    from nfzoo.errors import UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r}: not an address of this machine ({exc.strerror}); the default is "
                         "127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = "pass another --port, or --port 0 for a free one" if port else "check --host"
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): {hint}") from None
    return sock


def serve_cmd(host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (0.0.0.0: every "
                                       "interface; the gallery has no login, so only on a network you trust)"),
              port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port; 0 picks a free one "
                                       "(printed)"),
              device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... [cuda when available]"),
              threads: Optional[int] = typer.Option(None, "--threads", min=1, max=1024,
                                                    help="torch threads [OMP_NUM_THREADS, else half the CPUs, 1 to 4]"),
              models: int = typer.Option(3, "--models", min=1, max=64, help="models kept loaded (the least "
                                         "recently used one is dropped first)"),
              preload: List[str] = typer.Option([], "--preload", help="load this model and compute its typicality "
                                                "reference before serving (repeatable)"),
              max_upload_mb: float = typer.Option(2.0, "--max-upload-mb", callback=finite(above=0, maximum=1024),
                                                  help="the largest request body (all its uploads), in MB"),
              open_page: bool = typer.Option(False, "--open", help="open the page in the default browser")):
    """Start the gallery: a local web page that lists the zoo (cards, metrics) and, for a chosen model,
    samples (seed, temperature, label, sampler, steps), interpolates between two images, inpaints a box you
    draw, and scores uploaded images (bpd, typicality). Models load on first use and stay loaded. Prints the
    page's address on stdout; Ctrl-C stops it."""
    from nfzoo.errors import UsageError

    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: FastAPI's form parser)
        import uvicorn
    except ImportError as exc:
        raise UsageError(f"nfzoo serve needs fastapi, uvicorn and python-multipart ({exc.name} is missing): "
                         "pip install 'nfzoo[serve]'") from None
    dev = parse_device(device)
    import torch

    torch.set_num_threads(threads or default_threads())
    from ..serve import create_app

    hosts = ["127.0.0.1", "localhost"] if host in ("127.0.0.1", "localhost") else None   # no DNS rebinding
    app = create_app(capacity=models, device=dev, max_upload_bytes=int(max_upload_mb * 2 ** 20), allowed_hosts=hosts)
    cache = app.state.cache
    for name in preload:                   # bad names fail here, before the port is taken
        slot, seconds = cache.get(name)
        err.print(f"loaded {slot.name} ({seconds:.1f} s); computing its typicality reference...", highlight=False)
        ref = cache.reference(slot.name, wait=True)
        if ref["state"] != "ready":
            err.print(f"[yellow]warning:[/] {slot.name}: no typicality reference: {ref.get('error')}", highlight=False)
    sock = bind(host, port)
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{actual}/"
    if host not in LOOPBACK:
        err.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this machine can use the gallery "
                  "(it has no login)", highlight=False)
    typer.echo(url)
    err.print(f"nfzoo gallery at {url} ({dev}, {torch.get_num_threads()} torch threads; Ctrl-C stops it)",
              highlight=False)
    if open_page:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


def register(app: typer.Typer) -> None:
    """Add `serve` to `app`."""
    app.command("serve")(serve_cmd)
