"""Publishing a model to the Hub: `push` uploads a model directory with its model card and its Hub evaluation
results, `model_card` writes the card (YAML front matter for the Hub, built with huggingface_hub's
`ModelCardData` / `EvalResult`: library_name, tags, datasets, metrics and a `model-index`; then usage,
results and config), `eval_results_files` writes the Hub's `.eval_results/*.yaml` files, `run_info` reads
what a card says from a model or training-run directory. Torch-free: the weights are only checked
structurally (`check_safetensors`) and uploaded as bytes.

The Hub's evaluation results (https://huggingface.co/docs/hub/eval-results): one YAML file per result in the
repo's `.eval_results/` folder, each naming a Hub dataset (meant to be a registered benchmark) and a value.
nfzoo writes them only for data sets whose test split is a Hub dataset's (`HUB_DATASETS`): `digits` and
`mnist5k` have none, so their cards carry the model-index only.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, TypeGuard, Union

from nfzoo.constants import CARD_NAME, CONFIG_NAME, HF_PREFIX, WEIGHTS_NAME
from nfzoo.errors import ConfigError, HubUnreachableError, NfzooError, UsageError
from nfzoo.hub.fetch import HubSpec
from nfzoo.hub.http import hub_call, translate_error
from nfzoo.hub.names import check_repo_id, check_revision, first_line
from nfzoo.hub.settings import endpoint, offline
from nfzoo.safeio import read_json

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
        if isinstance(train, dict) and isinstance(train.get("data"), dict):   # the held-out images (folders)
            from nfzoo.data.folder import split_summary

            info["data_split"] = split_summary(train["data"])
    if (d / "history.json").is_file():
        history = read_json(d / "history.json", "training history")
        if not isinstance(history, list):     # found by tests/test_fuzz.py (a TypeError before)
            raise ConfigError(f"{d / 'history.json'} is not a list of epoch records (as `nfzoo train` writes "
                              "it); fix or remove it")
        tested = [r for r in history if isinstance(r, dict) and isinstance(r.get("test_bpd"), (int, float))
                  and not isinstance(r.get("test_bpd"), bool) and math.isfinite(r["test_bpd"])]
        if tested:
            last = tested[-1]
            # a run that published an average (--ema / --swa-epochs) ships that average's weights
            published = history[-1].get("published") if isinstance(history[-1], dict) else None
            bpd = last["test_bpd"]
            if published in ("ema", "swa") and isinstance(last.get(f"test_bpd_{published}"), (int, float)):
                bpd = last[f"test_bpd_{published}"]
            info["metrics"] = {"test_bpd": round(float(bpd), 4), "epochs": last.get("epoch")}
            if published is not None:
                info["published"] = published      # raw, ema or swa: which weights the run's folder holds
    samples = sample_results(d)
    if samples:
        info["samples"] = samples
    return info


SAMPLES_DIR = "samples"
"""Where a run directory keeps its sample-quality result files (`nfzoo eval DIR --samples N --seeds S -t T
--out DIR/samples/SAMPLER-tT.json`), which the card reports."""
MAX_SAMPLE_FILES = 32


def _number(v: Any) -> TypeGuard[Union[int, float]]:
    """A finite number (not a bool; an int of any size)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return isinstance(v, int) or math.isfinite(v)


def sample_results(directory: os.PathLike) -> List[Dict[str, Any]]:
    """The sample-quality result files of a run directory (DIR/samples/*.json, at most 32, by name), each as
    {"file", "stem", "sampler", "temperature", "per_seed", "seeds", "fid", "recognisable" (when measured)}:
    the means over the file's seeds. A file that is not such a result is a ConfigError naming it."""
    folder = Path(directory) / SAMPLES_DIR
    out: List[Dict[str, Any]] = []
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json"))[:MAX_SAMPLE_FILES]:
        doc = read_json(path, "sample-quality result")
        bad = ConfigError(f"{path} is not a sample-quality result with an FID (`nfzoo eval DIR --samples N --out "
                          f"DIR/{SAMPLES_DIR}/{path.name}` writes one): fix or remove it")
        if not isinstance(doc, dict):
            raise bad
        summary, seeds, n = doc.get("summary"), doc.get("seeds"), doc.get("n_samples")
        summary = summary if isinstance(summary, dict) else {}
        seeds = seeds if isinstance(seeds, list) else [doc.get("seed", 0)]
        n = n if _number(n) else None
        entry: Dict[str, Any] = {"file": f"{SAMPLES_DIR}/{path.name}", "stem": path.stem,
                                 "sampler": str(doc.get("sampler") or "default"),
                                 "temperature": doc.get("temperature") if _number(doc.get("temperature")) else None,
                                 "per_seed": int(n) // max(1, len(seeds)) if n is not None else None,
                                 "seeds": max(1, len(seeds))}
        for metric in ("fid", "recognisable"):
            s = summary.get(metric)
            v = s.get("mean") if isinstance(s, dict) else doc.get(metric)
            if _number(v):
                entry[metric] = round(float(v), 4)
        if "fid" not in entry:
            raise bad
        out.append(entry)
    return out


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


HUB_DATASETS: Dict[str, str] = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist",
                                "cifar10": "uoft-cs/cifar10", "cifar100": "uoft-cs/cifar100"}
"""nfzoo data sets whose test split is that of a Hugging Face Hub dataset (the same images, the same split):
a card names the Hub dataset in `datasets` and the model-index, and `.eval_results/` files are written
against it. `digits` and `mnist5k` (nfzoo's own splits) and `celeba` (no canonical Hub copy) have none."""
EVAL_RESULTS_DIR = ".eval_results"
EVAL_RESULTS_PREFIX = "nfzoo-"
"""The files nfzoo writes in `.eval_results/` start with this: a later push replaces or removes them, and
leaves alone the ones others wrote (community results merged into the repo)."""
CARD_KEYS = ("dataset", "description", "license", "paper", "metrics")
TASKS = {"image-generation": "density estimation and generation", "image-classification": "classification"}


def hub_dataset(dataset: Any) -> Optional[str]:
    """The Hub dataset id of an nfzoo data set name (`HUB_DATASETS`), or None."""
    return HUB_DATASETS.get(dataset) if isinstance(dataset, str) else None


@dataclass
class CardResult:
    """One evaluation result of a card: model-index entry and `.eval_results/` file."""

    key: str          # unique among a card's results, safe in a file name: "bpd", "fid-ancestral-t0.7"
    task: str         # a Hub task type: image-generation | image-classification
    metric: str       # bpd | accuracy | fid | recognisable
    value: float
    name: str         # what the number is, and where it comes from


def card_results(info: Dict[str, Any]) -> List[CardResult]:
    """The results a card reports, from `run_info`: the test bpd (the last tested epoch of history.json), an
    oracle's test accuracy, and each sample-quality file's FID and recognisable share (means over seeds)."""
    metrics = info.get("metrics") or {}
    out: List[CardResult] = []
    if _number(metrics.get("test_bpd")):
        epoch = metrics.get("epochs")
        where = f", epoch {epoch} of the run's history.json" if _number(epoch) else ""
        out.append(CardResult("bpd", "image-generation", "bpd", metrics["test_bpd"],
                              f"test bits per dimension (dequantized, 8-bit term included){where}"))
    if _number(metrics.get("test_accuracy")):
        out.append(CardResult("accuracy", "image-classification", "accuracy", metrics["test_accuracy"],
                              "test accuracy"))
    stems: set = set()
    for s in info.get("samples") or []:
        stem = re.sub(r"[^a-z0-9.]+", "-", str(s.get("stem", "")).lower()).strip("-.") or "samples"
        base, i = stem, 1
        while stem in stems:       # "A.json" and "a.json" get keys of their own
            stem, i = f"{base}-{i}", i + 1
        stems.add(stem)
        size = f"{s.get('per_seed') or '?'} samples x {s.get('seeds', 1)} seed(s)"
        setting = f"{s.get('sampler')}" + (f", T={s['temperature']:g}" if _number(s.get("temperature")) else "")
        for metric, what in (("fid", "FID"), ("recognisable", "recognisable share")):
            if _number(s.get(metric)):
                out.append(CardResult(f"{metric}-{stem}", "image-generation", metric, s[metric],
                                      f"{what} of {size}, {setting} (mean over seeds); source {s.get('file')}"))
    return out


def _eval_result(dataset: str, r: CardResult):
    from huggingface_hub import EvalResult

    return EvalResult(task_type=r.task, task_name=TASKS.get(r.task), dataset_type=hub_dataset(dataset) or dataset,
                      dataset_name=f"{dataset} (test split)", dataset_split="test", metric_type=r.metric,
                      metric_value=r.value, metric_name=r.name)


def card_data(name: str, info: Dict[str, Any]):
    """The card's front matter as huggingface_hub's `ModelCardData`: library_name nfzoo, the license, tags
    (nfzoo, normalizing-flow, image-generation, the architecture), datasets (the Hub id when `HUB_DATASETS`
    has one), the metric types, and a model-index of `card_results` (when the data set is known)."""
    from huggingface_hub import ModelCardData

    arch, ds = str(info.get("architecture") or ""), info.get("dataset")
    ds = None if ds is None or ds == "" else str(ds)
    metrics = info.get("metrics") or {}
    results = card_results(info)
    metric_ids = {"bpd" if "bpd" in k else k for k in metrics if k != "epochs"}
    metric_ids |= {r.metric for r in results if r.metric in ("fid", "recognisable")}
    evals = [_eval_result(ds, r) for r in results] if ds else []
    tags = ["nfzoo", "normalizing-flow", "image-generation"] + ([arch] if arch else [])
    return ModelCardData(library_name="nfzoo", license=str(info.get("license") or "mit"), tags=tags,
                         datasets=[hub_dataset(ds) or str(ds)] if ds else None,
                         metrics=sorted(metric_ids) or None, model_name=name if evals else None,
                         eval_results=evals or None)


def front_matter(data: Any) -> str:
    """A card's YAML front matter (huggingface_hub's ModelCardData.to_yaml), written again with every string
    double-quoted when the plain form would not read back as the same data (PyYAML writes a name of
    non-breaking spaces plain, and reads it back as null)."""
    import yaml

    front = data.to_yaml(original_order=["library_name", "license", "tags", "datasets", "metrics"])
    if yaml.safe_load(front) == data.to_dict():
        return front
    class Quoted(yaml.SafeDumper):
        pass

    Quoted.add_representer(str, lambda dumper, v: dumper.represent_scalar("tag:yaml.org,2002:str", v, style='"'))
    return yaml.dump(data.to_dict(), Dumper=Quoted, sort_keys=False, allow_unicode=True, width=10 ** 6).rstrip("\n")


def model_card(name: str, info: Dict[str, Any], repo_id: Optional[str] = None,
               zoo_name: Optional[str] = None) -> str:
    """A basic model card: YAML front matter for the Hub (`card_data`), then usage, results and config."""
    arch, ds = info.get("architecture") or "", info.get("dataset")
    metrics = info.get("metrics") or {}
    front = front_matter(card_data(name, info))
    lines = ["---", front, "---", "", f"# {name}", ""]
    desc = info.get("description") or (f"A `{arch}` normalizing flow" + (f" trained on `{ds}`" if ds else "")
                                       + " with nfzoo.")
    lines += [str(desc), ""]
    if info.get("data_split"):
        lines += [f"Data `{ds}`: {info['data_split']}.", ""]
    if info.get("paper"):
        lines += [f"Paper: {info['paper']}", ""]
    ident = f"hf-hub:{repo_id}" if repo_id else name
    lines += ["## Use", "", "```python", "import nfzoo", "",
              f'model = nfzoo.load("{ident}", download=True)',
              "images = model.sample(16)  # (16, C, H, W) in [0, 1]",
              "```", "", f"    nfzoo pull {ident} && nfzoo sample --model {ident} --out samples.png", ""]
    if repo_id:
        lines += ["or, with huggingface_hub's conventions:", "", "```python", "from nfzoo import FlowModel", "",
                  f'model = FlowModel.from_pretrained("{repo_id}")', "```", ""]
    if zoo_name:
        lines += [f"With the nfzoo-zoo package installed, the name `{zoo_name}` works too (its files are "
                  "pinned by commit and sha256 in the zoo's index).", ""]
    samples = [r for r in card_results(info) if r.metric in ("fid", "recognisable")]
    if metrics or samples:
        lines += ["## Results", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in metrics.items()]
        lines += [f"| {r.name} | {r.value} |" for r in samples] + [""]
    lines += ["## Config", "", f"Architecture `{arch}`:", "", "| key | value |", "| --- | --- |"]
    lines += [f"| {k} | `{json.dumps(v)}` |" for k, v in (info.get("config") or {}).items()] + [""]
    lines += ["Weights are safetensors; `config.json` holds the architecture and config that rebuild the "
              "model.", "", GENERATED_MARK, ""]
    return "\n".join(lines)


def eval_results_files(info: Dict[str, Any]) -> Dict[str, bytes]:
    """The Hub's `.eval_results/` files of a card's results (huggingface_hub's `EvalResultEntry`), one YAML
    file per result, `.eval_results/nfzoo-KEY.yaml`: the Hub dataset of the run's data set, task_id the metric
    (bpd, fid, ...), the test split, the value and what it is (notes). {} when the data set has no Hub id."""
    dataset_id = hub_dataset(info.get("dataset"))
    if dataset_id is None:
        return {}
    from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml
    from huggingface_hub.utils import yaml_dump

    files = {}
    for r in card_results(info):
        entries = eval_result_entries_to_yaml([EvalResultEntry(dataset_id=dataset_id, task_id=r.metric,
                                                               value=r.value, notes=r.name)])
        for e in entries:
            e["dataset"]["split"] = "test"
        files[f"{EVAL_RESULTS_DIR}/{EVAL_RESULTS_PREFIX}{r.key}.yaml"] = yaml_dump(entries, sort_keys=False).encode()
    return files


def card_info(info: Dict[str, Any], extra: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """`info` with `extra` on top (what a caller knows that the directory does not: `CARD_KEYS`), checked:
    an unknown key or a value of the wrong type is a UsageError."""
    if not extra:
        return info
    if not isinstance(extra, dict):
        raise UsageError(f"model card info must be a dict of {', '.join(CARD_KEYS)}, got {extra!r:.80}")
    unknown = sorted(set(extra) - set(CARD_KEYS))
    if unknown:
        raise UsageError(f"unknown model card key(s) {', '.join(map(repr, unknown))}: the card takes "
                         f"{', '.join(CARD_KEYS)}")
    for k, v in extra.items():
        ok = isinstance(v, dict) and all(isinstance(m, str) and _number(x) for m, x in v.items()) \
            if k == "metrics" else (v is None or isinstance(v, str))
        if not ok:
            want = "a dict of metric names to finite numbers (e.g. {\"test_bpd\": 1.23})" if k == "metrics" \
                else "a string"
            raise UsageError(f"model card {k} must be {want}, got {v!r:.80}")
    return {**info, **extra}


def push(directory: os.PathLike, repo_id: str, token: Optional[str] = None, revision: Optional[str] = None,
         private: Optional[bool] = None, commit_message: Optional[str] = None,
         card: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Upload config.json, model.safetensors, README.md (generated if the folder has none) and the Hub's
    `.eval_results/` files of the run's results (`eval_results_files`; earlier nfzoo ones that no longer
    apply are removed) to a Hub repo (created if needed), in one commit. `card`: what the directory does not
    say, on top of `run_info` (`CARD_KEYS`: dataset, description, license, paper, metrics). Returns the commit
    sha and the files' sha256 (the pins for the zoo index), and the eval results files written."""
    d = Path(directory)
    if not d.is_dir():
        raise UsageError(f"{d} is not a directory: push a model directory (config.json + model.safetensors).")
    check_repo_id(repo_id, "--repo-id")
    if revision is not None:
        check_revision(revision)
    if not (d / WEIGHTS_NAME).is_file():
        raise UsageError(f"{d} has no {WEIGHTS_NAME}: push a directory written by save_pretrained or "
                         "`nfzoo train`.")
    info = card_info(run_info(d), card)
    check_safetensors(d / WEIGHTS_NAME)
    readme = (d / CARD_NAME).read_bytes() if (d / CARD_NAME).is_file() else \
        model_card(repo_id.split("/")[1], info, repo_id).encode()
    files = {CONFIG_NAME: (d / CONFIG_NAME).read_bytes(), WEIGHTS_NAME: (d / WEIGHTS_NAME).read_bytes(),
             CARD_NAME: readme}
    evals = eval_results_files(info)
    if offline():
        raise HubUnreachableError("HF_HUB_OFFLINE is set: unset it to push.")
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    from nfzoo import __version__

    spec = HubSpec(name=f"{HF_PREFIX}{repo_id}", repo_id=repo_id, revision=revision, user_named=True)
    try:
        with hub_call(f"push to {repo_id}"):
            api = HfApi(endpoint=endpoint(), token=token, library_name="nfzoo", library_version=__version__)
            api.create_repo(repo_id, exist_ok=True, private=private)
            if revision and revision != "main":
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            ours = f"{EVAL_RESULTS_DIR}/{EVAL_RESULTS_PREFIX}"
            stale = sorted(f for f in api.list_repo_files(repo_id, revision=revision)
                           if f.startswith(ours) and f not in evals)
            ops = [CommitOperationAdd(path_in_repo=n, path_or_fileobj=data) for n, data in {**files, **evals}.items()]
            ops += [CommitOperationDelete(path_in_repo=f) for f in stale]
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
            "card": "given" if (d / CARD_NAME).is_file() else "generated",
            "eval_results": {n: hashlib.sha256(data).hexdigest() for n, data in evals.items()},
            "removed": stale}
