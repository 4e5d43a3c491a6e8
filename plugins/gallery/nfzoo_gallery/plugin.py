"""nfzoo hooks of nfzoo-gallery: the `serve` command (registering imports neither torch nor fastapi)."""
import nfzoo


@nfzoo.hookimpl
def register_commands(app):
    """Add `nfzoo serve` (nfzoo_gallery.cli) to the CLI app."""
    from .cli import add_commands

    add_commands(app)
