"""`--compile` (nfzoo.flows.compiling) and `nfzoo bench compile`: compiled sampling and bpd equal eager; a compiler
that fails (at once or at the first call) falls back to eager and says why, once.

Real compilation is slow on a CPU (inductor builds C++): the tests that compile (marked `compiles`) use one
tiny Glow and three graphs (the inverse at chunk sizes 250 and 10, the forward at batch 16), which
`bench compile --quick` then finds in inductor's cache. NFZOO_SKIP_COMPILE_TESTS=1 skips them; the
fallback tests do not compile (torch.compile is replaced) and always run."""
import os

import pytest
import torch

import nfzoo
from nfzoo.flows import compiling
from nfzoo.flows.compiling import CompileFallbackWarning, compile_flow, compile_module, compiled_state, eager_flow

TINY = dict(image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)   # = nfzoo.bench.compile.TINY

compiles = pytest.mark.skipif(os.environ.get("NFZOO_SKIP_COMPILE_TESTS") == "1" or
                              compiling.unavailable_reason("cpu") is not None,
                              reason="compiles with inductor (slow on a CPU; NFZOO_SKIP_COMPILE_TESTS=1, or no "
                                     "C++ compiler)")


def tiny_glow():
    x = torch.rand(16, *TINY["image_shape"], generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    m = nfzoo.create_model("glow", **TINY)
    m.initialize(x)
    return m.eval(), x


@pytest.fixture
def no_cpp_compiler():
    """As if $CXX named a compiler that is not installed (inductor reads CXX once, into its config)."""
    import torch._inductor.config as inductor_config

    with inductor_config.patch({"cpp.cxx": (None, "no-such-compiler-nfzoo")}):
        yield


def failing_compile(monkeypatch, calls=None):
    """Make torch.compile lazy-fail as inductor does without a working compiler: the call raises."""
    def fake(fn, **options):
        def compiled(*args, **kwargs):
            if calls is not None:
                calls.append(options)
            raise RuntimeError("InductorError: CppCompileError: C++ compile error\nmore lines")
        return compiled
    monkeypatch.setattr(torch, "compile", fake)


@compiles
def test_compiled_sampling_and_bpd_equal_eager_and_chunks_do_not_recompile():
    from nfzoo.flows.generation import generate_all

    m, x = tiny_glow()
    with torch.no_grad():
        eager_x = generate_all(m, 260, seed=3)      # chunks of 250 and 10
        eager_bpd = m.bpd(x, noise=False)
    assert compile_flow(m, "sample", on_fallback=pytest.fail) is None
    with torch.no_grad():
        got_x = generate_all(m, 260, seed=3)
        got_bpd = m.bpd(x, noise=False)
    assert compiled_state(m) is True
    assert got_x.shape == (260, 1, 8, 8)
    torch.testing.assert_close(got_x, eager_x, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_bpd, eager_bpd, rtol=1e-6, atol=1e-5)
    # the same chunk sizes again: the graphs are reused, nothing is compiled anew
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    with torch.no_grad():
        again = generate_all(m, 260, seed=3)
    assert counters["stats"]["unique_graphs"] == graphs
    torch.testing.assert_close(again, got_x, rtol=0, atol=0)
    eager_flow(m)
    assert compiled_state(m) is None and "inverse" not in m.bijector.__dict__


@compiles
def test_bench_compile_quick():
    from nfzoo.bench.compile import bench_compile

    lines = []
    doc = bench_compile(quick=True, log=lines.append)
    assert doc["bench"] == "compile" and doc["device"].startswith("cpu")
    assert [r["case"] for r in doc["rows"]] == ["tiny glow 8x8: sample 10 (T=1)",
                                                "tiny glow 8x8: bpd of 16 random images"]
    for r in doc["rows"]:
        assert (r["baseline"], r["candidate"]) == ("eager", "torch.compile")
        assert r["max_abs_diff"] < 1e-5
        assert r["ratio"] == pytest.approx(r["baseline_s"] / r["candidate_s"])
        assert r["compile_s"] > 0
    assert len(lines) == 2 and not any("fell back" in n for n in doc["notes"])


def test_bench_compile_says_when_a_case_fell_back(monkeypatch):
    from nfzoo.bench.compile import bench_compile

    failing_compile(monkeypatch)
    doc = bench_compile(quick=True, log=lambda msg: None)
    assert [r["candidate"] for r in doc["rows"]] == ["torch.compile (fell back to eager)"] * 2
    assert [r["max_abs_diff"] for r in doc["rows"]] == [0.0, 0.0]
    assert [n for n in doc["notes"] if "fell back" in n] == [
        f"tiny glow 8x8 fell back to eager: torch.compile failed for sampling and bpd, bijector {d}: RuntimeError: "
        "InductorError: CppCompileError: C++ compile error; running eager" for d in ("inverse", "forward")]


def test_a_compiler_failing_at_the_first_call_falls_back_to_eager_once(monkeypatch):
    m, x = tiny_glow()
    with torch.no_grad():
        expected = m.sample(5, generator=torch.Generator().manual_seed(0))
        expected_bpd = m.bpd(x, noise=False)
    calls, reasons = [], []
    failing_compile(monkeypatch, calls)
    assert compile_flow(m, "sample", on_fallback=reasons.append) is None   # lazy: nothing fails yet
    with torch.no_grad():
        got = m.sample(5, generator=torch.Generator().manual_seed(0))
        got2 = m.sample(5, generator=torch.Generator().manual_seed(0))
        got_bpd = m.bpd(x, noise=False)
    assert torch.equal(got, expected) and torch.equal(got2, expected) and torch.equal(got_bpd, expected_bpd)
    assert reasons == ["torch.compile failed for sample, bijector inverse: RuntimeError: InductorError: "
                       "CppCompileError: C++ compile error; running eager",
                       "torch.compile failed for sample, bijector forward: RuntimeError: InductorError: "
                       "CppCompileError: C++ compile error; running eager"]
    assert len(calls) == 2 and calls[0] == {"dynamic": False}    # each compiled function tried once
    assert compiled_state(m) is False


def test_a_real_error_of_the_input_is_raised_and_does_not_drop_the_compiled_function(monkeypatch):
    failing_compile(monkeypatch)
    reasons = []
    fn, reason = compile_module(torch.nn.Linear(3, 2), "eval", on_fallback=reasons.append)
    assert reason is None and fn.is_compiled
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        fn(torch.zeros(4, 5))
    assert fn.is_compiled and reasons == []


def test_compile_module_calls_the_module_and_warns_when_no_reporter(monkeypatch):
    lin = torch.nn.Linear(3, 2)
    monkeypatch.setattr(torch, "compile", lambda fn, **options: fn)    # "compiled" = the module itself
    fn, reason = compile_module(lin, "train")
    x = torch.randn(4, 3)
    assert reason is None and torch.equal(fn(x), lin(x))
    fn(x).sum().backward()
    assert lin.weight.grad is not None
    failing_compile(monkeypatch)
    fn, _ = compile_module(lin, "train")
    with pytest.warns(CompileFallbackWarning, match="torch.compile failed for train: RuntimeError"):
        assert torch.equal(fn(x), lin(x))


def test_no_cpp_compiler_is_a_reason_given_at_once(no_cpp_compiler):
    lin = torch.nn.Linear(3, 2)
    fn, reason = compile_module(lin, "train")
    assert fn is lin
    assert reason == ("torch.compile needs a C++ compiler on the CPU: no-such-compiler-nfzoo not found "
                      "(install g++ or set CXX); running eager")
    m, _ = tiny_glow()
    assert compile_flow(m, "sample") == reason and compiled_state(m) is None


def test_inductor_failing_for_real_at_the_first_call_falls_back(monkeypatch, no_cpp_compiler):
    """No stand-in for torch.compile: inductor itself fails (no C++ compiler, nothing in its cache) when the
    compiled function is first called, as it does on a machine without g++ when the early check misses."""
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config, "force_disable_caches", True)
    monkeypatch.setattr(compiling, "unavailable_reason", lambda device="cpu": None)

    class Pointwise(torch.nn.Module):
        def forward(self, x):
            return torch.tanh(x) * 2 + 1

    reasons = []
    fn, reason = compile_module(Pointwise(), "train", on_fallback=reasons.append)
    x = torch.linspace(-2, 2, 12).reshape(4, 3)
    assert reason is None and torch.equal(fn(x), torch.tanh(x) * 2 + 1)
    assert not fn.is_compiled
    assert reasons == ["torch.compile failed for train: InductorError: InvalidCxxCompiler: No working C++ compiler "
                       "found in torch._inductor.config.cpp.cxx: (None, 'no-such-compiler-nfzoo'); running eager"]


def test_torch_compile_refusing_is_a_reason_given_at_once(monkeypatch):
    def refuse(fn, **options):
        raise RuntimeError("Dynamo is not supported on Python 3.99+")
    monkeypatch.setattr(torch, "compile", refuse)
    fn, reason = compile_module(torch.nn.Linear(3, 2), "train")
    assert reason == ("torch.compile is unavailable for train: RuntimeError: Dynamo is not supported on Python "
                      "3.99+; running eager")


@pytest.fixture
def tiny_dir(tmp_path):
    m, _ = tiny_glow()
    m.save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny"


def test_cli_sample_and_eval_compile_fall_back_with_a_warning(runner, app, tiny_dir, tmp_path, monkeypatch):
    failing_compile(monkeypatch)
    plain = tmp_path / "plain.png"
    res = runner.invoke(app, ["sample", "--model", str(tiny_dir), "-n", "4", "--out", str(plain)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "compiled.png"
    res = runner.invoke(app, ["sample", "--model", str(tiny_dir), "-n", "4", "--compile", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("warning:") == 1
    assert ("warning: torch.compile failed for sample, bijector inverse: RuntimeError: InductorError: "
            "CppCompileError: C++ compile error; running eager") in res.stderr
    assert out.read_bytes() == plain.read_bytes()
    res = runner.invoke(app, ["eval", str(tiny_dir), "--dataset", "digits", "--compile", "--json"])
    assert res.exit_code == 0, res.output
    assert "warning: torch.compile failed for eval, bijector forward" in res.stderr
    import json

    compiled_bpd = json.loads(res.stdout)["bpd"]
    res = runner.invoke(app, ["eval", str(tiny_dir), "--dataset", "digits", "--json"])
    assert json.loads(res.stdout)["bpd"] == compiled_bpd


def test_cli_compile_without_a_cpp_compiler_warns_at_once(runner, app, tiny_dir, tmp_path, no_cpp_compiler):
    res = runner.invoke(app, ["sample", "--model", str(tiny_dir), "-n", "4", "--compile", "--out",
                              str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert ("warning: torch.compile needs a C++ compiler on the CPU: no-such-compiler-nfzoo not found "
            "(install g++ or set CXX); running eager") in res.stderr


def test_bench_compile_is_registered(runner, app):
    res = runner.invoke(app, ["bench", "--json"])
    import json

    assert "compile" in [e["name"] for e in json.loads(res.stdout)]
