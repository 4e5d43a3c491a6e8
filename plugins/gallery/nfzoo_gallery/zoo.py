"""The gallery's models: the zoo list (the registry's pretrained entries, their headline metrics and model
cards) and `ModelCache`, the models loaded so far.

Models load on first use and stay loaded, at most `capacity` of them (least recently used out first); each
has a lock, so one model serves one request at a time while different models work in parallel (the app runs
requests in a threadpool). The typicality reference (mean bpd of the model's training split,
nfzoo_heads.typicality_reference) is computed once per model, on one background worker (one reference at a
time, at most `capacity` queued) on a copy of the model made when it starts, and kept for the server's life: the
first score of a model answers with its bpd at once and its
typicality as soon as the reference is ready.
"""
from __future__ import annotations

import copy
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from nfzoo.errors import UnknownNameError, UsageError

from .budget import Deadline
from .messages import public_message

CARD_NAME = "README.md"
MAX_NAME = 200
"""The longest model name a request may give (the zoo's are under 40 characters)."""
ReferenceFn = Callable[[Any, str], Dict[str, Any]]
"""A typicality reference: (model, data set name) -> {"mean_bpd", ...}; the default is
nfzoo_heads.typicality_reference (the whole training split, seed 0), the same as `nfzoo score`'s."""


# ------------------------------------------------------------------------------------------ the zoo list
def zoo_entries() -> List[Any]:
    """The registry's pretrained models that generate images (the metrics' oracles left out), sorted by name,
    as typed entries (nfzoo.loading.pretrained.PretrainedEntry)."""
    from nfzoo.loading.pretrained import PretrainedEntry
    from nfzoo.registry.plugins import get_registry

    out = []
    for e in get_registry().list("pretrained"):
        entry = PretrainedEntry.of(e)
        if entry.kind in (None, "flow"):
            out.append(entry)
    return out


def resolve(name: str) -> Any:
    """The zoo entry a gallery request names: a pretrained name or a family name (its default model), i.e. a
    name that nfzoo's name rule (nfzoo.loading.pretrained.parse_model_name) reads as the zoo's. Only those are
    served: a path, `local-dir:`, `hf-hub:` or ORG/NAME is an unknown name here, decided without looking at
    the server's disk (a web client never makes the server read a folder of its choosing)."""
    from nfzoo.loading.pretrained import parse_model_name, resolve_pretrained

    known = [e.name for e in zoo_entries()]
    if not isinstance(name, str) or not name.strip():
        raise UsageError("no model given: choose one of the zoo's models (GET /api/models lists them)")
    hint = "The gallery serves the zoo's models (GET /api/models)."
    if len(name) > MAX_NAME:           # the message shows the name's start; no lookup runs on a long name
        raise UnknownNameError("pretrained model", name[:MAX_NAME] + "...", known, hint=hint)
    try:
        parsed = parse_model_name(name, look=False)     # ORG/NAME is not looked up on the server's disk
    except UsageError:                                  # a malformed Hub id: not a zoo name either
        parsed = None
    if parsed is None or parsed.kind != "zoo":
        raise UnknownNameError("pretrained model", name, known, hint=hint)
    try:
        entry = resolve_pretrained(parsed.value, folder_hint=False)     # never looked up on the server's disk
    except UnknownNameError:
        raise UnknownNameError("pretrained model", name, known, hint=hint) from None
    if entry.name not in known:      # an oracle: it classifies, it does not generate
        raise UsageError(f"{entry.name} is not an image model the gallery can use (its kind is {entry.kind!r}); "
                         f"choose one of {', '.join(known)}")
    return entry


def metric_key_suffix(sampling: Dict[str, Any]) -> Optional[str]:
    """The zoo index's metric name suffix of a sampling setting: ancestral at T = 0.7 -> "ancestral_t0.7",
    dpm-solver++ at T = 1 -> "dpm_solver_t1" (the names `docs/results/samples/sweep.py` writes)."""
    sampler = sampling.get("sampler")
    if not sampler:
        return None
    slug = re.sub(r"[^a-z0-9]+", "_", str(sampler).lower()).strip("_")
    return f"{slug}_t{float(sampling.get('temperature', 1.0)):g}"


def headline_metrics(metrics: Dict[str, Any], sampling: Dict[str, Any]) -> Dict[str, Any]:
    """The few numbers the zoo list shows: test bpd (or the diffusion bound's mean over seeds) and, at the
    model's default sampling, FID and the recognisable share (oracle-mnist5k features)."""
    out: Dict[str, Any] = {}
    if "test_bpd" in metrics:
        out["test_bpd"] = metrics["test_bpd"]
    elif "test_bpd_bound_mean" in metrics:
        out["test_bpd_bound"] = metrics["test_bpd_bound_mean"]
    suffix = metric_key_suffix(sampling)
    for name, key in (("fid", "fid_oracle"), ("recognisable", "recognisable")):
        if suffix and f"{key}_{suffix}" in metrics:
            out[name] = metrics[f"{key}_{suffix}"]
    for key in ("test_accuracy",):
        if key in metrics:
            out[key] = metrics[key]
    return out


def summary(entry: Any) -> Dict[str, Any]:
    """One zoo model as GET /api/models lists it: names, data set, where its weights are, whether this server
    can load it without a download, its config's image shape and classes, its measured default sampling,
    its headline metrics and every metric of the zoo index."""
    from nfzoo.hub.fetch import source_of
    from nfzoo.loading.pretrained import embedded_sampling

    source = source_of(entry.registry_entry)
    sampling = {k: v for k, v in embedded_sampling(entry.registry_entry).items() if k != "source"}
    cfg = entry.config or {}
    return {"name": entry.name, "architecture": entry.architecture, "dataset": entry.dataset,
            "description": entry.metadata.get("description", ""), "paper": entry.paper, "license": entry.license,
            "plugin": entry.plugin, "default": entry.default, "source": source,
            "usable": source in ("embedded", "cached", "plugin"),
            "image_shape": cfg.get("image_shape"), "num_classes": cfg.get("num_classes"),
            "default_sampling": sampling, "headline": headline_metrics(entry.metrics, sampling),
            "metrics": entry.metrics, "has_card": card_path(entry) is not None}


def card_path(entry: Any) -> Optional[Path]:
    """The model card (README.md) in the model's zoo folder, if the zoo ships one."""
    if not entry.path:
        return None
    p = Path(entry.path) / CARD_NAME
    return p if p.is_file() else None


def card_html(entry: Any) -> Optional[str]:
    """The model card as HTML: its YAML front matter (the Hub's metadata) and HTML comments dropped, the
    Markdown rendered by markdown-it-py with raw HTML off (a card's text cannot inject markup or scripts)."""
    p = card_path(entry)
    if p is None:
        return None
    from markdown_it import MarkdownIt

    text = p.read_text(encoding="utf-8")
    if text.startswith("---"):
        end = text.find("\n---", 3)
        text = text[end + 4:] if end >= 0 else text
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


# ------------------------------------------------------------------------------------------ loaded models
def _failed(fut: Future) -> bool:
    return fut.done() and (fut.cancelled() or fut.exception() is not None)


@dataclass
class Loaded:
    """A loaded model, its zoo entry and its lock (hold it while the model computes)."""

    name: str
    model: Any
    entry: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelCache:
    """Models by zoo name, loaded on first use on `device` and kept (at most `capacity`, least recently used
    out first), and each model's typicality reference (`reference_fn`, computed once, in a background
    thread). Thread-safe. `close()` stops the background work."""

    def __init__(self, capacity: int = 3, device: str = "cpu", reference_fn: Optional[ReferenceFn] = None):
        if int(capacity) < 1:
            raise UsageError(f"the model cache must hold at least 1 model, got {capacity}")
        self.capacity, self.device = int(capacity), device
        self.reference_fn = reference_fn
        self._models: "OrderedDict[str, Loaded]" = OrderedDict()
        self._loading: Dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._refs: Dict[str, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nfzoo-reference")   # one at a time
        self.stopping = threading.Event()          # set when the server stops: every computation ends

    def loaded(self) -> List[str]:
        """The names of the models loaded now, least recently used first."""
        with self._lock:
            return list(self._models)

    def get(self, name: str) -> "tuple[Loaded, float]":
        """The loaded model `name` (a zoo or family name) and the seconds its loading took in this call (0
        when it was loaded already). Two requests for a model not yet loaded load it once."""
        entry = resolve(name)
        with self._lock:
            hit = self._models.get(entry.name)
            if hit is not None:
                self._models.move_to_end(entry.name)
                return hit, 0.0
            loading = self._loading.setdefault(entry.name, threading.Lock())
        with loading:
            with self._lock:           # another request may have loaded it while we waited
                hit = self._models.get(entry.name)
                if hit is not None:
                    self._models.move_to_end(entry.name)
                    return hit, 0.0
            import nfzoo

            t0 = time.perf_counter()
            model = nfzoo.load(entry.name, device=self.device)
            model.eval()
            model.requires_grad_(False)   # served, never trained: inpainting's latent fit needs only z's gradient
            seconds = time.perf_counter() - t0
            slot = Loaded(entry.name, model, entry)
            with self._lock:
                self._models[entry.name] = slot
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
        return slot, seconds

    # ------------------------------------------------------------------------------ typicality references
    def reference(self, name: str, start: bool = True, wait: Union[bool, float] = False) -> Dict[str, Any]:
        """The typicality reference of model `name`: {"state": "ready", "reference": {...}}, or "computing",
        "failed" (with "error", the message; the next call starts it again), "busy" (the queue is full: ask
        again later) or "absent" (not started and `start` false). `start` queues the computation on the one
        background worker (a copy of the model is made when it starts and dropped when it ends); at most
        `capacity` references wait or run at a time. `wait` blocks until it ends (True), or for at most `wait`
        seconds (a number)."""
        entry = resolve(name)
        with self._lock:
            fut = self._refs.get(entry.name)
            if fut is not None and _failed(fut) and start:
                fut = None                                  # failed before: try again
            if fut is None:
                if not start:
                    return {"state": "absent"}
                pending = sum(not f.done() for f in self._refs.values())
                if pending >= self.capacity or self.stopping.is_set():
                    return {"state": "busy", "error": f"{pending} typicality reference(s) are queued or being "
                            f"computed (at most {self.capacity}, one at a time): ask again when one is ready"}
                fut = self._pool.submit(self._compute_reference, entry)
                self._refs[entry.name] = fut
        if wait:
            try:
                fut.result(timeout=None if wait is True else float(wait))
            except Exception:         # reported below, as the state (a timeout: "computing")
                pass
        if not fut.done():
            return {"state": "computing"}
        exc = fut.exception() if not fut.cancelled() else UsageError("the server is stopping")
        if exc is not None:
            return {"state": "failed", "error": public_message(exc)}
        return {"state": "ready", "reference": fut.result()}

    def _compute_reference(self, entry: Any) -> Dict[str, Any]:
        """On the background worker: the reference of `entry`, on a copy of its loaded model (the requests go
        on beside it), stopped at the next torch operation when the server stops."""
        if not entry.dataset:
            raise UsageError(f"cannot tell which data set {entry.name} was trained on: its typicality has no "
                             "reference (bpd is still given)")
        fn = self.reference_fn
        if fn is None:
            from nfzoo_heads import typicality_reference

            def default_reference(m, ds):
                return typicality_reference(m, ds, seed=0)
            fn = default_reference
        with Deadline(None, stopping=self.stopping, what="the typicality reference"):
            slot, _ = self.get(entry.name)
            with slot.lock:
                twin = copy.deepcopy(slot.model)
            t0 = time.perf_counter()
            ref = dict(fn(twin, entry.dataset))
            ref["seconds"] = time.perf_counter() - t0
        return ref

    def reference_seconds(self) -> Dict[str, float]:
        """Seconds each typicality reference computed so far took, by model name."""
        with self._lock:
            done = {k: f for k, f in self._refs.items() if f.done() and not _failed(f)}
        return {k: f.result().get("seconds", 0.0) for k, f in done.items()}

    def close(self) -> None:
        """Stop the background work (the reference under way stops at its next torch operation, the queued ones
        are cancelled) and forget the models."""
        self.stopping.set()
        with self._lock:
            for fut in self._refs.values():
                fut.cancel()
            self._models.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
