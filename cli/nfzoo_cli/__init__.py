"""The `nfzoo` command line: typer parses, the core computes, rich renders. The commands live in
nfzoo_cli.commands (one module each), nfzoo_cli.app wires them (`nfzoo`, `python -m nfzoo_cli`), and
nfzoo_cli.toolkit is the public toolkit that plugins' commands import."""

from nfzoo import __version__  # the distribution's one version source

__all__ = ["__version__"]
