"""Publishing a model to the Hub: `push` uploads a model directory with its model card, `model_card` writes
the card (YAML front matter for the Hub, then usage, results and config), `run_info` reads what a card says
from a model or training-run directory. Torch-free: the weights are only checked structurally
(`check_safetensors`) and uploaded as bytes.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from pathlib import Path
from typing import Any, Dict, Optional

from .constants import CARD_NAME, CONFIG_NAME, HF_PREFIX, WEIGHTS_NAME
from .errors import ConfigError, HubUnreachableError, NfzooError, UsageError
from .hub import HubSpec
from .hub_http import hub_call, translate_error
from .hub_names import check_repo_id, check_revision, first_line
from .hub_settings import endpoint, offline
from .safeio import read_json

GENERATED_MARK = "<!-- nfzoo:generated-card (delete this line to keep your edits when regenerating) -->"


def run_info(directory: os.PathLike) -> Dict[str, Any]:
    """Architecture, config, dataset and metrics of a model or training-run directory."""
    d = Path(directory)
    doc = read_json(d / CONFIG_NAME, "model config")
    if not isinstance(doc, dict) or "architecture" not in doc or not isinstance(doc.get("config"), dict):
        raise ConfigError(f"{d / CONFIG_NAME} is not an nfzoo model config (write it with save_pretrained).")
    info: Dict[str, Any] = {"architecture": doc["architecture"], "config": doc["config"],
                            "dataset": doc.get("dataset"), "metrics": {}, "kind": doc.get("kind", "flow")}
    if info["kind"] == "oracle" and doc.get("test_accuracy") is not None:
        info["metrics"] = {"test_accuracy": doc["test_accuracy"]}
    if (d / "train.json").is_file():
        train = read_json(d / "train.json", "training settings")
        settings = train.get("train") if isinstance(train, dict) else None
        info["dataset"] = settings.get("dataset") if isinstance(settings, dict) else None
    if (d / "history.json").is_file():
        history = read_json(d / "history.json", "training history")
        if not isinstance(history, list):     # found by tests/test_fuzz.py (a TypeError before)
            raise ConfigError(f"{d / 'history.json'} is not a list of epoch records (as `nfzoo train` writes "
                              "it); fix or remove it")
        tested = [r for r in history if isinstance(r, dict) and isinstance(r.get("test_bpd"), (int, float))
                  and not isinstance(r.get("test_bpd"), bool) and math.isfinite(r["test_bpd"])]
        if tested:
            last = tested[-1]
            info["metrics"] = {"test_bpd": round(float(last["test_bpd"]), 4), "epochs": last.get("epoch")}
    return info


def check_safetensors(path: Path) -> None:
    """A cheap structural check of a safetensors file (its JSON header), without torch."""
    try:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            if n > min(100_000_000, path.stat().st_size - 8):
                raise ValueError("header length out of range")
            header = json.loads(f.read(n))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (OSError, ValueError, struct.error) as exc:
        raise ConfigError(f"{path} is not a valid safetensors file ({exc}); it was not uploaded.") from exc


_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _yaml_scalar(v: Any) -> str:
    """A YAML scalar that reads back as the string str(v): plain only for names that YAML cannot take for
    a number, a boolean or null (found by tests/test_fuzz.py: "0" read back as the integer 0), else a
    double-quoted JSON string (valid YAML)."""
    s = str(v)
    plain = re.fullmatch(r"[A-Za-z][A-Za-z0-9_.:/-]*", s) and s.lower() not in _YAML_WORDS and ":" not in s
    if plain:
        return s
    # JSON writes a character beyond U+FFFF as a surrogate pair, which YAML reads as two characters:
    # write it as YAML's 8-digit \U escape instead (the fuzzer found it too)
    return re.sub(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})",
                  lambda m: "\\U%08x" % (0x10000 + ((int(m.group(1), 16) - 0xD800) << 10)
                                          + int(m.group(2), 16) - 0xDC00), json.dumps(s))


def model_card(name: str, info: Dict[str, Any], repo_id: Optional[str] = None,
               zoo_name: Optional[str] = None) -> str:
    """A basic model card: YAML front matter for the Hub, then usage, results and config."""
    arch, ds = info.get("architecture") or "", info.get("dataset")
    metrics = info.get("metrics") or {}
    tags = ["nfzoo", "normalizing-flow", "image-generation"] + ([arch] if arch else [])
    lines = ["---", "library_name: nfzoo", f"license: {_yaml_scalar(info.get('license') or 'mit')}", "tags:"]
    lines += [f"- {_yaml_scalar(t)}" for t in tags]
    if ds:
        lines += ["datasets:", f"- {_yaml_scalar(ds)}"]
    metric_ids = sorted({"bpd" if "bpd" in k else k for k in metrics if k != "epochs"})
    if metric_ids:
        lines += ["metrics:"] + [f"- {_yaml_scalar(m)}" for m in metric_ids]
    lines += ["---", "", f"# {name}", ""]
    desc = info.get("description") or (f"A `{arch}` normalizing flow" + (f" trained on `{ds}`" if ds else "")
                                       + " with nfzoo.")
    lines += [desc, ""]
    if info.get("paper"):
        lines += [f"Paper: {info['paper']}", ""]
    ident = f"hf-hub:{repo_id}" if repo_id else name
    lines += ["## Use", "", "```python", "import nfzoo", "",
              f'model = nfzoo.load("{ident}", download=True)',
              "images = model.sample(16)  # (16, C, H, W) in [0, 1]",
              "```", "", f"    nfzoo pull {ident} && nfzoo sample --model {ident} --out samples.png", ""]
    if zoo_name:
        lines += [f"With the nfzoo-zoo package installed, the name `{zoo_name}` works too (its files are "
                  "pinned by commit and sha256 in the zoo's index).", ""]
    if metrics:
        lines += ["## Results", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in metrics.items()] + [""]
    lines += ["## Config", "", f"Architecture `{arch}`:", "", "| key | value |", "| --- | --- |"]
    lines += [f"| {k} | `{json.dumps(v)}` |" for k, v in (info.get("config") or {}).items()] + [""]
    lines += ["Weights are safetensors; `config.json` holds the architecture and config that rebuild the "
              "model.", "", GENERATED_MARK, ""]
    return "\n".join(lines)


def push(directory: os.PathLike, repo_id: str, token: Optional[str] = None, revision: Optional[str] = None,
         private: Optional[bool] = None, commit_message: Optional[str] = None) -> Dict[str, Any]:
    """Upload config.json, model.safetensors and README.md (generated if the folder has none) to a Hub
    repo (created if needed). Returns the commit sha and the files' sha256: the pins for the zoo index."""
    d = Path(directory)
    if not d.is_dir():
        raise UsageError(f"{d} is not a directory: push a model directory (config.json + model.safetensors).")
    check_repo_id(repo_id, "--repo-id")
    if revision is not None:
        check_revision(revision)
    if not (d / WEIGHTS_NAME).is_file():
        raise UsageError(f"{d} has no {WEIGHTS_NAME}: push a directory written by save_pretrained or "
                         "`nfzoo train`.")
    info = run_info(d)
    check_safetensors(d / WEIGHTS_NAME)
    card = (d / CARD_NAME).read_bytes() if (d / CARD_NAME).is_file() else \
        model_card(repo_id.split("/")[1], info, repo_id).encode()
    files = {CONFIG_NAME: (d / CONFIG_NAME).read_bytes(), WEIGHTS_NAME: (d / WEIGHTS_NAME).read_bytes(),
             CARD_NAME: card}
    if offline():
        raise HubUnreachableError("HF_HUB_OFFLINE is set: unset it to push.")
    from huggingface_hub import CommitOperationAdd, HfApi

    from . import __version__

    spec = HubSpec(name=f"{HF_PREFIX}{repo_id}", repo_id=repo_id, revision=revision, user_named=True)
    try:
        with hub_call(f"push to {repo_id}"):
            api = HfApi(endpoint=endpoint(), token=token, library_name="nfzoo", library_version=__version__)
            api.create_repo(repo_id, exist_ok=True, private=private)
            if revision and revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            ops = [CommitOperationAdd(path_in_repo=n, path_or_fileobj=data) for n, data in files.items()]
            message = commit_message or f"Upload {info['architecture']} model with nfzoo"
            commit = api.create_commit(repo_id, ops, revision=revision, commit_message=message)
    except NfzooError:
        raise
    except ValueError as exc:
        raise UsageError(f"the Hub refused the upload to {repo_id}: {first_line(exc)}") from exc
    except Exception as exc:
        raise translate_error(exc, spec, action="push") from exc
    return {"repo_id": repo_id, "revision": commit.oid, "branch": revision or "main",
            "url": commit.commit_url,
            "files": {n: hashlib.sha256(data).hexdigest() for n, data in files.items()},
            "card": "given" if (d / CARD_NAME).is_file() else "generated"}
