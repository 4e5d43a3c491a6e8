"""Hugging Face Hub conventions for nfzoo models: the methods of huggingface_hub's `ModelHubMixin` /
`PyTorchModelHubMixin` (`from_pretrained`, `save_pretrained`, `push_to_hub`, `generate_model_card`), with
their signatures, on nfzoo's own files and loading path. `FlowModel` takes them from `HubMixin`:

    model.save_pretrained("runs/glow")                      # config.json + model.safetensors, as before
    model.push_to_hub("me/glow-digits")                     # nfzoo.hub.publish.push: card, .eval_results/
    model = FlowModel.from_pretrained("me/glow-digits")     # a Hub repo id, sha-checked, strict
    model = FlowModel.from_pretrained("runs/glow")          # an existing directory

Why not subclass `PyTorchModelHubMixin`: its `__new__` records the constructor's JSON-able arguments as the
config (a FlowModel's are its bijector and prior modules, which do not rebuild it), its `save_pretrained`
deletes config.json before writing (not atomically) and writes a generic README.md, its `from_pretrained`
downloads config.json and the weights with `hf_hub_download` outside nfzoo's checks (repo id and revision
validation, timeouts, sha256, the strict loader) and feeds config keys to `__init__`, and it would import the
Hub client whenever nfzoo imports torch. Every public method would be overridden; what is left is the
conventions, which this mixin keeps: the same names, keywords and return values, a config.json beside
model.safetensors, `library_name: nfzoo` and tags in the card.

Names (`from_pretrained`): nfzoo's one name rule (nfzoo.loading.pretrained.parse_model_name), the same as
`nfzoo.load`'s: `hf-hub:ORG/NAME[@REV]` is a Hub repo; an os.PathLike, `local-dir:PATH` and paths (`./x`,
`/abs/x`, `~/x`, `a/b/c`) are directories; a string `ORG/NAME` is the directory of that name if it exists,
else a Hub repo id (the mixin's and diffusers' rule; a string of that shape that is not a valid repo id is
a UsageError); a bare name is always the zoo's. Only the default differs: from_pretrained downloads unless
local_files_only=True, nfzoo.load only with download=True. Torch-free.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

from nfzoo.errors import UsageError

_PUSH_KEYS = ("commit_message", "private", "token", "branch", "create_pr", "allow_patterns", "ignore_patterns",
              "delete_patterns")


def _no_config(config: Any) -> None:
    if config is not None:
        raise UsageError("an nfzoo model writes its own config.json (architecture + config, "
                         "`model.config_document()`): do not pass config=; build the model you want with "
                         "nfzoo.create_model(arch, **config) and save that")


class HubMixin:
    """huggingface_hub's ModelHubMixin API for nfzoo models (see the module docstring): a subclass writes its
    files in `_save_pretrained(directory)`; loading builds the model from config.json through `nfzoo.load`'s
    checks, whatever class it is called on, and refuses one that is not an instance of that class."""

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write the model's files into an existing directory (the subclass's: config.json + weights)."""
        raise NotImplementedError

    def save_pretrained(self, save_directory: Union[str, os.PathLike], *, config: Optional[dict] = None,
                        repo_id: Optional[str] = None, push_to_hub: bool = False,
                        model_card_kwargs: Optional[Dict[str, Any]] = None,
                        **push_to_hub_kwargs: Any) -> Union[Path, str]:
        """Write config.json and model.safetensors into `save_directory` (created if needed; each file
        atomically) and return the directory. With push_to_hub=True, then push that directory
        (`nfzoo.hub.publish.push`: its README.md if it has one, else a generated card, and its run's
        `.eval_results/`) to `repo_id` (default: the directory's name, which must then be ORG/NAME) and return
        the commit URL. `model_card_kwargs` and `push_to_hub_kwargs` are `push_to_hub`'s. No README.md is
        written locally (the mixin writes one; nfzoo generates the card when it pushes)."""
        _no_config(config)
        unknown = sorted(set(push_to_hub_kwargs) - set(_PUSH_KEYS))
        if unknown:
            raise UsageError(f"save_pretrained got unknown argument(s) {', '.join(unknown)}; with push_to_hub=True "
                             f"it takes push_to_hub's: {', '.join(_PUSH_KEYS)}, model_card_kwargs")
        d = Path(save_directory)
        d.mkdir(parents=True, exist_ok=True)
        self._save_pretrained(d)
        if not push_to_hub:
            return d
        return self._push_directory(d, repo_id or d.name, model_card_kwargs, **push_to_hub_kwargs)

    def push_to_hub(self, repo_id: str, *, config: Optional[dict] = None, commit_message: Optional[str] = None,
                    private: Optional[bool] = None, token: Optional[str] = None, branch: Optional[str] = None,
                    create_pr: Optional[bool] = None, allow_patterns: Any = None, ignore_patterns: Any = None,
                    delete_patterns: Any = None, model_card_kwargs: Optional[Dict[str, Any]] = None) -> str:
        """Save the model into a temporary directory and upload it to the Hub repo `repo_id` (ORG/NAME,
        created if needed) in one commit through `nfzoo.hub.publish.push`: config.json, model.safetensors, a
        generated model card (library_name nfzoo, tags, model-index) and the `.eval_results/` files of its
        results. `model_card_kwargs` says what the model does not know (nfzoo.hub.publish.CARD_KEYS: dataset,
        description, license, paper, metrics). `branch`: the branch to commit to (created from main). Returns
        the commit URL. create_pr and the allow / ignore / delete patterns are refused (UsageError): nfzoo
        uploads exactly its files."""
        _no_config(config)
        with tempfile.TemporaryDirectory(prefix="nfzoo-push-") as tmp:
            d = Path(tmp)
            self._save_pretrained(d)
            return self._push_directory(d, repo_id, model_card_kwargs, commit_message=commit_message,
                                        private=private, token=token, branch=branch, create_pr=create_pr,
                                        allow_patterns=allow_patterns, ignore_patterns=ignore_patterns,
                                        delete_patterns=delete_patterns)

    def _push_directory(self, d: Path, repo_id: str, model_card_kwargs: Optional[Dict[str, Any]],
                        commit_message: Optional[str] = None, private: Optional[bool] = None,
                        token: Optional[str] = None, branch: Optional[str] = None, **refused: Any) -> str:
        from nfzoo.hub import publish
        from nfzoo.hub.names import check_repo_id

        given = sorted(k for k, v in refused.items() if v)
        if given:
            raise UsageError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} not supported by nfzoo's "
                             "push, which uploads config.json, model.safetensors, README.md and .eval_results/ in "
                             "one commit: push to a branch instead (branch=NAME)")
        check_repo_id(repo_id, "repo_id")
        doc = publish.push(d, repo_id, token=token, revision=branch, private=private,
                           commit_message=commit_message, card=model_card_kwargs)
        return doc["url"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], *,
                        force_download: bool = False, token: Optional[str] = None, cache_dir: Any = None,
                        local_files_only: bool = False, revision: Optional[str] = None,
                        download: Optional[bool] = None, device: Optional[str] = None,
                        map_location: Optional[str] = None, **model_kwargs: Any):
        """A model from a directory, a Hub repo id (`hf-hub:ORG/NAME[@REV]`, or `ORG/NAME` when no such
        directory exists) or a zoo name (nfzoo.load's name rule, the module docstring), built from its
        config.json and loaded strictly; Hub files come through nfzoo's verified pull (the
        HF cache at HF_HUB_CACHE, checked by sha256 / blob id). As the mixin: the Hub is asked unless
        local_files_only=True (`download` says it explicitly: download=False is nfzoo.load's offline default);
        force_download fetches again; `token` for private repos; `revision` a branch, tag or commit sha;
        `map_location` is `device`. No constructor arguments (the config is the file's), no other cache
        folder (set HF_HUB_CACHE): both are UsageErrors, as is a bad repo id."""
        from nfzoo.loading import api
        from nfzoo.loading.sources import resolve_source

        name = pretrained_model_name_or_path
        if model_kwargs:
            raise UsageError(f"from_pretrained got {', '.join(sorted(model_kwargs))}: an nfzoo model is built "
                             "from its config.json and takes no constructor arguments (to change the config, "
                             "build one with nfzoo.create_model(arch, **config))")
        if cache_dir is not None:
            raise UsageError("nfzoo keeps Hub files in the Hugging Face cache of HF_HUB_CACHE: set that instead "
                             "of cache_dir=")
        if download and local_files_only:
            raise UsageError("download=True and local_files_only=True contradict each other: give one")
        if device and map_location and device != map_location:
            raise UsageError(f"device={device!r} and map_location={map_location!r} differ: give one")
        fetch = (not local_files_only) if download is None else bool(download)
        device = device or map_location
        # the name rule is nfzoo.load's (nfzoo.loading.sources.resolve_source); force and token matter only online
        src = resolve_source(name, revision, download=fetch, kind="flow", force=fetch and force_download,
                             token=token if fetch else None)
        if src.path is not None:
            model = api.load_directory(src.path, device)
        else:
            model = src.obj
            if device:
                model.to(device)
        if not isinstance(model, cls):
            kind = f"{type(model).__name__} ({getattr(model, 'architecture', '?')})"
            raise UsageError(f"{os.fspath(name)} holds a {kind}, not a {cls.__name__}: load it with nfzoo.load or "
                             f"{type(model).__name__}.from_pretrained")
        return model

    def generate_model_card(self, **card: Any):
        """The model card `push_to_hub` would upload (a huggingface_hub ModelCard) for this model, named by its
        architecture; `card` as push_to_hub's model_card_kwargs (dataset, description, license, paper,
        metrics)."""
        from huggingface_hub import ModelCard

        from nfzoo.hub import publish

        arch = getattr(self, "architecture", "") or type(self).__name__
        info = publish.card_info({"architecture": arch, "config": getattr(self, "config", {}), "dataset": None,
                                  "metrics": {}}, card)
        return ModelCard(publish.model_card(arch, info))
