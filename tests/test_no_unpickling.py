"""Nothing in nfzoo unpickles a file, directly or through a library (README "Security"; issue 20 item 1:
torchvision's loader unpickled a planted Inception-v3 weight file).

Two guards:
1. at run time, on the paths that read files (a zoo model, a run directory, sampling and evaluating it
   with an oracle, resuming a checkpoint, a Hub pull, Inception-v3's weights): an audit hook records
   every global a pickle names. CPython's Unpicklers (the C one and the pure-Python one) raise the
   `pickle.find_class` audit event for each GLOBAL / STACK_GLOBAL opcode, and a pickle can call nothing
   without naming it so: any full unpickling, whoever does it (torch.load(weights_only=False),
   torchvision, numpy's allow_pickle, joblib ...), shows up. torch's weights-only loader resolves globals
   from its own allow-list without find_class, so it does not: torch.load is also wrapped to record that
   every call passes weights_only=True. Control tests show that the watch catches a full unpickle
   (torchvision's own Inception loader included) and lets weights-only loads pass.
2. statically: every first-party package (core/, cli/, plugins/*/nfzoo_*, zoo/) is scanned, its syntax
   tree for calls (torch.load without weights_only=True, pickle / dill / joblib loaders, torch.hub and
   torchvision weight loaders, numpy's allow_pickle=True) and its text for the tell-tale names.
"""
import ast
import collections
import hashlib
import io
import json
import pickle
import shutil
import sys
from pathlib import Path

import pytest
import torch

import nfzoo

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------- the watch
class _Watch:
    def __init__(self):
        self.active = False
        self.globals = []   # (module, name) of every global an Unpickler resolved
        self.loads = []     # the weights_only argument of every torch.load call ("default" if absent)

    def clear(self):
        self.globals.clear()
        self.loads.clear()

    def check(self, what):
        assert not self.globals, f"{what} unpickled something: it resolved {self.globals[:6]}"
        assert all(v is True for v in self.loads), f"{what} called torch.load with weights_only={self.loads}"


_WATCH = _Watch()


def _audit(event, args):
    if event == "pickle.find_class" and _WATCH.active:
        _WATCH.globals.append(tuple(args))


sys.addaudithook(_audit)   # audit hooks cannot be removed: it records only while a test watches


@pytest.fixture
def unpickling(monkeypatch):
    """The watch, recording for the duration of the test."""
    real_load = torch.load

    def load(*args, **kwargs):
        _WATCH.loads.append(kwargs.get("weights_only", "default"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", load)
    _WATCH.clear()
    _WATCH.active = True
    try:
        yield _WATCH
    finally:
        _WATCH.active = False
        _WATCH.clear()


@pytest.fixture(scope="module")
def inception_like_weights(tmp_path_factory):
    """A state dict in the format of torchvision's Inception-v3 weight file (random weights, torch.save)
    at the torch hub cache's path of the real one: (TORCH_HOME, its sha256)."""
    from torchvision.models import inception_v3

    from nfzoo.evaluation.inception import INCEPTION_FILE

    home = tmp_path_factory.mktemp("torch-home")
    path = home / "hub" / "checkpoints" / INCEPTION_FILE
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), path)
    return home, hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------- the watch works
def test_the_watch_sees_a_full_unpickle_and_not_a_weights_only_load(unpickling, tmp_path):
    f = tmp_path / "w.pth"
    torch.save({"w": torch.ones(2)}, f)
    torch.load(f, weights_only=True)
    assert unpickling.globals == [] and unpickling.loads == [True]
    torch.load(f, weights_only=False)
    assert ("torch._utils", "_rebuild_tensor_v2") in unpickling.globals and unpickling.loads[-1] is False
    unpickling.clear()
    pickle.loads(pickle.dumps(collections.OrderedDict(a=1)))   # plain pickle, C unpickler
    assert ("collections", "OrderedDict") in unpickling.globals
    unpickling.clear()
    pickle._Unpickler(io.BytesIO(pickle.dumps(collections.Counter()))).load()   # the pure-Python one
    assert ("collections", "Counter") in unpickling.globals


def test_the_watch_catches_torchvisions_own_inception_loader(unpickling, inception_like_weights, monkeypatch):
    """What InceptionFeatures did before issue 20: torchvision unpickles the cached file in full."""
    from torchvision.models import Inception_V3_Weights, inception_v3

    monkeypatch.setenv("TORCH_HOME", str(inception_like_weights[0]))
    inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1, aux_logits=True, transform_input=False)
    assert unpickling.globals and False in unpickling.loads
    with pytest.raises(AssertionError, match="unpickled"):
        unpickling.check("torchvision")


# ------------------------------------------------------------------------- nfzoo's loading paths
def test_loading_a_zoo_model_and_a_run_unpickles_nothing(unpickling, tiny_run):
    m = nfzoo.load("glow-mnist5k")
    m.sample(2, generator=torch.Generator().manual_seed(0))
    nfzoo.load(str(tiny_run))
    unpickling.check("nfzoo.load")


def test_sampling_and_evaluating_a_run_with_an_oracle_unpickle_nothing(unpickling, runner, app, tiny_run,
                                                                    tmp_path):
    from nfzoo.evaluation.oracle import OracleNet

    torch.manual_seed(0)
    OracleNet(image_shape=(1, 8, 8)).eval().save(tmp_path / "oracle")
    res = runner.invoke(app, ["sample", "--model", str(tiny_run), "-n", "4", "--out", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", str(tiny_run), "--dataset", "digits", "--samples", "10",
                              "--oracle", str(tmp_path / "oracle"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_samples"] == 10
    unpickling.check("sample / eval --oracle")


def test_resuming_a_checkpoint_unpickles_nothing(unpickling, runner, app, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(run), "--resume",
                              "--epochs", "3", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["epochs"] == 3 and doc["resumed_from"]
    unpickling.check("train --resume")


def test_a_hub_pull_and_load_unpickle_nothing(unpickling, runner, app, hub, tmp_path):
    torch.manual_seed(1)
    m = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)
    m.initialize(torch.rand(8, 1, 8, 8))
    m.save_pretrained(tmp_path / "tiny")
    sha = hub.add_repo("nfzoo/tiny", tmp_path / "tiny")
    res = runner.invoke(app, ["pull", f"hf-hub:nfzoo/tiny@{sha}"])
    assert res.exit_code == 0, res.output
    nfzoo.load(f"hf-hub:nfzoo/tiny@{sha}")
    unpickling.check("pull / load from the Hub")


def test_the_inception_features_unpickle_nothing(unpickling, inception_like_weights, monkeypatch):
    """A legitimate-format weight file (the test's own, so its sha256 is pinned for the test) is read
    with the weights-only loader; the features come out."""
    import nfzoo.evaluation.inception as inception
    import nfzoo.evaluation.metrics as metrics

    home, digest = inception_like_weights
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(inception, "INCEPTION_SHA256", digest)
    extractor, _ = metrics.get_feature_extractor("inception")
    assert extractor(torch.rand(2, 1, 8, 8)).shape == (2, 2048)
    assert unpickling.loads == [True]
    unpickling.check("InceptionFeatures")


# ------------------------------------------------------------------------------ the static scan
def _first_party_files():
    dirs = [ROOT / "core", ROOT / "cli", ROOT / "zoo", *sorted(ROOT.glob("plugins/*/nfzoo_*"))]
    files = [f for d in dirs for f in d.rglob("*.py") if ".egg-info" not in str(f)]
    assert len(files) > 20 and any(f.name == "metrics.py" for f in files)
    return files


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


# callables that unpickle (or hand a file to something that does), by their last dotted parts
_UNPICKLERS = {"pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads",
               "cPickle.load", "cPickle.loads", "dill.load", "dill.loads", "cloudpickle.load",
               "cloudpickle.loads", "joblib.load", "marshal.load", "marshal.loads", "shelve.open",
               "read_pickle", "load_state_dict_from_url", "load_url", "hub.load", "get_state_dict",
               # torch.distributed's object collectives pickle on one rank and unpickle on the others
               "broadcast_object_list", "all_gather_object", "gather_object", "scatter_object_list",
               "recv_object_list"}
_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}


def _is_true(node):
    return isinstance(node, ast.Constant) and node.value is True


def _scan(tree):
    """(line, problem) for every call in a syntax tree that could unpickle."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _MODULES:
            found.append((node.lineno, f"from {node.module} import ..."))
        if isinstance(node, ast.ImportFrom) and node.module == "torch" and \
                any(a.name == "load" for a in node.names):
            found.append((node.lineno, "from torch import load"))
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if any(name == u or name.endswith("." + u) for u in _UNPICKLERS):
            found.append((node.lineno, f"{name}()"))
        if name in ("torch.load", "torch.serialization.load") and not _is_true(kw.get("weights_only")):
            found.append((node.lineno, f"{name}() without weights_only=True"))
        if name.endswith("load") and name.split(".")[0] in ("np", "numpy") and _is_true(kw.get("allow_pickle")):
            found.append((node.lineno, f"{name}(allow_pickle=True)"))
        if isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is False:
            found.append((node.lineno, "weights_only=False"))
        w = kw.get("weights")   # a torchvision builder given weights loads them with its unpickling loader
        if w is not None and not (isinstance(w, ast.Constant) and w.value is None) and \
                ("Weights" in _dotted(w) or isinstance(w, ast.Constant)):
            found.append((node.lineno, f"{name}(weights={ast.unparse(w)})"))
        if _is_true(kw.get("pretrained")):
            found.append((node.lineno, f"{name}(pretrained=True)"))
    return found


def test_the_scan_flags_what_it_must():
    bad = """
import pickle, numpy as np, torch
from torchvision.models import inception_v3, Inception_V3_Weights
pickle.loads(b"")
torch.load(f)
torch.load(f, weights_only=False)
np.load(f, allow_pickle=True)
inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1)
torch.hub.load_state_dict_from_url(u)
Inception_V3_Weights.IMAGENET1K_V1.get_state_dict()
dist.broadcast_object_list(box, src=0)
"""
    assert sorted(line for line, _ in _scan(ast.parse(bad))) == [4, 5, 6, 6, 7, 8, 9, 10, 11]
    ok = "torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)\nresnet18(weights=None)\n"
    assert _scan(ast.parse(ok)) == []


def test_nothing_unpickles_in_the_source():
    """The static guard (the run-time one above catches indirect paths): no first-party module calls an
    unpickler, torch.load without weights_only=True, or a library loader that unpickles."""
    problems = []
    for f in _first_party_files():
        text = f.read_text()
        problems += [f"{f.relative_to(ROOT)}:{line}: {what}" for line, what in _scan(ast.parse(text))]
        # the needles are built so that this file itself is not flagged by text scans for them
        for needle in ("pickle." + "load", "weights_only" + "=False", "allow_pickle" + "=True",
                       "load_state_dict" + "_from_url", "Unpick" + "ler("):
            if needle in text:
                problems.append(f"{f.relative_to(ROOT)}: contains {needle}")
    assert not problems, "\n".join(problems)
