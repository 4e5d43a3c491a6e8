"""The `nfzoo` command line: typer parses, the core computes, rich renders."""
