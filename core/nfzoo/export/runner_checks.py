"""The checks an export folder passes before onnxruntime sees any of it (`read_export`, the standard library
only): files read once, bounded, regular files only; the whole manifest validated up front (`check_manifest`,
a ValueError naming the key and the fix); with `verify`, the graphs and the runner's own files matching the
sha256s the manifest lists; and no graph that would read anything outside its bytes (`external_data`, a
protobuf reading of ONNX external data and EPContext nodes, no onnx package).

The runner (nfzoo.export.runner) reads an export through this module; `nfzoo export` copies it into the export
folder as nfzoo_onnx_checks.py, beside nfzoo_onnx_runner.py, which loads it from there."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

# What the runner accepts (a manifest outside these is refused when it is read, before anything is allocated).
MAX_MANIFEST_BYTES = 64 << 20           # manifest.json
MAX_GRAPH_BYTES = (1 << 31) - 1         # one graph file: protobuf's limit on one message
MAX_RUNNER_BYTES = 1 << 20              # one of the runner's own .py files
MAX_ITEM_ELEMENTS = 4096 * 4096 * 4     # elements of one item: an image, a latent, a sample's noise (all of it)
MAX_TRAIN_TIMESTEPS = 100_000           # a diffusion model's num_train_timesteps, so DDIM's steps too
MAX_RANK = 16
MAX_NOISE_ARRAYS = 1024
MAX_CATEGORIES = 1 << 24
MAX_CLASSES = (1 << 31) - 1
MAX_TEXT = 1000
MAX_NESTING = 100                       # protobuf's own recursion limit
GRAPHS = ("prior", "decode", "density", "prior_log_prob", "unet")
DISTRIBUTIONS = ("normal", "uniform", "categorical")
_PLAIN_GRAPH_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,122}\.onnx")
_PLAIN_RUNNER_FILE = re.compile(r"[A-Za-z0-9_]{1,120}\.py")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_AGAIN = "export the model again (`nfzoo export MODEL --out DIR`)"


# ------------------------------------------------------------------------------------ reading files
def _read(path: Path, most: int, what: str) -> bytes:
    """The bytes of the regular file `path` (at most `most` of them), read once. A missing file, a folder, a
    FIFO or a device, or a bigger file is a ValueError."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ValueError(f"{path} is missing: {what}") from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror or exc}): {what}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path} is not a regular file: {what}")
        if info.st_size > most:
            raise ValueError(f"{path} has {info.st_size} bytes; at most {most}: {what}")
        data = f.read(most + 1)
    if len(data) > most:
        raise ValueError(f"{path} has more than {most} bytes: {what}")
    return data


# ------------------------------------------------------------------------------------ the manifest
def _bad(key: str, problem: str) -> ValueError:
    return ValueError(f"{MANIFEST_NAME}: {key} {problem}; the export is damaged or was edited: export the model "
                      "again (`nfzoo export MODEL --out DIR`)")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _key(obj: Dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise _bad(f"{where}.{key}" if where else key, "is missing")
    return obj[key]


def _object(value: Any, where: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(where, f"must be a JSON object, got {_show(value)}")
    return value


def _list(value: Any, where: str, most: int, least: int = 0) -> list:
    if not isinstance(value, list):
        raise _bad(where, f"must be a list, got {_show(value)}")
    if not least <= len(value) <= most:
        raise _bad(where, f"has {len(value)} entries; it must have {least} to {most}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _bad(where, f"must be a string of at most {MAX_TEXT} characters, got {_show(value)}")
    return value


def _integer(value: Any, where: str, least: int, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise _bad(where, f"must be an integer from {least} to {most}, got {_show(value)}")
    return value


def _number(value: Any, where: str, least: Optional[float] = None, most: Optional[float] = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(where, f"must be a finite number, got {_show(value)}")
    if (least is not None and value < least) or (most is not None and value > most):
        raise _bad(where, f"must be a finite number from {least} to {most}, got {_show(value)}")
    return float(value)


def _shape(value: Any, where: str, batch: bool = False, zero: bool = False, least: int = 0) -> Tuple[int, int]:
    """Check a shape: a list of positive integers (0 too where `zero`: an axis ONNX leaves unnamed), and "batch"
    where `batch`; at most MAX_ITEM_ELEMENTS elements per item. Returns (batch axes, elements per item)."""
    kinds = "positive integers" + (" (or 0)" if zero else "") + (' or "batch"' if batch else "")
    _list(value, where, MAX_RANK, least)
    axes, items = 0, 1
    for a in value:
        if batch and a == "batch":
            axes += 1
        elif isinstance(a, int) and not isinstance(a, bool) and (a >= 1 or (zero and a == 0)):
            items *= a
        else:
            raise _bad(where, f"must be a list of {kinds}, got {_show(value)}")
    if items > MAX_ITEM_ELEMENTS:
        raise _bad(where, f"is {_show(value)}: {items} elements per item; at most {MAX_ITEM_ELEMENTS} "
                   "(4096 x 4096 x 4)")
    return axes, items


def _noise(value: Any, where: str) -> List[Tuple[int, int]]:
    """Check the prior's noise specs; (batch axes, elements per item) of each."""
    sizes, names = [], set()
    for i, spec in enumerate(_list(value, where, MAX_NOISE_ARRAYS, 1)):
        at = f"{where}[{i}]"
        _object(spec, at)
        name = _text(_key(spec, "name", at), f"{at}.name")
        if name in names:
            raise _bad(f"{at}.name", f"repeats {name!r}: each noise input has its own name")
        names.add(name)
        dist = _key(spec, "distribution", at)
        if dist not in DISTRIBUTIONS:
            raise _bad(f"{at}.distribution", f"must be one of {', '.join(map(repr, DISTRIBUTIONS))}, got {_show(dist)}")
        sizes.append(_shape(_key(spec, "shape", at), f"{at}.shape", batch=True))
        if dist == "categorical":
            probs = _list(_key(spec, "probs", at), f"{at}.probs", MAX_CATEGORIES, 1)
            for p in probs:
                if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 0:
                    raise _bad(f"{at}.probs", f"must be finite numbers >= 0, got {_show(p)} among them")
            total = math.fsum(probs)
            if not (total > 0 and math.isfinite(total)):
                raise _bad(f"{at}.probs", f"must have a positive, finite sum, got {total}")
    per_sample = sum(items for _, items in sizes)
    if per_sample > MAX_ITEM_ELEMENTS:
        raise _bad(where, f"draws {per_sample} elements per sample in all; at most {MAX_ITEM_ELEMENTS}")
    return sizes


def _ddim(value: Any, where: str) -> None:
    d = _object(value, where)
    total = _integer(_key(d, "num_train_timesteps", where), f"{where}.num_train_timesteps", 1, MAX_TRAIN_TIMESTEPS)
    alphas = _key(d, "alphas_cumprod", where)
    if not isinstance(alphas, list) or len(alphas) != total:
        raise _bad(f"{where}.alphas_cumprod", f"must be a list of {total} numbers (num_train_timesteps), got "
                   f"{len(alphas) if isinstance(alphas, list) else _show(alphas)}"
                   + (" numbers" if isinstance(alphas, list) else ""))
    for a in alphas:
        _number(a, f"{where}.alphas_cumprod", 0.0, 1.0)
    _number(_key(d, "final_alpha_cumprod", where), f"{where}.final_alpha_cumprod", 0.0, 1.0)
    _text(_key(d, "timestep_spacing", where), f"{where}.timestep_spacing")
    _text(_key(d, "prediction_type", where), f"{where}.prediction_type")
    clip = _key(d, "clip_sample_range", where)
    if clip is not None:
        _number(clip, f"{where}.clip_sample_range", 0.0)
    clipped = _key(d, "use_clipped_model_output", where)
    if not isinstance(clipped, bool):
        raise _bad(f"{where}.use_clipped_model_output", f"must be true or false, got {_show(clipped)}")
    _number(_key(d, "init_noise_sigma", where), f"{where}.init_noise_sigma", 0.0)
    _integer(_key(d, "steps", where), f"{where}.steps", 1, total)
    _number(_key(d, "eta", where), f"{where}.eta", 0.0, 1.0)


def _runner(value: Any) -> None:
    """The manifest's "runner" entry, where there is one: its "files" (when listed: the export writes them) map
    plain .py file names, inside the export folder, to 64-hex sha256s."""
    files = _object(_object(value, "runner").get("files", {}), "runner.files")
    for file, sha in files.items():
        if not _PLAIN_RUNNER_FILE.fullmatch(file):
            raise _bad(f"runner.files.{file[:60]}", "is not a plain .py file name inside the export folder")
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise _bad(f"runner.files.{file}", f"must be 64 hex digits (the file's sha256), got {_show(sha)}")


def check_manifest(manifest: Any) -> Dict[str, List[Tuple[int, int]]]:
    """Validate everything of a manifest that the runner reads (a ValueError naming the key and the fix):
    keys present with the right types, graph files plain *.onnx names (the runner's files plain *.py names)
    with a 64-hex sha256, known graphs and distributions, probabilities finite and >= 0, shapes lists of
    positive integers (or "batch" where a batch axis may be) of at most MAX_ITEM_ELEMENTS per item, DDIM's
    schedule and steps bounded. Returns the sizes the draws are bounded by: {"noise": [(batch axes, elements
    per item), ...]}."""
    m = _object(manifest, "the manifest")
    version = _key(m, "manifest_version", "")
    if version != MANIFEST_VERSION:
        raise _bad("manifest_version", f"is {_show(version)}; this runner reads version {MANIFEST_VERSION}")
    if _key(m, "format", "") != "onnx":
        raise _bad("format", f"must be 'onnx', got {_show(m['format'])}")
    _, image = _shape(_key(m, "image_shape", ""), "image_shape", least=1)
    _shape(_key(m, "latent_shape", ""), "latent_shape", least=1)
    if m.get("num_classes") is not None:
        _integer(m["num_classes"], "num_classes", 1, MAX_CLASSES)
    dim = _key(m, "dim", "")
    if isinstance(dim, bool) or dim != image or not isinstance(dim, int):
        raise _bad("dim", f"is {_show(dim)}: it must be the number of elements of an image (the product of "
                   f"image_shape), {image}")
    s = _object(_key(m, "sampling", ""), "sampling")
    kind = _key(s, "kind", "sampling")
    if kind not in ("flow", "diffusion"):
        raise _bad("sampling.kind", f"must be 'flow' or 'diffusion', got {_show(kind)}")
    _number(_key(s, "temperature", "sampling"), "sampling.temperature", 0.0)
    if kind == "diffusion":
        _ddim(_key(s, "ddim", "sampling"), "sampling.ddim")
    graphs = _object(_key(m, "graphs", ""), "graphs")
    if not graphs:
        raise _bad("graphs", "lists no graph")
    sizes: Dict[str, List[Tuple[int, int]]] = {"noise": []}
    for name, g in graphs.items():
        if name not in GRAPHS:
            raise _bad(f"graphs.{str(name)[:60]}", f"is an unknown graph; this runner runs {', '.join(GRAPHS)}")
        at = f"graphs.{name}"
        _object(g, at)
        file = _text(_key(g, "file", at), f"{at}.file")
        if not _PLAIN_GRAPH_FILE.fullmatch(file):
            raise _bad(f"{at}.file", f"is {_show(file)}: graphs must be plain file names ending in .onnx, inside "
                       "the export folder")
        sha = _key(g, "sha256", at)
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise _bad(f"{at}.sha256", f"must be 64 hex digits (the file's sha256), got {_show(sha)}")
        for side in ("inputs", "outputs"):
            for i, spec in enumerate(_list(_key(g, side, at), f"{at}.{side}", MAX_NOISE_ARRAYS + 8, 1)):
                _object(spec, f"{at}.{side}[{i}]")
                _text(_key(spec, "name", f"{at}.{side}[{i}]"), f"{at}.{side}[{i}].name")
                _shape(_key(spec, "shape", f"{at}.{side}[{i}]"), f"{at}.{side}[{i}].shape", batch=True, zero=True)
                _text(_key(spec, "dtype", f"{at}.{side}[{i}]"), f"{at}.{side}[{i}].dtype")
        if name == "prior":
            sizes["noise"] = _noise(_key(g, "noise", at), f"{at}.noise")
    for g, why in _object(m.get("not_exported", {}), "not_exported").items():
        _text(why, f"not_exported.{str(g)[:60]}")
    if "runner" in m:
        _runner(m["runner"])
    return sizes


# ------------------------------------------------------------------------------------ graphs' bytes
ONNX_MESSAGES: Dict[str, Dict[int, str]] = {
    "ModelProto": {7: "GraphProto", 20: "TrainingInfoProto", 25: "FunctionProto"},
    "GraphProto": {1: "NodeProto", 5: "TensorProto", 15: "SparseTensorProto"},
    "NodeProto": {5: "AttributeProto"},
    "AttributeProto": {5: "TensorProto", 6: "GraphProto", 10: "TensorProto", 11: "GraphProto",
                       22: "SparseTensorProto", 23: "SparseTensorProto"},
    "FunctionProto": {7: "NodeProto", 11: "AttributeProto"},
    "TrainingInfoProto": {1: "GraphProto", 2: "GraphProto"},
    "SparseTensorProto": {1: "TensorProto", 2: "TensorProto"},
    "TensorProto": {},
}
"""onnx.proto's messages that can hold a TensorProto, and their fields (number: message) that lead to one."""
_TENSOR_NAME, _EXTERNAL_DATA, _DATA_LOCATION, _OP_TYPE = 8, 13, 14, 4


class _Malformed(ValueError):
    pass


def _varint(data: bytes, pos: int, end: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed("a truncated or overlong varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes, pos: int, end: int):
    """(field number, wire type, value or (start, stop) of a length-delimited field) of one message's bytes."""
    while pos < end:
        tag, pos = _varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos, end)
            yield number, wire, value
            continue
        if wire == 2:
            size, pos = _varint(data, pos, end)
            value, pos = (pos, pos + size), pos + size
        elif wire in (1, 5):
            value, pos = None, pos + (8 if wire == 1 else 4)
        else:
            raise _Malformed(f"wire type {wire}")
        if pos > end:
            raise _Malformed("a field past the end of its message")
        yield number, wire, value


def external_data(data: bytes) -> List[str]:
    """What an ONNX model's bytes would have onnxruntime read from outside them: every tensor kept in another
    file (ONNX external data: TensorProto.data_location EXTERNAL, or external_data entries, wherever a tensor can
    be: initializers, sparse initializers, attributes, subgraphs, functions, training info) and every EPContext
    node (a compiled engine named by path). Empty for a self-contained graph. Pure protobuf wire reading (no onnx
    package); the bytes must parse, else ValueError. onnxruntime reads external data even for a model given as
    bytes (relative to the working directory), so this runs before it sees them."""
    found: List[str] = []
    stack = [("ModelProto", 0, len(data), 0)]
    try:
        while stack:
            kind, pos, end, depth = stack.pop()
            if depth > MAX_NESTING:
                raise _Malformed(f"messages nested more than {MAX_NESTING} deep")
            subs = ONNX_MESSAGES[kind]
            name, places, external = "", [], False
            for number, wire, value in _fields(data, pos, end):
                if isinstance(value, tuple) and number in subs:  # a length-delimited field: (start, stop)
                    stack.append((subs[number], value[0], value[1], depth + 1))
                elif kind == "TensorProto":
                    if number == _DATA_LOCATION and (wire != 0 or value != 0):
                        external = True
                    elif number == _EXTERNAL_DATA:
                        external = True
                        if isinstance(value, tuple):
                            entry = {k: bytes(data[v[0]:v[1]]) for k, _, v in _fields(data, *value)
                                     if isinstance(v, tuple)}
                            if entry.get(1) == b"location" and 2 in entry:
                                places.append(entry[2].decode("utf-8", "replace"))
                    elif number == _TENSOR_NAME and isinstance(value, tuple):
                        name = bytes(data[value[0]:value[1]]).decode("utf-8", "replace")
                elif kind == "NodeProto" and number == _OP_TYPE and isinstance(value, tuple) and \
                        data[value[0]:value[1]] == b"EPContext":
                    found.append("an EPContext node (it names a compiled engine in another file)")
            if external:
                found.append(f"tensor {name!r} (its data in {', '.join(map(repr, places)) or 'another file'})")
    except _Malformed as exc:
        raise ValueError(f"not a valid ONNX model ({exc})") from None
    return found


# ------------------------------------------------------------------------------------ the export folder
def read_export(directory: Union[str, os.PathLike], verify: bool = True
                ) -> Tuple[Dict[str, Any], Dict[str, List[Tuple[int, int]]], Dict[str, bytes]]:
    """Read and check the export folder `directory`: (the manifest, the sizes check_manifest bounds the draws by,
    {graph: its bytes}). The manifest is validated whatever `verify` says; each graph file is read once (those
    bytes are what onnxruntime is to be given) and refused if it would read anything outside them
    (external_data). With `verify`, each graph's bytes and each of the runner's files the manifest lists must
    match their sha256. Every problem is a ValueError saying what to do."""
    directory = Path(directory)
    path = directory / MANIFEST_NAME
    if not path.is_file():
        raise ValueError(f"{directory} holds no {MANIFEST_NAME}: export a model there with "
                         "`nfzoo export MODEL --out DIR`")
    raw = _read(path, MAX_MANIFEST_BYTES, _AGAIN)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:      # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path} is not valid JSON ({type(exc).__name__}: {str(exc)[:200]}): the export is "
                         f"damaged; {_AGAIN}") from None
    sizes = check_manifest(manifest)
    if verify:
        for name, sha in manifest.get("runner", {}).get("files", {}).items():
            file = directory / name
            data = _read(file, MAX_RUNNER_BYTES, f"the runner's file {MANIFEST_NAME} lists; export the model again")
            if hashlib.sha256(data).hexdigest() != sha.lower():
                raise ValueError(f"{file} does not match the sha256 in {MANIFEST_NAME}: the runner is corrupt or "
                                 "was changed; export the model again")
    graphs = {}
    for name, graph in manifest["graphs"].items():
        file = directory / graph["file"]
        data = _read(file, MAX_GRAPH_BYTES, f"the {name} graph {MANIFEST_NAME} lists; export the model again")
        if verify and hashlib.sha256(data).hexdigest() != graph["sha256"].lower():
            raise ValueError(f"{file} does not match the sha256 in {MANIFEST_NAME}: the export is corrupt or "
                             "was changed; export the model again")
        try:
            outside = external_data(data)
        except ValueError as exc:
            raise ValueError(f"{file} is {exc}: export the model again") from None
        if outside:
            raise ValueError(f"{file} would read data outside its own file, which the runner refuses (nfzoo "
                             "export writes self-contained graphs, never ONNX external data): "
                             f"{'; '.join(outside[:5])}{' ...' if len(outside) > 5 else ''}; export the "
                             "model again")
        graphs[name] = data
    return manifest, sizes, graphs
