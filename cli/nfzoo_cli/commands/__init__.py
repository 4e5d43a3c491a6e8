"""nfzoo's own commands, one module per command (or small family). Each module has `register(app)`, which
adds its commands to the typer app as a plugin's `register_commands(app)` hook does; `nfzoo_cli.app`
calls them in the order of COMMANDS, the order `nfzoo --help` lists them in. Importing a command module
imports no torch (each command imports what it needs when it runs)."""

COMMANDS = ("listing", "sample", "train", "refit", "eval", "train_oracle", "bench", "export", "hub", "cache")
