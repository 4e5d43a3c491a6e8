"""Issue 20, the CLI's side: errors map to exit codes in one place (plugins' commands included), every
numeric option is range-checked, `sample --out` is checked before any sampling, a grid has a maximum and
`--out DIR` streams in constant memory (labels included), images are size-checked before decoding, and
the debatable cases (non-empty --out DIR, --out "", --out x.jpg, inpaint --label on an unconditional
model, unknown NFZOO_LOAD_PLUGINS names, --grad-clip nan) are refused with exit 2."""
import os
import struct
import subprocess
import sys
import weakref
import zlib

import pytest
import torch

HUGE = "99999999999999999999999"


def ok_no_traceback(res, code=2):
    assert res.exit_code == code, (res.exit_code, res.output)
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    return res.output


# ------------------------------------------------------------------ one place for error -> exit code
PLUGIN = '''
import nfzoo

@nfzoo.hookimpl
def register_commands(app):
    @app.command("boom-usage")
    def boom_usage():
        from nfzoo.errors import UsageError
        raise UsageError("bad input on purpose")

    @app.command("boom-bug")
    def boom_bug():
        raise ZeroDivisionError("a bug on purpose\\nsecond line")

    @app.command("boom-disk")
    def boom_disk():
        raise OSError(28, "No space left on device", "/some/file")
'''


@pytest.mark.parametrize("command,code,needle", [
    ("boom-usage", 2, "error: bad input on purpose"),
    ("boom-bug", 1, "internal error: ZeroDivisionError: a bug on purpose (set NFZOO_TRACEBACK=1"),
    ("boom-disk", 1, "No space left on device (/some/file)"),
])
def test_a_plugin_command_without_any_decorator_maps_errors_to_exit_codes(fake_plugin, tmp_path, command,
                                                                           code, needle):
    """The mapping is the app's (its click group), so a command that forgets it cannot exist."""
    fake_plugin("boomer", PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])}
    env.pop("NFZOO_TRACEBACK", None)
    res = subprocess.run([sys.executable, "-m", "nfzoo_cli", command], capture_output=True, text=True, env=env)
    assert res.returncode == code, res.stderr
    assert needle in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert "second line" not in res.stderr       # one line
    if command == "boom-bug":                   # and the traceback on request
        env["NFZOO_TRACEBACK"] = "1"
        res = subprocess.run([sys.executable, "-m", "nfzoo_cli", command], capture_output=True, text=True, env=env)
        assert res.returncode == 1 and "Traceback" in res.stderr and "ZeroDivisionError" in res.stderr


def test_the_app_and_the_heads_commands_use_no_per_command_decorator():
    import typer.main

    from nfzoo_cli.app import build_app
    from nfzoo_cli.exits import NfzooGroup

    assert isinstance(typer.main.get_command(build_app()), NfzooGroup)
    import nfzoo_heads.cli as heads_cli

    assert "handle_errors" not in open(heads_cli.__file__).read()


def test_one_line_cuts_a_cpp_backtrace():
    from nfzoo_cli.exits import one_line

    msg = "bad alloc of 72 GB\nException raised from allocate at c10/core/Alloc.cpp:12\nframe #0: ..."
    assert one_line(msg) == "bad alloc of 72 GB"


# ------------------------------------------------------------------ numbers at their extremes
@pytest.mark.parametrize("args", [
    ["sample", "--model", "RUN", "--seed", HUGE, "--out", "x.png"],
    ["sample", "--model", "RUN", "--seed", "-1", "--out", "x.png"],
    ["train", "glow", "--dataset", "digits", "--seed", HUGE],
    ["eval", "RUN", "--dataset", "digits", "--seed", HUGE],
    ["train-oracle", "--seed", HUGE],
    ["inpaint", "--model", "RUN", "--image", "a.png", "--box", "1,1,3,3", "--out", "o.png", "--seed", HUGE],
    ["score", "--model", "RUN", "--images", ".", "--seed", HUGE],
    ["synth", "--model", "RUN", "--n", "3", "--out", "s", "--seed", HUGE],
    ["augment", "--model", "RUN", "--dataset", "digits", "--out", "a", "--seed", HUGE],
])
def test_a_huge_or_negative_seed_exits_2(runner, app, tiny_run, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    out = ok_no_traceback(runner.invoke(app, [str(tiny_run) if a == "RUN" else a for a in args]))
    assert "--seed" in out and "4294967295" in out


def test_the_core_refuses_a_seed_out_of_range():
    from nfzoo.errors import UsageError
    from nfzoo.flows.generation import SEED_MAX, check_seed, chunk_generator

    assert check_seed(SEED_MAX) == SEED_MAX and check_seed(0) == 0 and check_seed(3.0) == 3
    for bad in (SEED_MAX + 1, -1, 10 ** 23, 2.5, "x", True, float("nan")):
        with pytest.raises(UsageError, match="seed"):
            check_seed(bad)
    with pytest.raises(UsageError):
        chunk_generator(10 ** 23, 0)


@pytest.mark.parametrize("args,option", [
    (["eval", "RUN", "--dataset", "digits", "--batch-size", "0"], "--batch-size"),
    (["eval", "RUN", "--dataset", "digits", "--batch-size", "-5"], "--batch-size"),
    (["eval", "RUN", "--dataset", "digits", "--batch-size", HUGE], "--batch-size"),
    (["eval", "RUN", "--dataset", "digits", "--samples", HUGE], "--samples"),
    (["eval", "RUN", "--dataset", "digits", "--k", "0"], "--k"),
    (["eval", "RUN", "--dataset", "digits", "--temperature", "nan"], "--temperature"),
    (["eval", "RUN", "--dataset", "digits", "--eta", "inf"], "--eta"),
    (["eval", "RUN", "--dataset", "digits", "--steps", HUGE], "--steps"),
    (["sample", "--model", "RUN", "-n", "0"], "-n"),
    (["sample", "--model", "RUN", "-n", HUGE], "-n"),
    (["sample", "--model", "RUN", "--temperature", "inf"], "--temperature"),
    (["sample", "--model", "RUN", "--temperature", "-1"], "--temperature"),
    (["sample", "--model", "RUN", "--label", HUGE], "--label"),
    (["sample", "--model", "RUN", "--steps", "-3"], "--steps"),
    (["sample", "--model", "RUN", "--eta", "nan"], "--eta"),
    (["sample", "--model", "RUN", "--nproc", HUGE], "--nproc"),
    (["train", "glow", "--dataset", "digits", "--grad-clip", "nan"], "--grad-clip"),
    (["train", "glow", "--dataset", "digits", "--grad-clip", "inf"], "--grad-clip"),
    (["train", "glow", "--dataset", "digits", "--lr", "nan"], "--lr"),
    (["train", "glow", "--dataset", "digits", "--lr", "0"], "--lr"),
    (["train", "glow", "--dataset", "digits", "--epochs", HUGE], "--epochs"),
    (["train", "glow", "--dataset", "digits", "--batch-size", "0"], "--batch-size"),
    (["train", "glow", "--dataset", "digits", "--warmup", "-1"], "--warmup"),
    (["train", "glow", "--dataset", "digits", "--checkpoint-every", HUGE], "--checkpoint-every"),
    (["train", "glow", "--dataset", "digits", "--nproc", "0"], "--nproc"),
    (["train-oracle", "--batch-size", "0"], "--batch-size"),
    (["train-oracle", "--lr", "-inf"], "--lr"),
    (["score", "--model", "RUN", "--images", ".", "--repeats", "0"], "--repeats"),
    (["synth", "--model", "RUN", "--n", HUGE, "--out", "s"], "--n"),
    (["synth", "--model", "RUN", "--n", "3", "--out", "s", "--temperature", "nan"], "--temperature"),
    (["augment", "--model", "RUN", "--dataset", "digits", "--out", "a", "--strength", "nan"], "--strength"),
    (["augment", "--model", "RUN", "--interpolate", "a.png", "--interpolate", "b.png", "--out", "i.png",
      "--steps", "0"], "--steps"),
    (["inpaint", "--model", "RUN", "--image", "a.png", "--box", "1,1,3,3", "--out", "o.png", "--label", "-1"],
     "--label"),
])
def test_every_numeric_option_refuses_extremes_with_exit_2(runner, app, tiny_run, tmp_path, monkeypatch, args,
                                                             option):
    monkeypatch.chdir(tmp_path)
    out = ok_no_traceback(runner.invoke(app, [str(tiny_run) if a == "RUN" else a for a in args]))
    assert option in out
    assert not any(tmp_path.iterdir()), "nothing may be written"


# ------------------------------------------------------------------ sample --out: checked before sampling
@pytest.fixture
def no_sampling(monkeypatch):
    import nfzoo.flows.generation as generation

    def refuse(*a, **k):
        raise AssertionError("sampling started before the destination was checked")
    monkeypatch.setattr(generation, "generate", refuse)
    monkeypatch.setattr(generation, "generate_all", refuse)


def test_sample_out_is_checked_before_any_sampling(runner, app, tiny_run, tmp_path, no_sampling):
    (tmp_path / "d.png").mkdir()
    (tmp_path / "f.txt").write_text("x")
    cases = {str(tmp_path / "d.png"): "is a folder",
             "/proc/nfzoo-x.png": "cannot write",
             "/proc/nfzoo-dir": "cannot write",
             str(tmp_path / "f.txt" / "x.png"): "is a file",
             str(tmp_path / "f.txt"): "is a file",
             "": "empty",
             str(tmp_path / "x.jpg"): "only PNG"}
    for out, needle in cases.items():
        res = runner.invoke(app, ["sample", "--model", str(tiny_run), "-n", "2", "--out", out])
        assert needle in ok_no_traceback(res), (out, res.output)
    assert not (tmp_path / "x.jpg").exists(), "no folder named x.jpg"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes in a read-only folder")
def test_sample_into_a_read_only_folder_exits_2(runner, app, tiny_run, tmp_path, no_sampling):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        res = runner.invoke(app, ["sample", "--model", str(tiny_run), "--out", str(ro / "x.png")])
        assert "cannot write" in ok_no_traceback(res)
    finally:
        ro.chmod(0o700)


def test_train_out_an_existing_file_exits_2(runner, app, tmp_path):
    f = tmp_path / "file"
    f.write_text("not a folder")
    res = runner.invoke(app, ["train", "glow", "--dataset", "digits", "--out", str(f)])
    assert "is a file" in ok_no_traceback(res)
    assert f.read_text() == "not a folder"


def test_sample_out_dir_refuses_a_folder_with_files_unless_overwrite(runner, app, tiny_run, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    res = runner.invoke(app, ["sample", "--model", str(tiny_run), "-n", "2", "--out", str(d)])
    assert "--overwrite" in ok_no_traceback(res)
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]
    res = runner.invoke(app, ["sample", "--model", str(tiny_run), "-n", "2", "--out", str(d), "--overwrite"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in d.iterdir()) == ["000000.png", "000001.png", "grid.png", "notes.txt"]


# ------------------------------------------------------------------ grid maximum, streaming in constant memory
@pytest.fixture(scope="module")
def glem_dir(tmp_path_factory):
    from nfzoo.data import load_dataset
    from nfzoo.loading.api import create_model

    torch.manual_seed(0)
    m = create_model("glem", image_shape=[1, 8, 8], levels=1, steps=1, hidden=8, num_classes=10)
    x, y = load_dataset("digits", "train").batch(torch.arange(64))
    m.initialize(x, y, generator=torch.Generator().manual_seed(0))
    d = tmp_path_factory.mktemp("glem") / "glem"
    m.save_pretrained(d)
    return d


def test_a_grid_has_a_maximum(runner, app, tiny_run, glem_dir, tmp_path, no_sampling):
    res = runner.invoke(app, ["sample", "--model", str(tiny_run), "-n", "1000000000", "--out",
                              str(tmp_path / "big.png")])
    assert "--out DIR" in ok_no_traceback(res)
    res = runner.invoke(app, ["sample", "--model", str(glem_dir), "-n", "200", "--per-class", "--out",
                              str(tmp_path / "big.png")])     # 10 classes x 200
    assert "2000" in ok_no_traceback(res) and not (tmp_path / "big.png").exists()


def test_label_rules_give_the_labels_and_images_of_the_full_tensors(glem_dir):
    import nfzoo
    from nfzoo.flows.generation import constant_labels, cycle_labels, generate, per_class_labels

    m = nfzoo.load(str(glem_dir))
    n = 260                                         # two chunks
    pairs = [(cycle_labels(10), torch.arange(n) % 10),
             (per_class_labels(26), torch.arange(10).repeat_interleave(26)),
             (constant_labels(3), torch.full((n,), 3, dtype=torch.long))]
    for rule, full in pairs:
        assert torch.equal(torch.cat([rule(a, b) for a, b in ((0, 250), (250, 260))]), full)
    for (_, xa, ya), (_, xb, yb) in zip(generate(m, n, pairs[0][0], seed=5), generate(m, n, pairs[0][1], seed=5)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_sample_out_dir_streams_in_constant_memory(runner, app, glem_dir, tmp_path, monkeypatch):
    """n = 10^7 samples of a class-conditional model into a folder: the chunk path is patched to draw only
    the first two and the last chunk; no tensor of n elements (labels included) is ever built, and no
    chunk's images outlive their chunk."""
    from torch.utils._python_dispatch import TorchDispatchMode

    import nfzoo.flows.generation as generation

    n = 10 ** 7
    real_chunks, real_generate = generation.chunks, generation.generate

    def few_chunks(total, dist=None):
        last = (total - 1) // generation.CHUNK
        for c, a, b in real_chunks(2 * generation.CHUNK, dist):
            yield c, a, b
        yield last, last * generation.CHUNK, total

    alive = []

    def watched(*a, **k):
        for start, x, y in real_generate(*a, **k):
            assert sum(r() is not None for r in alive) <= 1, "earlier chunks are still held"
            alive.append(weakref.ref(x))
            yield start, x, y

    biggest = [0]

    class Sizes(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            res = func(*args, **(kwargs or {}))
            for t in (res if isinstance(res, (tuple, list)) else (res,)):
                if isinstance(t, torch.Tensor):
                    biggest[0] = max(biggest[0], t.numel())
            return res

    monkeypatch.setattr(generation, "chunks", few_chunks)
    monkeypatch.setattr(generation, "generate", watched)
    out = tmp_path / "many"
    with Sizes():
        res = runner.invoke(app, ["sample", "--model", str(glem_dir), "-n", str(n), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert biggest[0] < n, f"a tensor of {biggest[0]} elements was built"
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 3 * generation.CHUNK + 1 and names[0] == "000000.png" and names[-2] == f"{n - 1:06d}.png"
    assert names[-1] == "grid.png"


# ------------------------------------------------------------------ images: size-checked before decoding
def bomb_png(width=30000, height=30000) -> bytes:
    """A valid PNG header claiming width x height 8-bit gray pixels, with a tiny IDAT."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 8)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [(30000, 30000), (5000, 5000)])
def test_a_decompression_bomb_is_refused_before_decoding(runner, app, tiny_run, tmp_path, size):
    from nfzoo.errors import UsageError
    from nfzoo.imageio import MAX_IMAGE_PIXELS, read_image

    bomb = tmp_path / "imgs" / "bomb.png"
    bomb.parent.mkdir()
    bomb.write_bytes(bomb_png(*size))
    assert len(bomb.read_bytes()) < 100
    with pytest.raises(UsageError, match="bomb.png"):
        read_image(bomb, 1)
    limit = f"{MAX_IMAGE_PIXELS:,}"
    res = runner.invoke(app, ["inpaint", "--model", str(tiny_run), "--image", str(bomb), "--box", "1,1,3,3",
                              "--out", str(tmp_path / "o.png")])
    out = ok_no_traceback(res)
    assert "bomb.png" in out and limit in out
    res = runner.invoke(app, ["score", "--model", str(tiny_run), "--images", str(bomb.parent),
                              "--reference", "digits"])
    out = ok_no_traceback(res)
    assert "bomb.png" in out and limit in out


# ------------------------------------------------------------------ inpaint: --set values and --label
@pytest.fixture
def digit_png(tmp_path):
    from nfzoo.data import load_dataset
    from nfzoo.imageio import save_single_png

    x, _ = load_dataset("digits", "test").batch(torch.arange(1))
    save_single_png(x[0], tmp_path / "digit.png")
    return tmp_path / "digit.png"


@pytest.mark.parametrize("item,needle", [
    ("iters=abc", "iters"), ("iters=1e9", "iters"), ("iters=-1", "iters"), ("iters=2.5", "iters"),
    ("lr=nan", "lr"), ("lr=0", "lr"), ("lr=abc", "lr"), ("sigma=inf", "sigma"), ("langevin=true", "langevin"),
    ("noise=-1", "noise"), ("step_size=1e300", "step_size"), ("objective=x", "objective"),
    ("method=nope", "method"), ("steps=3", "no option"),
])
def test_inpaint_set_values_are_checked_before_any_work(runner, app, tiny_run, digit_png, tmp_path, item, needle,
                                                         monkeypatch):
    import nfzoo_heads.inpainting as inp

    monkeypatch.setattr(inp, "_latent_fit", lambda *a, **k: pytest.fail("inpainting ran"))
    res = runner.invoke(app, ["inpaint", "--model", str(tiny_run), "--image", str(digit_png), "--box", "1,1,4,4",
                              "--out", str(tmp_path / "o.png"), "--set", item])
    assert needle in ok_no_traceback(res)
    assert not (tmp_path / "o.png").exists()


def test_inpaint_label_on_an_unconditional_model_exits_2(runner, app, tiny_run, digit_png, tmp_path):
    res = runner.invoke(app, ["inpaint", "--model", str(tiny_run), "--image", str(digit_png), "--box", "1,1,4,4",
                              "--out", str(tmp_path / "o.png"), "--label", "3"])
    assert "unconditional" in ok_no_traceback(res)


def test_inpaint_out_is_checked_before_any_work(runner, app, tiny_run, digit_png, tmp_path):
    (tmp_path / "d.png").mkdir()
    for out in ("/proc/nfzoo-x.png", str(tmp_path / "d.png"), str(tmp_path / "o.jpg")):
        res = runner.invoke(app, ["inpaint", "--model", str(tiny_run), "--image", str(digit_png), "--box",
                                  "1,1,4,4", "--out", out])
        ok_no_traceback(res)
