"""Tracing a model's computation into an ONNX graph (the torch side of `nfzoo.export.onnx`).

One function of the model (its decode, its encoder, its prior's draw, a U-Net step) becomes one ONNX
file in three steps:

1. `trace`: torch's `make_fx` records the function on fake inputs whose batch axis is symbolic, under
   `FoldConstants`, a dispatch mode that runs every operation whose inputs are all real tensors (the
   weights, and what is computed from them alone) eagerly, on the real values. So the LU 1x1 conv's
   inverse, a CInC kernel's mask and triangular factors and the mixture prior's Cholesky factor become
   constants of the graph, and the Python checks a model makes on its own weights (`torch.equal` on a
   kernel's triangle) run on real numbers, where torch.export alone would find them data-dependent. What
   depends on an input is recorded, with the batch axis kept symbolic (a dynamic batch in the graph).
2. `to_onnx`: torch's exporter (`torch.onnx.export(dynamo=True)`, through torch.export) turns that graph
   into ONNX, with the batch axis dynamic.
3. onnxruntime's basic graph optimisations (constant folding, removal of redundant nodes: standard ONNX
   operators only) are applied offline and the result is saved: a plain ONNX file any runtime reads.

`replay_draws` is how a prior's draw becomes a graph: while it runs, torch's random functions return the
tensors given to it (graph inputs) instead of drawing; `record_draws` runs the draw eagerly once and
reports each random call (its kind, shape, and for a categorical draw its probabilities), which is what
the exported sampler's runner draws with numpy instead. Both intercept the calls with a TorchFunctionMode
(`_DrawMode`): only calls made in the thread that entered them, while inside, are affected; torch itself is
not changed, so other threads (the gallery serves from threads) draw as usual meanwhile.

The private torch APIs tracing needs (fake tensors, the Python dispatcher, decompositions, pytrees) are
reached through `nfzoo.compat`.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch.overrides import TorchFunctionMode

from nfzoo import compat

BATCH_HINT = 5
"""The batch size of the fake inputs a graph is traced with: not 0 or 1 (which torch would specialise),
and unlike any other axis of the zoo's tensors, so that only batch axes share its symbol."""

MAX_BATCH = 1 << 24
"""The largest batch the exported graphs declare (torch.export needs a bound)."""

_ONE_AT_A_TIME = threading.RLock()
"""Held while a graph is traced (`trace`) or exported (`to_onnx`): what they set for the process (the default of
torch.distributions' argument validation, make_fx's current tracer, the exporter's silenced stdout, logger and
warnings) is set and restored by one thread at a time. The rest of an export (the eager draws, the checks) runs
in parallel in several threads."""


class ExportError(Exception):
    """A function that cannot be exported, with the reason (what in the model stops it)."""


def _traced(value: Any) -> bool:
    return isinstance(value, (compat.fake_tensor_class(), torch.SymInt, torch.SymFloat, torch.SymBool))


class FoldConstants(compat.torch_dispatch_mode()):
    """While tracing: an operation whose tensor inputs are all real (weights, constants, results computed
    from them) runs eagerly and returns a real tensor, which the graph then holds as a constant;
    operations on traced (fake) values are recorded as usual. Two rewrites stand in for operators ONNX does
    not have: a (triangular) solve A X = B with a constant A becomes X = A^-1 B, A^-1 computed once; a
    searchsorted becomes a count of comparisons. A random draw is refused (ExportError): an exported
    graph is deterministic, its noise comes in as inputs."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaves = compat.tree_leaves((args, kwargs))
        traced = any(_traced(v) for v in leaves)
        if torch.Tag.nondeterministic_seeded in getattr(func, "tags", ()):
            raise ExportError(f"the function draws random numbers inside the graph ({func}); only a prior's "
                              "draws through torch.randn / torch.rand / torch.multinomial can be replaced "
                              "by inputs")
        if not traced:
            with compat.disable_current_modes():
                return func(*args, **kwargs)
        aten = torch.ops.aten
        if func in (aten.linalg_solve_triangular.default, aten.linalg_solve.default) and \
                not _traced(args[0]) and isinstance(args[0], torch.Tensor):
            return self._solve_by_inverse(func, args, kwargs)
        if func is aten.searchsorted.Tensor and kwargs.get("sorter") is None:
            return self._searchsorted(*args, **kwargs)
        return func(*args, **kwargs)

    @staticmethod
    def _solve_by_inverse(func, args, kwargs):
        """solve(A, B) with a constant A as A^-1 B (B A^-1 for left=False), A^-1 computed eagerly."""
        a, b = args[0], args[1]
        triangular = func is torch.ops.aten.linalg_solve_triangular.default
        names = ("upper", "left", "unitriangular") if triangular else ("left",)
        opts = dict(zip(names, args[2:]), **kwargs)
        with compat.disable_current_modes():
            eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device).expand_as(a).contiguous()
            if triangular:
                inv = torch.linalg.solve_triangular(a, eye, upper=opts["upper"],
                                                    unitriangular=opts.get("unitriangular", False))
            else:
                inv = torch.linalg.inv(a)
        return torch.matmul(inv, b) if opts.get("left", True) else torch.matmul(b, inv)

    @staticmethod
    def _searchsorted(seq, values, out_int32=False, right=False, side=None, sorter=None):
        """searchsorted as a count of comparisons (ONNX has no such operator; the same integers): the index
        of v in a sorted row is the number of entries < v (<= v with right=True)."""
        right = right or side == "right"
        a = seq if seq.dim() == 1 else seq.unsqueeze(-2)
        below = (a <= values.unsqueeze(-1)) if right else (a < values.unsqueeze(-1))
        return below.sum(-1, dtype=torch.int32 if out_int32 else torch.int64)


def fake_inputs(examples: Sequence[torch.Tensor], dynamic: Sequence[bool]):
    """(fake mode, fake copies of `examples`): axis 0 symbolic where `dynamic`, every other axis static."""
    ShapeEnv, DimDynamic, StatelessSymbolicContext = compat.symbolic_shapes()
    mode = compat.fake_tensor_mode(shape_env=ShapeEnv(), allow_non_fake_inputs=True)
    fakes = []
    for x, dyn in zip(examples, dynamic):
        dims = [DimDynamic.STATIC] * x.dim()
        if dyn:
            dims[0] = DimDynamic.DYNAMIC
        fakes.append(mode.from_tensor(x, symbolic_context=StatelessSymbolicContext(dynamic_sizes=dims)))
    return mode, fakes


def trace(fn: Callable[..., Any], examples: Sequence[torch.Tensor], dynamic: Sequence[bool]):
    """fn(*inputs) -> a tensor or a tuple of tensors, recorded as an aten-level torch.fx GraphModule with
    the weights folded into constants (FoldConstants); axis 0 of the inputs marked `dynamic` stays
    symbolic. torch.distributions' argument validation is off meanwhile (it checks values in Python; this is
    the process's default, so other threads see it off too while a graph is traced). Raises ExportError with
    the reason when fn cannot be traced. One trace at a time in the process (`_ONE_AT_A_TIME`)."""
    with _ONE_AT_A_TIME:
        return _trace(fn, examples, dynamic)


def _trace(fn: Callable[..., Any], examples: Sequence[torch.Tensor], dynamic: Sequence[bool]):
    def folded(*xs):
        with FoldConstants():
            return fn(*xs)

    mode, fakes = fake_inputs(examples, dynamic)
    validate = compat.default_validate_args()
    torch.distributions.Distribution.set_default_validate_args(False)   # value checks: Python on data
    try:
        with mode, compat.enable_python_dispatcher(), torch.no_grad():
            gm = compat.make_fx_allowing_real_inputs(folded, decomposition_table=_decompositions(),
                                                     tracing_mode="fake")(*fakes)
    except (ExportError, compat.CompatError):
        raise
    except Exception as exc:            # what stops the tracer: data-dependent Python, an unsupported op
        raise ExportError(describe(exc)) from exc
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)
    for fake, dyn in zip(fakes, dynamic):
        if dyn and not mode.shape_env.simplify(compat.symbolic_expr(fake.shape[0])).free_symbols:
            raise ExportError("an operation of the model reads the batch size as a number, which would fix the "
                              "graph to one batch size")
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


def _decompositions() -> Dict[Any, Callable]:
    """Ops recorded through their Python decompositions: torch's C++ constant_pad_nd and nearest / bilinear
    upsampling read a symbolic batch size as a number (the graph would be fixed to the example batch); their
    references keep it symbolic."""
    aten = torch.ops.aten
    return compat.get_decompositions([aten.constant_pad_nd, aten.upsample_nearest1d, aten.upsample_nearest2d,
                                      aten.upsample_nearest3d, aten.upsample_bilinear2d])


def describe(exc: BaseException, limit: int = 400) -> str:
    """A one-paragraph reason from an exception: its type and the first lines of its message (for torch's
    exporter, the exception its summary names)."""
    import re

    name, text = type(exc).__name__, re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if "## Exception summary" in text:
        found = re.search(r"<class '([\w.]+)'>: (.+)", text.split("## Exception summary", 1)[1])
        if found:
            name, text = found.group(1).rsplit(".", 1)[-1], found.group(2)
    text = " ".join(text.strip().split())
    for marker in (" Next steps:", " (Refer to the full stack trace", " For more information"):
        text = text.split(marker)[0]
    text = f"{name}: {text}" if text else name
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass
class OnnxGraph:
    """What `to_onnx` wrote: the file, its input and output specs ({name, shape, dtype}) and the opset."""

    path: Path
    inputs: List[Dict[str, Any]] = field(default_factory=list)
    outputs: List[Dict[str, Any]] = field(default_factory=list)
    opset: int = 0
    nodes: int = 0


def _value_spec(value) -> Dict[str, Any]:
    """{name, shape, dtype} of an ONNX ValueInfo (symbolic axes are named "batch")."""
    from onnx import helper

    t = value.type.tensor_type
    shape = ["batch" if d.dim_param else int(d.dim_value) for d in t.shape.dim]
    return {"name": value.name, "shape": shape, "dtype": str(helper.tensor_dtype_to_np_dtype(t.elem_type))}


def to_onnx(gm, examples: Sequence[torch.Tensor], dynamic: Sequence[bool], path: os.PathLike,
            input_names: Sequence[str], output_names: Sequence[str]) -> OnnxGraph:
    """Export a traced GraphModule to ONNX at `path` (torch.onnx.export, dynamo=True; axis 0 of the inputs
    marked `dynamic` named "batch"), then apply onnxruntime's basic, portable graph optimisations offline.
    Raises ExportError with the exporter's reason. One export at a time in the process (`_ONE_AT_A_TIME`)."""
    import onnx
    import onnxruntime as ort

    batch = torch.export.Dim("batch", min=2, max=MAX_BATCH)
    shapes = tuple({0: batch} if d else None for d in dynamic)
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix=".nfzoo-export-", dir=path.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        try:
            with _ONE_AT_A_TIME, _quiet():
                program = torch.onnx.export(gm, tuple(examples), dynamo=True, dynamic_shapes=shapes,
                                            input_names=list(input_names), output_names=list(output_names),
                                            optimize=False, verbose=False)
                assert program is not None  # dynamo=True gives an ONNXProgram (None is the legacy exporter's)
                program.save(str(raw), external_data=False)
        except Exception as exc:
            raise ExportError(describe(exc)) from exc
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(Path(tmp) / "basic.onnx")
        opts.log_severity_level = 3
        ort.InferenceSession(str(raw), opts, providers=["CPUExecutionProvider"])
        model = onnx.load(opts.optimized_model_filepath)
    used = {n.domain for n in model.graph.node}
    keep = [o for o in model.opset_import if o.domain in used or o.domain in ("", "ai.onnx")]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    model.producer_name, model.doc_string = "nfzoo", "exported by nfzoo.export.onnx (torch.onnx, dynamo)"
    onnx.checker.check_model(model)
    batched = dict(zip(input_names, dynamic))
    for value in model.graph.input:
        if batched.get(value.name) and _value_spec(value)["shape"][:1] != ["batch"]:
            raise ExportError(f"the exported graph has a fixed batch size for its input {value.name}")
    from nfzoo.safeio import atomic_write_bytes

    atomic_write_bytes(path, model.SerializeToString())
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxGraph(path, [_value_spec(v) for v in model.graph.input],
                     [_value_spec(v) for v in model.graph.output], int(opset), len(model.graph.node))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's progress prints and warnings (its errors still raise). They are the process's
    (sys.stdout, the warnings filters, a logger's level): hold `_ONE_AT_A_TIME` meanwhile."""
    import io
    import logging
    import warnings
    from contextlib import redirect_stdout

    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


# ------------------------------------------------------------------------------------------ draws
RANDOM_FUNCTIONS = ("randn", "rand", "multinomial")
"""torch's random functions a prior's draw may call; each call becomes one noise input of its graph."""


@dataclass
class Draw:
    """One random call of a draw: kind "normal" (torch.randn), "uniform" (torch.rand) or "categorical"
    (torch.multinomial with replacement over one probability vector, `probs`), the shape and dtype."""

    kind: str
    shape: tuple
    dtype: torch.dtype
    probs: Optional[List[float]] = None


_KINDS = {torch.randn: "normal", torch.rand: "uniform", torch.multinomial: "categorical"}
"""RANDOM_FUNCTIONS by the function torch passes to a TorchFunctionMode, and the kind of Draw each makes."""


class _DrawMode(TorchFunctionMode):
    """Calls of torch.randn / torch.rand / torch.multinomial go to `handle(kind, func, args, kwargs)`;
    everything else runs as usual. A TorchFunctionMode is thread-local: only the thread that entered it, and
    only while inside, is affected (torch's functions are not replaced). In `handle`, this mode is off, so
    calling `func` draws for real."""

    def __init__(self, handle: Callable[[str, Callable, tuple, Dict[str, Any]], Any]):
        super().__init__()
        self.handle = handle

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = _KINDS.get(func)
        if kind is None:
            return func(*args, **kwargs)
        return self.handle(kind, func, args, kwargs)


def _multinomial_args(probs, num_samples, replacement=False, **kw):
    return probs, replacement


@contextlib.contextmanager
def record_draws(out: List[Draw]) -> Iterator[None]:
    """Run a draw eagerly (the real random functions run) and append a Draw to `out` per random call (made
    in this thread)."""
    def record(kind: str, func: Callable, args: tuple, kwargs: Dict[str, Any]):
        value = func(*args, **kwargs)
        if kind == "categorical":
            probs, replacement = _multinomial_args(*args, **kwargs)
            if probs.dim() != 1 or not replacement:
                raise ExportError("the prior draws from torch.multinomial with several distributions or without "
                                  "replacement: only a categorical draw over one probability vector can be "
                                  "exported")
            p = probs.detach().double().cpu()
            out.append(Draw("categorical", tuple(value.shape), value.dtype, (p / p.sum()).tolist()))
        else:
            out.append(Draw(kind, tuple(value.shape), value.dtype))
        return value

    with _DrawMode(record):
        yield


@contextlib.contextmanager
def replay_draws(values: Sequence[torch.Tensor]) -> Iterator[None]:
    """While a draw runs (in this thread), torch.randn / torch.rand / torch.multinomial return `values` in
    order (graph inputs when tracing, given noise when checking) instead of drawing."""
    queue = list(values)

    def take(kind: str, func: Callable, args: tuple, kwargs: Dict[str, Any]):
        if not queue:
            raise ExportError("the prior drew more random numbers than when it was recorded")
        value = queue.pop(0)
        dtype = kwargs.get("dtype")
        return value if dtype is None or value.dtype == dtype else value.to(dtype)

    with _DrawMode(take):
        yield
    if queue:
        raise ExportError("the prior drew fewer random numbers than when it was recorded")


def batch_axes(first: Sequence[Draw], second: Sequence[Draw], n1: int, n2: int) -> List[List[Any]]:
    """The shapes of a draw's calls with the batch axis named "batch", from two eager runs with n1 and n2
    samples: an axis that changed must be n1 then n2. Raises ExportError when the calls do not match."""
    if len(first) != len(second) or any(a.kind != b.kind for a, b in zip(first, second)):
        raise ExportError("the prior draws a different sequence of random numbers for different sample counts")
    shapes = []
    for a, b in zip(first, second):
        if len(a.shape) != len(b.shape):
            raise ExportError("a random draw of the prior changes rank with the sample count")
        shape: List[Any] = []
        for da, db in zip(a.shape, b.shape):
            if da == db:
                shape.append(int(da))
            elif (da, db) == (n1, n2):
                shape.append("batch")
            else:
                raise ExportError(f"a random draw of the prior has an axis that scales with the sample count "
                                  f"in another way than one per sample ({a.shape} for {n1}, {b.shape} for {n2})")
        shapes.append(shape)
    return shapes
