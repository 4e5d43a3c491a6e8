"""Private torch / huggingface_hub APIs in one place (issue 36, item 5): nfzoo.compat reaches every one of them
and names the missing API, the versions it was checked with and the fix when one is gone; no other module
imports a private torch / huggingface_hub name; the export's interception of torch's random functions is a
TorchFunctionMode local to the thread that entered it (torch's functions are never replaced), so exports and
draws in other threads at the same time are unaffected."""
import ast
import re
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import nfzoo
from nfzoo import compat
from nfzoo.compat import CHECKED, CompatError
from nfzoo.errors import NfzooError
from nfzoo.export.trace import Draw, record_draws, replay_draws

ROOT = Path(__file__).resolve().parent.parent
REAL = {name: getattr(torch, name) for name in ("randn", "rand", "multinomial")}


@pytest.fixture(autouse=True)
def fresh_compat():
    compat.clear_cache()
    yield
    compat.clear_cache()


def run_threads(*targets, timeout=300):
    """Run each target in its own thread at once; re-raise the first exception one of them raised."""
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as exc:       # noqa: BLE001 - handed to the test's thread
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread did not finish"
    if errors:
        raise errors[0]


# ------------------------------------------------------------------------------------------ compat itself
def test_every_private_api_is_there_on_the_checked_versions():
    assert compat.missing() == []
    assert set(CHECKED) == {"torch", "huggingface_hub"}


def test_the_checked_torch_is_the_pinned_one():
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert CHECKED["torch"] == pins["torch"]


def test_a_missing_name_is_a_clear_error(monkeypatch):
    import torch.utils._device as device

    monkeypatch.delattr(device, "_device_constructors")
    with pytest.raises(CompatError) as info:
        compat.device_constructors()
    msg = str(info.value)
    assert "torch.utils._device._device_constructors" in msg
    assert f"checked with torch {CHECKED['torch']}" in msg
    assert f"pip install 'torch=={CHECKED['torch']}'" in msg and "update nfzoo/compat.py" in msg
    assert info.value.exit_code == 1 and isinstance(info.value, NfzooError)
    assert compat.missing() and "torch.utils._device._device_constructors" in compat.missing()[0]


def test_a_missing_module_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch._decomp", None)     # import of it fails, as if it were gone
    with pytest.raises(CompatError, match=r"torch\._decomp\.get_decompositions.*no module torch\._decomp"):
        compat.get_decompositions([])


def test_a_private_keyword_that_went_away_is_a_clear_error(monkeypatch):
    import torch.fx.experimental.proxy_tensor as proxy_tensor

    monkeypatch.setattr(proxy_tensor, "make_fx", lambda f, decomposition_table=None, tracing_mode="real": f)
    with pytest.raises(CompatError, match="the keyword _allow_non_fake_inputs of "
                                          r"torch\.fx\.experimental\.proxy_tensor\.make_fx"):
        compat.make_fx_allowing_real_inputs(lambda: None)


def test_huggingface_hub_apis_name_their_package(monkeypatch):
    from huggingface_hub.utils import _http

    assert compat.hf_client_factory() is (_http._GLOBAL_CLIENT_FACTORY or _http.default_client_factory)
    assert compat.hf_http_logger_name() == "huggingface_hub.utils._http"
    monkeypatch.delattr(_http, "_GLOBAL_CLIENT_FACTORY")
    with pytest.raises(CompatError) as info:
        compat.hf_client_factory()
    msg = str(info.value)
    assert "huggingface_hub.utils._http._GLOBAL_CLIENT_FACTORY" in msg
    assert f"checked with huggingface_hub {CHECKED['huggingface_hub']}" in msg


def test_the_hub_hooks_fail_with_the_missing_api(monkeypatch):
    """hub_http installs its hooks through compat: a huggingface_hub without the private factory is a
    CompatError at the first Hub operation, not a silently unhooked client."""
    from huggingface_hub.utils import _http

    from nfzoo.hub import http as hub_http

    monkeypatch.delattr(_http, "_GLOBAL_CLIENT_FACTORY")
    with pytest.raises(CompatError, match="_GLOBAL_CLIENT_FACTORY"):
        with hub_http.hub_call("test"):
            pass


def test_a_shape_build_without_torchs_factory_list_fails_clearly(monkeypatch):
    """No silent fallback to a shorter list (which would let factory functions past the allocation budget)."""
    import torch.utils._device as device

    monkeypatch.delattr(device, "_device_constructors")
    with pytest.raises(CompatError, match=r"torch\.utils\._device\._device_constructors"):
        nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)


def test_quiet_dynamo_logs_sets_dynamos_level(monkeypatch):
    import logging

    import torch._logging

    seen = {}
    monkeypatch.setattr(torch._logging, "set_logs", lambda **kw: seen.update(kw))
    compat.quiet_dynamo_logs()
    assert seen == {"dynamo": logging.ERROR}


# ------------------------------------------------------------------------------------------ the sources
PRIVATE = re.compile(r"^(?:torch|huggingface_hub)(?:\.\w+)*\._(?!_)\w*")
"""A dotted name of torch or huggingface_hub with a private part (`torch._x`, `torch.utils._x`,
`huggingface_hub.utils._x`, `torch.distributions.Distribution._x`; not a dunder such as torch.__version__)."""


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else ""


def _private_uses(path: Path):
    """The private torch / huggingface_hub names `path` imports (import statements, importlib.import_module
    or __import__ of a literal name) or reads as attributes; its other strings and its comments are not looked
    at (a private name in a docstring or a message is not a use of it)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Attribute):
            names = [_dotted(node)]
        elif isinstance(node, ast.Call) and _dotted(node.func).rpartition(".")[2] in ("import_module", "__import__") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            names = [node.args[0].value]
        else:
            continue
        found.update(m.group(0) for m in map(PRIVATE.match, names) if m)
    return sorted(found)


def _sources():
    dirs = [ROOT / "core" / "nfzoo", ROOT / "cli" / "nfzoo_cli", *sorted((ROOT / "plugins").glob("*/"))]
    for d in dirs:
        for path in sorted(d.rglob("*.py")):
            if ".egg-info" not in str(path) and "__pycache__" not in path.parts:
                yield path


def test_no_module_but_compat_uses_a_private_torch_or_huggingface_hub_name():
    found = {str(p.relative_to(ROOT)): uses for p in _sources() if p.name != "compat.py"
             for uses in [_private_uses(p)] if uses}
    assert found == {}, "use nfzoo.compat for these (and add what is missing there)"


def test_the_scan_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""torch._dynamo in a docstring."""\nimport torch._logging\n'
                      "from torch.utils._pytree import tree_map\nfrom torch.utils import pytree, _device\n"
                      "from huggingface_hub.utils import _http\nx = torch.__version__  # torch._x\n"
                      "y = 'torch._inductor'\nz = torch . _C\n"
                      "v = torch.distributions.Distribution._validate_args\n"
                      "w = importlib.import_module('torch._decomp')\n")
    assert _private_uses(sample) == ["huggingface_hub.utils._http", "torch._C", "torch._decomp", "torch._logging",
                                     "torch.distributions.Distribution._validate_args", "torch.utils._device",
                                     "torch.utils._pytree"]


# ------------------------------------------------------------------------------------------ draws
def test_the_interception_is_local_to_the_thread_that_entered_it():
    """While one thread is inside record_draws / replay_draws, torch's functions are unchanged and another
    thread's torch.randn / rand / multinomial draw for real, nothing recorded or replayed."""
    inside, done = threading.Event(), threading.Event()
    recorded, other = [], {}

    def recording():
        with record_draws(recorded):
            torch.randn(2, 3)
            assert all(getattr(torch, n) is f for n, f in REAL.items())     # torch is not patched
            inside.set()
            assert done.wait(60)
            torch.rand(4)

    def drawing():
        assert inside.wait(60)
        g = torch.Generator().manual_seed(7)
        other["randn"] = torch.randn(5, generator=g)
        other["rand"] = torch.rand(5, generator=g)
        other["multinomial"] = torch.multinomial(torch.tensor([0.5, 0.5]), 4, True, generator=g)
        done.set()

    run_threads(recording, drawing)
    assert [(d.kind, d.shape) for d in recorded] == [("normal", (2, 3)), ("uniform", (4,))]
    g = torch.Generator().manual_seed(7)
    assert torch.equal(other["randn"], torch.randn(5, generator=g))
    assert torch.equal(other["rand"], torch.rand(5, generator=g))
    assert torch.equal(other["multinomial"], torch.multinomial(torch.tensor([0.5, 0.5]), 4, True, generator=g))

    inside.clear(), done.clear()
    given = torch.full((5,), 42.0)

    def replaying():
        with replay_draws([given]):
            inside.set()
            assert done.wait(60)
            assert torch.randn(5) is given

    run_threads(replaying, drawing)
    assert torch.equal(other["randn"], torch.randn(5, generator=torch.Generator().manual_seed(7)))


def test_two_threads_replay_their_own_values_at_once():
    barrier = threading.Barrier(2, timeout=60)
    got = {}

    def replaying(k):
        values = [torch.full((3,), float(k)), torch.full((2,), 10.0 + k), torch.tensor([k, k])]
        out = []
        with replay_draws(values):
            barrier.wait()
            out.append(torch.randn(3))
            barrier.wait()
            out.append(torch.rand(2, dtype=torch.float64))
            barrier.wait()
            out.append(torch.multinomial(torch.tensor([0.5, 0.5]), 2, True))
        got[k] = out

    run_threads(lambda: replaying(1), lambda: replaying(2))
    for k in (1, 2):
        assert torch.equal(got[k][0], torch.full((3,), float(k)))
        assert got[k][1].dtype == torch.float64 and torch.equal(got[k][1], torch.full((2,), 10.0 + k).double())
        assert torch.equal(got[k][2], torch.tensor([k, k]))


def test_record_draws_still_reports_a_categorical_draw():
    out = []
    with record_draws(out):
        torch.multinomial(torch.tensor([1.0, 3.0]), 5, replacement=True)
        torch.randn((2, 2), dtype=torch.float64)
    assert out == [Draw("categorical", (5,), torch.int64, [0.25, 0.75]), Draw("normal", (2, 2), torch.float64)]
    from nfzoo.export.trace import ExportError

    with pytest.raises(ExportError, match="without replacement"), record_draws([]):
        torch.multinomial(torch.tensor([1.0, 3.0]), 1)
    assert torch.multinomial is REAL["multinomial"]


def test_replay_counts_the_draws():
    from nfzoo.export.trace import ExportError

    with pytest.raises(ExportError, match="more random numbers"), replay_draws([]):
        torch.randn(2)
    with pytest.raises(ExportError, match="fewer random numbers"), replay_draws([torch.zeros(1)]):
        pass


# ------------------------------------------------------------------------------------------ export
def _tiny_model():
    torch.manual_seed(0)
    m = nfzoo.create_model("nice", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.2)
    return m


def test_two_threads_export_at_once_as_one_at_a_time(tmp_path):
    """The sample direction (the prior's draws recorded and replayed, the decode) exported by two threads at
    once, each with its own copy of the model, while a third thread draws: the same graphs as one export
    alone, and the drawing thread got torch's own numbers."""
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    from nfzoo.export.onnx import export_model

    validate, stdout = compat.default_validate_args(), sys.stdout
    alone = export_model(_tiny_model(), tmp_path / "alone", directions=["sample"], name="tiny")
    models = {k: _tiny_model() for k in (1, 2)}           # built here: building uses the global RNG
    manifests, stop, draws = {}, threading.Event(), []

    def export(k):
        manifests[k] = export_model(models[k], tmp_path / f"thread{k}", directions=["sample"], name="tiny")

    def drawing():
        g = torch.Generator().manual_seed(3)
        while not stop.is_set() and len(draws) < 10_000:
            draws.append(torch.randn(4, generator=g))
            time.sleep(0.002)

    drawer = threading.Thread(target=drawing, daemon=True)
    drawer.start()
    try:
        run_threads(lambda: export(1), lambda: export(2))
    finally:
        stop.set()
        drawer.join(60)
    assert alone["directions"]["sample"] == {"graphs": ["prior", "decode"], "complete": True}
    for k in (1, 2):
        assert manifests[k]["graphs"] == alone["graphs"]
        for g in ("prior", "decode"):
            file = alone["graphs"][g]["file"]
            assert (tmp_path / f"thread{k}" / file).read_bytes() == (tmp_path / "alone" / file).read_bytes()
    g = torch.Generator().manual_seed(3)
    assert draws and all(torch.equal(d, torch.randn(4, generator=g)) for d in draws)
    assert compat.default_validate_args() == validate          # tracing's switch is back as it was
    assert sys.stdout is stdout                                 # and the exporter's silencing
