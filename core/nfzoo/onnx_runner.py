"""Run an nfzoo model exported with `nfzoo export` (nfzoo.export): numpy and onnxruntime only, no torch.

`nfzoo export MODEL --out DIR` copies this file into DIR as nfzoo_onnx_runner.py, so an exported model is
usable where nothing but numpy and onnxruntime is installed:

    from nfzoo_onnx_runner import ExportedModel
    m = ExportedModel("DIR")                        # checks the manifest, every graph against its sha256
    images = m.sample(16, seed=0)                   # (16, C, H, W) float32 in [0, 1], the default sampling
    images = m.sample(16, seed=0, temperature=0.5, label=3)
    out = m.density(images)                         # {"z": ..., "logdet": ...}; m.log_prob(images), m.bpd

The default sampling is the model's own (its config's sampler and temperature): the noise is drawn here with
numpy (so the same seed gives other images than torch's), the prior graph turns it into latents, the decode
graph into images. Diffusion models run DDIM here, step for step as nfzoo's `ddim` sampler (diffusers'
DDIM scheduler with trailing timesteps, the predicted z0 clipped and the noise re-derived from it), with the
U-Net step as the graph. `python nfzoo_onnx_runner.py DIR -n 16 --seed 0 --out samples.npy` from a shell.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
LOG_256 = float(np.log(256.0))

# What the runner accepts (a manifest outside these is refused when it is read, before anything is allocated).
MAX_MANIFEST_BYTES = 64 << 20           # manifest.json
MAX_GRAPH_BYTES = (1 << 31) - 1         # one graph file: protobuf's limit on one message
MAX_ITEM_ELEMENTS = 4096 * 4096 * 4     # elements of one item: an image, a latent, a sample's noise (all of it)
MAX_DRAW_ELEMENTS = 1 << 28             # elements one draw allocates, all its arrays together (1 GiB of float32)
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
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_DRAW_LIMIT = "one draw is bounded by 2^28 elements, 1 GiB of float32"


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


def check_manifest(manifest: Any) -> Dict[str, List[Tuple[int, int]]]:
    """Validate everything of a manifest that the runner reads (a ValueError naming the key and the fix):
    keys present with the right types, graph files plain *.onnx names with a 64-hex sha256, known graphs and
    distributions, probabilities finite and >= 0, shapes lists of positive integers (or "batch" where a batch
    axis may be) of at most MAX_ITEM_ELEMENTS per item, DDIM's schedule and steps bounded. Returns the sizes
    the draws are bounded by: {"noise": [(batch axes, elements per item), ...]}."""
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
                if wire == 2 and number in subs:
                    stack.append((subs[number], value[0], value[1], depth + 1))
                elif kind == "TensorProto":
                    if number == _DATA_LOCATION and (wire != 0 or value != 0):
                        external = True
                    elif number == _EXTERNAL_DATA:
                        external = True
                        if wire == 2:
                            entry = {k: bytes(data[v[0]:v[1]]) for k, w, v in _fields(data, *value) if w == 2}
                            if entry.get(1) == b"location" and 2 in entry:
                                places.append(entry[2].decode("utf-8", "replace"))
                    elif number == _TENSOR_NAME and wire == 2:
                        name = bytes(data[value[0]:value[1]]).decode("utf-8", "replace")
                elif kind == "NodeProto" and number == _OP_TYPE and wire == 2 and \
                        data[value[0]:value[1]] == b"EPContext":
                    found.append("an EPContext node (it names a compiled engine in another file)")
            if external:
                found.append(f"tensor {name!r} (its data in {', '.join(map(repr, places)) or 'another file'})")
    except _Malformed as exc:
        raise ValueError(f"not a valid ONNX model ({exc})") from None
    return found


class ExportedModel:
    """An exported nfzoo model: its graphs as onnxruntime sessions (CPU by default) and the samplers around
    them. `threads`: onnxruntime's intra-op threads (None: onnxruntime's default). `batch_size`: the most
    items one graph call takes (larger inputs run in chunks, so memory stays bounded). `verify`: check each
    graph's sha256 against the manifest (a mismatch is a ValueError; nothing is loaded).

    Whatever `verify` says, the manifest is validated first (check_manifest: a ValueError naming the key), each
    graph file is read once and onnxruntime is given those bytes (what runs is what was checked), and a graph
    that would read anything outside its bytes (ONNX external data, external_data()) is refused before
    onnxruntime sees it. Draws are bounded: MAX_DRAW_ELEMENTS elements per call, refused before allocating."""

    def __init__(self, directory: Union[str, os.PathLike], threads: Optional[int] = None, verify: bool = True,
                 providers: Sequence[str] = ("CPUExecutionProvider",), batch_size: int = 256):
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.directory = Path(directory)
        path = self.directory / MANIFEST_NAME
        if not path.is_file():
            raise ValueError(f"{self.directory} holds no {MANIFEST_NAME}: export a model there with "
                             "`nfzoo export MODEL --out DIR`")
        raw = _read(path, MAX_MANIFEST_BYTES, "export the model again (`nfzoo export MODEL --out DIR`)")
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:      # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"{path} is not valid JSON ({type(exc).__name__}: {str(exc)[:200]}): the export is "
                             "damaged; export the model again (`nfzoo export MODEL --out DIR`)") from None
        self._sizes = check_manifest(manifest)
        self.manifest: Dict[str, Any] = manifest
        self.image_shape = tuple(manifest["image_shape"])
        self.latent_shape = tuple(manifest["latent_shape"])
        self.num_classes: Optional[int] = manifest.get("num_classes")
        self.sampling: Dict[str, Any] = manifest["sampling"]
        graphs = {}
        for name, graph in manifest["graphs"].items():
            file = self.directory / graph["file"]
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
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.sessions: Dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="nfzoo-runner-") as empty:
            # besides the check above: were onnxruntime to look for external data, it would look in an empty folder
            options.add_session_config_entry("session.model_external_initializers_file_folder_path", empty)
            for name, data in graphs.items():
                self.sessions[name] = ort.InferenceSession(data, options, providers=list(providers))

    # ------------------------------------------------------------------------------------ helpers
    def has(self, graph: str) -> bool:
        """Whether the graph was exported (else manifest["not_exported"][graph] says why)."""
        return graph in self.sessions

    def _session(self, graph: str):
        if graph not in self.sessions:
            why = self.manifest.get("not_exported", {}).get(graph, "it was not asked for at export time")
            raise ValueError(f"this export has no {graph} graph: {why}")
        return self.sessions[graph]

    def _run(self, graph: str, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        """Run a graph on the inputs it declares, in chunks of at most batch_size items along the batch axis
        (the inputs the manifest marks "batch"); every output is batched."""
        session = self._session(graph)
        batched = {i["name"] for i in self.manifest["graphs"][graph]["inputs"] if i["shape"][:1] == ["batch"]}
        feed = {k: v for k, v in feed.items() if k in {i.name for i in session.get_inputs()}}
        n = max((len(v) for k, v in feed.items() if k in batched), default=0)
        if n <= self.batch_size:
            return session.run(None, feed)
        parts = [session.run(None, {k: (v[i:i + self.batch_size] if k in batched else v) for k, v in feed.items()})
                 for i in range(0, n, self.batch_size)]
        return [np.concatenate(chunk) for chunk in zip(*parts)]

    def labels(self, label: Union[None, int, Sequence[int], np.ndarray], n: int) -> Optional[np.ndarray]:
        """Labels as the graphs take them: None for an unconditional model; else n int64 labels (one label is
        repeated), each in [0, num_classes). Anything else is a ValueError."""
        if self.num_classes is None:
            if label is not None:
                raise ValueError("this model is unconditional: drop the label")
            return None
        if label is None:
            raise ValueError(f"this model is class-conditional ({self.num_classes} classes): pass label")
        y = np.asarray(label, dtype=np.int64).reshape(-1)
        if y.size == 1 and n > 1:
            y = np.repeat(y, n)
        if y.size != n or (y < 0).any() or (y >= self.num_classes).any():
            raise ValueError(f"label must be {n} integers in [0, {self.num_classes - 1}]")
        return y

    def _check_n(self, n: Any, *draws: Sequence[Tuple[int, int]], hint: str = "") -> int:
        """n as an integer >= 1 for which each of `draws` (the arrays one call allocates, each as (batch axes,
        elements per item)) holds at most MAX_DRAW_ELEMENTS elements in all; else a ValueError, before anything
        is allocated."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")

        def elements(k: int) -> int:
            return max(sum(k ** axes * items for axes, items in d) for d in draws)

        if elements(n) > MAX_DRAW_ELEMENTS:
            fits, over = 0, n                   # the most samples one call takes: elements() grows with k
            while over - fits > 1:
                mid = (fits + over) // 2
                fits, over = (mid, over) if elements(mid) <= MAX_DRAW_ELEMENTS else (fits, mid)
            raise ValueError(f"n={n} would allocate {elements(n)} elements at once: at most {fits} samples per "
                             f"call here ({_DRAW_LIMIT}); {hint or 'draw them in several smaller calls'}")
        return n

    def _ddim_settings(self) -> Dict[str, Any]:
        if self.sampling["kind"] != "diffusion":
            raise ValueError("this model is not a diffusion model (its sampling kind is "
                             f"{self.sampling['kind']!r}): use sample(), or draw_noise() and prior()")
        return self.sampling["ddim"]

    def _temperature(self, temperature: Optional[float]) -> float:
        t = self.sampling["temperature"] if temperature is None else float(temperature)
        if not np.isfinite(t) or t < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        return t

    # ------------------------------------------------------------------------------------ sampling
    def sample(self, n: int, seed: int = 0, temperature: Optional[float] = None,
               label: Union[None, int, Sequence[int]] = None) -> np.ndarray:
        """n images (n, C, H, W), float32 in [0, 1], with the model's default sampling (temperature None:
        the model's measured one); the noise from numpy's default_rng(seed). n is bounded: no array (the noise,
        the latents, the images) may hold more than MAX_DRAW_ELEMENTS elements in all."""
        latent, image = [(1, math.prod(self.latent_shape))], [(1, math.prod(self.image_shape))]
        if self.sampling["kind"] == "diffusion":
            n = self._check_n(n, image, self._ddim_draw(None, None))
        else:
            n = self._check_n(n, self._sizes["noise"], latent, image)
        y = self.labels(label, n)
        if self.sampling["kind"] == "diffusion":
            if self._temperature(temperature) != 1.0:
                raise ValueError("a diffusion model samples at temperature 1 only")
            z = self.ddim(self.draw_ddim_noise(n, seed))
        else:
            z = self.prior(self.draw_noise(n, seed), temperature, y)
        return self.decode(z, y)

    def draw_noise(self, n: int, seed: int = 0) -> Dict[str, np.ndarray]:
        """The prior graph's noise inputs for n samples, drawn with numpy's default_rng(seed) in the order the
        manifest lists them: standard normal, uniform [0, 1) or categorical (with the listed probabilities).
        At most MAX_DRAW_ELEMENTS elements in all (a larger n is a ValueError, before anything is drawn)."""
        self._session("prior")
        n = self._check_n(n, self._sizes["noise"])
        rng = np.random.default_rng(seed)
        out = {}
        for spec in self.manifest["graphs"]["prior"]["noise"]:
            shape = tuple(n if a == "batch" else int(a) for a in spec["shape"])
            if spec["distribution"] == "normal":
                out[spec["name"]] = rng.standard_normal(shape, dtype=np.float32)
            elif spec["distribution"] == "uniform":
                out[spec["name"]] = rng.random(shape, dtype=np.float32)
            else:
                p = np.asarray(spec["probs"], dtype=np.float64)
                out[spec["name"]] = rng.choice(p.size, size=shape, p=p / p.sum()).astype(np.int64)
        return out

    def prior(self, noise: Dict[str, np.ndarray], temperature: Optional[float] = None,
              label: Optional[np.ndarray] = None) -> np.ndarray:
        """Latents from the prior graph: the given noise (draw_noise), temperature and labels."""
        feed = dict(noise, temperature=np.asarray(self._temperature(temperature), dtype=np.float32))
        n = next(iter(noise.values())).shape[0]
        y = self.labels(label, n)
        if y is not None:
            feed["label"] = y
        return self._run("prior", feed)[0]

    def decode(self, z: np.ndarray, label: Union[None, int, Sequence[int]] = None) -> np.ndarray:
        """Latents (n, *latent_shape) -> images (n, C, H, W) in [0, 1]."""
        z = np.ascontiguousarray(z, dtype=np.float32)
        feed = {"z": z}
        y = self.labels(label, z.shape[0])
        if y is not None:
            feed["label"] = y
        return self._run("decode", feed)[0]

    # ------------------------------------------------------------------------------------ densities
    def density(self, images: np.ndarray, label: Union[None, int, Sequence[int]] = None) -> Dict[str, np.ndarray]:
        """Images in [0, 1] (uint8 is scaled by 1/255) -> {"z": latents, "logdet": log|det dz/dx|} at the
        centre of each 8-bit bin."""
        x = np.asarray(images)
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else np.ascontiguousarray(x, dtype=np.float32)
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"this model takes images of shape {self.image_shape} (C, H, W), got {x.shape[1:]}")
        feed = {"image": x}
        y = self.labels(label, x.shape[0])
        if y is not None:
            feed["label"] = y
        z, logdet = self._run("density", feed)
        return {"z": z, "logdet": logdet}

    def log_prob(self, images: np.ndarray, label: Union[None, int, Sequence[int]] = None) -> np.ndarray:
        """log P(8-bit image) in nats (the dequantized bound at the bins' centres, as FlowModel.log_prob with
        noise=False): prior log-density of z + log-det - D ln 256."""
        out = self.density(images, label)
        feed = {"z": out["z"]}
        y = self.labels(label, out["z"].shape[0])
        if y is not None:
            feed["label"] = y
        lp = self._run("prior_log_prob", feed)[0]
        return lp + out["logdet"] - self.manifest["dim"] * LOG_256

    def bpd(self, images: np.ndarray, label: Union[None, int, Sequence[int]] = None) -> np.ndarray:
        """Bits per dimension, -log_prob / (D ln 2)."""
        return -self.log_prob(images, label) / (self.manifest["dim"] * np.log(2.0))

    # ------------------------------------------------------------------------------------ diffusion
    def timesteps(self, steps: Optional[int] = None) -> np.ndarray:
        """DDIM's timesteps for `steps` steps (None: the model's), "trailing" as nfzoo's sampler spaces them."""
        d = self._ddim_settings()
        total = d["num_train_timesteps"]            # at most MAX_TRAIN_TIMESTEPS (check_manifest)
        given = d["steps"] if steps is None else steps
        if isinstance(given, bool) or not isinstance(given, (int, np.integer)) or not 1 <= given <= total:
            raise ValueError(f"steps must be an integer from 1 to {total}, got {given!r}")
        steps = int(given)
        if d["timestep_spacing"] != "trailing":
            raise ValueError(f"the runner spaces DDIM's steps 'trailing' only; this model's are "
                             f"{d['timestep_spacing']}")
        return np.round(np.arange(total, 0, -total / steps)).astype(np.int64) - 1

    def draw_ddim_noise(self, n: int, seed: int = 0, steps: Optional[int] = None,
                        eta: Optional[float] = None) -> List[np.ndarray]:
        """DDIM's noise for n samples: the starting latents, then one draw per step when eta > 0 (the order
        nfzoo's ddim sampler draws in), standard normal from numpy's default_rng(seed). At most
        MAX_DRAW_ELEMENTS elements in all (a larger n is a ValueError, before anything is drawn)."""
        draw = self._ddim_draw(steps, eta)
        n = self._check_n(n, draw, hint="draw them in several smaller calls, or use fewer steps")
        rng = np.random.default_rng(seed)
        return [rng.standard_normal((n, *self.latent_shape), dtype=np.float32) for _ in range(len(draw))]

    def _ddim_draw(self, steps: Optional[int], eta: Optional[float]) -> List[Tuple[int, int]]:
        """The arrays draw_ddim_noise draws, as (batch axes, elements per item): one, and one per step if eta > 0."""
        d = self._ddim_settings()
        eta = float(d["eta"] if eta is None else eta)
        if not 0 <= eta <= 1:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        count = 1 + (len(self.timesteps(steps)) if eta > 0 else 0)
        return [(1, math.prod(self.latent_shape))] * count

    def eps(self, z: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The U-Net's noise prediction for latents z_t at 0-based timesteps t (n,)."""
        return self._run("unet", {"z_t": np.ascontiguousarray(z, dtype=np.float32),
                                  "t": np.asarray(t, dtype=np.int64).reshape(-1)})[0]

    def ddim(self, noise: Sequence[np.ndarray], steps: Optional[int] = None, eta: Optional[float] = None) -> np.ndarray:
        """The reverse diffusion from noise[0] to z0 by DDIM (Song et al. 2021, eq. 12 and 16), as diffusers'
        DDIMScheduler.step computes it in float32; noise[1 + j] is step j's noise when eta > 0."""
        d = self._ddim_settings()
        eta = np.float32(d["eta"] if eta is None else eta)
        if not 0 <= eta <= 1:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        if d["prediction_type"] != "epsilon":
            raise ValueError(f"the runner's DDIM takes noise predictions only, not {d['prediction_type']}")
        ts = self.timesteps(steps)
        if len(noise) < 1 + (len(ts) if eta > 0 else 0):
            raise ValueError(f"DDIM with eta > 0 over {len(ts)} steps needs {1 + len(ts)} noise arrays")
        ac = np.asarray(d["alphas_cumprod"], dtype=np.float32)
        final = np.float32(d["final_alpha_cumprod"])
        clip = d["clip_sample_range"]
        one, half = np.float32(1.0), np.float32(0.5)
        z = np.asarray(noise[0], dtype=np.float32) * np.float32(d["init_noise_sigma"])
        ratio = d["num_train_timesteps"] // len(ts)
        for j, t in enumerate(ts):
            eps = self.eps(z, np.full(z.shape[0], t, dtype=np.int64))
            prev = t - ratio
            a_t = ac[t]
            a_prev = ac[prev] if prev >= 0 else final
            b_t = one - a_t
            z0 = (z - b_t ** half * eps) / a_t ** half
            if clip is not None:
                z0 = np.clip(z0, np.float32(-clip), np.float32(clip))
            variance = ((one - a_prev) / b_t) * (one - a_t / a_prev)
            std = eta * variance ** half
            if d["use_clipped_model_output"]:
                eps = (z - a_t ** half * z0) / b_t ** half
            z = a_prev ** half * z0 + (one - a_prev - std ** 2) ** half * eps
            if eta > 0:
                z = z + std * np.asarray(noise[1 + j], dtype=np.float32)
        return z.astype(np.float32)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """`python nfzoo_onnx_runner.py DIR -n 16 --seed 0 [--temperature T] [--label L] --out samples.npy`."""
    p = argparse.ArgumentParser(description="Sample from an nfzoo model exported with `nfzoo export`.")
    p.add_argument("directory")
    p.add_argument("-n", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--label", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, help="a .npy file: (n, C, H, W) float32 images in [0, 1]")
    a = p.parse_args(argv)
    try:
        images = ExportedModel(a.directory, threads=a.threads).sample(a.n, a.seed, a.temperature, a.label)
    except ValueError as exc:        # a refused export or argument: the message, not a traceback
        p.exit(2, f"error: {exc}\n")
    np.save(a.out, images, allow_pickle=False)


if __name__ == "__main__":
    main()
