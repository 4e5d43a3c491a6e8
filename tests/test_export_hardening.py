"""A hostile user against `nfzoo export` and its runner (nfzoo.export.runner, copied into the export folder):

- `--out ""` is refused as `sample` refuses it (exit 2, nothing written anywhere), and a folder that holds files
  is refused with a message that names no option `export` does not have;
- the runner validates the whole manifest up front (a ValueError naming the key, never a KeyError), bounds every
  shape and every draw before allocating, reads each graph once, checks the sha256 of those bytes and gives
  those bytes to onnxruntime, and refuses graphs whose tensors live in another file (ONNX external data):
  onnxruntime reads such a file even for a graph given as bytes (relative to the working directory).

One tiny NICE is exported once for the module (about 8 s); every other case edits a copy of that export."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import nfzoo
from nfzoo.export.onnx import export_model
from nfzoo.export.runner import MANIFEST_NAME, ExportedModel


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A folder with model/ (a tiny NICE, save_pretrained) and export/ (its sample direction, exported)."""
    torch.manual_seed(0)
    m = nfzoo.create_model("nice", image_shape=(1, 8, 8), levels=2, steps=2, hidden=8)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.2)
    root = tmp_path_factory.mktemp("tiny")
    m.save_pretrained(root / "model")
    export_model(m, root / "export", directions=["sample"], name="tiny-nice", check=2)
    return root


def copy_export(tiny, dst: Path) -> Path:
    shutil.copytree(tiny / "export", dst)
    return dst


def read_manifest(d: Path) -> dict:
    return json.loads((d / MANIFEST_NAME).read_text())


def write_manifest(d: Path, manifest) -> None:
    (d / MANIFEST_NAME).write_text(json.dumps(manifest))


def edited(tiny, tmp_path, edit) -> Path:
    """A copy of the export whose manifest `edit(manifest)` changed in place."""
    d = copy_export(tiny, tmp_path / "edited")
    manifest = read_manifest(d)
    edit(manifest)
    write_manifest(d, manifest)
    return d


def listing(d: Path):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


# --------------------------------------------------------------------- the command's --out
def test_export_out_empty_is_refused_with_exit_2_and_writes_nothing(runner, app, tiny, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    res = runner.invoke(app, ["export", str(tiny / "model"), "--out", "", "--direction", "sample"])
    assert res.exit_code == 2, res.output
    assert "--out is empty" in res.output and "folder" in res.output
    assert listing(cwd) == [] and listing(tmp_path) == ["cwd"]
    res = runner.invoke(app, ["export", str(tiny / "model"), "--out", "   "])
    assert res.exit_code == 2 and "--out is empty" in res.output and listing(cwd) == []


def test_export_into_a_folder_with_files_names_no_missing_option(runner, app, tiny, tmp_path):
    """`export` has no --overwrite (an export folder is one whole: stale graphs beside a new manifest would be a
    mix), so the message must not suggest one: it says to choose a new or empty folder or remove the old one."""
    d = tmp_path / "full"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    res = runner.invoke(app, ["export", str(tiny / "model"), "--out", str(d), "--direction", "sample"])
    assert res.exit_code == 2, res.output
    assert "already holds files" in res.output and "--overwrite" not in res.output
    assert "new or empty folder" in res.output and "nothing was written" in res.output
    assert listing(d) == ["notes.txt"] and (d / "notes.txt").read_text() == "mine"
    res = runner.invoke(app, ["export", str(tiny / "model"), "--out", str(d), "--overwrite"])
    assert res.exit_code == 2 and "No such option" in res.output     # really no such option


def test_export_out_a_file_is_refused_before_the_model_loads(runner, app, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    res = runner.invoke(app, ["export", "no-such-model", "--out", str(f)])
    assert res.exit_code == 2 and "is a file, not a folder" in res.output and f.read_text() == "x"


# --------------------------------------------------------------------- the manifest, validated up front
def test_a_manifest_without_sha256_is_a_value_error_naming_it(tiny, tmp_path):
    d = edited(tiny, tmp_path, lambda m: m["graphs"]["decode"].pop("sha256"))
    with pytest.raises(ValueError, match=r"graphs\.decode\.sha256 is missing.*export the model again"):
        ExportedModel(d)
    with pytest.raises(ValueError, match=r"graphs\.decode\.sha256"):
        ExportedModel(d, verify=False)          # the manifest is validated whether or not files are verified


def _set(path, value):
    def edit(m):
        *keys, last = path
        for k in keys:
            m = m[k]
        if value is KeyError:
            del m[last]
        else:
            m[last] = value
    return edit


@pytest.mark.parametrize("path,value,needle", [
    (["image_shape"], KeyError, r"image_shape is missing"),
    (["latent_shape"], [1, 0, 8], r"latent_shape .*positive integers"),
    (["image_shape"], [1, 8, 8.5], r"image_shape .*positive integers"),
    (["image_shape"], "1x8x8", r"image_shape .*list"),
    (["image_shape"], [4096, 4096, 8], r"image_shape .*elements per item.*at most"),
    (["dim"], 65, r"dim .*64"),
    (["num_classes"], "ten", r"num_classes .*integer"),
    (["sampling"], KeyError, r"sampling is missing"),
    (["sampling", "kind"], "gan", r"sampling\.kind .*'flow' or 'diffusion'"),
    (["sampling", "temperature"], float("nan"), r"sampling\.temperature .*finite"),
    (["graphs"], [], r"graphs .*object"),
    (["graphs", "decode", "sha256"], "ab" * 31, r"graphs\.decode\.sha256 .*64 hex"),
    (["graphs", "decode", "sha256"], "zz" * 32, r"graphs\.decode\.sha256 .*64 hex"),
    (["graphs", "decode", "file"], "../decode.onnx", r"graphs\.decode\.file .*plain file name"),
    (["graphs", "decode", "file"], "sub/decode.onnx", r"graphs\.decode\.file .*plain file name"),
    (["graphs", "decode", "file"], ".onnx", r"graphs\.decode\.file .*plain file name"),
    (["graphs", "decode", "file"], 7, r"graphs\.decode\.file .*string"),
    (["graphs", "decode", "inputs"], KeyError, r"graphs\.decode\.inputs is missing"),
    (["graphs", "decode", "inputs", 0, "shape"], ["batch", -1, 8, 8], r"graphs\.decode\.inputs\[0\]\.shape"),
    (["graphs", "sideways"], {"file": "x.onnx"}, r"graphs\.sideways .*unknown graph"),
    (["graphs", "prior", "noise"], KeyError, r"graphs\.prior\.noise is missing"),
    (["graphs", "prior", "noise", 0, "distribution"], "cauchy", r"noise\[0\]\.distribution .*'cauchy'"),
    (["graphs", "prior", "noise", 0, "shape"], ["batch", "n", 8], r"noise\[0\]\.shape .*'batch'"),
    (["graphs", "prior", "noise", 0, "shape"], ["batch", 10 ** 6, 10 ** 6], r"noise\[0\]\.shape .*at most"),
    (["graphs", "prior", "noise", 0], {"name": "noise_0", "distribution": "categorical", "shape": ["batch"]},
     r"noise\[0\]\.probs is missing"),
    (["graphs", "prior", "noise", 0], {"name": "noise_0", "distribution": "categorical", "shape": ["batch"],
                                       "probs": [0.5, float("nan")]}, r"noise\[0\]\.probs .*finite"),
    (["graphs", "prior", "noise", 0], {"name": "noise_0", "distribution": "categorical", "shape": ["batch"],
                                       "probs": [0.5, -0.1]}, r"noise\[0\]\.probs .*>= 0"),
    (["graphs", "prior", "noise", 0], {"name": "noise_0", "distribution": "categorical", "shape": ["batch"],
                                       "probs": [0, 0]}, r"noise\[0\]\.probs .*sum"),
    (["not_exported"], {"density": 3}, r"not_exported\.density .*string"),
    (["manifest_version"], 99, r"manifest_version"),
    (["runner", "files", "../evil.py"], "0" * 64, r"runner\.files\.\.\./evil\.py .*plain \.py file name"),
    (["runner", "files", "nfzoo_onnx_checks.py"], "zz", r"runner\.files\.nfzoo_onnx_checks\.py .*64 hex"),
    (["runner", "files"], ["nfzoo_onnx_checks.py"], r"runner\.files .*object"),
])
def test_a_bad_manifest_is_one_value_error_naming_the_key_and_the_fix(tiny, tmp_path, path, value, needle):
    d = edited(tiny, tmp_path, _set(path, value))
    with pytest.raises(ValueError, match=needle) as info:
        ExportedModel(d, verify=False)
    assert "export the model again" in str(info.value)


@pytest.mark.parametrize("text,needle", [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"),
                                          ("[" * 100000, "not valid JSON"), ('{"a": 1}', "is missing")])
def test_a_manifest_that_is_not_a_json_object_is_refused(tiny, tmp_path, text, needle):
    d = copy_export(tiny, tmp_path / "e")
    (d / MANIFEST_NAME).write_text(text)
    with pytest.raises(ValueError, match=needle):
        ExportedModel(d)


def test_a_huge_noise_shape_is_refused_before_anything_is_allocated(tiny, tmp_path):
    """10^6 x 10^6 noise per sample (14.6 TiB for two samples) is refused when the manifest is read."""
    d = edited(tiny, tmp_path, _set(["graphs", "prior", "noise", 0, "shape"], ["batch", 10 ** 6, 10 ** 6]))
    with pytest.raises(ValueError, match=r"graphs\.prior\.noise\[0\]\.shape .*1000000000000 elements per item"
                                         r".*at most"):
        ExportedModel(d)


def test_a_draw_bigger_than_the_stated_limit_is_refused_before_allocating(tiny):
    from nfzoo.export.runner import MAX_DRAW_ELEMENTS

    m = ExportedModel(tiny / "export", threads=1)
    for call in (lambda n: m.sample(n), lambda n: m.draw_noise(n)):
        with pytest.raises(ValueError, match=r"at most \d+ samples .*2\^28 elements"):
            call(10 ** 12)
        with pytest.raises(ValueError, match=r"at most"):
            call(MAX_DRAW_ELEMENTS // 64 + 1)       # 64 elements per sample: one over the limit
    with pytest.raises(ValueError, match="n must be an integer"):
        m.sample(2.5)
    with pytest.raises(ValueError, match="not a diffusion model"):
        m.draw_ddim_noise(2)
    assert m.sample(2, seed=1).shape == (2, 1, 8, 8)


def _diffusion(total, steps=5, alphas=None):
    def edit(m):
        m["sampling"] = {"sampler": "ddim", "temperature": 1.0, "options": {}, "kind": "diffusion",
                         "ddim": {"alphas_cumprod": alphas if alphas is not None else
                                  list(np.linspace(0.99, 0.1, min(total, 1000))),
                                  "final_alpha_cumprod": 1.0, "num_train_timesteps": total,
                                  "timestep_spacing": "trailing", "prediction_type": "epsilon",
                                  "clip_sample_range": 1.0, "use_clipped_model_output": True,
                                  "init_noise_sigma": 1.0, "steps": steps, "eta": 1.0}}
    return edit


def test_ddims_step_count_is_bounded_by_a_bounded_num_train_timesteps(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"sampling\.ddim\.num_train_timesteps .*from 1 to 100000"):
        ExportedModel(edited(tiny, tmp_path / "a", _diffusion(10 ** 9)))
    with pytest.raises(ValueError, match=r"sampling\.ddim\.alphas_cumprod .*1000 numbers"):
        ExportedModel(edited(tiny, tmp_path / "b", _diffusion(1000, alphas=[0.5] * 10)))
    with pytest.raises(ValueError, match=r"sampling\.ddim\.steps .*from 1 to 1000"):
        ExportedModel(edited(tiny, tmp_path / "c", _diffusion(1000, steps=10 ** 6)))
    m = ExportedModel(edited(tiny, tmp_path / "d", _diffusion(1000, steps=20)))
    with pytest.raises(ValueError, match="steps must be an integer from 1 to 1000"):
        m.timesteps(10 ** 9)
    assert len(m.draw_ddim_noise(2, steps=20)) == 21
    # 21 arrays of 64 elements per sample: the bound is on the whole draw
    with pytest.raises(ValueError, match=r"at most \d+ samples"):
        m.draw_ddim_noise((1 << 28) // (21 * 64) + 1, steps=20)


# --------------------------------------------------------------------- what runs is what was checked
def externalize(d: Path, graph="decode", location="weights.bin") -> Path:
    """Rewrite d/GRAPH.onnx to keep its tensors in d/LOCATION (ONNX external data), and give the manifest the
    new graph's sha256, as an attacker who can write the folder would."""
    import onnx

    model = onnx.load(str(d / f"{graph}.onnx"))
    onnx.save_model(model, str(d / f"{graph}.onnx"), save_as_external_data=True, location=location)
    assert (d / location).is_file()
    manifest = read_manifest(d)
    manifest["graphs"][graph]["sha256"] = hashlib.sha256((d / f"{graph}.onnx").read_bytes()).hexdigest()
    write_manifest(d, manifest)
    return d


def test_a_graph_that_reads_an_unlisted_file_is_refused(tiny, tmp_path, monkeypatch):
    d = externalize(copy_export(tiny, tmp_path / "e"))
    for verify in (True, False):
        with pytest.raises(ValueError, match=r"decode\.onnx .*external data.*weights\.bin"):
            ExportedModel(d, verify=verify)
    monkeypatch.chdir(d)    # onnxruntime resolves a bytes-loaded graph's external data against the working dir
    with pytest.raises(ValueError, match="external data"):
        ExportedModel(d)


def opened(path: Path, action) -> bool:
    """Whether anything opened or read `path` while `action()` ran (Linux inotify, through ctypes)."""
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK)
    if fd < 0:
        pytest.skip("inotify is not available here")
    try:
        if libc.inotify_add_watch(fd, str(path).encode(), 0x1 | 0x20) < 0:      # IN_ACCESS | IN_OPEN
            pytest.skip("inotify cannot watch the file")
        action()
        try:
            return len(os.read(fd, 4096)) > 0
        except BlockingIOError:
            return False
    finally:
        os.close(fd)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify")
def test_a_tampered_external_file_is_never_read(tiny, tmp_path, monkeypatch):
    """A graph that names an external file (its weights, then tampered with) is refused before anything opens
    that file: not the runner, not onnxruntime (which would read it relative to the working directory even for
    a graph given as bytes), whether or not the sha256 check runs."""
    d = externalize(copy_export(tiny, tmp_path / "e"))
    weights = d / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[:4] = b"\xff\xff\xff\x7f"
    weights.write_bytes(bytes(data))
    assert opened(weights, weights.read_bytes)               # the watch sees a read
    monkeypatch.chdir(d)
    for verify in (True, False):
        def load(verify=verify):
            with pytest.raises(ValueError, match=r"external data.*weights\.bin"):
                ExportedModel(d, verify=verify)
        assert not opened(weights, load)
    out = run_runner(d)                                      # the copied runner, in its own process
    assert out.startswith("refused:") and "external data" in out and "weights.bin" in out


def test_the_graph_bytes_checked_are_the_bytes_loaded(tiny, tmp_path, monkeypatch):
    """Each graph is read once and onnxruntime gets those bytes (not the path, which could change in between)."""
    import onnxruntime as ort

    given = []
    real = ort.InferenceSession

    def spy(src, *a, **k):
        given.append(src)
        return real(src, *a, **k)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    m = ExportedModel(tiny / "export")
    manifest = read_manifest(tiny / "export")
    assert sorted(m.sessions) == ["decode", "prior"] and len(given) == 2
    for src in given:
        assert isinstance(src, bytes)
    assert sorted(hashlib.sha256(b).hexdigest() for b in given) == \
        sorted(g["sha256"] for g in manifest["graphs"].values())


def run_runner(d: Path, call: str = "ExportedModel('.')") -> str:
    """Run the copied runner in a subprocess (torch unimportable), from the export folder as its working
    directory, with a timeout: what it printed (`refused: ...` for a ValueError)."""
    code = ("import sys; sys.modules['torch'] = None; sys.path.insert(0, '.')\n"
            "from nfzoo_onnx_runner import ExportedModel\n"
            f"try:\n    {call}\nexcept ValueError as e:\n    print('refused:', e)\nelse:\n    print('loaded')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=d, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_a_graph_that_is_not_a_regular_file_is_refused_without_opening_it(tiny, tmp_path):
    d = copy_export(tiny, tmp_path / "e")
    (d / "decode.onnx").unlink()
    os.mkfifo(d / "decode.onnx")         # opening it to read would block: there is no writer
    for call in ("ExportedModel('.')", "ExportedModel('.', verify=False)"):
        out = run_runner(d, call)
        assert out.startswith("refused:") and "decode.onnx is not a regular file" in out
    (d / "decode.onnx").unlink()
    with pytest.raises(ValueError, match=r"decode\.onnx is missing"):
        ExportedModel(d)


# --------------------------------------------------------------------- the external-data scan itself
def _model(initializers=(), nodes=(), functions=(), sparse=()):
    from onnx import TensorProto, helper

    graph = helper.make_graph(list(nodes) or [helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], list(initializers),
                              sparse_initializer=list(sparse))
    return helper.make_model(graph, functions=list(functions), opset_imports=[helper.make_opsetid("", 17),
                                                                               helper.make_opsetid("local", 1)])


def _external(name="w"):
    from onnx import TensorProto, helper

    t = helper.make_tensor(name, TensorProto.FLOAT, [4], np.zeros(4, np.float32).tobytes(), raw=True)
    from onnx.external_data_helper import set_external_data

    set_external_data(t, location="elsewhere.bin")
    t.ClearField("raw_data")
    return t


def _crafted():
    """Models that hide an external tensor in each place ONNX can hold one."""
    from onnx import TensorProto, helper

    sub = helper.make_graph([helper.make_node("Identity", ["w2"], ["o"])], "sub", [],
                            [helper.make_tensor_value_info("o", TensorProto.FLOAT, [4])], [_external("w2")])
    body = [helper.make_node("Constant", [], ["b"], value=_external("c"))]
    fn = helper.make_function("local", "F", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    sparse = helper.make_sparse_tensor(_external("v"), helper.make_tensor("i", TensorProto.INT64, [1], [0]), [4])
    return {
        "initializer": _model(initializers=[_external()]),
        "constant attribute": _model(nodes=[helper.make_node("Constant", [], ["y"], value=_external())]),
        "subgraph initializer": _model(nodes=[helper.make_node("If", ["x"], ["y"], then_branch=sub, else_branch=sub)]),
        "function body": _model(functions=[fn]),
        "sparse initializer": _model(sparse=[sparse]),
    }


@pytest.mark.parametrize("where", ["initializer", "constant attribute", "subgraph initializer", "function body",
                                   "sparse initializer"])
def test_the_scan_finds_external_data_wherever_onnx_can_hold_it(where):
    from nfzoo.export.runner_checks import external_data

    model = _crafted()[where]
    found = external_data(model.SerializeToString())
    assert found and all("elsewhere.bin" in f for f in found)


def test_the_scan_passes_self_contained_graphs_and_refuses_malformed_bytes(tiny):
    from nfzoo.export.runner_checks import external_data

    for f in ("prior.onnx", "decode.onnx"):
        assert external_data((tiny / "export" / f).read_bytes()) == []
    with pytest.raises(ValueError, match="not a valid ONNX"):
        external_data(b"\x0a\xff\xff\xff\xff\x0f")          # a length past the end


def test_the_scan_covers_every_onnx_field_that_can_hold_a_tensor():
    """The scan's schema (nfzoo.export.runner_checks.ONNX_MESSAGES) lists every field, in every message reachable from
    ModelProto, whose type can hold a TensorProto: taken from the installed onnx's own descriptors."""
    from google.protobuf.descriptor import FieldDescriptor
    from onnx import ModelProto

    from nfzoo.export.runner_checks import ONNX_MESSAGES

    messages, todo = {}, [ModelProto.DESCRIPTOR]
    while todo:
        d = todo.pop()
        if d.name not in messages:
            messages[d.name] = d
            todo += [f.message_type for f in d.fields if f.type == FieldDescriptor.TYPE_MESSAGE]
    holds = {"TensorProto"}
    changed = True
    while changed:
        changed = False
        for name, d in messages.items():
            if name not in holds and any(f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.name in holds
                                         for f in d.fields):
                holds.add(name)
                changed = True
    want = {name: {f.number: f.message_type.name for f in messages[name].fields
                   if f.type == FieldDescriptor.TYPE_MESSAGE and f.message_type.name in holds} for name in holds}
    assert ONNX_MESSAGES == want
    fields = {f.name: f.number for f in messages["TensorProto"].fields}
    assert (fields["external_data"], fields["data_location"]) == (13, 14)


def test_the_export_never_writes_external_data(tiny, tmp_path):
    """export_model refuses a graph file that keeps tensors elsewhere (nfzoo.export.onnx.check_self_contained), and
    the exported files are self-contained by onnx's own reading too."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    from nfzoo.export.onnx import check_self_contained
    from nfzoo.export.trace import ExportError

    for f in ("prior.onnx", "decode.onnx"):
        model = onnx.load(str(tiny / "export" / f), load_external_data=False)
        assert not any(uses_external_data(t) for t in _get_all_tensors(model))
        check_self_contained(tiny / "export" / f)
    d = externalize(copy_export(tiny, tmp_path / "e"))
    with pytest.raises(ExportError, match=r"keeps data outside its file .*weights\.bin"):
        check_self_contained(d / "decode.onnx")
    assert sorted(p.name for p in (tiny / "export").iterdir()) == \
        ["decode.onnx", "manifest.json", "nfzoo_onnx_checks.py", "nfzoo_onnx_noise.py", "nfzoo_onnx_runner.py",
         "prior.onnx"]


# --------------------------------------------------------------------- the runner's own files
def test_the_runners_files_are_listed_and_verified(tiny, tmp_path):
    """The export copies the runner, its checks (nfzoo.export.runner_checks as nfzoo_onnx_checks.py) and its
    generator (nfzoo.export.runner_noise as nfzoo_onnx_noise.py), lists them in the manifest with their sha256, and a
    changed one is refused as a changed graph is (unless verify=False)."""
    manifest = read_manifest(tiny / "export")
    files = manifest["runner"]["files"]
    assert sorted(files) == ["nfzoo_onnx_checks.py", "nfzoo_onnx_noise.py", "nfzoo_onnx_runner.py"]
    for name, sha in files.items():
        assert hashlib.sha256((tiny / "export" / name).read_bytes()).hexdigest() == sha
    assert manifest["runner"]["sha256"] == files["nfzoo_onnx_runner.py"]
    d = copy_export(tiny, tmp_path / "e")
    with open(d / "nfzoo_onnx_checks.py", "a") as f:
        f.write("\n# edited\n")
    with pytest.raises(ValueError, match=r"nfzoo_onnx_checks\.py does not match the sha256"):
        ExportedModel(d)
    assert run_runner(d).startswith("refused:") and "does not match the sha256" in run_runner(d)
    assert ExportedModel(d, verify=False).sample(1).shape == (1, 1, 8, 8)


def test_the_copied_runner_loads_its_checks_from_its_own_folder(tiny, tmp_path):
    """Copied, the runner takes nfzoo_onnx_checks.py from the folder it lies in (nfzoo unimportable, another
    working directory); without it, the import fails naming the missing file."""
    d = copy_export(tiny, tmp_path / "e")
    code = ("import sys; sys.modules['torch'] = None; sys.modules['nfzoo'] = None\n"
            f"sys.path.insert(0, {str(d)!r})\n"
            "import nfzoo_onnx_runner as r\n"
            "print(r.ExportedModel(sys.argv[1]).sample(2).shape, r.read_export.__module__)\n")
    res = subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["(2,", "1,", "8,", "8)", "nfzoo_onnx_checks"]
    (d / "nfzoo_onnx_checks.py").unlink()
    res = subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert res.returncode != 0 and "nfzoo_onnx_checks.py is missing" in res.stderr
