"""The hooks a plugin can implement. Each receives a `register(name, target, **metadata)` callable.

`target` is an object or a lazy "module:attribute" string (registering then imports nothing heavy).
Metadata: `description` (one line), `paper`, and per kind: bijectors carry `example=(kwargs, input_shape)`
for the testing kit; pretrained entries carry `architecture`, `config`, `dataset`, `metrics`, ...
"""
import pluggy

hookspec = pluggy.HookspecMarker("nfzoo")
hookimpl = pluggy.HookimplMarker("nfzoo")


@hookspec
def register_bijectors(register):
    """Register Bijector classes or factories."""


@hookspec
def register_priors(register):
    """Register Prior classes or factories."""


@hookspec
def register_samplers(register):
    """Register Sampler classes or factories."""


@hookspec
def register_architectures(register):
    """Register model builders: `builder(**config) -> FlowModel` (image_shape, levels, steps, hidden, ...)."""


@hookspec
def register_pretrained(register):
    """Register pretrained model entries (zoo pins)."""


@hookspec
def register_heads(register):
    """Register application heads that work on any FlowModel."""


@hookspec
def register_benchmarks(register):
    """Register benchmarks for `nfzoo bench NAME`: `fn(**options) -> list of result rows`."""


@hookspec
def register_commands(app):
    """Add typer commands to the `nfzoo` CLI app."""
