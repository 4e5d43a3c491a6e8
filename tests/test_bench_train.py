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
    assert len(doc["rows"]) == 1
    row = doc["rows"][0]
    assert row["baseline"] == "normflows" and row["candidate"] == "nfzoo"
    assert isinstance(row["case"], str) and "glow" in row["case"]
    for key in ("baseline_s", "candidate_s", "ratio", "baseline_images_per_s", "candidate_images_per_s",
                "baseline_test_bpd", "candidate_test_bpd"):
        assert isinstance(row[key], float) and math.isfinite(row[key]), key
    assert row["baseline_s"] > 0 and row["candidate_s"] > 0
    assert row["ratio"] == pytest.approx(row["baseline_s"] / row["candidate_s"], rel=1e-12)
    assert row["candidate_images_per_s"] == pytest.approx(64 / row["candidate_s"])
    assert row["baseline_images_per_s"] == pytest.approx(64 / row["baseline_s"])
    # an 8-bit image model: bpd in a sane range (8 bits/dim is a uniform model)
    assert 0 < row["baseline_test_bpd"] < 12 and 0 < row["candidate_test_bpd"] < 12
    # the same architecture size in both libraries
    for key in ("baseline_params", "candidate_params"):
        assert isinstance(row[key], int) and row[key] > 0
    assert abs(row["baseline_params"] - row["candidate_params"]) <= 0.1 * row["candidate_params"]


def test_bench_train_without_normflows(monkeypatch):
    import sys

    from nfzoo.bench.train import bench_train
    from nfzoo.errors import UsageError

    monkeypatch.setitem(sys.modules, "normflows", None)  # `import normflows` raises ImportError
    with pytest.raises(UsageError, match="normflows is not installed"):
        bench_train(quick=True, log=lambda m: None)
