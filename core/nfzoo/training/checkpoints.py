"""Training checkpoints: `RUN/checkpoints/step-NNNNNNNN/` folders, written whole or not at all, and read back
only once every file checks out.

A checkpoint folder holds model.safetensors (the model's state dict), state.safetensors (the optimizer's
tensors as `state.<param id>.<name>`, the random generators' states as `rng.<name>`), state.json (the
position, the history, the optimizer's other values, the settings; an fp16 run's GradScaler state as
"scaler"), for a run that averages its weights (nfzoo.training.averaging) ema.safetensors /
swa.safetensors (each average's state dict: `module.<name>` and `n_averaged`), and manifest.json (the
sha256 of each of those files). It is written under a temporary name and renamed into place once complete;
the last KEEP_CHECKPOINTS are kept. A checkpoint loads only if its manifest lists every file with a
matching sha256 (verify_checkpoint), its state.json is well-formed
(check_state), and its weights fit the model.
"""
from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from nfzoo.errors import CorruptFileError
from nfzoo.safeio import atomic_write_json, load_tensors, read_json, save_tensors, sha256_file
from nfzoo.training.config import MAX_COUNT

CHECKPOINT_DIR = "checkpoints"
KEEP_CHECKPOINTS = 2
CHECKPOINT_FILES = ("model.safetensors", "state.safetensors", "state.json")
AVERAGE_FILES = {"ema": "ema.safetensors", "swa": "swa.safetensors"}
"""The file of each weight average (nfzoo.training.averaging) in a checkpoint of a run that keeps it."""
SCALER_KEYS = {"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}
"""The keys of an fp16 run's GradScaler state in state.json ("scaler")."""


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """An optimizer's state dict split into tensors {"state.<param id>.<name>": tensor} (for safetensors)
    and a JSON document {"param_groups": [...], "scalars": {"<param id>.<name>": value}};
    optimizer_from_tensors puts them back together."""
    sd = opt.state_dict()
    tensors, extra = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state.{pid}.{k}"] = v
            else:
                extra[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": extra}


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: Dict[str, torch.Tensor],
                           meta: Dict[str, Any]) -> None:
    """Load into `opt` the state that optimizer_to_tensors split into `tensors` and `meta`."""
    state: Dict[int, Dict[str, Any]] = {}
    for key, v in tensors.items():
        _, pid, k = key.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def list_checkpoints(out: Path) -> List[Path]:
    """The checkpoint folders of the run in `out`, oldest first (the step is in the name)."""
    d = Path(out) / CHECKPOINT_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_dir() and p.name.startswith("step-"))


def checkpoint_path(out: Path, step: int) -> Path:
    """The folder of the checkpoint at `step` in the run `out`."""
    return Path(out) / CHECKPOINT_DIR / f"step-{step:08d}"


def verify_checkpoint(path: Path, averages: Sequence[str] = ()) -> Dict[str, Any]:
    """The checkpoint's manifest, once every file the checkpoint needs (CHECKPOINT_FILES, and the files of
    the weight averages named in `averages`, AVERAGE_FILES) is listed in it with a sha256 that the file
    matches; anything else raises CorruptFileError (the checkpoint is not used). A manifest without
    "sha256", with an empty or ill-formed one, or listing other names is not trusted."""
    mpath = path / "manifest.json"
    manifest = read_json(mpath, "checkpoint manifest")
    digests = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(digests, dict):
        raise CorruptFileError(f"{mpath} has no \"sha256\" object (file name -> sha256); this checkpoint is "
                               "not used.")
    needed = (*CHECKPOINT_FILES, *(AVERAGE_FILES[a] for a in averages))
    missing = [f for f in needed if f not in digests]
    if missing:
        raise CorruptFileError(f"{mpath} lists no sha256 for {', '.join(missing)}; this checkpoint is not "
                               "used.")
    for name, digest in digests.items():
        if name not in CHECKPOINT_FILES and name not in AVERAGE_FILES.values():
            raise CorruptFileError(f"{mpath} lists an unknown file {name!r}; this checkpoint is not used.")
        if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            raise CorruptFileError(f"{mpath}: the sha256 of {name} is not 64 hex digits ({digest!r}); this "
                                   "checkpoint is not used.")
        f = path / name
        if not f.is_file() or sha256_file(f) != digest:
            raise CorruptFileError(f"checkpoint file {f} is missing or does not match its sha256; "
                                   "this checkpoint is not used.")
    return manifest


def check_state(meta: Any, source: str) -> Dict[str, Any]:
    """A checkpoint's state.json: the position (non-negative integers), the history and the optimizer's
    settings, well-formed; else CorruptFileError naming the key."""
    def bad(key: str, want: str, got: Any):
        return CorruptFileError(f"{source}: {key!r} must be {want}, got {got!r:.80}; this checkpoint is not used.")
    if not isinstance(meta, dict):
        raise bad("state", "an object", meta)
    for key in ("step", "epoch", "pos"):
        v = meta.get(key)
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT):
            raise bad(key, "an integer >= 0", v)
    hist = meta.get("history")
    if not (isinstance(hist, list) and all(isinstance(r, dict) for r in hist)):
        raise bad("history", "a list of objects", hist)
    opt = meta.get("optimizer")
    if not (isinstance(opt, dict) and isinstance(opt.get("param_groups"), list)
            and all(isinstance(g, dict) for g in opt["param_groups"]) and isinstance(opt.get("scalars"), dict)):
        raise bad("optimizer", "an object with \"param_groups\" (a list) and \"scalars\" (an object)", opt)
    for key in opt["scalars"]:
        pid, _, name = key.partition(".")
        if not (pid.isdigit() and name):
            raise bad(f"optimizer.scalars.{key}", "keyed \"<param id>.<name>\"", key)
    if "scaler" in meta:   # an fp16 run's GradScaler state (torch.amp.GradScaler.state_dict: numbers)
        sc = meta["scaler"]
        if not (isinstance(sc, dict) and set(sc) <= SCALER_KEYS and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                for v in sc.values())):
            raise bad("scaler", f"an object of numbers >= 0 keyed {sorted(SCALER_KEYS)}", sc)
    return meta


def write_checkpoint(out: Path, step: int, model: torch.nn.Module, opt: torch.optim.Optimizer,
                     rng: Dict[str, torch.Tensor], state: Dict[str, Any],
                     averages: Optional[Mapping[str, torch.nn.Module]] = None) -> Path:
    """Write the checkpoint of `step` in the run `out` (model weights, optimizer, the generator states
    `rng`, the JSON `state`, which must hold "step", "epoch", "pos" and "history", and the state dicts of
    the weight averages `averages` {"ema" | "swa": AveragedModel}), with its manifest, under a temporary
    name renamed into place once complete; keep the last KEEP_CHECKPOINTS. An existing checkpoint of that
    step is left as it is. Returns its folder."""
    final = checkpoint_path(out, step)
    ckdir = final.parent
    ckdir.mkdir(parents=True, exist_ok=True)
    if final.exists():
        return final
    tmp = ckdir / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_tensors(model.state_dict(), tmp / "model.safetensors")
    opt_tensors, opt_meta = optimizer_to_tensors(opt)
    save_tensors({**opt_tensors, **{f"rng.{k}": v for k, v in rng.items()}}, tmp / "state.safetensors")
    atomic_write_json(tmp / "state.json", {**state, "optimizer": opt_meta})
    files: List[str] = list(CHECKPOINT_FILES)
    for name, avg in (averages or {}).items():
        save_tensors(avg.state_dict(), tmp / AVERAGE_FILES[name])
        files.append(AVERAGE_FILES[name])
    atomic_write_json(tmp / "manifest.json", {"step": step, "sha256": {f: sha256_file(tmp / f) for f in files}})
    tmp.rename(final)  # the checkpoint appears whole or not at all
    for old in list_checkpoints(out)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def restore_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
                       rng: Sequence[str], averages: Optional[Mapping[str, torch.nn.Module]] = None
                       ) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """Load the checkpoint folder `path` into `model`, `opt` and the weight averages `averages` {"ema" |
    "swa": AveragedModel}, once it verifies (verify_checkpoint with those averages' files, then check_state,
    the weights' dtypes and values (nfzoo.flows.model.check_tensors) and each generator state named in `rng` a
    uint8 vector); returns (state.json, {name: generator state}). A checkpoint that does not verify (one of
    a run without an average that this run keeps included) raises CorruptFileError (or ConfigError) before
    `model`, `opt` or an average is touched."""
    from nfzoo.flows.model import check_tensors, load_state_strict
    from nfzoo.loading.limits import name_mismatch

    averages = averages or {}
    verify_checkpoint(path, tuple(averages))
    meta = check_state(read_json(path / "state.json", "checkpoint state"), str(path / "state.json"))
    model_t = load_tensors(path / "model.safetensors")
    state_t = load_tensors(path / "state.safetensors")
    check_tensors(model, model_t, str(path / "model.safetensors"))
    avg_t = {name: load_tensors(path / AVERAGE_FILES[name]) for name in averages}
    for name, avg in averages.items():
        source = str(path / AVERAGE_FILES[name])
        names = name_mismatch(avg.state_dict(), avg_t[name])
        if names:
            raise CorruptFileError(f"{source} does not hold this run's {name} weights ({names}); this checkpoint "
                                   "is not used.")
        check_tensors(avg, avg_t[name], source)
    for key in (f"rng.{k}" for k in rng):
        t = state_t.get(key)
        if t is None or t.dtype != torch.uint8 or t.dim() != 1:
            raise CorruptFileError(f"{path / 'state.safetensors'} has no valid {key} (a uint8 "
                                   "vector); this checkpoint is not used.")
    load_state_strict(model, model_t, str(path))
    optimizer_from_tensors(opt, {k: v for k, v in state_t.items() if k.startswith("state.")}, meta["optimizer"])
    for name, avg in averages.items():
        load_state_strict(avg, avg_t[name], str(path / AVERAGE_FILES[name]))
    return meta, {k: state_t[f"rng.{k}"] for k in rng}
