"""`nfzoo bench train` (quick mode): the document it returns, against normflows when it is installed."""
import json
import math

import pytest


def test_bench_train_quick_document():
    pytest.importorskip("normflows")
    from nfzoo.bench.train import bench_train

    doc = bench_train(quick=True, log=lambda m: None)
    json.dumps(doc, allow_nan=False)  # clean JSON: no NaN / inf, nothing unserialisable

    assert doc["bench"] == "train"
    assert isinstance(doc["device"], str) and doc["device"].startswith("cpu")
    assert isinstance(doc.get("notes", []), list)
    assert all(isinstance(n, str) for n in doc.get("notes", []))
    assert len(doc["rows"]) == 2
    assert isinstance(doc["nproc"], int) and doc["nproc"] >= 1
    assert doc["threads"] >= 1 and set(doc["load_average"]) == {"before", "after"}
    matched, defaults = doc["rows"]
    assert matched["baseline"] == "normflows" and matched["candidate"] == "nfzoo"
    assert defaults["baseline"] == "normflows (GlowBlock defaults)"
    assert defaults["candidate"] == "nfzoo (glow defaults)"
    assert "defaults" in defaults["case"] and "parameter count matched" in defaults["case"]
    for row in doc["rows"]:
        assert isinstance(row["case"], str) and "glow" in row["case"]
        for key in ("baseline_s", "candidate_s", "ratio", "baseline_images_per_s", "candidate_images_per_s",
                    "baseline_test_bpd", "candidate_test_bpd", "median_ratio", "baseline_cpu_s",
                    "candidate_cpu_s", "cpu_ratio", "baseline_train_s", "candidate_train_s"):
            assert isinstance(row[key], float) and math.isfinite(row[key]), key
        assert row["baseline_s"] > 0 and row["candidate_s"] > 0
        assert row["baseline_cpu_s"] > 0 and row["candidate_cpu_s"] > 0
        assert row["ratio"] == pytest.approx(row["baseline_s"] / row["candidate_s"], rel=1e-12)
        assert row["cpu_ratio"] == pytest.approx(row["baseline_cpu_s"] / row["candidate_cpu_s"], rel=1e-12)
        assert row["candidate_images_per_s"] == pytest.approx(64 / row["candidate_s"])
        assert row["baseline_images_per_s"] == pytest.approx(64 / row["baseline_s"])
        # the quick run times 15 steps of each model after 5 untimed ones
        assert row["candidate_train_s"] == pytest.approx(15 * row["candidate_s"])
        # an 8-bit image model: bpd in a sane range (8 bits/dim is a uniform model)
        assert 0 < row["baseline_test_bpd"] < 12 and 0 < row["candidate_test_bpd"] < 12
        # the same architecture size in both libraries
        for key in ("baseline_params", "candidate_params"):
            assert isinstance(row[key], int) and row[key] > 0
        assert abs(row["baseline_params"] - row["candidate_params"]) <= 0.1 * row["candidate_params"]


def test_match_hidden_gives_the_closest_parameter_count():
    nf = pytest.importorskip("normflows")
    from nfzoo.bench.train import QUICK, _build_normflows_quietly, build_nfzoo_defaults, count_params, match_hidden

    target = count_params(build_nfzoo_defaults(QUICK))
    h = match_hidden(nf, QUICK, target, span=3)
    assert QUICK.hidden - 3 <= h <= QUICK.hidden + 3

    def gap(width):
        return abs(count_params(_build_normflows_quietly(nf, QUICK, net_actnorm=False, hidden=width)) - target)

    assert all(gap(h) <= gap(w) for w in range(QUICK.hidden - 3, QUICK.hidden + 4))
    # normflows' default nets (biases, no ActNorm) at nfzoo's width: within 2% of nfzoo's count
    assert gap(h) <= 0.02 * target


def test_bench_train_without_normflows(monkeypatch):
    import sys

    from nfzoo.bench.train import bench_train
    from nfzoo.errors import UsageError

    monkeypatch.setitem(sys.modules, "normflows", None)  # `import normflows` raises ImportError
    with pytest.raises(UsageError, match="normflows is not installed"):
        bench_train(quick=True, log=lambda m: None)
