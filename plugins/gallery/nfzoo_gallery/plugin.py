"""nfzoo hooks of nfzoo-gallery: the `serve` command (registering imports neither torch nor fastapi)."""
import nfzoo


@nfzoo.hookimpl
def register_commands(app):
    """Add `nfzoo serve` (nfzoo_gallery.cli) to the CLI app."""
    from .cli import add_commands

    add_commands(app)


@nfzoo.hookimpl
def register_benchmarks(register):
    """`nfzoo bench serve` (nfzoo_gallery.bench): the warm seconds of each request kind of the gallery."""
    register("serve", "nfzoo_gallery.bench:bench_serve",
             description="warm seconds per gallery request kind (sample, interpolate, inpaint, score): the "
                         "request through the app against the direct call")
