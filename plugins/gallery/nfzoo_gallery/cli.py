"""`nfzoo serve` (added through register_commands): the gallery, a local web app (nfzoo_gallery) that lists
the zoo and samples, interpolates, inpaints and scores images with a chosen model in the browser. Offline: the
page's HTML, CSS and JS ship in the package. It uses only the CLI's public toolkit (nfzoo_cli.toolkit); the app
maps the command's errors to exit codes."""
from __future__ import annotations

import importlib.util
import os
import secrets
import socket
from pathlib import Path
from typing import Any, List, Optional, Tuple

import typer

from nfzoo_cli.toolkit import err, finite, parse_device

from .hosts import LOOPBACK, is_loopback

STOP_SECONDS = 3            # after SIGTERM, connections still open this long are closed


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


def access(host: str, allow_remote: bool) -> Tuple[Optional[List[str]], Optional[str]]:
    """(the Host names the gallery answers, its token) for a bind address. Loopback: the loopback names, no
    token (a page elsewhere cannot reach it by DNS rebinding). Any other address needs --allow-remote, and
    then a new random token (any Host: the token is the check)."""
    from nfzoo.errors import UsageError

    if is_loopback(host):
        return sorted({*LOOPBACK, host.strip("[]").lower()}), None
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host!r}: not an address of this machine ({exc.strerror}); the default is "
                         "127.0.0.1") from None
    if not allow_remote:
        raise UsageError(f"--host {host} can be reached from other machines and the gallery has no login: pass "
                         "--allow-remote to serve there with a token, or keep the default --host 127.0.0.1")
    return None, secrets.token_urlsafe(24)


def run_server(app: Any, sock: socket.socket, stopping: Any) -> None:
    """Serve `app` on `sock` with uvicorn until SIGINT / SIGTERM. On the signal the gallery's stop event is set
    at once, so every request's work (and the typicality reference) ends at its next torch operation, and
    connections still open after STOP_SECONDS are closed: the server stops in seconds."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            stopping.set()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=STOP_SECONDS)
    Server(config).run(sockets=[sock])


def serve_cmd(host: str = typer.Option("127.0.0.1", "--host", help="address to listen on; one other "
                                       "machines can reach (0.0.0.0: every interface) needs --allow-remote"),
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
              allow_remote: bool = typer.Option(False, "--allow-remote", help="listen on an address other "
                                                "machines can reach (--host other than loopback); every request "
                                                "then carries a token, in the address printed"),
              request_seconds: Optional[float] = typer.Option(
                  None, "--request-seconds", callback=finite(above=0, maximum=3600),
                  help="the seconds one request may compute (stopped after; refused before when the model's "
                  "measured cost says it cannot fit) [15 for every kind]"),
              web_sites: Optional[Path] = typer.Option(
                  None, "--web-sites", help="a folder of the models' browser pages, each written by `nfzoo export "
                  "NAME --format web --out DIR/NAME`: served at /web/NAME/ and linked from the model's panel"),
              export_web: List[str] = typer.Option([], "--export-web", help="before serving, export this model's "
                                                    "browser page into --web-sites unless it is there (repeatable)"),
              open_page: bool = typer.Option(False, "--open", help="open the page in the default browser")):
    """Start the gallery: a local web page that lists the zoo (cards, metrics) and, for a chosen model,
    samples (seed, temperature, label, sampler, steps), interpolates between two images, inpaints a box you
    draw, and scores uploaded images (bpd, typicality). Models load on first use and stay loaded. With
    --web-sites, a model's exported browser page (onnxruntime-web) is served at /web/NAME/ and linked. Prints the
    page's address on stdout; Ctrl-C stops it."""
    from nfzoo.errors import UsageError

    missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:            # (multipart: python-multipart, FastAPI's form parser)
        raise UsageError(f"nfzoo serve needs fastapi, uvicorn and python-multipart, nfzoo-gallery's dependencies "
                         f"({missing[0]} is missing): pip install fastapi uvicorn python-multipart")
    hosts, token = access(host, allow_remote)
    if export_web and web_sites is None:
        raise UsageError("--export-web needs --web-sites DIR: the folder the page is written into and served from")
    from .websites import WebSites, build_site

    sites = WebSites(web_sites)             # a missing folder is an error before anything loads
    dev = parse_device(device)
    import torch

    torch.set_num_threads(threads or default_threads())
    from .app import create_app

    for name in export_web:                # bad names fail here, before the port is taken
        build_site(sites, name, log=lambda msg: err.print(msg, highlight=False))
    app = create_app(capacity=models, device=dev, max_upload_bytes=int(max_upload_mb * 2 ** 20), allowed_hosts=hosts,
                     token=token, request_seconds=request_seconds, web_sites=web_sites)
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
    url = f"http://{shown}:{actual}/" + (f"?token={token}" if token else "")
    if token:
        err.print(f"[yellow]warning:[/] listening on {host}: other machines can reach the gallery; it answers only "
                  "requests that carry the token in the address below (share it with care; the traffic is not "
                  "encrypted)", highlight=False)
    typer.echo(url)
    err.print(f"nfzoo gallery at {url} ({dev}, {torch.get_num_threads()} torch threads; Ctrl-C stops it)",
              highlight=False)
    if open_page:
        import webbrowser

        webbrowser.open(url)
    run_server(app, sock, cache.stopping)


def add_commands(app: typer.Typer) -> None:
    """Add `serve` to `app` (the plugin's register_commands hook); the app maps its errors to exit codes."""
    app.command("serve")(serve_cmd)
