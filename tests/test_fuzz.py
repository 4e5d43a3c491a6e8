"""Fuzzing with hypothesis: every registered bijector over random batch sizes (1 included) and odd,
non-square spatial shapes, in float64 through the testing kit and in float32 for dtype and round trip;
labels contexts at random. A shape a bijector cannot take must be refused with a clear error
(nfzoo's UsageError / ConfigError naming the shape), never a crash deep inside."""
import pytest
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from nfzoo.errors import NfzooError
from nfzoo.registry.plugins import get_registry
from nfzoo.testing import check_bijector

ENTRIES = get_registry().list("bijectors")
FUZZ = settings(max_examples=6, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])


def _build(entry, c, h, w):
    """The registered example's constructor arguments, with any image-size argument set to (h, w)."""
    import inspect

    kwargs, _ = entry.metadata["example"]
    kwargs = dict(kwargs)
    target = entry.load()
    params = inspect.signature(target).parameters
    if "shape" in kwargs:
        kwargs["shape"] = (c, h, w)
    if "height" in params and "width" in params:
        kwargs.update(height=h, width=w)
    return target(**kwargs)


def _context(entry, b, data):
    spec = entry.metadata.get("context")
    if spec and spec.startswith("labels:"):
        k = int(spec.split(":")[1])
        return torch.tensor(data.draw(st.lists(st.integers(0, k - 1), min_size=b, max_size=b)))
    return None


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
@FUZZ
@given(b=st.integers(1, 3), h=st.integers(1, 8), w=st.integers(1, 8), data=st.data())
def test_bijector_over_random_shapes(entry, b, h, w, data):
    _, shape = entry.metadata["example"]
    c = shape[1]
    ctx = _context(entry, b, data)
    try:
        bij = _build(entry, c, h, w)
        x = torch.randn(b, c, h, w, dtype=torch.float64)
        bij.double()(x, ctx)
    except NfzooError as exc:                 # refused: the message must say what is wrong with the shape
        assert any(s in str(exc) for s in ("shape", "divisible", "even", "size", "height", "width")), str(exc)
        assume(False)
    check_bijector(_build(entry, c, h, w), (b, c, h, w), ctx)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
@FUZZ
@given(b=st.integers(1, 3), data=st.data())
def test_bijector_keeps_float32(entry, b, data):
    kwargs, shape = entry.metadata["example"]
    c, h, w = shape[1:]
    ctx = _context(entry, b, data)
    bij = _build(entry, c, h, w)
    x = torch.randn(b, c, h, w)
    bij.train()
    with torch.no_grad():
        bij(x, ctx)                           # data-dependent init
        bij.eval()
        z, ld = bij(x, ctx)
        x2, ld2 = bij.inverse(z, ctx)
    assert z.dtype == x2.dtype == ld.dtype == torch.float32 and ld.shape == (b,)
    assert torch.allclose(x2, x, atol=1e-4, rtol=1e-4)
    assert torch.allclose(ld, -ld2, atol=1e-3, rtol=1e-4)


# ------------------------------------------------------------------ config.json
ARCHS = ["nice", "realnvp", "glow", "nsf", "cinc-flow", "quad-flow", "inverse-flow", "glem", "ddpm"]
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=True, width=32),
                     st.text(max_size=6))
_values = st.one_of(_scalars, st.lists(_scalars, max_size=4))


@st.composite
def _configs(draw):
    from nfzoo.loading.api import architecture_config

    arch = draw(st.sampled_from(ARCHS))
    keys = sorted(architecture_config(arch))
    cfg = {"image_shape": draw(st.one_of(st.just([1, 8, 8]), st.lists(st.integers(-1, 9), max_size=4), _values))}
    for k in draw(st.lists(st.sampled_from(keys + ["no_such_key"]), max_size=3, unique=True)):
        cfg[k] = draw(_values)
    return draw(st.one_of(st.just({"architecture": arch, "config": cfg}),
                          st.fixed_dictionaries({"architecture": _values, "config": _values}),
                          _values))


@settings(FUZZ, max_examples=80)
@given(doc=_configs())
def test_any_config_json_loads_or_is_refused_clearly(doc, tmp_path_factory):
    """A config.json, whatever it holds, builds a model or raises one of nfzoo's errors (exit 2 on the CLI):
    never a TypeError, a torch RuntimeError or a hang. No weights file: a config that builds is then
    refused for the missing weights."""
    import json

    from nfzoo.errors import UsageError
    from nfzoo.loading.api import load_directory

    d = tmp_path_factory.mktemp("cfg")
    (d / "config.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError):
        load_directory(d)


# ------------------------------------------------------------------ CLI arguments
_words = st.one_of(st.sampled_from(["glow-mnist5k", "glow", "nope", "mnist5k", "digits", "-1", "0", "2", "nan",
                                    "inf", "1e9", "abc", "", "x=y", "levels=0", "rfcm", "ddim", "a.png",
                                    "8,8,20,20", "0,0,99,1", "--", "-"]),
                   st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=5))
_options = {
    "list": ["--pretrained", "--json"], "info": ["--json"], "plugins": ["--json"],
    "sample": ["--model", "-n", "--temperature", "--label", "--sampler", "--steps", "--seed", "--out", "--device",
               "--per-class", "--sampler-option"],
    "eval": ["--dataset", "--task", "--samples", "--temperature", "--sampler", "--steps", "--k", "--set",
             "--split", "--features", "--sampler-option"],
    "pull": ["--revision", "--json"], "cache": ["--json"],
    "inpaint": ["--model", "--image", "--mask", "--box", "--out", "--seed", "--set"],
    "score": ["--model", "--images", "--reference", "--repeats"],
    "synth": ["--model", "--n", "--out", "--temperature", "--sampler"],
    "augment": ["--model", "--dataset", "--n", "--out", "--mode", "--interpolate", "--steps"],
}


@st.composite
def _argv(draw):
    cmd = draw(st.sampled_from(sorted(_options)))
    argv = [cmd] + ([draw(st.sampled_from(["ls", "verify", "rm", "nope"]))] if cmd == "cache" else [])
    if cmd in ("info", "pull", "eval"):
        argv.append(draw(_words))
    for opt in draw(st.lists(st.sampled_from(_options[cmd]), max_size=4)):
        argv.append(opt)
        if opt not in ("--json", "--pretrained", "--per-class"):
            argv.append(draw(_words))
    return argv


@settings(FUZZ, max_examples=50)
@given(argv=_argv())
def test_cli_arguments_never_end_in_a_traceback(argv, runner, app, tmp_path_factory, monkeypatch):
    """Any argument list ends with exit 0, 1 or 2 (typer's own usage errors are 2), never an uncaught
    exception. Offline (HF_HUB_OFFLINE=1), in an empty folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path_factory.mktemp("cli"))
    res = runner.invoke(app, argv)
    assert res.exception is None or isinstance(res.exception, SystemExit), (argv, res.output)
    assert res.exit_code in (0, 1, 2), (argv, res.exit_code, res.output)
    assert "Traceback" not in res.output, (argv, res.output)


# ------------------------------------------------------------------ model cards
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=12)


@settings(FUZZ, max_examples=60)
@given(arch=_text, ds=st.one_of(st.none(), _text), lic=st.one_of(st.none(), _text),
       metrics=st.dictionaries(_text, st.one_of(st.floats(allow_nan=False, width=32), st.integers()), max_size=3))
def test_model_card_front_matter_parses_back(arch, ds, lic, metrics):
    """The YAML front matter nfzoo writes for the Hub parses (huggingface_hub's RepoCard) to the same fields,
    whatever the names hold (quotes, colons, '#', unicode)."""
    from huggingface_hub import RepoCard

    from nfzoo.hub.publish import model_card

    info = {"architecture": arch, "dataset": ds, "license": lic, "metrics": metrics, "config": {"k": arch}}
    data = RepoCard(model_card("m", info)).data.to_dict()
    assert data["library_name"] == "nfzoo" and data["license"] == (lic or "mit")
    assert data["tags"][-1] == arch
    if ds:
        assert data["datasets"] == [ds]
    want = sorted({"bpd" if "bpd" in k else k for k in metrics if k != "epochs"})
    assert sorted(data.get("metrics") or []) == want


@settings(FUZZ, max_examples=60)
@given(train=_values, history=st.one_of(_values, st.lists(st.dictionaries(
    st.sampled_from(["test_bpd", "epoch", "x"]), _values, max_size=3), max_size=3)))
def test_run_info_reads_any_run_files_or_refuses_them(train, history, tmp_path_factory):
    """`nfzoo push` reads a run's train.json and history.json for the card: whatever they hold, the result is
    the card's info or one of nfzoo's errors."""
    import json

    from nfzoo.errors import NfzooError
    from nfzoo.hub.publish import run_info

    d = tmp_path_factory.mktemp("run")
    (d / "config.json").write_text(json.dumps({"architecture": "glow", "config": {}}))
    (d / "train.json").write_text(json.dumps(train))
    (d / "history.json").write_text(json.dumps(history))
    try:
        info = run_info(d)
    except NfzooError:
        return
    assert info["architecture"] == "glow"


# ------------------------------------------------------------------ CLI numbers at their extremes, odd --out
_numbers = st.sampled_from(["0", "1", "2", "-1", "-5", "0.5", "-0.0", "nan", "inf", "-inf", "1e300", "-1e300",
                            "99999999999999999999999", "-99999999999999999999999", "4294967296", "abc", ""])
_outs = st.sampled_from(["", ".", "o.png", "o.jpg", "o.JPEG", "dir", "d.png", "f.txt", "f.txt/x.png",
                         "/proc/nfzoo-fuzz.png", "/proc/nfzoo-fuzz", "a\x00b.png", "nested/deeper/o.png",
                         "full", "-"])
# every numeric option of these commands (and the --set values of inpaint); --nproc >= 2 would start torchrun,
# so it is fuzzed where it is refused at parse time (test_cli_hardening)
_numeric = {
    "sample": ["-n", "--temperature", "--label", "--steps", "--eta", "--seed", "--sampler-option guidance"],
    "train": ["--epochs", "--batch-size", "--lr", "--warmup", "--grad-clip", "--checkpoint-every", "--seed"],
    "eval": ["--batch-size", "--seed", "--samples", "--temperature", "--steps", "--eta", "--k",
             "--sampler-option steps"],
    "inpaint": ["--seed", "--label", "--set iters", "--set lr", "--set sigma", "--set langevin", "--set noise",
                "--set step_size", "--set steps", "--set resample"],
    "score": ["--repeats", "--seed"],
    "synth": ["--n", "--temperature", "--steps", "--seed"],
    "augment": ["--n", "--strength", "--steps", "--seed"],
    "train-oracle": ["--epochs", "--batch-size", "--lr", "--seed"],
}


@st.composite
def _numeric_argv(draw):
    cmd = draw(st.sampled_from(sorted(_numeric)))
    base = {"sample": ["sample", "--model", "RUN", "--out", draw(_outs)],
            # an unknown data set: every option is checked, and no training ever starts
            "train": ["train", "glow", "--dataset", "nope", "--out", "run"],
            "eval": ["eval", "RUN", "--dataset", "digits"],
            "inpaint": ["inpaint", "--model", "RUN", "--image", "IMG", "--box", "1,1,4,4", "--out", draw(_outs)],
            "score": ["score", "--model", "RUN", "--images", "IMGS", "--reference", "digits"],
            "synth": ["synth", "--model", "RUN", "--out", draw(_outs)],
            "augment": ["augment", "--model", "RUN", "--dataset", "digits", "--out", draw(_outs)],
            "train-oracle": ["train-oracle", "--dataset", "nope"]}[cmd]
    argv = list(base)
    for opt in draw(st.lists(st.sampled_from(_numeric[cmd]), min_size=1, max_size=3)):
        value = draw(_numbers)
        if " " in opt:                      # --set KEY, --sampler-option KEY: KEY=VALUE
            flag, key = opt.split(" ")
            argv += [flag, f"{key}={value}"]
        else:
            argv += [opt, value]
    if cmd == "synth" and "--n" not in argv:
        argv += ["--n", "2"]
    return argv


@settings(FUZZ, max_examples=60)
@given(argv=_numeric_argv())
@example(argv=['sample', '--model', 'RUN', '--out', 'o.png', '--seed', '99999999999999999999999'])
@example(argv=['train', 'glow', '--dataset', 'nope', '--out', 'run', '--seed', '99999999999999999999999'])
@example(argv=['eval', 'RUN', '--dataset', 'digits', '--seed', '99999999999999999999999'])
@example(argv=['eval', 'RUN', '--dataset', 'digits', '--batch-size', '0'])
@example(argv=['eval', 'RUN', '--dataset', 'digits', '--batch-size', '-5'])
@example(argv=['sample', '--model', 'RUN', '--out', '/proc/nfzoo-fuzz.png', '-n', '2'])
@example(argv=['sample', '--model', 'RUN', '--out', 'd.png', '-n', '2'])
@example(argv=['sample', '--model', 'RUN', '--out', '', '-n', '2'])
@example(argv=['sample', '--model', 'RUN', '--out', 'o.jpg', '-n', '2'])
@example(argv=['sample', '--model', 'RUN', '--out', 'full', '-n', '2'])
@example(argv=['sample', '--model', 'RUN', '--out', 'o.png', '-n', '4294967296'])
@example(argv=['inpaint', '--model', 'RUN', '--image', 'IMG', '--box', '1,1,4,4', '--out', 'o.png',
               '--set', 'iters=abc'])
@example(argv=['inpaint', '--model', 'RUN', '--image', 'IMG', '--box', '1,1,4,4', '--out', 'o.png', '--set', 'lr=nan'])
@example(argv=['inpaint', '--model', 'RUN', '--image', 'IMG', '--box', '1,1,4,4', '--out', 'o.png', '--label', '3'])
@example(argv=['train', 'glow', '--dataset', 'nope', '--out', 'run', '--grad-clip', 'nan'])
def test_cli_numbers_and_outputs_at_extremes_exit_cleanly(argv, runner, app, tiny_run, tmp_path_factory,
                                                           monkeypatch):
    """Huge integers, nan, inf, negatives and zero in every numeric option of sample / train / eval / inpaint /
    score / synth / augment, and odd --out paths (empty, '.', x.jpg, a folder named .png, under a file, under
    /proc, a NUL): exit 0, 1 or 2, never a traceback nor an internal error. Sampling draws only its first
    chunk (the chunk path is patched), so a valid huge -n ends at once."""
    import nfzoo.flows.generation as generation
    from nfzoo.data import load_dataset
    from nfzoo.imageio import save_single_png

    real_chunks = generation.chunks
    monkeypatch.setattr(generation, "chunks", lambda n, dist=None: iter(list(real_chunks(n, dist))[:1])
                        if n <= 10 * generation.CHUNK else iter([(0, 0, min(n, generation.CHUNK))]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    work = tmp_path_factory.mktemp("cli-numbers")
    monkeypatch.chdir(work)
    (work / "d.png").mkdir()
    (work / "f.txt").write_text("x")
    (work / "full").mkdir()
    (work / "full" / "keep.txt").write_text("x")
    (work / "imgs").mkdir()
    x, _ = load_dataset("digits", "test").batch(torch.arange(2))
    save_single_png(x[0], work / "imgs" / "a.png")
    subs = {"RUN": str(tiny_run), "IMG": str(work / "imgs" / "a.png"), "IMGS": str(work / "imgs")}
    argv = [subs.get(a, a) for a in argv]
    res = runner.invoke(app, argv)
    assert res.exception is None or isinstance(res.exception, SystemExit), (argv, res.output)
    assert res.exit_code in (0, 1, 2), (argv, res.exit_code, res.output)
    assert "Traceback" not in res.output and "internal error" not in res.output, (argv, res.output)
    assert (work / "f.txt").read_text() == "x" and (work / "full" / "keep.txt").read_text() == "x"
