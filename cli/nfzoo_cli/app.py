"""The `nfzoo` typer app: nfzoo's commands (nfzoo_cli.commands, one module each) and the plugins'
(`register_commands(app)`), under one click group that turns every command's errors into exit codes
(nfzoo_cli.exits). `nfzoo --help`, `list`, `info` and `plugins` import no torch."""
from __future__ import annotations

import importlib

import typer

from .commands import COMMANDS
from .exits import NfzooGroup
from .toolkit import err

app = typer.Typer(name="nfzoo", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  cls=NfzooGroup,
                  help="nfzoo: normalizing-flow models you can list, pull, sample, train, evaluate and "
                       "extend with plugins.")
for _name in COMMANDS:
    importlib.import_module(f"{__package__}.commands.{_name}").register(app)

_plugins_added = False


def build_app() -> typer.Typer:
    """The app with the plugins' commands (register_commands) added, once; a plugin that fails to add its
    commands, or an NFZOO_LOAD_PLUGINS name no plugin has, is a warning on stderr, not a failure."""
    global _plugins_added
    if not _plugins_added:
        _plugins_added = True
        from nfzoo.registry.plugins import get_registry

        reg = get_registry()
        try:
            reg.add_commands(app)
        except Exception as exc:  # a plugin's broken command must not take the CLI down
            err.print(f"[yellow]warning:[/] a plugin failed to add its commands: {exc}")
        for name in reg.unknown_allowed():   # NFZOO_LOAD_PLUGINS=typo would otherwise hide every plugin
            err.print(f"[yellow]warning:[/] {reg.plugins[name].error}", highlight=False, soft_wrap=True)
    return app


def main() -> None:
    """The `nfzoo` console script and `python -m nfzoo_cli`."""
    build_app()()
