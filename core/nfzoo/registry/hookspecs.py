"""The hooks a plugin can implement. Each receives a `register(name, target, **metadata)` callable.

`target` is an object or a lazy "module:attribute" string (registering then imports nothing heavy).
Metadata: `description` (one line), `paper`, and per kind: bijectors carry `example=(kwargs, input_shape)`
for the testing kit; pretrained entries carry `architecture`, `config`, `dataset`, `metrics`, ...
"""
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Protocol

import pluggy

if TYPE_CHECKING:
    from nfzoo.flows.model import FlowModel

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
def register_datasets(register):
    """Register data sets by name: `register(name, "module:loader", shape=(C, H, W), classes=N or None,
    splits=("train", "test"), description=...)`. `loader(split, **options)` returns a torch Dataset of
    (image, label), images as floats in [0, 1] of shape (C, H, W); options come from the training config's
    data options. `nfzoo.data.load_dataset(name)` and `nfzoo train --dataset NAME` find it; `nfzoo list
    --datasets` lists it. A name must not start with `folder:` or `hf:` nor be a built-in data set's."""


@hookspec
def register_pretrained(register):
    """Register pretrained model entries (zoo pins)."""


@hookspec
def register_heads(register):
    """Register application heads that work on any FlowModel."""


class EvalTask(Protocol):
    """The calling contract of an evaluation task (`register_eval_tasks`), as `nfzoo eval MODEL --dataset
    DS --task NAME` calls it:

        task(model, dataset, *, seed, data_root, device, progress, model_name, **options) -> document

    - model: the loaded FlowModel (with the `--sampler` given, if any), on `device`;
    - dataset: the data set name (`--dataset`); data_root: `--data-root` (None: the default folder);
    - seed: `--seed`; device: the torch device string the model is on;
    - progress(stage, done, total): report progress (stage a short text; total None when unknown);
    - model_name: the name the model was loaded by (for the document);
    - options: keyword arguments from `--set KEY=VALUE` (JSON values), and `n` (`--samples`),
      `temperature`, `steps`, `eta`, `oracle` when they are given. A task names the options it takes in its
      signature; an option it does not name is a usage error (exit 2), unless it takes `**options`.

    It returns a JSON-able document (a dict) of its results; the key `summary`, a list of lines, is what
    the command prints without `--json` (the rest is printed with `--json`, after "model" and "dataset").
    Bad options raise nfzoo.errors.UsageError before any long work.
    """

    def __call__(self, model: "FlowModel", dataset: str, *, seed: int, data_root: Optional[str], device: str,
                 progress: Callable[[str, int, Optional[int]], None], model_name: str,
                 **options: Any) -> Dict[str, Any]:
        ...


@hookspec
def register_eval_tasks(register):
    """Register evaluation tasks for `nfzoo eval MODEL --dataset DS --task NAME`:
    `register(name, "module:function", description=..., head=HEAD)`, the function an `EvalTask` (see its
    contract above); `head` names the head the task measures, if any (`nfzoo plugins` shows it there)."""


@hookspec
def register_benchmarks(register):
    """Register benchmarks for `nfzoo bench NAME`: `fn(**options) -> list of result rows`."""


@hookspec
def register_commands(app):
    """Add typer commands to the `nfzoo` CLI app."""
